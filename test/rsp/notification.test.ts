import t from 'tap';
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { decode, tlv } from '../../src/der/tlv.js';
import { bitStringBytes, integer, oid, seq, utf8 } from '../../src/der/types.js';
import { RspError } from '../../src/rsp/errors.js';
import {
  BPP_COMMAND_ID,
  decodeNotificationMetadata,
  decodeOtherSignedNotification,
  decodePendingNotification,
  decodeProfileInstallationResult,
  decodeProfileInstallationResultData,
  encodeNotificationMetadata,
  encodeOtherSignedNotification,
  encodePendingNotification,
  encodeProfileInstallationResult,
  encodeProfileInstallationResultData,
  INSTALL_ERROR_REASON,
  type NotificationMetadata,
  type ProfileInstallationResultDataInput,
} from '../../src/rsp/notification.js';

const key = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const signRaw = (k: KeyObject, d: Buffer) => sign('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' });
const verifyRaw = (k: KeyObject, d: Buffer, s: Buffer) => verify('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' }, s);
const fakeCert = (cn: string) => seq(seq(integer(randomBytes(8)), seq(utf8(cn))), seq(oid('1.2.840.10045.4.3.2')), bitStringBytes(randomBytes(70)));
const tid = Buffer.from('1B2412CD9CCF40F6AC99194B16DC21AE', 'hex');
const iccid = Buffer.from('989444999999990920f3', 'hex');
const ISDP = Buffer.from('A0000005591010FFFFFFFF8900001000', 'hex');
const SIMA_OK = Buffer.from('3007a0053003800100', 'hex');

t.test('NotificationMetadata: one event bit, DER as in the notes', async (t) => {
  const bits: Record<number, string> = { 0: '81020780', 1: '81020640', 2: '81020520', 3: '81020410' };
  for (const op of [0, 1, 2, 3]) {
    const m: NotificationMetadata = { seqNumber: 300 + op, operation: op, notificationAddress: 'smdp.example.com', iccid };
    const enc = encodeNotificationMetadata(m);
    t.equal(enc.readUInt16BE(0), 0xbf2f);
    t.ok(enc.includes(Buffer.from(bits[op]!, 'hex')), `operation ${op}`);
    t.same(decode(enc).children().map((c) => c.tag), [0x80, 0x81, 0x0c, 0x5a]);
    t.strictSame(decodeNotificationMetadata(enc), { raw: enc, ...m });
  }
  const noIccid = encodeNotificationMetadata({ seqNumber: 1, operation: 0, notificationAddress: 'a' });
  t.strictSame(decodeNotificationMetadata(noIccid), { raw: noIccid, seqNumber: 1, operation: 0, notificationAddress: 'a' });
  const twoBits = tlv(0xbf2f, integer(1, 0x80), tlv(0x81, Buffer.from([0x06, 0xc0])), utf8('a'));
  t.throws(() => decodeNotificationMetadata(twoBits), { code: 'malformed', message: /exactly one bit/ });
  t.throws(() => decodeNotificationMetadata(tlv(0xbf2f, integer(1, 0x80), tlv(0x81, Buffer.from([0x07, 0x80])))), { message: /notificationAddress/ });
  t.throws(() => encodeNotificationMetadata({ seqNumber: 1, operation: -1, notificationAddress: 'a' }), RspError);
});

const pirData = (finalResult: ProfileInstallationResultDataInput['finalResult']): ProfileInstallationResultDataInput => ({
  transactionId: tid,
  notificationMetadata: { seqNumber: 1, operation: 0, notificationAddress: 'smdp.example.com', iccid },
  smdpOid: '2.999.10',
  finalResult,
});

t.test('ProfileInstallationResult success: round trip and euiccSignPIR over BF27', async (t) => {
  const euicc = key();
  const data = encodeProfileInstallationResultData(pirData({ success: { aid: ISDP, simaResponse: SIMA_OK } }));
  t.same(decode(data).children().map((c) => c.tag), [0x80, 0xbf2f, 0x06, 0xa2]);
  t.ok(data.includes(Buffer.from('060388370a', 'hex')), 'smdpOid 2.999.10');
  const sig = signRaw(euicc.privateKey, data);
  const enc = encodeProfileInstallationResult({ data, signature: sig });
  t.equal(enc.readUInt16BE(0), 0xbf37);
  const d = decodeProfileInstallationResult(enc);
  t.same(d.raw, enc);
  t.same(d.data.raw, data);
  t.same(d.data.transactionId, tid);
  t.same(d.data.notificationMetadata.iccid, iccid);
  t.same(d.data.notificationMetadata.raw, decode(data).get(0xbf2f).raw);
  t.equal(d.data.smdpOid, '2.999.10');
  t.same(d.data.finalResult, { success: { aid: ISDP, simaResponse: SIMA_OK } });
  t.ok(verifyRaw(euicc.publicKey, d.data.raw, d.signature));
  t.same(encodeProfileInstallationResult({ data: pirData({ success: { aid: ISDP, simaResponse: SIMA_OK } }), signature: sig }), enc);
  t.same(decodeProfileInstallationResultData(data).raw, data);
});

t.test('ProfileInstallationResult error result, without smdpOid (v2.2)', async (t) => {
  const input = { ...pirData({ error: { bppCommandId: BPP_COMMAND_ID.loadProfileElements, errorReason: INSTALL_ERROR_REASON.scp03tSecurityError } }) };
  delete input.smdpOid;
  const data = encodeProfileInstallationResultData(input);
  t.ok(data.includes(Buffer.from('a208a106800105810108', 'hex')));
  const d = decodeProfileInstallationResultData(data);
  t.equal(d.smdpOid, undefined);
  t.strictSame(d.finalResult, { error: { bppCommandId: 5, errorReason: 8 } });
  const withSima = decodeProfileInstallationResultData(
    encodeProfileInstallationResultData(pirData({ error: { bppCommandId: 5, errorReason: 12, simaResponse: Buffer.from('3005a0033001', 'hex') } })),
  );
  t.same(withSima.finalResult, { error: { bppCommandId: 5, errorReason: 12, simaResponse: Buffer.from('3005a0033001', 'hex') } });
  t.throws(() => decodeProfileInstallationResultData(tlv(0xbf27, tlv(0x80, tid), encodeNotificationMetadata(input.notificationMetadata as NotificationMetadata), tlv(0xa2, tlv(0xa3)))), {
    code: 'malformed',
    message: /finalResult/,
  });
  t.throws(() => decodeProfileInstallationResult(tlv(0xbf37, data, tlv(0x5f37, randomBytes(65)))), { code: 'malformed', message: /euiccSignPIR/ });
});

t.test('OtherSignedNotification round trip and signature over BF2F', async (t) => {
  const euicc = key();
  const tbs = encodeNotificationMetadata({ seqNumber: 7, operation: 3, notificationAddress: 'smdp.example.com', iccid });
  const sig = signRaw(euicc.privateKey, tbs);
  const euiccCertificate = fakeCert('eUICC');
  const eumCertificate = fakeCert('EUM');
  const enc = encodeOtherSignedNotification({ tbsOtherNotification: tbs, signature: sig, euiccCertificate, eumCertificate });
  t.equal(enc[0], 0x30);
  const d = decodeOtherSignedNotification(enc);
  t.same(d.raw, enc);
  t.same(d.tbsOtherNotification.raw, tbs);
  t.equal(d.tbsOtherNotification.operation, 3);
  t.same(d.euiccCertificate, euiccCertificate);
  t.same(d.eumCertificate, eumCertificate);
  t.ok(verifyRaw(euicc.publicKey, d.tbsOtherNotification.raw, d.signature));
  t.throws(() => decodeOtherSignedNotification(seq(tbs, tlv(0x5f37, sig), euiccCertificate)), { message: /eumCertificate/ });
});

t.test('PendingNotification CHOICE', async (t) => {
  const sig = randomBytes(64);
  const pirBytes = encodePendingNotification({ pir: { data: pirData({ success: { aid: ISDP, simaResponse: SIMA_OK } }), signature: sig } });
  const otherBytes = encodePendingNotification({
    other: { tbsOtherNotification: { seqNumber: 2, operation: 1, notificationAddress: 'x' }, signature: sig, euiccCertificate: fakeCert('a'), eumCertificate: fakeCert('b') },
  });
  const p = decodePendingNotification(pirBytes);
  t.ok('pir' in p && p.pir.raw.equals(pirBytes));
  const o = decodePendingNotification(otherBytes);
  t.ok('other' in o && o.other.tbsOtherNotification.operation === 1);
  t.throws(() => decodePendingNotification(tlv(0xbf2f, Buffer.alloc(0))), { code: 'malformed', message: /BF37 or 30/ });
});
