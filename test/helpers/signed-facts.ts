/**
 * Support for tests of signed facts bound to their session (test/es9plus/signed-facts.test.ts): the
 * whole server state a notification or a retry could touch, and an eUICC's signed messages with one
 * fact changed and signed again with the eUICC's own key (what a genuine but misbehaving or
 * confused card would send, as opposed to a forgery that fails the signature check).
 */
import type { KeyObject } from 'node:crypto';
import type { Database } from '../../src/db/db.js';
import { signRaw } from '../../src/crypto/ecdsa.js';
import {
  decodePendingNotification,
  encodeNotificationMetadata,
  encodeOtherSignedNotification,
  encodeProfileInstallationResult,
  encodeProfileInstallationResultData,
  type FinalResult,
  type NotificationMetadata,
} from '../../src/rsp/notification.js';

const norm = (v: unknown): unknown => {
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  return v;
};

const rows = async (db: Database, sql: string) => (await db.query<Record<string, unknown>>(sql)).map((r) => norm(r) as Record<string, unknown>);

export interface FullState {
  /** Every column of every profile (state, device_state, eid, updated_at, …). */
  profiles: Record<string, unknown>[];
  events: Record<string, unknown>[];
  notifications: Record<string, unknown>[];
  outbox: Record<string, unknown>[];
  /** Every column of every RSP session (state, euicc_otpk, bound_profile_package, expiry, …). */
  sessions: Record<string, unknown>[];
  groupEvents: Record<string, unknown>[];
}

/** Everything a notification, a retry or their refusal could change. */
export async function fullState(db: Database): Promise<FullState> {
  return {
    profiles: await rows(db, 'SELECT * FROM profiles ORDER BY iccid'),
    events: await rows(db, 'SELECT e.id::text AS id, iccid, event, detail FROM profile_events e ORDER BY e.id'),
    notifications: await rows(db, 'SELECT n.id::text AS id, kind, verified, eid, iccid, transaction_id, seq_number, outcome, detail FROM notifications n ORDER BY n.id'),
    outbox: await rows(db, 'SELECT o.id::text AS id, operator_id, iccid, kind, payload FROM outbox o ORDER BY o.id'),
    sessions: await rows(db, 'SELECT * FROM rsp_sessions ORDER BY transaction_id'),
    groupEvents: await rows(db, 'SELECT g.id::text AS id, group_id, type, detail FROM group_events g ORDER BY g.id'),
  };
}

/** A ProfileInstallationResult (BF37) with some facts changed, signed again with `key`. */
export function resignPir(raw: Buffer, key: KeyObject, change: { transactionId?: Buffer; iccid?: Buffer | null; finalResult?: FinalResult }): Buffer {
  const n = decodePendingNotification(raw);
  if (!('pir' in n)) throw new Error('not a ProfileInstallationResult');
  const d = n.pir.data;
  const { raw: _raw, ...meta } = d.notificationMetadata;
  const notificationMetadata: NotificationMetadata = { ...meta };
  if (change.iccid === null) delete notificationMetadata.iccid;
  else if (change.iccid) notificationMetadata.iccid = change.iccid;
  const data = encodeProfileInstallationResultData({
    transactionId: change.transactionId ?? d.transactionId,
    notificationMetadata,
    ...(d.smdpOid !== undefined ? { smdpOid: d.smdpOid } : {}),
    finalResult: change.finalResult ?? d.finalResult,
  });
  return encodeProfileInstallationResult({ data, signature: signRaw(key, data) });
}

/** An OtherSignedNotification (enable/disable/delete) with some metadata changed, signed again with `key`. */
export function resignOther(raw: Buffer, key: KeyObject, change: Partial<Pick<NotificationMetadata, 'iccid' | 'seqNumber' | 'operation'>>): Buffer {
  const n = decodePendingNotification(raw);
  if (!('other' in n)) throw new Error('not an OtherSignedNotification');
  const { raw: _raw, ...meta } = n.other.tbsOtherNotification;
  const tbs = encodeNotificationMetadata({ ...meta, ...change });
  return encodeOtherSignedNotification({ tbsOtherNotification: tbs, signature: signRaw(key, tbs), euiccCertificate: n.other.euiccCertificate, eumCertificate: n.other.eumCertificate });
}

/** The outbox payloads of one ICCID, in order. */
export async function callbacksOf(db: Database, iccid: string) {
  const r = await db.query<{ payload: Record<string, any> | string }>('SELECT payload FROM outbox WHERE iccid = $1 ORDER BY id', [iccid]);
  return r.map((x) => (typeof x.payload === 'string' ? JSON.parse(x.payload) : x.payload) as Record<string, any>);
}
