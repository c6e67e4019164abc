/**
 * Common mutual authentication messages (SGP.22 §5.6.1, §5.7.13; docs/protocol.md, Mutual
 * authentication): ServerSigned1, CtxParams1, AuthenticateServerRequest / Response (`BF38`),
 * EuiccSigned1.
 *
 * Signed parts are returned with `raw`, the exact bytes received: serverSignature1 is checked over
 * `serverSigned1.raw`, euiccSignature1 over `euiccSigned1.raw`, and smdpSignature2 covers
 * `euiccSignature1Do` (the whole `5F37 40 …` DO as received).
 */
import { decode, tlv, type Tlv } from '../der/tlv.js';
import { integer, readUint, readUtf8, utf8 } from '../der/types.js';
import { decodeEuiccInfo2Tlv, encodeEuiccInfo2, TAG_EUICC_INFO2, type EuiccInfo2 } from './euiccinfo.js';
import { bytesOr, checkLength, guard, kids, malformed, need, opt, read, sized, top, type Bytes, type WithRaw } from '../der/read.js';
import { certificateBytes, certificateOf, encodeSignatureDo, signatureOf, TAG_SIGNATURE, transactionIdOf } from './data-objects.js';
import { RspError } from './errors.js';

export const TAG_AUTHENTICATE_SERVER = 0xbf38;

/** AuthenticateErrorCode values. */
export const AUTHENTICATE_ERROR = {
  invalidCertificate: 1,
  invalidSignature: 2,
  unsupportedCurve: 3,
  noSessionContext: 4,
  invalidOid: 5,
  euiccChallengeMismatch: 6,
  ciPKUnknown: 7,
  undefinedError: 127,
} as const;

export interface ServerSigned1 {
  raw?: Buffer;
  transactionId: Buffer;
  euiccChallenge: Buffer;
  serverAddress: string;
  serverChallenge: Buffer;
}

export interface DeviceInfo {
  /** TAC, 4 bytes on real traffic (any length accepted). */
  tac: Buffer;
  /** The whole `A1 …` DeviceCapabilities TLV, kept as bytes. */
  deviceCapabilities: Buffer;
  imei?: Buffer;
}

export interface CtxParams1 {
  raw: Buffer;
  matchingId?: string;
  deviceInfo: DeviceInfo;
}
export type CtxParams1Input = Omit<CtxParams1, 'raw'>;

/** An empty DeviceCapabilities (`A1 00`), what lpac sends by default. */
export const EMPTY_DEVICE_CAPABILITIES = Buffer.from([0xa1, 0x00]);

export interface AuthenticateServerRequest {
  raw: Buffer;
  serverSigned1: WithRaw<ServerSigned1>;
  /** 64 bytes r‖s. */
  serverSignature1: Buffer;
  /** The full `5F37 40 …` DO as received. */
  serverSignature1Do: Buffer;
  /** SKI of the CI key, the value of the `04` element. */
  euiccCiPkIdToBeUsed: Buffer;
  /** CERT.DPauth.ECDSA, DER. */
  serverCertificate: Buffer;
  ctxParams1: CtxParams1;
}

export interface AuthenticateServerRequestInput {
  /** Exact bytes (as received from the SM-DP+) or fields to encode. */
  serverSigned1: Buffer | ServerSigned1;
  serverSignature1: Buffer;
  euiccCiPkIdToBeUsed: Buffer;
  serverCertificate: Buffer;
  ctxParams1: Buffer | CtxParams1Input;
}

export interface EuiccSigned1 {
  raw: Buffer;
  transactionId: Buffer;
  serverAddress: string;
  serverChallenge: Buffer;
  euiccInfo2: EuiccInfo2;
  ctxParams1: CtxParams1;
}

export interface EuiccSigned1Input {
  transactionId: Buffer;
  serverAddress: string;
  serverChallenge: Buffer;
  euiccInfo2: Buffer | Omit<EuiccInfo2, 'raw'>;
  ctxParams1: Buffer | CtxParams1Input;
}

export type AuthenticateServerResponse =
  | {
      ok: {
        raw: Buffer;
        euiccSigned1: EuiccSigned1;
        euiccSignature1: Buffer;
        /** The full `5F37 40 …` DO as received (smdpSignature2 signs over it). */
        euiccSignature1Do: Buffer;
        euiccCertificate: Buffer;
        eumCertificate: Buffer;
      };
    }
  | { error: { raw: Buffer; transactionId?: Buffer; code: number } };

export type AuthenticateServerResponseInput =
  | { ok: { euiccSigned1: Buffer | EuiccSigned1Input; euiccSignature1: Buffer; euiccCertificate: Buffer; eumCertificate: Buffer } }
  | { error: { transactionId?: Buffer; code: number } };

// ---- ServerSigned1 ----

export function encodeServerSigned1(s: ServerSigned1): Buffer {
  return tlv(
    0x30,
    tlv(0x80, checkLength(s.transactionId, 'transactionId', 1, 16)),
    tlv(0x81, checkLength(s.euiccChallenge, 'euiccChallenge', 16)),
    utf8(s.serverAddress, 0x83),
    tlv(0x84, checkLength(s.serverChallenge, 'serverChallenge', 16)),
  );
}

export function decodeServerSigned1(input: Bytes): WithRaw<ServerSigned1> {
  return serverSigned1Of(top(input, 0x30, 'serverSigned1'));
}

function serverSigned1Of(t: Tlv): WithRaw<ServerSigned1> {
  return guard('serverSigned1', () => {
    kids(t, 'serverSigned1');
    return {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      euiccChallenge: sized(need(t, 0x81, 'euiccChallenge'), 'euiccChallenge', 16),
      serverAddress: readUtf8(need(t, 0x83, 'serverAddress')),
      serverChallenge: sized(need(t, 0x84, 'serverChallenge'), 'serverChallenge', 16),
    };
  });
}

// ---- CtxParams1 ----

export function encodeCtxParams1(c: CtxParams1Input): Buffer {
  const d = c.deviceInfo;
  const caps = Buffer.from(d.deviceCapabilities);
  guard('deviceCapabilities', () => top(caps, 0xa1, 'deviceCapabilities'));
  return tlv(
    0xa0,
    c.matchingId !== undefined && utf8(c.matchingId, 0x80),
    tlv(0xa1, tlv(0x80, d.tac), caps, d.imei && tlv(0x82, d.imei)),
  );
}

export function decodeCtxParams1(input: Bytes): CtxParams1 {
  return ctxParams1Of(guard('ctxParams1', () => decode(input)));
}

function ctxParams1Of(t: Tlv): CtxParams1 {
  if (t.tag === 0xa1 || t.tag === 0xa2) {
    throw new RspError('unsupported', `ctxParams1: only ctxParamsForCommonAuthentication (A0) is supported, got ${t.tag.toString(16).toUpperCase()}`);
  }
  if (t.tag !== 0xa0) malformed(`ctxParams1: expected A0, found ${t.tag.toString(16).toUpperCase()}`);
  return guard('ctxParams1', () => {
    kids(t, 'ctxParams1');
    const di = need(t, 0xa1, 'deviceInfo');
    kids(di, 'deviceInfo');
    const deviceInfo: DeviceInfo = {
      tac: need(di, 0x80, 'tac').value,
      deviceCapabilities: need(di, 0xa1, 'deviceCapabilities').raw,
    };
    const imei = opt(di, 0x82);
    if (imei) deviceInfo.imei = imei.value;
    const out: CtxParams1 = { raw: t.raw, deviceInfo };
    const mid = opt(t, 0x80);
    if (mid) out.matchingId = readUtf8(mid);
    return out;
  });
}

/** The CtxParams1 CHOICE alternative inside a SEQUENCE: A0 (supported) or A1/A2 (v3, unsupported). */
function findCtxParams1(parent: Tlv): Tlv {
  const t = opt(parent, 0xa0) ?? opt(parent, 0xa1) ?? opt(parent, 0xa2);
  if (!t) malformed(`missing ctxParams1 (A0) in ${parent.tag.toString(16).toUpperCase()}`);
  return t;
}

// ---- AuthenticateServerRequest (ES10b, LPA -> eUICC) ----

export function encodeAuthenticateServerRequest(r: AuthenticateServerRequestInput): Buffer {
  return tlv(
    TAG_AUTHENTICATE_SERVER,
    bytesOr(r.serverSigned1, encodeServerSigned1),
    encodeSignatureDo(r.serverSignature1),
    tlv(0x04, checkLength(r.euiccCiPkIdToBeUsed, 'euiccCiPKIdToBeUsed', 1, 64)),
    certificateBytes(r.serverCertificate, 'serverCertificate'),
    bytesOr(r.ctxParams1, encodeCtxParams1),
  );
}

export function decodeAuthenticateServerRequest(input: Bytes): AuthenticateServerRequest {
  const t = top(input, TAG_AUTHENTICATE_SERVER, 'authenticateServerRequest');
  return guard('authenticateServerRequest', () => {
    const c = kids(t, 'authenticateServerRequest');
    // Two SEQUENCEs: serverSigned1 first, serverCertificate second.
    const seqs = c.filter((x) => x.tag === 0x30);
    if (seqs.length < 2) malformed(`authenticateServerRequest: expected serverSigned1 and serverCertificate (30), found ${seqs.length}`);
    const sigDo = need(t, TAG_SIGNATURE, 'serverSignature1');
    return {
      raw: t.raw,
      serverSigned1: serverSigned1Of(seqs[0]!),
      serverSignature1: signatureOf(sigDo, 'serverSignature1'),
      serverSignature1Do: sigDo.raw,
      euiccCiPkIdToBeUsed: sized(need(t, 0x04, 'euiccCiPKIdToBeUsed'), 'euiccCiPKIdToBeUsed', 1, 64),
      serverCertificate: certificateOf(seqs[1]!, 'serverCertificate'),
      ctxParams1: ctxParams1Of(findCtxParams1(t)),
    };
  });
}

// ---- EuiccSigned1 ----

export function encodeEuiccSigned1(s: EuiccSigned1Input): Buffer {
  return tlv(
    0x30,
    tlv(0x80, checkLength(s.transactionId, 'transactionId', 1, 16)),
    utf8(s.serverAddress, 0x83),
    tlv(0x84, checkLength(s.serverChallenge, 'serverChallenge', 16)),
    bytesOr(s.euiccInfo2, encodeEuiccInfo2),
    bytesOr(s.ctxParams1, encodeCtxParams1),
  );
}

export function decodeEuiccSigned1(input: Bytes): EuiccSigned1 {
  return euiccSigned1Of(top(input, 0x30, 'euiccSigned1'));
}

function euiccSigned1Of(t: Tlv): EuiccSigned1 {
  return guard('euiccSigned1', () => {
    kids(t, 'euiccSigned1');
    return {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      serverAddress: readUtf8(need(t, 0x83, 'serverAddress')),
      serverChallenge: sized(need(t, 0x84, 'serverChallenge'), 'serverChallenge', 16),
      euiccInfo2: decodeEuiccInfo2Tlv(need(t, TAG_EUICC_INFO2, 'euiccInfo2')),
      ctxParams1: ctxParams1Of(findCtxParams1(t)),
    };
  });
}

// ---- AuthenticateServerResponse (ES10b eUICC -> LPA, ES9+ authenticateClient input) ----

export function encodeAuthenticateServerResponse(r: AuthenticateServerResponseInput): Buffer {
  if ('ok' in r) {
    const o = r.ok;
    return tlv(
      TAG_AUTHENTICATE_SERVER,
      tlv(0xa0, bytesOr(o.euiccSigned1, encodeEuiccSigned1), encodeSignatureDo(o.euiccSignature1),
        certificateBytes(o.euiccCertificate, 'euiccCertificate'), certificateBytes(o.eumCertificate, 'eumCertificate')),
    );
  }
  const e = r.error;
  return tlv(
    TAG_AUTHENTICATE_SERVER,
    tlv(0xa1, e.transactionId && tlv(0x80, checkLength(e.transactionId, 'transactionId', 1, 16)), integer(e.code)),
  );
}

export function decodeAuthenticateServerResponse(input: Bytes): AuthenticateServerResponse {
  const t = top(input, TAG_AUTHENTICATE_SERVER, 'authenticateServerResponse');
  return guard('authenticateServerResponse', () => {
    const ok = opt(t, 0xa0);
    if (ok) {
      const seqs = kids(ok, 'authenticateResponseOk').filter((x) => x.tag === 0x30);
      if (seqs.length < 3) {
        malformed(`authenticateResponseOk: expected euiccSigned1, euiccCertificate and eumCertificate (30), found ${seqs.length}`);
      }
      const sigDo = need(ok, TAG_SIGNATURE, 'euiccSignature1');
      return {
        ok: {
          raw: t.raw,
          euiccSigned1: euiccSigned1Of(seqs[0]!),
          euiccSignature1: signatureOf(sigDo, 'euiccSignature1'),
          euiccSignature1Do: sigDo.raw,
          euiccCertificate: certificateOf(seqs[1]!, 'euiccCertificate'),
          eumCertificate: certificateOf(seqs[2]!, 'eumCertificate'),
        },
      };
    }
    const err = opt(t, 0xa1);
    if (!err) malformed('authenticateServerResponse: neither authenticateResponseOk (A0) nor authenticateResponseError (A1)');
    kids(err, 'authenticateResponseError');
    const tid = opt(err, 0x80);
    const out: { raw: Buffer; transactionId?: Buffer; code: number } = {
      raw: t.raw,
      code: read(need(err, 0x02, 'authenticateErrorCode'), 'authenticateErrorCode', readUint),
    };
    if (tid) out.transactionId = transactionIdOf(tid);
    return { error: out };
  });
}
