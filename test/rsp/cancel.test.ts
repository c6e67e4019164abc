import t from 'tap';
import { generateKeyPairSync, sign, verify, randomBytes, type KeyObject } from 'node:crypto';
import { tlv } from '../../src/der/tlv.js';
import { RspError } from '../../src/rsp/errors.js';
import {
  CANCEL_REASON,
  CANCEL_SESSION_ERROR,
  decodeCancelSessionRequest,
  decodeCancelSessionResponse,
  decodeEuiccCancelSessionSigned,
  encodeCancelSessionRequest,
  encodeCancelSessionResponse,
  encodeEuiccCancelSessionSigned,
} from '../../src/rsp/cancel.js';

const key = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const tid = Buffer.from('5035C666EAA44652B38AA5DFC0AFC653', 'hex');

t.test('CancelSessionRequest', async (t) => {
  const enc = encodeCancelSessionRequest({ transactionId: tid, reason: CANCEL_REASON.metadataMismatch });
  t.equal(enc.toString('hex'), `bf41158010${tid.toString('hex')}810104`);
  t.strictSame(decodeCancelSessionRequest(enc), { raw: enc, transactionId: tid, reason: 4 });
  t.throws(() => decodeCancelSessionRequest(tlv(0xbf41, tlv(0x80, tid))), { code: 'malformed', message: /reason/ });
  t.throws(() => encodeCancelSessionRequest({ transactionId: Buffer.alloc(0), reason: 0 }), RspError);
});

t.test('CancelSessionResponse ok: signed over the 30 TLV', async (t) => {
  const euicc = key();
  const signed = encodeEuiccCancelSessionSigned({ transactionId: tid, smdpOid: '2.999.10', reason: CANCEL_REASON.endUserRejection });
  t.equal(signed.toString('hex'), `301a8010${tid.toString('hex')}810388370a820100`);
  const sig = sign('sha256', signed, { key: euicc.privateKey, dsaEncoding: 'ieee-p1363' });
  const enc = encodeCancelSessionResponse({ ok: { signed, signature: sig } });
  const d = decodeCancelSessionResponse(enc);
  if (!('ok' in d)) throw new Error('expected ok');
  t.same(d.ok.raw, enc);
  t.same(d.ok.signed, { raw: signed, transactionId: tid, smdpOid: '2.999.10', reason: 0 });
  t.same(d.ok.signature, sig);
  t.ok(verify('sha256', d.ok.signed.raw, { key: euicc.publicKey, dsaEncoding: 'ieee-p1363' }, d.ok.signature));
  t.same(encodeCancelSessionResponse({ ok: { signed: d.ok.signed, signature: sig } }), enc);
  t.same(decodeEuiccCancelSessionSigned(signed).raw, signed);
  t.throws(() => decodeCancelSessionResponse(tlv(0xbf41, tlv(0xa0, signed, tlv(0x5f37, randomBytes(48))))), { code: 'malformed', message: /Signature/ });
});

t.test('CancelSessionResponse error', async (t) => {
  const enc = encodeCancelSessionResponse({ error: { code: CANCEL_SESSION_ERROR.invalidTransactionId } });
  t.equal(enc.toString('hex'), 'bf4103810105');
  t.strictSame(decodeCancelSessionResponse(enc), { error: { raw: enc, code: 5 } });
  t.throws(() => decodeCancelSessionResponse(tlv(0xbf41, tlv(0x82, Buffer.from([1])))), { code: 'malformed' });
});
