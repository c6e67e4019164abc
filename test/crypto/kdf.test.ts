import t from 'tap';
import { createHash } from 'node:crypto';
import { deriveSessionKeys, x963Kdf } from '../../src/crypto/kdf.js';
import { CryptoError } from '../../src/crypto/errors.js';

const h = (s: string) => Buffer.from(s, 'hex');
const Z = h('c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe');
const EID = '89049032123451234512345678901235';
const HOST_ID = h('8080808080808080');

t.test('session keys of docs/protocol.md#key-agreement-and-kdf', async (t) => {
  const k = deriveSessionKeys(Z, HOST_ID, EID);
  t.equal(k.mcv.toString('hex'), '406d507b448a699e7a36a38494debbde');
  t.equal(k.sEnc.toString('hex'), '472f5bfadd97f21d34f3ce9b51b92751');
  t.equal(k.sMac.toString('hex'), '9ec07f5b36a13e12a991d66e294e6242');
  t.same(deriveSessionKeys(Z, HOST_ID, EID.toLowerCase()), k);
});

t.test('x963Kdf is SHA-256(Z ‖ counter ‖ SharedInfo) blocks', async (t) => {
  const si = h(`881008${'80'.repeat(8)}10${EID}`);
  const block = (n: number) => createHash('sha256').update(Z).update(h(`0000000${n}`)).update(si).digest();
  const k = x963Kdf(Z, si, 48);
  t.equal(k.length, 48);
  t.same(k, Buffer.concat([block(1), block(2)]).subarray(0, 48));
  t.same(x963Kdf(Z, si, 32), block(1));
  t.same(x963Kdf(Z, si, 70), Buffer.concat([block(1), block(2), block(3)]).subarray(0, 70));
  const k2 = deriveSessionKeys(Z, HOST_ID, EID);
  t.same(Buffer.concat([k2.mcv, k2.sEnc, k2.sMac]), k);
});

t.test('EID and hostId are checked', async (t) => {
  t.throws(() => deriveSessionKeys(Z, HOST_ID, EID.slice(1)), CryptoError);
  t.throws(() => deriveSessionKeys(Z, HOST_ID, `${EID.slice(1)}G`), CryptoError);
  t.throws(() => deriveSessionKeys(Z, Buffer.alloc(0), EID), CryptoError);
  t.throws(() => deriveSessionKeys(Z, Buffer.alloc(17), EID), CryptoError);
  t.not(deriveSessionKeys(Z, h('8080808080808081'), EID).sEnc.toString('hex'), '472f5bfadd97f21d34f3ce9b51b92751');
});
