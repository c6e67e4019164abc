import t from 'tap';
import { createECDH, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { decode, tlv, tlvHeader } from '../../src/der/tlv.js';
import { RspError } from '../../src/rsp/errors.js';
import {
  buildBoundProfilePackage,
  decodeBoundProfilePackage,
  decodeInitialiseSecureChannel,
  encodeInitialiseSecureChannel,
  smdpSignInput,
  smdpSignVerifyInput,
  splitBppForLoading,
} from '../../src/rsp/bpp.js';

const key = (curve = 'prime256v1'): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: curve });
const signRaw = (k: KeyObject, d: Buffer) => sign('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' });
const verifyRaw = (k: KeyObject, d: Buffer, s: Buffer) => verify('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' }, s);
const otpk = (curve = 'prime256v1') => createECDH(curve).generateKeys() as Buffer;
const tid = Buffer.from('1B2412CD9CCF40F6AC99194B16DC21AE', 'hex');
const hostId = Buffer.from('mahlzeit');
const h = (s: string) => s.replace(/\s+/g, '');

t.test('smdpSignInput is exactly the table in docs/protocol.md (What is signed)', async (t) => {
  const smdpOtpk = otpk();
  const euiccOtpk = otpk();
  const input = smdpSignInput(tid, hostId, smdpOtpk, euiccOtpk);
  t.equal(
    input.toString('hex'),
    h(`820101 8010${tid.toString('hex')} a610 800188 810110 8408${hostId.toString('hex')}
       5f4941${smdpOtpk.toString('hex')} 5f4941${euiccOtpk.toString('hex')}`),
  );
  t.throws(() => smdpSignInput(tid, Buffer.alloc(17), smdpOtpk, euiccOtpk), RspError);
  t.throws(() => smdpSignInput(tid, hostId, smdpOtpk, euiccOtpk.subarray(1)), RspError);
});

for (const curve of ['prime256v1', 'brainpoolP256r1']) {
  t.test(`InitialiseSecureChannelRequest round trip and smdpSign (${curve})`, async (t) => {
    const pb = key(curve);
    const smdpOtpk = otpk(curve);
    const euiccOtpk = otpk(curve);
    const smdpSign = signRaw(pb.privateKey, smdpSignInput(tid, hostId, smdpOtpk, euiccOtpk));
    const enc = encodeInitialiseSecureChannel({ transactionId: tid, hostId, smdpOtpk, smdpSign });
    t.same(decode(enc).children().map((c) => c.tag), [0x82, 0x80, 0xa6, 0x5f49, 0x5f37]);
    const d = decodeInitialiseSecureChannel(enc);
    t.same(d.raw, enc);
    t.same(d.transactionId, tid);
    t.same(d.hostId, hostId);
    t.same(d.smdpOtpk, smdpOtpk);
    t.same(d.smdpSign, smdpSign);
    t.same(smdpSignVerifyInput(d, euiccOtpk), smdpSignInput(tid, hostId, smdpOtpk, euiccOtpk));
    t.ok(verifyRaw(pb.publicKey, smdpSignVerifyInput(d, euiccOtpk), d.smdpSign));
    t.notOk(verifyRaw(pb.publicKey, smdpSignVerifyInput(d, otpk(curve)), d.smdpSign), 'another eUICC key fails');
  });
}

t.test('InitialiseSecureChannelRequest: unsupported values and missing parts', async (t) => {
  const smdpOtpk = otpk();
  const sig = tlv(0x5f37, randomBytes(64));
  const crt = (kt: number, kl: number) => tlv(0xa6, tlv(0x80, Buffer.from([kt])), tlv(0x81, Buffer.from([kl])), tlv(0x84, hostId));
  const build = (op: number, c: Buffer, s = sig) => tlv(0xbf23, tlv(0x82, Buffer.from([op])), tlv(0x80, tid), c, tlv(0x5f49, smdpOtpk), s);
  t.ok(decodeInitialiseSecureChannel(build(1, crt(0x88, 0x10))));
  t.throws(() => decodeInitialiseSecureChannel(build(2, crt(0x88, 0x10))), { code: 'unsupported', message: /remoteOpId/ });
  t.throws(() => decodeInitialiseSecureChannel(build(1, crt(0x88, 0x20))), { code: 'unsupported', message: /keyLen/ });
  t.throws(() => decodeInitialiseSecureChannel(build(1, crt(0x89, 0x10))), { code: 'unsupported' });
  t.throws(() => decodeInitialiseSecureChannel(build(1, crt(0x88, 0x10), tlv(0x5f37, randomBytes(63)))), { code: 'malformed', message: /smdpSign/ });
  t.throws(() => decodeInitialiseSecureChannel(tlv(0xbf23, tlv(0x82, Buffer.from([1])), tlv(0x80, tid), crt(0x88, 0x10), sig)), {
    code: 'malformed',
    message: /smdpOtpk/,
  });
  t.throws(() => decodeInitialiseSecureChannel(build(1, tlv(0xa6, tlv(0x80, Buffer.from([0x88])), tlv(0x81, Buffer.from([0x10]))))), { message: /hostId/ });
});

function sampleParts(withA2: boolean, n86 = 5) {
  const isc = encodeInitialiseSecureChannel({ transactionId: tid, hostId, smdpOtpk: otpk(), smdpSign: randomBytes(64) });
  return {
    initialiseSecureChannel: isc,
    firstSequenceOf87: [tlv(0x87, randomBytes(24))],
    sequenceOf88: [tlv(0x88, randomBytes(1016)), tlv(0x88, randomBytes(40))],
    ...(withA2 ? { secondSequenceOf87: [tlv(0x87, randomBytes(72))] } : {}),
    // full-size segments (1020-byte values, 82 length headers) and a short last one
    sequenceOf86: [...Array.from({ length: n86 - 1 }, () => tlv(0x86, randomBytes(1020))), tlv(0x86, randomBytes(100))],
  };
}

for (const withA2 of [false, true]) {
  t.test(`build, decode and split a package (${withA2 ? 'with' : 'without'} A2)`, async (t) => {
    const parts = sampleParts(withA2);
    const bpp = buildBoundProfilePackage(parts);
    const top = decode(bpp);
    t.equal(top.tag, 0xbf36);
    t.same(top.children().map((c) => c.tag), withA2 ? [0xbf23, 0xa0, 0xa1, 0xa2, 0xa3] : [0xbf23, 0xa0, 0xa1, 0xa3]);
    const d = decodeBoundProfilePackage(bpp);
    t.same(d.raw, bpp);
    t.same(d.initialiseSecureChannel.raw, parts.initialiseSecureChannel);
    t.same(d.firstSequenceOf87, parts.firstSequenceOf87);
    t.same(d.sequenceOf88, parts.sequenceOf88);
    t.same(d.secondSequenceOf87, withA2 ? parts.secondSequenceOf87 : []);
    t.same(d.sequenceOf86, parts.sequenceOf86);

    const pieces = splitBppForLoading(bpp);
    const a1Len = parts.sequenceOf88.reduce((n, b) => n + b.length, 0);
    const a3Len = parts.sequenceOf86.reduce((n, b) => n + b.length, 0);
    const expected = [
      Buffer.concat([top.raw.subarray(0, top.headerLength), parts.initialiseSecureChannel]),
      tlv(0xa0, ...parts.firstSequenceOf87),
      tlvHeader(0xa1, a1Len),
      ...parts.sequenceOf88,
      ...(withA2 ? [tlv(0xa2, ...parts.secondSequenceOf87!)] : []),
      tlvHeader(0xa3, a3Len),
      ...parts.sequenceOf86,
    ];
    t.same(pieces.map((p) => p.toString('hex')), expected.map((p) => p.toString('hex')));
    t.same(Buffer.concat(pieces), bpp);
    t.equal(pieces[0]!.readUInt16BE(0), 0xbf36);
    t.equal(pieces[0]!.subarray(top.headerLength).readUInt16BE(0), 0xbf23);
  });
}

t.test('package strictness and tolerance', async (t) => {
  const p = sampleParts(false, 2);
  const a0 = tlv(0xa0, ...p.firstSequenceOf87);
  const a1 = tlv(0xa1, ...p.sequenceOf88);
  const a3 = tlv(0xa3, ...p.sequenceOf86);
  const isc = p.initialiseSecureChannel;
  t.throws(() => decodeBoundProfilePackage(tlv(0xbf36, isc, a0, a1)), { code: 'malformed', message: /sequenceOf86/ });
  t.throws(() => decodeBoundProfilePackage(tlv(0xbf36, a0, isc, a1, a3)), { code: 'malformed', message: /order/ });
  t.throws(() => splitBppForLoading(tlv(0xbf36, isc, a0, a1, a1, a3)), { code: 'malformed', message: /order|repeated/ });
  t.throws(() => decodeBoundProfilePackage(tlv(0xbf36, isc, a0, a1, tlv(0xa3, tlv(0x87, Buffer.alloc(4))))), { message: /sequenceOf86.*87/ });
  t.throws(() => splitBppForLoading(tlv(0xbf36, isc, tlv(0xa0, tlv(0x86, Buffer.alloc(4))), a1, a3)), { message: /firstSequenceOf87/ });
  t.throws(() => decodeBoundProfilePackage(tlv(0xbf37, isc, a0, a1, a3)), { code: 'malformed', message: /BF36/ });
  t.throws(() => buildBoundProfilePackage({ ...p, sequenceOf86: [tlv(0x87, Buffer.alloc(3))] }), RspError);
  // An unknown extra element is skipped.
  const extra = tlv(0xbf36, isc, a0, a1, a3, tlv(0x9f50, Buffer.from([1])));
  t.equal(decodeBoundProfilePackage(extra).sequenceOf86.length, 2);
  t.equal(splitBppForLoading(extra).length, 1 + 1 + 1 + 2 + 1 + 2);
});
