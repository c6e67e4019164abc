import t from 'tap';
import { createECDH, createHash, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { decode, tlv } from '../../src/der/tlv.js';
import { bitStringBytes, integer, oid, seq, utf8 } from '../../src/der/types.js';
import { encodeSignatureDo } from '../../src/rsp/data-objects.js';
import { RspError } from '../../src/rsp/errors.js';
import {
  decodePrepareDownloadRequest,
  decodePrepareDownloadResponse,
  decodeSmdpSigned2,
  decodeStoreMetadataRequest,
  decodeEuiccSigned2,
  DOWNLOAD_ERROR,
  encodePrepareDownloadRequest,
  encodePrepareDownloadResponse,
  encodeSmdpSigned2,
  encodeStoreMetadataRequest,
  encodeEuiccSigned2,
  NOTIFICATION_EVENT,
  type StoreMetadataRequest,
} from '../../src/rsp/download.js';

const key = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const signRaw = (k: KeyObject, d: Buffer) => sign('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' });
const verifyRaw = (k: KeyObject, d: Buffer, s: Buffer) => verify('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' }, s);
const fakeCert = (cn: string) => seq(seq(integer(randomBytes(8)), seq(utf8(cn))), seq(oid('1.2.840.10045.4.3.2')), bitStringBytes(randomBytes(70)));
const otpk = () => createECDH('prime256v1').generateKeys() as Buffer;
const tid = Buffer.from('5035C666EAA44652B38AA5DFC0AFC653', 'hex');

t.test('StoreMetadataRequest: the GSMA test profile example of the notes', async (t) => {
  const enc = encodeStoreMetadataRequest({
    iccid: Buffer.from('98001032547698103214', 'hex'),
    serviceProviderName: 'GSMA_TEST',
    profileName: 'GSMA_TEST_PROFILE',
    profileClass: 0,
  });
  t.equal(
    enc.toString('hex').toUpperCase(),
    'BF252D5A0A98001032547698103214' + '9109' + Buffer.from('GSMA_TEST').toString('hex').toUpperCase() + '9211' + Buffer.from('GSMA_TEST_PROFILE').toString('hex').toUpperCase() + '950100',
  );
  const d = decodeStoreMetadataRequest(enc);
  t.strictSame(d, {
    raw: enc,
    iccid: Buffer.from('98001032547698103214', 'hex'),
    serviceProviderName: 'GSMA_TEST',
    profileName: 'GSMA_TEST_PROFILE',
    profileClass: 0,
  });
});

t.test('StoreMetadataRequest with every optional element', async (t) => {
  const m: StoreMetadataRequest = {
    iccid: Buffer.from('989444999999990920f3', 'hex'),
    serviceProviderName: 'Operator Ü',
    profileName: 'Operational profile',
    iconType: 1,
    icon: randomBytes(300),
    profileClass: 2,
    notificationConfigurationInfo: [
      { operations: [NOTIFICATION_EVENT.install], address: 'smdp.example.com' },
      { operations: [NOTIFICATION_EVENT.enable, NOTIFICATION_EVENT.disable, NOTIFICATION_EVENT.delete], address: 'other.example.com' },
    ],
    profileOwner: { mccMnc: Buffer.from('00f110', 'hex'), gid1: Buffer.from('ff01', 'hex'), gid2: Buffer.from('02', 'hex') },
    profilePolicyRules: [0, 1],
  };
  const enc = encodeStoreMetadataRequest(m);
  t.same(decode(enc).children().map((c) => c.tag), [0x5a, 0x91, 0x92, 0x93, 0x94, 0x95, 0xb6, 0xb7, 0x99]);
  t.ok(enc.includes(Buffer.from('80020780', 'hex')), 'install event is 02 07 80');
  t.ok(enc.includes(Buffer.from('80020470', 'hex')), 'enable+disable+delete is 02 04 70');
  const d = decodeStoreMetadataRequest(enc);
  t.strictSame(d, { raw: enc, ...m });
  t.same(encodeStoreMetadataRequest(d), enc);
});

t.test('StoreMetadataRequest strictness', async (t) => {
  const iccid = tlv(0x5a, Buffer.alloc(10, 0x11));
  t.throws(() => decodeStoreMetadataRequest(tlv(0xbf25, iccid, utf8('s', 0x91))), { code: 'malformed', message: /profileName/ });
  t.throws(() => decodeStoreMetadataRequest(tlv(0xbf25, tlv(0x5a, Buffer.alloc(9)), utf8('s', 0x91), utf8('p', 0x92))), { message: /iccid/ });
  t.throws(() => decodeStoreMetadataRequest(tlv(0xbf25, iccid, utf8('s', 0x91), utf8('p', 0x92), integer(3, 0x95))), { message: /profileClass/ });
  t.throws(() => decodeStoreMetadataRequest(tlv(0xbf25, iccid, utf8('s', 0x91), utf8('p', 0x92), tlv(0xb6, tlv(0x31)))), { code: 'malformed' });
  t.throws(() => encodeStoreMetadataRequest({ iccid: Buffer.alloc(8), serviceProviderName: '', profileName: '' }), RspError);
  const extra = tlv(0xbf25, iccid, utf8('s', 0x91), utf8('p', 0x92), tlv(0x9f20, Buffer.from([1])));
  t.equal(decodeStoreMetadataRequest(extra).profileName, 'p');
});

t.test('SmdpSigned2: ccRequiredFlag is a plain 01 BOOLEAN', async (t) => {
  const enc = encodeSmdpSigned2({ transactionId: tid, ccRequiredFlag: true });
  t.equal(enc.toString('hex'), `30158010${tid.toString('hex')}0101ff`);
  t.strictSame(decodeSmdpSigned2(enc), { raw: enc, transactionId: tid, ccRequiredFlag: true });
  const k = otpk();
  const enc2 = encodeSmdpSigned2({ transactionId: tid, ccRequiredFlag: false, bppEuiccOtpk: k });
  t.ok(enc2.includes(Buffer.concat([Buffer.from('5f4941', 'hex'), k])));
  t.strictSame(decodeSmdpSigned2(enc2), { raw: enc2, transactionId: tid, ccRequiredFlag: false, bppEuiccOtpk: k });
  // An automatically tagged 81 would be wrong: the decoder needs the 01.
  t.throws(() => decodeSmdpSigned2(seq(tlv(0x80, tid), tlv(0x81, Buffer.from([0xff])))), { code: 'malformed', message: /ccRequiredFlag/ });
});

t.test('PrepareDownloadRequest round trip with hashCc', async (t) => {
  const pb = key();
  const euiccSignature1Do = encodeSignatureDo(randomBytes(64));
  const sd2 = encodeSmdpSigned2({ transactionId: tid, ccRequiredFlag: true });
  const sig2 = signRaw(pb.privateKey, Buffer.concat([sd2, euiccSignature1Do]));
  const hashCc = createHash('sha256').update(Buffer.concat([createHash('sha256').update('12345678').digest(), tid])).digest();
  const cert = fakeCert('DPpb');
  const enc = encodePrepareDownloadRequest({ smdpSigned2: sd2, smdpSignature2: sig2, hashCc, smdpCertificate: cert });
  t.same(decode(enc).children().map((c) => c.tag), [0x30, 0x5f37, 0x04, 0x30]);
  const d = decodePrepareDownloadRequest(enc);
  t.same(d.raw, enc);
  t.same(d.smdpSigned2, { raw: sd2, transactionId: tid, ccRequiredFlag: true });
  t.same(d.smdpSignature2, sig2);
  t.same(d.smdpSignature2Do, encodeSignatureDo(sig2));
  t.same(d.hashCc, hashCc);
  t.same(d.smdpCertificate, cert);
  t.ok(verifyRaw(pb.publicKey, Buffer.concat([d.smdpSigned2.raw, euiccSignature1Do]), d.smdpSignature2));
  const noCc = decodePrepareDownloadRequest(encodePrepareDownloadRequest({ smdpSigned2: d.smdpSigned2, smdpSignature2: sig2, smdpCertificate: cert }));
  t.equal(noCc.hashCc, undefined);
  t.same(noCc.smdpSigned2.raw, sd2, 'fields re-encode to the same smdpSigned2');
  t.throws(() => encodePrepareDownloadRequest({ smdpSigned2: sd2, smdpSignature2: sig2, hashCc: randomBytes(31), smdpCertificate: cert }), RspError);
  t.throws(() => decodePrepareDownloadRequest(tlv(0xbf21, sd2, encodeSignatureDo(sig2))), { message: /smdpCertificate/ });
});

t.test('EUICCSigned2: hashCc is a plain 04; PrepareDownloadResponse ok', async (t) => {
  const euicc = key();
  const smdpSignature2Do = encodeSignatureDo(randomBytes(64));
  const euiccOtpk = otpk();
  const hashCc = randomBytes(32);
  const signed = encodeEuiccSigned2({ transactionId: tid, euiccOtpk, hashCc });
  t.same(decode(signed).children().map((c) => c.tag), [0x80, 0x5f49, 0x04]);
  t.strictSame(decodeEuiccSigned2(signed), { raw: signed, transactionId: tid, euiccOtpk, hashCc });
  const sig = signRaw(euicc.privateKey, Buffer.concat([signed, smdpSignature2Do]));
  const enc = encodePrepareDownloadResponse({ ok: { euiccSigned2: signed, euiccSignature2: sig } });
  t.equal(enc.readUInt16BE(0), 0xbf21);
  t.equal(decode(enc).children()[0]!.tag, 0xa0);
  const d = decodePrepareDownloadResponse(enc);
  if (!('ok' in d)) throw new Error('expected ok');
  t.same(d.ok.raw, enc);
  t.same(d.ok.euiccSigned2.raw, signed);
  t.same(d.ok.euiccSigned2.euiccOtpk, euiccOtpk);
  t.same(d.ok.euiccSigned2.hashCc, hashCc);
  t.ok(verifyRaw(euicc.publicKey, Buffer.concat([d.ok.euiccSigned2.raw, smdpSignature2Do]), d.ok.euiccSignature2));
  t.same(encodePrepareDownloadResponse({ ok: { euiccSigned2: { transactionId: tid, euiccOtpk, hashCc }, euiccSignature2: sig } }), enc);
  t.throws(() => decodeEuiccSigned2(seq(tlv(0x80, tid), tlv(0x5f49, randomBytes(64)))), { message: /euiccOtpk/ });
  t.throws(() => decodePrepareDownloadResponse(tlv(0xbf21, tlv(0xa0, signed, tlv(0x5f37, randomBytes(32))))), { message: /euiccSignature2/ });
});

t.test('PrepareDownloadResponse error', async (t) => {
  const enc = encodePrepareDownloadResponse({ error: { transactionId: tid, code: DOWNLOAD_ERROR.invalidTransactionId } });
  t.equal(enc.toString('hex'), `bf2117a1158010${tid.toString('hex')}020105`);
  t.strictSame(decodePrepareDownloadResponse(enc), { error: { raw: enc, transactionId: tid, code: 5 } });
  t.throws(() => decodePrepareDownloadResponse(tlv(0xbf21, tlv(0x80, tid))), { code: 'malformed' });
});
