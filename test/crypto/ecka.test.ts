import t from 'tap';
import { createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { CURVES } from '../../src/crypto/curves.js';
import { ecka, eckaWithFreshKey, generateOtKeyPair, pointOfPublicKey, publicKeyFromPoint } from '../../src/crypto/ecka.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { signRaw, verifyRaw } from '../../src/crypto/ecdsa.js';

const invalidPoint = { name: 'CryptoError', code: 'invalidPoint' };

for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
  t.test(`${curve}: both sides derive the same Z`, async (t) => {
    for (let i = 0; i < 20; i++) {
      const dp = generateOtKeyPair(curve);
      const eu = generateOtKeyPair(curve);
      t.equal(dp.publicPoint.length, 65);
      t.equal(dp.publicPoint[0], 4);
      const z = ecka(dp.privateKey, eu.publicPoint);
      t.equal(z.length, 32);
      t.same(ecka(eu.privateKey, dp.publicPoint), z);
      t.same(dp.agree(eu.publicPoint), z, 'agree is ecka with the pair\'s own key');
      t.same(generateOtKeyPair(curve).agree(eu.publicPoint).length, 32);
      // independent check with node's KeyObject ECDH
      t.same(diffieHellman({ privateKey: dp.privateKey, publicKey: publicKeyFromPoint(curve, eu.publicPoint) }), z);
      t.same(pointOfPublicKey(dp.privateKey), dp.publicPoint);
      t.same(pointOfPublicKey(createPublicKey(dp.privateKey)), dp.publicPoint);
    }
  });

  t.test(`${curve}: eckaWithFreshKey agrees with the peer's ECKA and draws a new key each time`, async (t) => {
    const eu = generateOtKeyPair(curve);
    const a = eckaWithFreshKey(curve, eu.publicPoint);
    const b = eckaWithFreshKey(curve, eu.publicPoint);
    t.equal(a.publicPoint.length, 65);
    t.same(ecka(eu.privateKey, a.publicPoint), a.z, 'the peer derives the same Z');
    t.same(ecka(eu.privateKey, b.publicPoint), b.z);
    t.not(a.publicPoint.toString('hex'), b.publicPoint.toString('hex'));
    t.throws(() => eckaWithFreshKey(curve, Buffer.alloc(65, 4)), invalidPoint);
  });

  t.test(`${curve}: keys not made here (PEM/DER imports) work too`, async (t) => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName });
    const point = pointOfPublicKey(publicKey);
    t.same(publicKeyFromPoint(curve, point).export({ format: 'der', type: 'spki' }), publicKey.export({ format: 'der', type: 'spki' }));
    const eu = generateOtKeyPair(curve);
    const z = ecka(privateKey, eu.publicPoint);
    t.same(z, ecka(eu.privateKey, point));
    t.same(ecka(privateKey, eu.publicPoint), z, 'second call (cached) agrees');
    // the one-time private key is a usable KeyObject
    const sig = signRaw(eu.privateKey, Buffer.from('x'));
    t.ok(verifyRaw(publicKeyFromPoint(curve, eu.publicPoint), Buffer.from('x'), sig));
  });

  t.test(`${curve}: a pair used through agree alone agrees with its peer`, async (t) => {
    const a = generateOtKeyPair(curve);
    const b = generateOtKeyPair(curve);
    const z = a.agree(b.publicPoint);
    t.same(b.agree(a.publicPoint), z);
    t.same(diffieHellman({ privateKey: a.privateKey, publicKey: publicKeyFromPoint(curve, b.publicPoint) }), z, 'the private key made afterwards is the same key');
    t.same(a.agree(b.publicPoint), z, 'and agree still answers the same after it');
  });

  t.test(`${curve}: bad points are CryptoError invalidPoint`, async (t) => {
    const pair = generateOtKeyPair(curve);
    const { privateKey, publicPoint } = pair;
    const offCurve = Buffer.from(publicPoint);
    offCurve[64]! ^= 1;
    const compressed = Buffer.concat([Buffer.from([2 + (publicPoint[64]! & 1)]), publicPoint.subarray(1, 33)]);
    const wrongPrefix = Buffer.from(publicPoint);
    wrongPrefix[0] = 0x06;
    const bad = [offCurve, publicPoint.subarray(0, 64), Buffer.concat([publicPoint, Buffer.alloc(1)]), compressed,
      wrongPrefix, Buffer.concat([Buffer.from([4]), Buffer.alloc(64)]), Buffer.alloc(0)];
    for (const p of bad) {
      t.throws(() => publicKeyFromPoint(curve, p), invalidPoint, `publicKeyFromPoint ${p.subarray(0, 4).toString('hex')}… (${p.length})`);
      t.throws(() => ecka(privateKey, p), invalidPoint, `ecka ${p.subarray(0, 4).toString('hex')}… (${p.length})`);
      t.throws(() => pair.agree(p), invalidPoint, `agree ${p.subarray(0, 4).toString('hex')}… (${p.length})`);
    }
    // a point of the other curve is (overwhelmingly likely) not on this one
    const other = generateOtKeyPair(curve === 'P-256' ? 'brainpoolP256r1' : 'P-256').publicPoint;
    t.throws(() => ecka(privateKey, other), invalidPoint);
    t.throws(() => publicKeyFromPoint(curve, other), invalidPoint);
  });
}

t.test('ecka refuses public keys', async (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  t.throws(() => ecka(publicKey, generateOtKeyPair('P-256').publicPoint), CryptoError);
});
