/**
 * CancelSession (SGP.22 §5.7.14, §5.6.5; docs/protocol.md, Cancelling a session): the ES10b request
 * (`BF41 {80 tid, 81 reason}`) and the eUICC's signed response that ES9+ cancelSession carries.
 * euiccCancelSessionSignature covers `ok.signed.raw` (the EuiccCancelSessionSigned TLV as received).
 */
import { tlv, type Tlv } from '../der/tlv.js';
import { decodeOidValue, encodeOidValue, integer, readUint } from '../der/types.js';
import { bytesOr, checkLength, guard, kids, malformed, need, opt, read, top, type Bytes, type WithRaw } from '../der/read.js';
import { encodeSignatureDo, signatureOf, TAG_SIGNATURE, transactionIdOf } from './data-objects.js';

export const TAG_CANCEL_SESSION = 0xbf41;

/** CancelSessionReason values. */
export const CANCEL_REASON = {
  endUserRejection: 0,
  postponed: 1,
  timeout: 2,
  pprNotAllowed: 3,
  metadataMismatch: 4,
  loadBppExecutionError: 5,
  undefinedReason: 127,
} as const;

/** cancelSessionResponseError values. */
export const CANCEL_SESSION_ERROR = { invalidTransactionId: 5, undefinedError: 127 } as const;

export interface CancelSessionRequest {
  raw?: Buffer;
  transactionId: Buffer;
  reason: number;
}

export interface EuiccCancelSessionSigned {
  raw?: Buffer;
  transactionId: Buffer;
  /** OID of the SM-DP+ (from CERT.DPauth), dotted. */
  smdpOid: string;
  reason: number;
}

export type CancelSessionResponse =
  | { ok: { raw: Buffer; signed: WithRaw<EuiccCancelSessionSigned>; signature: Buffer } }
  | { error: { raw: Buffer; code: number } };

export type CancelSessionResponseInput =
  | { ok: { signed: Buffer | EuiccCancelSessionSigned; signature: Buffer } }
  | { error: { code: number } };

export function encodeCancelSessionRequest(r: CancelSessionRequest): Buffer {
  return tlv(TAG_CANCEL_SESSION, tlv(0x80, checkLength(r.transactionId, 'transactionId', 1, 16)), integer(r.reason, 0x81));
}

export function decodeCancelSessionRequest(input: Bytes): WithRaw<CancelSessionRequest> {
  const t = top(input, TAG_CANCEL_SESSION, 'cancelSessionRequest');
  return guard('cancelSessionRequest', () => {
    kids(t, 'cancelSessionRequest');
    return {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      reason: read(need(t, 0x81, 'reason'), 'reason', readUint),
    };
  });
}

export function encodeEuiccCancelSessionSigned(s: EuiccCancelSessionSigned): Buffer {
  return tlv(
    0x30,
    tlv(0x80, checkLength(s.transactionId, 'transactionId', 1, 16)),
    tlv(0x81, encodeOidValue(s.smdpOid)),
    integer(s.reason, 0x82),
  );
}

export function decodeEuiccCancelSessionSigned(input: Bytes): WithRaw<EuiccCancelSessionSigned> {
  return signedOf(top(input, 0x30, 'euiccCancelSessionSigned'));
}

function signedOf(t: Tlv): WithRaw<EuiccCancelSessionSigned> {
  return guard('euiccCancelSessionSigned', () => {
    kids(t, 'euiccCancelSessionSigned');
    return {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      smdpOid: read(need(t, 0x81, 'smdpOid'), 'smdpOid', (x) => decodeOidValue(x.value)),
      reason: read(need(t, 0x82, 'reason'), 'reason', readUint),
    };
  });
}

export function encodeCancelSessionResponse(r: CancelSessionResponseInput): Buffer {
  if ('ok' in r) {
    return tlv(TAG_CANCEL_SESSION, tlv(0xa0, bytesOr(r.ok.signed, encodeEuiccCancelSessionSigned), encodeSignatureDo(r.ok.signature)));
  }
  return tlv(TAG_CANCEL_SESSION, integer(r.error.code, 0x81));
}

export function decodeCancelSessionResponse(input: Bytes): CancelSessionResponse {
  const t = top(input, TAG_CANCEL_SESSION, 'cancelSessionResponse');
  return guard('cancelSessionResponse', () => {
    const ok = opt(t, 0xa0);
    if (ok) {
      kids(ok, 'cancelSessionResponseOk');
      return {
        ok: {
          raw: t.raw,
          signed: signedOf(need(ok, 0x30, 'euiccCancelSessionSigned')),
          signature: signatureOf(need(ok, TAG_SIGNATURE, 'euiccCancelSessionSignature'), 'euiccCancelSessionSignature'),
        },
      };
    }
    const err = opt(t, 0x81);
    if (!err) malformed('cancelSessionResponse: neither cancelSessionResponseOk (A0) nor cancelSessionResponseError (81)');
    return { error: { raw: t.raw, code: read(err, 'cancelSessionResponseError', readUint) } };
  });
}
