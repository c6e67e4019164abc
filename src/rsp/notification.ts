/**
 * Notifications (SGP.22 §5.7.6, §5.7.9–5.7.11, §5.6.4; docs/protocol.md, Notifications and install
 * results): NotificationMetadata (`BF2F`), ProfileInstallationResult (`BF37` around `BF27`
 * ProfileInstallationResultData), OtherSignedNotification (`30`) and the PendingNotification CHOICE
 * that ES9+ handleNotification carries.
 *
 * euiccSignPIR covers `data.raw` (the BF27 TLV as received); euiccNotificationSignature covers
 * `tbsOtherNotification.raw` (the BF2F TLV as received).
 */
import { decode, tagHex, tlv, type Tlv } from '../der/tlv.js';
import { decodeOidValue, encodeOidValue, integer, namedBits, readNamedBits, readUint, readUtf8, utf8 } from '../der/types.js';
import { bytesOr, checkLength, guard, kids, malformed, need, opt, read, sized, top, type Bytes, type WithRaw } from '../der/read.js';
import { certificateBytes, certificateOf, encodeSignatureDo, signatureOf, TAG_SIGNATURE, transactionIdOf } from './data-objects.js';

/** NotificationEvent bit numbers (profileManagementOperation, SGP.22 §5.7.9 NotificationMetadata). */
export const NOTIFICATION_EVENT = { install: 0, enable: 1, disable: 2, delete: 3 } as const;
export type NotificationOperationName = keyof typeof NOTIFICATION_EVENT;
/** The operation names by bit number (`NOTIFICATION_OPERATIONS[NOTIFICATION_EVENT.enable] === 'enable'`). */
export const NOTIFICATION_OPERATIONS = ['install', 'enable', 'disable', 'delete'] as const satisfies readonly NotificationOperationName[];

export const TAG_NOTIFICATION_METADATA = 0xbf2f;
export const TAG_PIR_DATA = 0xbf27;
export const TAG_PIR = 0xbf37;

/** BppCommandId values. */
export const BPP_COMMAND_ID = {
  initialiseSecureChannel: 0,
  configureISDP: 1,
  storeMetadata: 2,
  storeMetadata2: 3,
  replaceSessionKeys: 4,
  loadProfileElements: 5,
} as const;

/** ErrorReason values of an installation errorResult (SGP.22 §5.7.6, short names). */
export const INSTALL_ERROR_REASON = {
  incorrectInputValues: 1,
  invalidSignature: 2,
  invalidTransactionId: 3,
  unsupportedCrtValues: 4,
  unsupportedRemoteOperationType: 5,
  unsupportedProfileClass: 6,
  scp03tStructureError: 7,
  scp03tSecurityError: 8,
  iccidAlreadyExistsOnEuicc: 9,
  insufficientMemory: 10,
  interruption: 11,
  peProcessingError: 12,
  dataMismatch: 13,
  testProfileInvalidNaaKey: 14,
  pprNotAllowed: 15,
  unknownError: 127,
} as const;

export interface NotificationMetadata {
  raw?: Buffer;
  seqNumber: number;
  /** NotificationEvent bit number: 0 install, 1 enable, 2 disable, 3 delete. */
  operation: number;
  notificationAddress: string;
  /** 10 bytes, EF.ICCID coding. */
  iccid?: Buffer;
}

export type FinalResult =
  | { success: { aid: Buffer; simaResponse: Buffer } }
  | { error: { bppCommandId: number; errorReason: number; simaResponse?: Buffer } };

export interface ProfileInstallationResultData {
  raw?: Buffer;
  transactionId: Buffer;
  notificationMetadata: NotificationMetadata;
  smdpOid?: string;
  finalResult: FinalResult;
}

export interface ProfileInstallationResult {
  raw?: Buffer;
  data: ProfileInstallationResultData;
  /** euiccSignPIR, 64 bytes r‖s. */
  signature: Buffer;
}

export interface OtherSignedNotification {
  raw?: Buffer;
  tbsOtherNotification: NotificationMetadata;
  /** euiccNotificationSignature, 64 bytes r‖s. */
  signature: Buffer;
  euiccCertificate: Buffer;
  eumCertificate: Buffer;
}

export type PendingNotification = { pir: ProfileInstallationResult } | { other: OtherSignedNotification };

/** Decoded forms: every signed part carries its exact received bytes. */
export interface DecodedProfileInstallationResultData extends ProfileInstallationResultData {
  raw: Buffer;
  notificationMetadata: WithRaw<NotificationMetadata>;
}
export interface DecodedProfileInstallationResult extends ProfileInstallationResult {
  raw: Buffer;
  data: DecodedProfileInstallationResultData;
}
export interface DecodedOtherSignedNotification extends OtherSignedNotification {
  raw: Buffer;
  tbsOtherNotification: WithRaw<NotificationMetadata>;
}
export type DecodedPendingNotification = { pir: DecodedProfileInstallationResult } | { other: DecodedOtherSignedNotification };

/** Encoder inputs: a signed part may be given as exact bytes (used verbatim) or as fields. */
export interface ProfileInstallationResultDataInput extends Omit<ProfileInstallationResultData, 'notificationMetadata'> {
  notificationMetadata: Buffer | NotificationMetadata;
}
export interface ProfileInstallationResultInput {
  data: Buffer | ProfileInstallationResultDataInput;
  signature: Buffer;
}
export interface OtherSignedNotificationInput {
  tbsOtherNotification: Buffer | NotificationMetadata;
  signature: Buffer;
  euiccCertificate: Buffer;
  eumCertificate: Buffer;
}
export type PendingNotificationInput = { pir: ProfileInstallationResultInput } | { other: OtherSignedNotificationInput };

// ---- NotificationMetadata ----

export function encodeNotificationMetadata(m: NotificationMetadata): Buffer {
  if (!Number.isInteger(m.operation) || m.operation < 0 || m.operation > 15) malformed(`notification operation ${m.operation} out of range`);
  return tlv(
    TAG_NOTIFICATION_METADATA,
    integer(m.seqNumber, 0x80),
    namedBits([m.operation], 0x81),
    utf8(m.notificationAddress),
    m.iccid && tlv(0x5a, checkLength(m.iccid, 'iccid', 10)),
  );
}

export function decodeNotificationMetadata(input: Bytes): WithRaw<NotificationMetadata> {
  return notificationMetadataOf(top(input, TAG_NOTIFICATION_METADATA, 'notificationMetadata'));
}

function notificationMetadataOf(t: Tlv): WithRaw<NotificationMetadata> {
  return guard('notificationMetadata', () => {
    kids(t, 'notificationMetadata');
    const bits = read(need(t, 0x81, 'profileManagementOperation'), 'profileManagementOperation', readNamedBits);
    if (bits.length !== 1) malformed(`notificationMetadata: profileManagementOperation must have exactly one bit set, has ${bits.length}`);
    const out: WithRaw<NotificationMetadata> = {
      raw: t.raw,
      seqNumber: read(need(t, 0x80, 'seqNumber'), 'seqNumber', readUint),
      operation: bits[0]!,
      notificationAddress: readUtf8(need(t, 0x0c, 'notificationAddress')),
    };
    const iccid = opt(t, 0x5a);
    if (iccid) out.iccid = sized(iccid, 'iccid', 10);
    return out;
  });
}

// ---- ProfileInstallationResultData / ProfileInstallationResult ----

function encodeFinalResult(r: FinalResult): Buffer {
  if ('success' in r) {
    return tlv(0xa2, tlv(0xa0, tlv(0x4f, checkLength(r.success.aid, 'aid', 5, 16)), tlv(0x04, r.success.simaResponse)));
  }
  const e = r.error;
  return tlv(0xa2, tlv(0xa1, integer(e.bppCommandId, 0x80), integer(e.errorReason, 0x81), e.simaResponse && tlv(0x82, e.simaResponse)));
}

export function encodeProfileInstallationResultData(d: ProfileInstallationResultDataInput): Buffer {
  return tlv(
    TAG_PIR_DATA,
    tlv(0x80, checkLength(d.transactionId, 'transactionId', 1, 16)),
    bytesOr(d.notificationMetadata, encodeNotificationMetadata),
    d.smdpOid !== undefined && tlv(0x06, encodeOidValue(d.smdpOid)),
    encodeFinalResult(d.finalResult),
  );
}

export function decodeProfileInstallationResultData(input: Bytes): DecodedProfileInstallationResultData {
  return pirDataOf(top(input, TAG_PIR_DATA, 'profileInstallationResultData'));
}

function pirDataOf(t: Tlv): DecodedProfileInstallationResultData {
  return guard('profileInstallationResultData', () => {
    kids(t, 'profileInstallationResultData');
    const fr = need(t, 0xa2, 'finalResult');
    kids(fr, 'finalResult');
    let finalResult: FinalResult;
    const ok = opt(fr, 0xa0);
    const err = opt(fr, 0xa1);
    if (ok) {
      kids(ok, 'successResult');
      finalResult = {
        success: { aid: sized(need(ok, 0x4f, 'aid'), 'aid', 5, 16), simaResponse: need(ok, 0x04, 'simaResponse').value },
      };
    } else if (err) {
      kids(err, 'errorResult');
      const e: { bppCommandId: number; errorReason: number; simaResponse?: Buffer } = {
        bppCommandId: read(need(err, 0x80, 'bppCommandId'), 'bppCommandId', readUint),
        errorReason: read(need(err, 0x81, 'errorReason'), 'errorReason', readUint),
      };
      const sima = opt(err, 0x82);
      if (sima) e.simaResponse = sima.value;
      finalResult = { error: e };
    } else {
      malformed('finalResult: neither successResult (A0) nor errorResult (A1)');
    }
    const out: DecodedProfileInstallationResultData = {
      raw: t.raw,
      transactionId: transactionIdOf(need(t, 0x80, 'transactionId')),
      notificationMetadata: notificationMetadataOf(need(t, TAG_NOTIFICATION_METADATA, 'notificationMetadata')),
      finalResult,
    };
    const oid = opt(t, 0x06);
    if (oid) out.smdpOid = read(oid, 'smdpOid', (x) => decodeOidValue(x.value));
    return out;
  });
}

export function encodeProfileInstallationResult(r: ProfileInstallationResultInput): Buffer {
  return tlv(TAG_PIR, bytesOr(r.data, encodeProfileInstallationResultData), encodeSignatureDo(r.signature));
}

export function decodeProfileInstallationResult(input: Bytes): DecodedProfileInstallationResult {
  return pirOf(top(input, TAG_PIR, 'profileInstallationResult'));
}

function pirOf(t: Tlv): DecodedProfileInstallationResult {
  return guard('profileInstallationResult', () => {
    kids(t, 'profileInstallationResult');
    return {
      raw: t.raw,
      data: pirDataOf(need(t, TAG_PIR_DATA, 'profileInstallationResultData')),
      signature: signatureOf(need(t, TAG_SIGNATURE, 'euiccSignPIR'), 'euiccSignPIR'),
    };
  });
}

// ---- OtherSignedNotification ----

export function encodeOtherSignedNotification(n: OtherSignedNotificationInput): Buffer {
  return tlv(
    0x30,
    bytesOr(n.tbsOtherNotification, encodeNotificationMetadata),
    encodeSignatureDo(n.signature),
    certificateBytes(n.euiccCertificate, 'euiccCertificate'),
    certificateBytes(n.eumCertificate, 'eumCertificate'),
  );
}

export function decodeOtherSignedNotification(input: Bytes): DecodedOtherSignedNotification {
  return otherOf(top(input, 0x30, 'otherSignedNotification'));
}

function otherOf(t: Tlv): DecodedOtherSignedNotification {
  return guard('otherSignedNotification', () => {
    const certs = kids(t, 'otherSignedNotification').filter((x) => x.tag === 0x30);
    if (certs.length < 2) malformed(`otherSignedNotification: expected euiccCertificate and eumCertificate (30), found ${certs.length}`);
    return {
      raw: t.raw,
      tbsOtherNotification: notificationMetadataOf(need(t, TAG_NOTIFICATION_METADATA, 'tbsOtherNotification')),
      signature: signatureOf(need(t, TAG_SIGNATURE, 'euiccNotificationSignature'), 'euiccNotificationSignature'),
      euiccCertificate: certificateOf(certs[0]!, 'euiccCertificate'),
      eumCertificate: certificateOf(certs[1]!, 'eumCertificate'),
    };
  });
}

// ---- PendingNotification (CHOICE) ----

export function encodePendingNotification(n: PendingNotificationInput): Buffer {
  return 'pir' in n ? encodeProfileInstallationResult(n.pir) : encodeOtherSignedNotification(n.other);
}

export function decodePendingNotification(input: Bytes): DecodedPendingNotification {
  const t = guard('pendingNotification', () => decode(input));
  if (t.tag === TAG_PIR) return { pir: pirOf(t) };
  if (t.tag === 0x30) return { other: otherOf(t) };
  return malformed(`pendingNotification: expected BF37 or 30, found ${tagHex(t.tag)}`);
}
