import t from 'tap';
import { AesCmac, aesCmac } from '../../src/crypto/cmac.js';
import { CryptoError } from '../../src/crypto/errors.js';

const h = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
const key = h('2b7e151628aed2a6abf7158809cf4f3c');
const msg64 = h(`6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
                 30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710`);

// RFC 4493 §4, AES-128 examples 1-4
const vectors: Array<[number, string]> = [
  [0, 'bb1d6929e95937287fa37d129b756746'],
  [16, '070a16b46b4d4144f79bdd9dd04a287c'],
  [40, 'dfa66747de9ae63030ca32611497c827'],
  [64, '51f0bebf7e3b9d92fc49741779363cfe'],
];

t.test('RFC 4493 vectors', async (t) => {
  for (const [len, tag] of vectors) t.equal(aesCmac(key, msg64.subarray(0, len)).toString('hex'), tag, `Mlen=${len}`);
});

t.test('multi-part input gives the same tag however it is split', async (t) => {
  const c = new AesCmac(key);
  for (const [len, tag] of vectors) {
    const m = msg64.subarray(0, len);
    for (const cut of [0, 1, 15, 16, 17, 33, len]) {
      if (cut > len) continue;
      t.equal(c.mac(m.subarray(0, cut), m.subarray(cut)).toString('hex'), tag, `len ${len} cut ${cut}`);
    }
    t.equal(c.mac(...[...m].map((b) => Buffer.from([b]))).toString('hex'), tag, `len ${len} byte by byte`);
  }
});

t.test('a changed bit changes the tag; bad key lengths are refused', async (t) => {
  const m = Buffer.from(msg64);
  m[20]! ^= 1;
  t.not(aesCmac(key, m).toString('hex'), vectors[3]![1]);
  t.throws(() => aesCmac(Buffer.alloc(15), m), CryptoError);
});
