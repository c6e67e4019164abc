import t from 'tap';
import { decode, decodeAll, DerError, tlv, tlvHeader } from '../../src/der/tlv.js';
import { decodeOidValue, encodeOidValue, namedBits, readNamedBits, readTime, time, integer, readUint } from '../../src/der/types.js';

t.test('multi-byte tags keep their raw bytes', async (t) => {
  const inner = tlv(0x5f37, Buffer.alloc(64, 1));
  const outer = tlv(0xbf36, tlv(0x80, Buffer.from([1, 2])), inner);
  const d = decode(outer);
  t.equal(d.tag, 0xbf36);
  t.equal(d.constructed, true);
  t.same(d.get(0x5f37).raw, inner);
  t.equal(d.get(0x5f37).length, 64);
  t.same(d.get(0x80).value, Buffer.from([1, 2]));
  t.equal(d.find(0x81), undefined);
  t.throws(() => d.get(0x81), DerError);
});

t.test('long lengths round-trip', async (t) => {
  for (const n of [0, 1, 127, 128, 255, 256, 1007, 65535, 65536]) {
    const enc = tlv(0x86, Buffer.alloc(n, 7));
    const d = decode(enc);
    t.equal(d.length, n);
    t.same(tlvHeader(0x86, n), enc.subarray(0, d.headerLength));
  }
});

t.test('truncated, indefinite and trailing input is rejected', async (t) => {
  const good = tlv(0x30, tlv(0x04, Buffer.alloc(10)));
  for (let cut = 0; cut < good.length; cut++) t.throws(() => decode(good.subarray(0, cut)), DerError, `cut at ${cut}`);
  t.throws(() => decode(Buffer.from([0x30, 0x80, 0, 0])), DerError);
  t.throws(() => decode(Buffer.concat([good, Buffer.from([0])])), DerError);
  t.throws(() => decode(Buffer.from([0xbf])), DerError);
  t.throws(() => decode(Buffer.from([0x30, 0x85, 1, 1, 1, 1, 1])), DerError);
  t.same(decodeAll(Buffer.concat([good, good])).length, 2);
});

t.test('OIDs, bits, integers and times', async (t) => {
  for (const o of ['2.23.146.1.2.1.4', '2.999.10', '1.2.840.10045.3.1.7', '1.3.36.3.3.2.8.1.1.7', '2.5.29.14']) {
    t.equal(decodeOidValue(encodeOidValue(o)), o);
  }
  t.same(encodeOidValue('2.999.10'), Buffer.from('88370a', 'hex'));
  t.same(namedBits([0]), Buffer.from('03020780', 'hex'));
  t.same(namedBits([1]), Buffer.from('03020640', 'hex'));
  t.same(namedBits([3]), Buffer.from('03020410', 'hex'));
  t.same(readNamedBits(decode(namedBits([1, 5, 9]))), [1, 5, 9]);
  t.same(integer(128), Buffer.from('02020080', 'hex'));
  t.equal(readUint(decode(integer(65537))), 65537);
  const d = new Date(Date.UTC(2030, 4, 6, 7, 8, 9));
  t.same(readTime(decode(time(d))), d);
  const far = new Date(Date.UTC(7496, 0, 1));
  t.same(readTime(decode(time(far))), far);
});
