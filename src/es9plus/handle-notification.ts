/**
 * ES9+.HandleNotification (SGP.22 §5.6.4): always 204. Install results are verified with the
 * session's eUICC key and must be about that session's download (its ICCID, its order still
 * Downloaded); enable/disable/delete notifications are verified with the certificates they carry
 * and must come from the eUICC the profile is installed on. Only such notifications change a
 * profile, and only when newer (by seqNumber) than those already applied to it; every one is
 * recorded, refused ones with the reason as outcome ('refused: …', 'no-installed-profile', …).
 */
import { verifyRaw } from '../crypto/ecdsa.js';
import type { Queryable } from '../db/db.js';
import { FunctionFailed } from '../errors.js';
import { applyChange, ChangedMeanwhile, profileColumns, transition, type ProfileContext, type SqlPart } from '../orders/state-machine.js';
import type { ProfileRow } from '../orders/store.js';
import { iccidFromEf } from '../rsp/identifiers.js';
import { decodePendingNotification, NOTIFICATION_OPERATIONS as OPERATIONS, type OtherSignedNotification, type ProfileInstallationResult } from '../rsp/notification.js';
import { KEY_LOOKUPS, type Es9Deps } from './context.js';
import { sessionEuiccCertificate, verifyEuiccChain } from './certificates.js';
import { b64 } from './input.js';
import { END_SESSION, FAULTS_PENDING, canSessionStep, optimistically, readSessionWithProfile, sessionGuard, tidHex, type SessionRow } from './sessions.js';
import { checkFaultsHandled } from './faults.js';

export interface HandleNotificationRequest {
  pendingNotification: string;
}

const DEVICE_STATE = { enable: 'Enabled', disable: 'Disabled', delete: 'Deleted' } as const;

interface Recorded {
  kind: string;
  verified: boolean;
  eid?: string | null;
  iccid?: string | null;
  transactionId?: string | null;
  seqNumber?: number | null;
  outcome?: string;
  detail?: Record<string, unknown>;
}

const RECORD_SQL = `INSERT INTO notifications (kind, verified, eid, iccid, transaction_id, seq_number, outcome, detail, raw)
     VALUES ($1::text, $2::boolean, $3::text, $4::text, $5::text, $6::integer, $7::text, $8::jsonb, $9::bytea) RETURNING 1`;

/** The same row, written only with the change (`t`) of the statement it is a part of. */
const RECORD_WITH_CHANGE_SQL = `INSERT INTO notifications (kind, verified, eid, iccid, transaction_id, seq_number, outcome, detail, raw)
     SELECT $1::text, $2::boolean, $3::text, $4::text, $5::text, $6::integer, $7::text, $8::jsonb, $9::bytea FROM t RETURNING 1`;

/** The notification's row, as a part of the statement that applies it (or on its own). */
function recordPart(raw: Buffer, r: Recorded, withChange = false): SqlPart {
  return {
    sql: withChange ? RECORD_WITH_CHANGE_SQL : RECORD_SQL,
    params: [r.kind, r.verified, r.eid ?? null, r.iccid ?? null, r.transactionId ?? null, r.seqNumber ?? null, r.outcome ?? null,
      r.detail ? JSON.stringify(r.detail) : null, raw],
  };
}

async function record(q: Queryable, raw: Buffer, r: Recorded): Promise<void> {
  const p = recordPart(raw, r);
  await q.query(p.sql, p.params);
}

/**
 * Why a PIR whose signature verifies must still not change anything, or null when it may. A PIR is
 * a signed statement about one RSP session: the session its transactionId selects (only its eUICC's
 * key verified the signature), and the profile that session downloaded. So:
 * - the ICCID it names (notificationMetadata 5A) must be the session's: an eUICC's PIR for session B
 *   naming the profile of its session A, or of anyone else's, is refused (iccid-mismatch). A
 *   successResult must name it (iccid-missing); an errorResult may not, as a load that failed
 *   before StoreMetadata never learnt the ICCID.
 * - the session must still be the profile's download in progress: the profile Downloaded, for the
 *   session's EID. A PIR of an older session of the same order arriving after another session's
 *   PIR (or after the order moved on) is refused (transaction-mismatch).
 * A transactionId selecting another eUICC's session never gets here: that eUICC's certificate does
 * not verify the signature (bad-signature), and an unknown or unbound one is unknown-transaction.
 */
function pirRefusal(session: SessionRow, profile: ProfileRow | undefined, named: string | null | undefined, success: boolean): string | null {
  if (named === undefined) {
    if (success) return 'refused: iccid-missing';
  } else if (named !== session.iccid) {
    return 'refused: iccid-mismatch';
  }
  if (!profile || profile.state !== 'Downloaded' || profile.eid !== session.eid) return 'refused: transaction-mismatch';
  return null;
}

async function handleInstallResult(deps: Es9Deps, raw: Buffer, pir: ProfileInstallationResult): Promise<void> {
  const tid = tidHex(pir.data.transactionId);
  const meta = pir.data.notificationMetadata;
  // undefined: the PIR names no ICCID; null: it names one that is not a valid EF.ICCID.
  const named = meta.iccid ? safe(() => iccidFromEf(meta.iccid!)) : undefined;
  const q = deps.db;
  await optimistically(async () => {
    // The session's previous step on this process left a snapshot: no read (src/es9plus/snapshots.ts).
    const snapshot = deps.snapshots?.take(tid);
    const read = snapshot ?? await readSessionWithProfile(deps.db, tid);
    // What is recorded as refused is decided on a fresh read only: on a snapshot, read and decide again.
    const refused = (r: Recorded) => (snapshot ? Promise.reject(new ChangedMeanwhile('refused on a snapshot')) : record(q, raw, r));
    if (read) checkFaultsHandled(deps, read);
    const session = read?.session;
    const base = { kind: 'install', transactionId: tid, seqNumber: meta.seqNumber, iccid: named ?? null };
    if (!session || !canSessionStep(session, 'installResult') || !session.euicc_certificate) {
      return refused({ ...base, verified: false, outcome: 'unknown-transaction' });
    }
    const key = sessionEuiccCertificate(session.euicc_certificate).publicKey;
    if (!verifyRaw(key, pir.data.raw!, pir.signature)) {
      return refused({ ...base, verified: false, eid: session.eid, iccid: named ?? session.iccid, outcome: 'bad-signature' });
    }
    const fr = pir.data.finalResult;
    const success = 'success' in fr;
    const detail = success ? { aid: fr.success.aid.toString('hex').toUpperCase() } : { bppCommandId: fr.error.bppCommandId, errorReason: fr.error.errorReason };
    const profile = read!.profile;
    const refusal = pirRefusal(session, profile, named, success);
    if (refusal) {
      // Verified (the session's eUICC signed it) but not about this session's download: logged
      // only. The session stays as it was, so the genuine PIR can still complete it.
      return refused({
        ...base, verified: true, eid: session.eid, iccid: named ?? session.iccid, outcome: refusal,
        detail: { ...detail, sessionIccid: session.iccid, profileState: profile?.state ?? null },
      });
    }
    // One statement: the profile (state, history, operator callback), the notification, the end of the session.
    const facts = { eid: session.eid, transactionId: tid, notification: raw };
    await applyChange(deps.db, profile!, success
      ? { action: 'installed', to: 'Installed', set: { device_state: 'Disabled' }, detail: { transactionId: tid, eid: session.eid, ...detail }, facts }
      : { action: 'installFailed', to: 'Error', set: { device_state: null }, detail: { transactionId: tid, eid: session.eid, ...detail },
          facts: { ...facts, message: `bppCommandId ${fr.error.bppCommandId} errorReason ${fr.error.errorReason}` } }, [
      recordPart(raw, { ...base, verified: true, eid: session.eid, iccid: session.iccid, outcome: success ? 'success' : 'error', detail }, true),
      { sql: `${END_SESSION} WHERE transaction_id = $1 AND EXISTS (SELECT 1 FROM t) RETURNING 1`, params: [tid] },
    ], sessionGuard(tid, 'bound'), { snapshot: !!snapshot });
  });
}

/**
 * The one read of another notification: the profile installed on this eUICC (locked), with the
 * lowest seqNumber at or above this one already applied to it from this eUICC, the listeners' columns and pending faults.
 * A profile it deleted stays its (Unavailable, Deleted), so a late copy of a notification is still
 * told apart from a stranger's.
 */
async function readInstalledProfile(q: Queryable, iccid: string, eid: string, seqNumber: number) {
  const rows = await q.query<ProfileContext & { applied_seq: number | null; faults_pending: boolean }>(
    `SELECT p.*${profileColumns()},
            (SELECT min(n.seq_number) FROM notifications n
              WHERE n.iccid = p.iccid AND n.eid = p.eid AND n.verified AND n.outcome IN ('success', 'verified')
                AND n.seq_number >= $3) AS applied_seq,
            ${FAULTS_PENDING}
       FROM profiles p
      WHERE p.iccid = $1 AND p.eid = $2 AND (p.state = 'Installed' OR (p.state = 'Unavailable' AND p.device_state = 'Deleted'))
        FOR UPDATE OF p`,
    [iccid, eid, seqNumber],
  );
  return rows[0];
}

/**
 * A verified notification from the eUICC the profile is installed on, newer than those already
 * applied: enable/disable set device_state; delete ends the profile (Installed → Unavailable through
 * the state machine, device_state 'Deleted') and tells the operator (PROFILE_DELETED, through the
 * state machine's listeners). The notification row is written in the same statement.
 */
async function applyOtherNotification(deps: Es9Deps, q: Queryable, raw: Buffer, kind: keyof typeof DEVICE_STATE, iccid: string, eid: string, seqNumber: number, rec: Recorded): Promise<void> {
  const p = await readInstalledProfile(q, iccid, eid, seqNumber);
  if (p) checkFaultsHandled(deps, p);
  const outcome = (() => {
    if (!p) return 'no-installed-profile';
    // An eUICC numbers its notifications in increasing order: one no newer than a notification
    // already applied to this profile (an LPA's retry or replay) is logged but must not undo a
    // later enable/disable/delete.
    if (p.applied_seq !== null) return p.applied_seq === seqNumber ? 'duplicate' : 'stale';
    if (p.state !== 'Installed') return 'no-installed-profile'; // deleted: nothing newer can concern it
    return 'verified';
  })();
  const part = recordPart(raw, { ...rec, outcome });
  if (outcome !== 'verified') return void (await q.query(part.sql, part.params));
  await transition(q, p!, kind === 'delete'
    ? { action: 'deleted', to: 'Unavailable', set: { device_state: 'Deleted' }, detail: { eid, seqNumber },
        facts: { eid, seqNumber, notification: raw, message: `profile deleted on the eUICC (seqNumber ${seqNumber})` } }
    : { action: 'deviceStateChanged', to: 'Installed', set: { device_state: DEVICE_STATE[kind] }, detail: { eid, seqNumber }, facts: { eid, seqNumber } }, [part]);
}

async function handleOtherNotification(deps: Es9Deps, raw: Buffer, n: OtherSignedNotification): Promise<void> {
  const meta = n.tbsOtherNotification;
  const kind = OPERATIONS[meta.operation] ?? `operation-${meta.operation}`;
  const iccid = meta.iccid ? safe(() => iccidFromEf(meta.iccid!)) : null;
  let eid: string | null = null;
  let outcome = 'verified';
  let verified = false;
  try {
    const chain = verifyEuiccChain(deps.pki, n.eumCertificate, n.euiccCertificate);
    eid = chain.eid;
    verified = verifyRaw(chain.euicc.publicKey, meta.raw!, n.signature);
    if (!verified) outcome = 'bad-signature';
  } catch (err) {
    if (!(err instanceof FunctionFailed)) throw err;
    outcome = `bad-certificate: ${err.message}`;
  }
  const rec: Recorded = { kind, verified, eid, iccid, seqNumber: meta.seqNumber, outcome };
  if (verified && iccid && eid && kind in DEVICE_STATE) {
    await deps.db.tx((q) => applyOtherNotification(deps, q, raw, kind as keyof typeof DEVICE_STATE, iccid, eid!, meta.seqNumber, rec), KEY_LOOKUPS);
  } else {
    await record(deps.db, raw, rec);
  }
}

function safe<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch {
    return null;
  }
}

export async function handleNotification(deps: Es9Deps, req: HandleNotificationRequest): Promise<void> {
  let raw: Buffer;
  try {
    raw = b64(req.pendingNotification, 'pendingNotification');
  } catch {
    // Recorded like any other notification, with the text as received in place of the bytes.
    deps.log.warn('handleNotification: pendingNotification is not base64');
    await record(deps.db, Buffer.from(req.pendingNotification, 'utf8'), { kind: 'unknown', verified: false, outcome: 'malformed: not base64' });
    return;
  }
  let n: ReturnType<typeof decodePendingNotification>;
  try {
    n = decodePendingNotification(raw);
  } catch (err) {
    deps.log.warn({ err: (err as Error).message }, 'handleNotification: undecodable notification');
    await record(deps.db, raw, { kind: 'unknown', verified: false, outcome: `malformed: ${(err as Error).message}` });
    return;
  }
  if ('pir' in n) await handleInstallResult(deps, raw, n.pir);
  else await handleOtherNotification(deps, raw, n.other);
}
