import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { CURVES, curveOfKey } from '../../src/crypto/curves.js';

t.test('curveOfKey names both RSP curves, public and private', async (t) => {
  for (const c of ['P-256', 'brainpoolP256r1'] as const) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVES[c].nodeName });
    t.equal(curveOfKey(publicKey), c);
    t.equal(curveOfKey(privateKey), c);
  }
  t.equal(CURVES['P-256'].fileTag, 'NIST');
  t.equal(CURVES.brainpoolP256r1.fileTag, 'BRP');
});

t.test('other keys are unsupportedCurve', async (t) => {
  const keys = [
    generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey,
    generateKeyPairSync('ed25519').publicKey,
    generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
  ];
  for (const k of keys) t.throws(() => curveOfKey(k), { name: 'CryptoError', code: 'unsupportedCurve' });
});
