/**
 * ES10b notifications of the virtual eUICC (SGP.22 §5.7.9–5.7.11 ListNotification,
 * RetrieveNotificationsList, RemoveNotificationFromList) and the signed notifications it queues: the
 * ProfileInstallationResult of a load and the OtherSignedNotification of an enable, disable or
 * delete. Built with the src/rsp encoders.
 */
import { signRaw } from '../crypto/ecdsa.js';
import { tlv, type Tlv } from '../der/tlv.js';
import { integer, readNamedBits, readUint } from '../der/types.js';
import type { EuiccCredentials } from '../pki/load.js';
import { iccidFromEf } from '../rsp/identifiers.js';
import {
  encodeNotificationMetadata,
  encodeOtherSignedNotification,
  encodeProfileInstallationResult,
  encodeProfileInstallationResultData,
  NOTIFICATION_EVENT,
} from '../rsp/notification.js';
import { hexU, type EuiccCore } from './card.js';
import { ES10 } from './es10.js';
import type { ProfileRecord } from './state.js';

/** EUICCResponse "all profile elements OK": 30 { A0 { 30 { 80 00 } } }. */
const SIMA_RESPONSE_OK = tlv(0x30, tlv(0xa0, tlv(0x30, tlv(0x80, Buffer.from([0])))));

/** NotificationMetadata (`BF2F`) of a notification this card queues. */
function notificationMetadata(seqNumber: number, operation: number, notificationAddress: string, iccid?: Buffer): Buffer {
  return encodeNotificationMetadata({ seqNumber, operation, notificationAddress, ...(iccid ? { iccid } : {}) });
}

function credsForProfile(card: EuiccCore, p: ProfileRecord): EuiccCredentials {
  return (p.ciPkId && card.creds.find((c) => hexU(c.eum.aki!) === p.ciPkId)) || card.creds[0]!;
}

/** Queues a pending notification (`pending`, signed over `metadata`) for ES9+ handleNotification. */
function queue(card: EuiccCore, n: { seqNumber: number; operation: number; address: string; iccid?: string; metadata: Buffer; pending: Buffer }): void {
  card.state.notifications.push({
    seqNumber: n.seqNumber,
    operation: n.operation,
    address: n.address,
    ...(n.iccid !== undefined ? { iccid: n.iccid } : {}),
    metadata: hexU(n.metadata),
    pending: hexU(n.pending),
    createdAt: new Date().toISOString(),
  });
}

/**
 * The signed ProfileInstallationResult (SGP.22 §5.7.6) of a load: `final` undefined for success
 * (with the ISD-P `aid`), else the errorResult. Queued as a pending install notification when the
 * session has a serverAddress to send it to (its seqNumber is then the next one; 0 when not queued).
 */
export function signedPir(
  card: EuiccCore,
  s: { transactionId?: Buffer; serverAddress?: string; smdpOid?: string; creds?: EuiccCredentials } | undefined,
  final: { bppCommandId: number; errorReason: number } | { aid: Buffer },
  iccidEf?: Buffer,
): Buffer {
  const creds = s?.creds ?? card.creds[0]!;
  const address = s?.serverAddress ?? '';
  const queued = address !== '';
  const seqNumber = queued ? card.state.nextSeqNumber++ : 0;
  const metadata = notificationMetadata(seqNumber, NOTIFICATION_EVENT.install, address, iccidEf);
  const data = encodeProfileInstallationResultData({
    transactionId: s?.transactionId ?? Buffer.from([0]),
    notificationMetadata: metadata,
    ...(s?.smdpOid ? { smdpOid: s.smdpOid } : {}),
    finalResult: 'aid' in final ? { success: { aid: final.aid, simaResponse: SIMA_RESPONSE_OK } } : { error: final },
  });
  const pir = encodeProfileInstallationResult({ data, signature: signRaw(creds.key, data) });
  if (queued) queue(card, { seqNumber, operation: NOTIFICATION_EVENT.install, address, ...(iccidEf ? { iccid: iccidFromEf(iccidEf) } : {}), metadata, pending: pir });
  return pir;
}

/** One signed OtherSignedNotification per notificationConfigurationInfo entry listing `operation` (SGP.22 §5.7.16–5.7.18). */
export function notifyProfileEvent(card: EuiccCore, p: ProfileRecord, operation: number): void {
  const creds = credsForProfile(card, p);
  for (const cfg of p.notificationConfigurationInfo) {
    if (!cfg.operations.includes(operation)) continue;
    const seqNumber = card.state.nextSeqNumber++;
    const metadata = notificationMetadata(seqNumber, operation, cfg.address, Buffer.from(p.iccidEf, 'hex'));
    const pending = encodeOtherSignedNotification({
      tbsOtherNotification: metadata,
      signature: signRaw(creds.key, metadata),
      euiccCertificate: creds.cert.raw,
      eumCertificate: creds.eum.raw,
    });
    queue(card, { seqNumber, operation, address: cfg.address, iccid: p.iccid, metadata, pending });
  }
}

/** ListNotification (`BF28 { 81 operations? }`) → `BF28 { A0 { BF2F … } }` | `BF28 { 81 127 }`. */
export function listNotification(card: EuiccCore, cmd: Tlv): Buffer {
  const tag = ES10.ListNotification;
  let ops: number[] | undefined;
  try {
    const f = cmd.find(0x81);
    if (f) ops = readNamedBits(f);
  } catch (err) {
    card.lastError = `ListNotification: ${(err as Error).message}`;
    return tlv(tag, integer(127, 0x81));
  }
  const list = card.state.notifications.filter((n) => !ops || ops.includes(n.operation));
  return tlv(tag, tlv(0xa0, ...list.map((n) => Buffer.from(n.metadata, 'hex'))));
}

/**
 * RetrieveNotificationsList (`BF2B { A0 { 80 seqNumber | 81 operations } }`) →
 * `BF2B { A0 { PendingNotification … } }` | `BF2B { 81 noResultAvailable(1) | undefinedError(127) }`.
 */
export function retrieveNotifications(card: EuiccCore, cmd: Tlv): Buffer {
  const tag = ES10.RetrieveNotificationsList;
  let list = card.state.notifications;
  try {
    const sc = cmd.find(0xa0);
    if (sc) {
      const c = sc.children()[0];
      if (c?.tag === 0x80) {
        const seq = readUint(c);
        list = list.filter((n) => n.seqNumber === seq);
      } else if (c?.tag === 0x81) {
        const ops = readNamedBits(c);
        list = list.filter((n) => ops.includes(n.operation));
      } else {
        throw new Error('searchCriteria must be 80 seqNumber or 81 profileManagementOperation');
      }
      if (!list.length) return tlv(tag, integer(1, 0x81));
    }
  } catch (err) {
    card.lastError = `RetrieveNotificationsList: ${(err as Error).message}`;
    return tlv(tag, integer(127, 0x81));
  }
  return tlv(tag, tlv(0xa0, ...list.map((n) => Buffer.from(n.pending, 'hex'))));
}

/** RemoveNotificationFromList (`BF30 { 80 seqNumber }`) → `BF30 { 80 ok(0) | nothingToDelete(1) | undefinedError(127) }`. */
export function removeNotification(card: EuiccCore, cmd: Tlv): Buffer {
  const tag = ES10.RemoveNotificationFromList;
  let seq: number;
  try {
    const t = cmd.find(0x80);
    if (!t) throw new Error('no seqNumber');
    seq = readUint(t);
  } catch (err) {
    card.lastError = `RemoveNotificationFromList: ${(err as Error).message}`;
    return tlv(tag, integer(127, 0x80));
  }
  const before = card.state.notifications.length;
  card.state.notifications = card.state.notifications.filter((n) => n.seqNumber !== seq);
  if (card.state.notifications.length === before) return tlv(tag, integer(1, 0x80));
  card.changed();
  return tlv(tag, integer(0, 0x80));
}
