import t from 'tap';
import { randomBytes } from 'node:crypto';
import { decode } from '../../src/der/tlv.js';
import { aesCmac } from '../../src/crypto/cmac.js';
import { CryptoError } from '../../src/crypto/errors.js';
import { deriveSessionKeys, type SessionKeys } from '../../src/crypto/kdf.js';
import {
  chunk, MAX_ENCRYPTED_PLAINTEXT, MAX_MAC_ONLY_PLAINTEXT, MAX_SEGMENT, Scp03tError, Scp03tReader, Scp03tWriter,
} from '../../src/crypto/scp03t.js';

const h = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');
const KEYS = deriveSessionKeys(h('c9a993dd4879a8f7161f2085410edd4f9652f1df37be097ba96ba2ca6be528fe'), h('8080808080808080'), '89049032123451234512345678901235');
/** 16 bytes first, 01, 02 … 0f */
const seq16 = (first: number) => Buffer.from(Array.from({ length: 16 }, (_, i) => (i === 0 ? first : i)));
const PPK: SessionKeys = { sEnc: seq16(1), sMac: seq16(2), mcv: seq16(0) };

const CONFIGURE_ISDP = h('bf2400');
// a GSMA test profile's metadata (BF25, docs/protocol.md#metadata-and-preparedownload)
const METADATA = Buffer.concat([h('bf252d5a0a98001032547698103214'), h('9109'), Buffer.from('GSMA_TEST'),
  h('9211'), Buffer.from('GSMA_TEST_PROFILE'), h('950100')]);
const RSK = Buffer.concat([h('bf2636 8010'), PPK.mcv, h('8110'), PPK.sEnc, h('8210'), PPK.sMac]);

const isCode = (code: string) => ({ name: 'Scp03tError', code });

t.test('segment limits', async (t) => {
  t.equal(MAX_SEGMENT, 1020);
  t.equal(MAX_ENCRYPTED_PLAINTEXT, 1007);
  t.equal(MAX_MAC_ONLY_PLAINTEXT, 1008);
  const w = new Scp03tWriter(KEYS);
  t.equal(w.macOnly(0x88, Buffer.alloc(MAX_MAC_ONLY_PLAINTEXT)).length, 1020);
  t.equal(w.encrypted(0x86, Buffer.alloc(MAX_ENCRYPTED_PLAINTEXT)).length, 1020);
  t.equal(w.encrypted(0x86, Buffer.alloc(1008 - 16)).length, 1020, '992 bytes pad to a full extra block');
  t.throws(() => w.encrypted(0x86, Buffer.alloc(MAX_ENCRYPTED_PLAINTEXT + 1)), isCode('segmentTooLarge'));
  t.throws(() => w.macOnly(0x88, Buffer.alloc(MAX_MAC_ONLY_PLAINTEXT + 1)), isCode('segmentTooLarge'));
  t.throws(() => w.encrypted(0x88 as 0x86, Buffer.alloc(1)), CryptoError);
  t.throws(() => new Scp03tWriter({ ...KEYS, sEnc: Buffer.alloc(15) }), CryptoError);
});

t.test('BPP vectors of docs/protocol.md#scp03t-protection-of-the-bpp', async (t) => {
  const w = new Scp03tWriter(KEYS);
  t.equal(w.encrypted(0x87, CONFIGURE_ISDP).toString('hex'), '8718f6fe031e4b9cfe87c8e1e62f3fde85c49412d7722a6a2d89', 'ConfigureISDP, C=1');
  t.equal(METADATA.length, 0x30);
  const m = w.macOnly(0x88, METADATA);
  t.same(m.subarray(0, 2), h('8838'));
  t.same(m.subarray(2, 2 + METADATA.length), METADATA);
  t.equal(m.subarray(-8).toString('hex'), '8a62cc9adbb5ccbc', 'metadata C-MAC, C=2');
  const rsk = w.encrypted(0x87, RSK);
  t.equal(rsk.length, 0x4a);
  t.match(rsk.toString('hex'), /^8748a14c800a[0-9a-f]+29c40$/, 'ReplaceSessionKeys, C=3');

  w.usePpk(PPK);
  const upp = randomBytes(3 * MAX_ENCRYPTED_PLAINTEXT + 100);
  const segs = chunk(upp, MAX_ENCRYPTED_PLAINTEXT).map((p) => w.encrypted(0x86, p));
  t.same(segs.map((s) => s.length), [1020, 1020, 1020, 2 + 112 + 8]);
  for (const s of segs.slice(0, 3)) t.same(s.subarray(0, 4), h('868203f8'));
});

t.test('the C-MAC chain is CMAC(S-MAC, MCV ‖ header ‖ data), carried forward in full', async (t) => {
  const w = new Scp03tWriter(KEYS);
  const a = w.macOnly(0x88, Buffer.from('abc'));
  const full = aesCmac(KEYS.sMac, Buffer.concat([KEYS.mcv, a.subarray(0, -8)]));
  t.same(a.subarray(-8), full.subarray(0, 8));
  const b = w.macOnly(0x88, Buffer.from('defg'));
  t.same(b.subarray(-8), aesCmac(KEYS.sMac, Buffer.concat([full, b.subarray(0, -8)])).subarray(0, 8));
});

t.test('reader round-trips a whole BPP, with and without PPK', async (t) => {
  for (const withRsk of [true, false]) {
    const w = new Scp03tWriter(KEYS);
    const r = new Scp03tReader(KEYS);
    const big = randomBytes(2500);
    const upp = randomBytes(5 * 1007 + 15);
    t.same(r.open(w.encrypted(0x87, CONFIGURE_ISDP)), CONFIGURE_ISDP);
    const meta = chunk(big, MAX_MAC_ONLY_PLAINTEXT).map((p) => w.macOnly(0x88, p));
    t.same(Buffer.concat(meta.map((s) => r.open(s))), big);
    if (withRsk) {
      t.same(r.open(w.encrypted(0x87, RSK)), RSK);
      w.usePpk(PPK);
      r.usePpk(PPK);
    }
    const segs = chunk(upp, MAX_ENCRYPTED_PLAINTEXT).map((p) => w.encrypted(0x86, p));
    t.ok(segs.every((s) => s.length <= MAX_SEGMENT));
    t.same(Buffer.concat(segs.map((s) => r.open(s))), upp);
  }
  // every plaintext length across block boundaries, including empty
  const w = new Scp03tWriter(KEYS);
  const r = new Scp03tReader(KEYS);
  for (let n = 0; n <= 48; n++) {
    const p = randomBytes(n);
    const s = w.encrypted(0x86, p);
    t.equal(decode(s).length, (Math.floor(n / 16) + 1) * 16 + 8);
    t.same(r.open(s), p, `length ${n}`);
  }
});

t.test('any flipped bit is rejected; a bad segment leaves the reader usable', async (t) => {
  const w = new Scp03tWriter(KEYS);
  const segs = [w.encrypted(0x87, CONFIGURE_ISDP), w.macOnly(0x88, METADATA), w.encrypted(0x86, randomBytes(300))];
  const r = new Scp03tReader(KEYS);
  let flips = 0;
  for (const s of segs) {
    const hl = decode(s).headerLength;
    for (let bit = 0; bit < s.length * 8; bit++) {
      const bad = Buffer.from(s);
      bad[bit >> 3]! ^= 0x80 >> (bit & 7);
      // tag and value bits fail the C-MAC; a changed length no longer parses as one segment
      const code = bit >= 8 && bit < hl * 8 ? 'structure' : 'security';
      let ok = false;
      try {
        r.open(bad);
      } catch (e) {
        ok = e instanceof Scp03tError && e.code === code;
      }
      if (!ok) t.fail(`bit ${bit} of ${s.subarray(0, 1).toString('hex')} segment not rejected as ${code}`);
      flips++;
    }
    t.same(r.open(s).length > 0, true, 'the genuine segment still opens');
  }
  t.ok(flips > 3000);
  // wrong order / replay fails too (counter and MCV bind each segment to its place)
  const r2 = new Scp03tReader(KEYS);
  t.throws(() => r2.open(segs[1]!), isCode('security'), 'out of order');
  r2.open(segs[0]!);
  t.throws(() => r2.open(segs[0]!), isCode('security'), 'replayed');
  t.throws(() => r2.open(h('8804000000')), isCode('structure'), 'shorter than the MAC');
  t.throws(() => r2.open(h('86')), isCode('structure'));
});

t.test('chunk', async (t) => {
  const d = randomBytes(2015);
  const c = chunk(d, 1007);
  t.same(c.map((x) => x.length), [1007, 1007, 1]);
  t.same(Buffer.concat(c), d);
  t.same(chunk(Buffer.alloc(0), 10), []);
  t.same(chunk(d.subarray(0, 1007), 1007).length, 1);
  t.throws(() => chunk(d, 0), CryptoError);
});
