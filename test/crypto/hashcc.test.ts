import t from 'tap';
import { confirmationCodeDigest, hashCc, sha256 } from '../../src/crypto/hashcc.js';

t.test('hashCc vector of docs/protocol.md#confirmation-code', async (t) => {
  const tid = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
  const d = confirmationCodeDigest('12345678');
  t.equal(d.length, 32);
  t.match(d.toString('hex'), /^ef797c81.*a898a64f$/);
  t.same(sha256(Buffer.from('12345678')), d);
  const hc = hashCc(d, tid);
  t.match(hc.toString('hex'), /^ab311c05.*65610ec0$/);
  t.same(hc, sha256(Buffer.concat([d, tid])));
  t.notSame(hashCc(confirmationCodeDigest('12345679'), tid), hc);
  t.notSame(hashCc(d, Buffer.from(tid).fill(1, 15)), hc);
});
