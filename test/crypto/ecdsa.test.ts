import t from 'tap';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { CURVES } from '../../src/crypto/curves.js';
import { derToRaw, rawToDer, signRaw, verifyRaw } from '../../src/crypto/ecdsa.js';
import { CryptoError } from '../../src/crypto/errors.js';

const data = Buffer.from('3081a0800f0102030405060708090a0b0c0d0e0f', 'hex');

for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName });
  const other = generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName }).publicKey;

  t.test(`${curve}: sign and verify raw r‖s`, async (t) => {
    const sig = signRaw(privateKey, data);
    t.equal(sig.length, 64);
    t.equal(verifyRaw(publicKey, data, sig), true);
    t.equal(verifyRaw(other, data, sig), false, 'other key');
    // interoperates with DER-encoded node signatures
    t.equal(verify('sha256', data, publicKey, rawToDer(sig)), true);
    t.equal(verifyRaw(publicKey, data, derToRaw(sign('sha256', data, privateKey))), true);
  });

  t.test(`${curve}: tampering gives false`, async (t) => {
    const sig = signRaw(privateKey, data);
    const d2 = Buffer.from(data);
    d2[3]! ^= 0x01;
    t.equal(verifyRaw(publicKey, d2, sig), false, 'tampered data');
    for (const i of [0, 31, 32, 63]) {
      const s2 = Buffer.from(sig);
      s2[i]! ^= 0x80;
      t.equal(verifyRaw(publicKey, data, s2), false, `tampered signature byte ${i}`);
    }
  });

  t.test(`${curve}: malformed signatures give false without throwing`, async (t) => {
    const sig = signRaw(privateKey, data);
    const bad = [Buffer.alloc(0), sig.subarray(0, 63), Buffer.concat([sig, Buffer.alloc(1)]), Buffer.alloc(64),
      Buffer.alloc(64, 0xff), rawToDer(sig), Buffer.from('not a signature')];
    for (const b of bad) t.equal(verifyRaw(publicKey, data, b), false, `${b.length} bytes`);
    t.equal(verifyRaw(publicKey, data, undefined as unknown as Buffer), false);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    t.equal(verifyRaw(rsa, data, sig), false, 'wrong key type');
  });
}

t.test('raw <-> DER round trip, including short and high-bit components', async (t) => {
  const cases = [
    Buffer.concat([Buffer.alloc(32, 0x11), Buffer.alloc(32, 0x22)]),
    Buffer.concat([Buffer.alloc(32, 0xff), Buffer.alloc(32, 0x80)]),
    Buffer.concat([Buffer.alloc(31), Buffer.from([5]), Buffer.alloc(2), Buffer.alloc(30, 0x7f)]),
  ];
  for (const raw of cases) t.same(derToRaw(rawToDer(raw)), raw);
  const hi = rawToDer(cases[1]!);
  t.equal(hi.toString('hex').slice(0, 10), '3046022100', 'high bit gets a 00 prefix');
  const short = rawToDer(cases[2]!);
  t.equal(short.toString('hex').slice(0, 10), '3023020105', 'leading zeros are stripped');
});

t.test('malformed DER signatures are CryptoError invalidSignature', async (t) => {
  const r = Buffer.alloc(32, 1);
  const bad = [
    Buffer.alloc(0), Buffer.from('3000', 'hex'), Buffer.from('300302017f', 'hex'),
    Buffer.from('3006020101020101ff', 'hex'), // trailing byte
    Buffer.from('3006020181020101', 'hex'), // negative r
    Buffer.from('3006040101020101', 'hex'), // not INTEGER
    Buffer.from(`3026022101${'11'.repeat(32)}020101`, 'hex'), // 33-byte r
  ];
  for (const b of bad) t.throws(() => derToRaw(b), { name: 'CryptoError', code: 'invalidSignature' }, b.toString('hex'));
  t.throws(() => rawToDer(r.subarray(0, 31)), CryptoError);
});
