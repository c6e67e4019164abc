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
import { lockProfile, transition, type LockedProfile } from '../orders/state-machine.js';
import { event, type ProfileRow } from '../orders/store.js';
import { enqueueProgress, INSTALL_FAILED, PROFILE_DELETED } from '../es2plus/callbacks.js';
import { familyProfileEvent } from '../family/events.js';
import { iccidFromEf } from '../rsp/identifiers.js';
import { decodePendingNotification, type OtherSignedNotification, type ProfileInstallationResult } from '../rsp/notification.js';
import type { Es9Deps } from './context.js';
import { sessionEuiccCertificate, verifyEuiccChain } from './certificates.js';
import { b64 } from './input.js';
import { endSession, lockSession, tidHex, type SessionRow } from './sessions.js';

export interface HandleNotificationRequest {
  pendingNotification: string;
}

const OPERATIONS = ['install', 'enable', 'disable', 'delete'] as const;
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

async function record(q: Queryable, raw: Buffer, r: Recorded): Promise<void> {
  await q.query(
    `INSERT INTO notifications (kind, verified, eid, iccid, transaction_id, seq_number, outcome, detail, raw)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [r.kind, r.verified, r.eid ?? null, r.iccid ?? null, r.transactionId ?? null, r.seqNumber ?? null, r.outcome ?? null,
      r.detail ? JSON.stringify(r.detail) : null, raw],
  );
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
  await deps.db.tx(async (q) => {
    const session = await lockSession(q, tid);
    const base = { kind: 'install', transactionId: tid, seqNumber: meta.seqNumber, iccid: named ?? null };
    if (!session || session.state !== 'bound' || !session.euicc_certificate) {
      return record(q, raw, { ...base, verified: false, outcome: 'unknown-transaction' });
    }
    const key = sessionEuiccCertificate(session.euicc_certificate).publicKey;
    if (!verifyRaw(key, pir.data.raw!, pir.signature)) {
      return record(q, raw, { ...base, verified: false, eid: session.eid, iccid: named ?? session.iccid, outcome: 'bad-signature' });
    }
    const fr = pir.data.finalResult;
    const success = 'success' in fr;
    const detail = success ? { aid: fr.success.aid.toString('hex').toUpperCase() } : { bppCommandId: fr.error.bppCommandId, errorReason: fr.error.errorReason };
    const profile = session.iccid ? await lockProfile(q, session.iccid) : undefined;
    const refusal = pirRefusal(session, profile, named, success);
    if (refusal) {
      // Verified (the session's eUICC signed it) but not about this session's download: logged
      // only. The session stays as it was, so the genuine PIR can still complete it.
      return record(q, raw, {
        ...base, verified: true, eid: session.eid, iccid: named ?? session.iccid, outcome: refusal,
        detail: { ...detail, sessionIccid: session.iccid, profileState: profile?.state ?? null },
      });
    }
    await transition(q, profile!, success
      ? { action: 'installed', to: 'Installed', set: { device_state: 'Disabled' }, detail: { transactionId: tid, eid: session.eid, ...detail } }
      : { action: 'installFailed', to: 'Error', set: { device_state: null }, detail: { transactionId: tid, eid: session.eid, ...detail } });
    await enqueueProgress(q, success
      ? { iccid: session.iccid!, point: 4, status: 'Executed-Success', eid: session.eid, resultData: raw }
      : { iccid: session.iccid!, point: 4, status: 'Failed', statusCode: INSTALL_FAILED, message: `bppCommandId ${detail.bppCommandId} errorReason ${detail.errorReason}`, eid: session.eid, resultData: raw });
    await record(q, raw, { ...base, verified: true, eid: session.eid, iccid: session.iccid, outcome: success ? 'success' : 'error', detail });
    if (success) await familyProfileEvent(q, session.iccid!, 'installed');
    await endSession(q, tid);
  });
}

/**
 * A verified notification from the eUICC the profile is installed on, newer than those already
 * applied: enable/disable set device_state; delete ends the profile (Installed → Unavailable through
 * the state machine, device_state 'Deleted') and tells the operator (PROFILE_DELETED). Returns the
 * outcome to record.
 */
async function applyOtherNotification(q: Queryable, raw: Buffer, kind: keyof typeof DEVICE_STATE, iccid: string, eid: string, seqNumber: number): Promise<string> {
  // Only the eUICC the profile was installed on can report on it; a profile it deleted stays its
  // (Unavailable, Deleted) so a late copy of a notification is still told apart from a stranger's.
  const p = (await q.query<LockedProfile>(
    `SELECT * FROM profiles WHERE iccid = $1 AND eid = $2 AND (state = 'Installed' OR (state = 'Unavailable' AND device_state = 'Deleted')) FOR UPDATE`,
    [iccid, eid],
  ))[0];
  if (!p) return 'no-installed-profile';
  // An eUICC numbers its notifications in increasing order: one no newer than a notification
  // already applied to this profile (an LPA's retry or replay) is logged but must not undo a
  // later enable/disable/delete.
  const applied = await q.query<{ seq_number: number }>(
    `SELECT seq_number FROM notifications WHERE iccid = $1 AND eid = $2 AND verified AND outcome IN ('success', 'verified')
       AND seq_number >= $3 ORDER BY seq_number LIMIT 1`,
    [iccid, eid, seqNumber],
  );
  if (applied.length) return applied[0]!.seq_number === seqNumber ? 'duplicate' : 'stale';
  if (p.state !== 'Installed') return 'no-installed-profile'; // deleted: nothing newer can concern it
  if (kind === 'delete') {
    await transition(q, p, { action: 'deleted', to: 'Unavailable', set: { device_state: 'Deleted' }, detail: { eid, seqNumber } });
    await enqueueProgress(q, { iccid, ...PROFILE_DELETED, message: `profile deleted on the eUICC (seqNumber ${seqNumber})`, eid, resultData: raw });
    await familyProfileEvent(q, iccid, 'deleted');
    return 'verified';
  }
  await q.query(`UPDATE profiles SET device_state = $2, updated_at = now() WHERE iccid = $1`, [iccid, DEVICE_STATE[kind]]);
  await event(q, iccid, `${kind}d`, { eid, seqNumber });
  await familyProfileEvent(q, iccid, kind === 'enable' ? 'enabled' : 'disabled');
  return 'verified';
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
  await deps.db.tx(async (q) => {
    if (verified && iccid && eid && kind in DEVICE_STATE) {
      outcome = await applyOtherNotification(q, raw, kind as keyof typeof DEVICE_STATE, iccid, eid, meta.seqNumber);
    }
    await record(q, raw, { kind, verified, eid, iccid, seqNumber: meta.seqNumber, outcome });
  });
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
