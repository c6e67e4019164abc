/**
 * Profile metadata and PrepareDownload (SGP.22 §5.7.5, §5.6.3; docs/protocol.md, Metadata and
 * PrepareDownload): StoreMetadataRequest (`BF25`), SmdpSigned2, PrepareDownloadRequest / Response
 * (`BF21`), EUICCSigned2.
 *
 * AUTOMATIC TAGS trap: SmdpSigned2.ccRequiredFlag is a plain `01` BOOLEAN and EUICCSigned2.hashCc a
 * plain `04` OCTET STRING (their SEQUENCEs already carry explicit tags, so no automatic tagging).
 */
import { tlv, type Tlv } from '../der/tlv.js';
import { bool, integer, namedBits, readBool, readNamedBits, readUint, readUtf8, utf8 } from '../der/types.js';
import { bytesOr, checkLength, guard, kids, listOf, malformed, need, opt, read, sized, top, type Bytes, type WithRaw } from '../der/read.js';
import { certificateBytes, certificateOf, encodeSignatureDo, signatureOf, TAG_OTPK, TAG_SIGNATURE, transactionIdOf } from './data-objects.js';

export const TAG_STORE_METADATA = 0xbf25;
export const TAG_PREPARE_DOWNLOAD = 0xbf21;

/** DownloadErrorCode values. */
export const DOWNLOAD_ERROR = {
  invalidCertificate: 1,
  invalidSignature: 2,
  unsupportedCurve: 3,
  noSessionContext: 4,
  invalidTransactionId: 5,
  undefinedError: 127,
} as const;

/** NotificationEvent bit numbers (defined in notification.ts; re-exported for the metadata's notificationConfigurationInfo). */
export { NOTIFICATION_EVENT } from './notification.js';

export interface NotificationConfigurationInfo {
  /** NotificationEvent bit numbers. */
  operations: number[];
  address: string;
}

export interface StoreMetadataRequest {
  raw?: Buffer;
  /** 10 bytes, EF.ICCID coding (swapped BCD). */
  iccid: Buffer;
  serviceProviderName: string;
  profileName: string;
  /** 0 jpg, 1 png. */
  iconType?: number;
  icon?: Buffer;
  /** 0 test, 1 provisioning, 2 operational (absent = default operational). */
  profileClass?: 0 | 1 | 2;
  notificationConfigurationInfo?: NotificationConfigurationInfo[];
  profileOwner?: { mccMnc: Buffer; gid1?: Buffer; gid2?: Buffer };
  /** PprIds bit numbers: 0 ppr1 (disable not allowed), 1 ppr2 (delete not allowed). */
  profilePolicyRules?: number[];
}

export interface SmdpSigned2 {
  raw?: Buffer;
  transactionId: Buffer;
  ccRequiredFlag: boolean;
  /** v2.x PPK mode: the eUICC one-time key to reuse (65 bytes). */
  bppEuiccOtpk?: Buffer;
}

export interface PrepareDownloadRequest {
  raw: Buffer;
  smdpSigned2: WithRaw<SmdpSigned2>;
  smdpSignature2: Buffer;
  /** The full `5F37 40 …` DO as received (euiccSignature2 signs over it). */
  smdpSignature2Do: Buffer;
  hashCc?: Buffer;
  smdpCertificate: Buffer;
}

export interface PrepareDownloadRequestInput {
  /** Exact bytes as received from the SM-DP+, or fields to encode. */
  smdpSigned2: Buffer | SmdpSigned2;
  smdpSignature2: Buffer;
  hashCc?: Buffer;
  smdpCertificate: Buffer;
}

export interface EuiccSigned2 {
  raw: Buffer;
  transactionId: Buffer;
  /** 65 bytes, 04‖X‖Y. */
  euiccOtpk: Buffer;
  hashCc?: Buffer;
}

export type PrepareDownloadResponse =
  | { ok: { raw: Buffer; euiccSigned2: EuiccSigned2; euiccSignature2: Buffer } }
  | { error: { raw: Buffer; transactionId?: Buffer; code: number } };

export type PrepareDownloadResponseInput =
  | { ok: { euiccSigned2: Buffer | Omit<EuiccSigned2, 'raw'>; euiccSignature2: Buffer } }
  | { error: { transactionId?: Buffer; code: number } };

// ---- StoreMetadataRequest ----

export function encodeStoreMetadataRequest(m: StoreMetadataRequest): Buffer {
  const o = m.profileOwner;
  return tlv(
    TAG_STORE_METADATA,
    tlv(0x5a, checkLength(m.iccid, 'iccid', 10)),
    utf8(m.serviceProviderName, 0x91),
    utf8(m.profileName, 0x92),
    m.iconType !== undefined && integer(m.iconType, 0x93),
    m.icon && tlv(0x94, m.icon),
    m.profileClass !== undefined && integer(m.profileClass, 0x95),
    m.notificationConfigurationInfo &&
      tlv(0xb6, ...m.notificationConfigurationInfo.map((n) => tlv(0x30, namedBits(n.operations, 0x80), utf8(n.address, 0x81)))),
    o && tlv(0xb7, tlv(0x80, checkLength(o.mccMnc, 'mccMnc', 3)), o.gid1 && tlv(0x81, o.gid1), o.gid2 && tlv(0x82, o.gid2)),
    m.profilePolicyRules && namedBits(m.profilePolicyRules, 0x99),
  );
}

export function decodeStoreMetadataRequest(input: Bytes): WithRaw<StoreMetadataRequest> {
  const t = top(input, TAG_STORE_METADATA, 'storeMetadataRequest');
  return guard('storeMetadataRequest', () => {
    kids(t, 'storeMetadataRequest');
    const out: WithRaw<StoreMetadataRequest> = {
      raw: t.raw,
      iccid: sized(need(t, 0x5a, 'iccid'), 'iccid', 10),
      serviceProviderName: readUtf8(need(t, 0x91, 'serviceProviderName')),
      profileName: readUtf8(need(t, 0x92, 'profileName')),
    };
    const iconType = opt(t, 0x93);
    if (iconType) out.iconType = read(iconType, 'iconType', readUint);
    const icon = opt(t, 0x94);
    if (icon) out.icon = icon.value;
    const pc = opt(t, 0x95);
    if (pc) {
      const v = read(pc, 'profileClass', readUint);
      if (v > 2) malformed(`storeMetadataRequest: profileClass ${v} out of range`);
      out.profileClass = v as 0 | 1 | 2;
    }
    const nci = opt(t, 0xb6);
    if (nci) {
      out.notificationConfigurationInfo = listOf(nci, 0x30, 'notificationConfigurationInfo').map((n) => ({
        operations: read(need(n, 0x80, 'profileManagementOperation'), 'profileManagementOperation', readNamedBits),
        address: readUtf8(need(n, 0x81, 'notificationAddress')),
      }));
    }
    const po = opt(t, 0xb7);
    if (po) {
      const owner: NonNullable<StoreMetadataRequest['profileOwner']> = { mccMnc: sized(need(po, 0x80, 'mccMnc'), 'mccMnc', 3) };
      const g1 = opt(po, 0x81);
      if (g1) owner.gid1 = g1.value;
      const g2 = opt(po, 0x82);
      if (g2) owner.gid2 = g2.value;
      out.profileOwner = owner;
    }
    const ppr = opt(t, 0x99);
    if (ppr) out.profilePolicyRules = read(ppr, 'profilePolicyRules', readNamedBits);
    return out;
  });
}

// ---- SmdpSigned2 ----

export function encodeSmdpSigned2(s: SmdpSigned2): Buffer {
  return tlv(
    0x30,
    tlv(0x80, checkLength(s.transactionId, 'transactionId', 1, 16)),
    bool(s.ccRequiredFlag),
    s.bppEuiccOtpk && tlv(TAG_OTPK, checkLength(s.bppEuiccOtpk, 'bppEuiccOtpk', 65)),
  );
}

export function decodeSmdpSigned2(input: Bytes): WithRaw<SmdpSigned2> {
  return smdpSigned2Of(top(input, 0x30, 'smdpSigned2'));
}

function smdpSigned2Of(t: Tlv): WithRaw<SmdpSigned2> {
  return guard('smdpSigned2', () => {
    kids(t, 'smdpSigned2');
    const out: WithRaw<SmdpSigned2> = {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      ccRequiredFlag: read(need(t, 0x01, 'ccRequiredFlag'), 'ccRequiredFlag', readBool),
    };
    const otpk = opt(t, TAG_OTPK);
    if (otpk) out.bppEuiccOtpk = sized(otpk, 'bppEuiccOtpk', 65);
    return out;
  });
}

// ---- PrepareDownloadRequest (ES10b, LPA -> eUICC) ----

export function encodePrepareDownloadRequest(r: PrepareDownloadRequestInput): Buffer {
  return tlv(
    TAG_PREPARE_DOWNLOAD,
    bytesOr(r.smdpSigned2, encodeSmdpSigned2),
    encodeSignatureDo(r.smdpSignature2),
    r.hashCc && tlv(0x04, checkLength(r.hashCc, 'hashCc', 32)),
    certificateBytes(r.smdpCertificate, 'smdpCertificate'),
  );
}

export function decodePrepareDownloadRequest(input: Bytes): PrepareDownloadRequest {
  const t = top(input, TAG_PREPARE_DOWNLOAD, 'prepareDownloadRequest');
  return guard('prepareDownloadRequest', () => {
    const seqs = kids(t, 'prepareDownloadRequest').filter((x) => x.tag === 0x30);
    if (seqs.length < 2) malformed(`prepareDownloadRequest: expected smdpSigned2 and smdpCertificate (30), found ${seqs.length}`);
    const sigDo = need(t, TAG_SIGNATURE, 'smdpSignature2');
    const out: PrepareDownloadRequest = {
      raw: t.raw,
      smdpSigned2: smdpSigned2Of(seqs[0]!),
      smdpSignature2: signatureOf(sigDo, 'smdpSignature2'),
      smdpSignature2Do: sigDo.raw,
      smdpCertificate: certificateOf(seqs[1]!, 'smdpCertificate'),
    };
    const hashCc = opt(t, 0x04);
    if (hashCc) out.hashCc = sized(hashCc, 'hashCc', 32);
    return out;
  });
}

// ---- EUICCSigned2 ----

export function encodeEuiccSigned2(s: Omit<EuiccSigned2, 'raw'>): Buffer {
  return tlv(
    0x30,
    tlv(0x80, checkLength(s.transactionId, 'transactionId', 1, 16)),
    tlv(TAG_OTPK, checkLength(s.euiccOtpk, 'euiccOtpk', 65)),
    s.hashCc && tlv(0x04, checkLength(s.hashCc, 'hashCc', 32)),
  );
}

export function decodeEuiccSigned2(input: Bytes): EuiccSigned2 {
  return euiccSigned2Of(top(input, 0x30, 'euiccSigned2'));
}

function euiccSigned2Of(t: Tlv): EuiccSigned2 {
  return guard('euiccSigned2', () => {
    kids(t, 'euiccSigned2');
    const out: EuiccSigned2 = {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      euiccOtpk: sized(need(t, TAG_OTPK, 'euiccOtpk'), 'euiccOtpk', 65),
    };
    const hashCc = opt(t, 0x04);
    if (hashCc) out.hashCc = sized(hashCc, 'hashCc', 32);
    return out;
  });
}

// ---- PrepareDownloadResponse (ES10b eUICC -> LPA, ES9+ getBoundProfilePackage input) ----

export function encodePrepareDownloadResponse(r: PrepareDownloadResponseInput): Buffer {
  if ('ok' in r) {
    return tlv(TAG_PREPARE_DOWNLOAD, tlv(0xa0, bytesOr(r.ok.euiccSigned2, encodeEuiccSigned2), encodeSignatureDo(r.ok.euiccSignature2)));
  }
  const e = r.error;
  return tlv(TAG_PREPARE_DOWNLOAD, tlv(0xa1, e.transactionId && tlv(0x80, checkLength(e.transactionId, 'transactionId', 1, 16)), integer(e.code)));
}

export function decodePrepareDownloadResponse(input: Bytes): PrepareDownloadResponse {
  const t = top(input, TAG_PREPARE_DOWNLOAD, 'prepareDownloadResponse');
  return guard('prepareDownloadResponse', () => {
    const ok = opt(t, 0xa0);
    if (ok) {
      return {
        ok: {
          raw: t.raw,
          euiccSigned2: euiccSigned2Of(need(ok, 0x30, 'euiccSigned2')),
          euiccSignature2: signatureOf(need(ok, TAG_SIGNATURE, 'euiccSignature2'), 'euiccSignature2'),
        },
      };
    }
    const err = opt(t, 0xa1);
    if (!err) malformed('prepareDownloadResponse: neither downloadResponseOk (A0) nor downloadResponseError (A1)');
    kids(err, 'downloadResponseError');
    const out: { raw: Buffer; transactionId?: Buffer; code: number } = {
      raw: t.raw,
      code: read(need(err, 0x02, 'downloadErrorCode'), 'downloadErrorCode', readUint),
    };
    const tid = opt(err, 0x80);
    if (tid) out.transactionId = transactionIdOf(tid);
    return { error: out };
  });
}
