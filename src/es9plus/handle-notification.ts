/**
 * ES9+.HandleNotification (SGP.22 §5.6.4): always 204. Install results are verified with the
 * session's eUICC key; enable/disable/delete notifications with the certificates they carry.
 * Only verified notifications change a profile, and only when newer (by seqNumber) than those already
 * applied to it; every one is recorded.
 */
import { verifyRaw } from '../crypto/ecdsa.js';
import type { Queryable } from '../db/db.js';
import { FunctionFailed } from '../errors.js';
import { event } from '../orders/store.js';
import { enqueueProgress, INSTALL_FAILED } from '../es2plus/callbacks.js';
import { familyProfileEvent } from '../family/events.js';
import { iccidFromEf } from '../rsp/identifiers.js';
import { decodePendingNotification, type OtherSignedNotification, type ProfileInstallationResult } from '../rsp/notification.js';
import type { Es9Deps } from './context.js';
import { sessionEuiccCertificate, verifyEuiccChain } from './certificates.js';
import { b64 } from './input.js';
import { endSession, lockSession, tidHex } from './sessions.js';

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

async function handleInstallResult(deps: Es9Deps, raw: Buffer, pir: ProfileInstallationResult): Promise<void> {
  const tid = tidHex(pir.data.transactionId);
  const meta = pir.data.notificationMetadata;
  await deps.db.tx(async (q) => {
    const session = await lockSession(q, tid);
    const base = { kind: 'install', transactionId: tid, seqNumber: meta.seqNumber };
    if (!session || session.state !== 'bound' || !session.euicc_certificate) {
      return record(q, raw, { ...base, verified: false, outcome: 'unknown-transaction' });
    }
    const key = sessionEuiccCertificate(session.euicc_certificate).publicKey;
    if (!verifyRaw(key, pir.data.raw!, pir.signature)) {
      return record(q, raw, { ...base, verified: false, eid: session.eid, iccid: session.iccid, outcome: 'bad-signature' });
    }
    const fr = pir.data.finalResult;
    const success = 'success' in fr;
    const detail = success ? { aid: fr.success.aid.toString('hex').toUpperCase() } : { bppCommandId: fr.error.bppCommandId, errorReason: fr.error.errorReason };
    await q.query(
      `UPDATE profiles SET state = $2, device_state = $3, updated_at = now() WHERE iccid = $1 AND state = 'Downloaded'`,
      [session.iccid, success ? 'Installed' : 'Error', success ? 'Disabled' : null],
    );
    await event(q, session.iccid!, success ? 'installed' : 'install-failed', { transactionId: tid, eid: session.eid, ...detail });
    await enqueueProgress(q, success
      ? { iccid: session.iccid!, point: 4, status: 'Executed-Success', eid: session.eid, resultData: raw }
      : { iccid: session.iccid!, point: 4, status: 'Failed', statusCode: INSTALL_FAILED, message: `bppCommandId ${detail.bppCommandId} errorReason ${detail.errorReason}`, eid: session.eid, resultData: raw });
    await record(q, raw, { ...base, verified: true, eid: session.eid, iccid: session.iccid, outcome: success ? 'success' : 'error', detail });
    if (success) await familyProfileEvent(q, session.iccid!, 'installed');
    await endSession(q, tid);
  });
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
    if (verified && iccid && kind in DEVICE_STATE) {
      const state = DEVICE_STATE[kind as keyof typeof DEVICE_STATE];
      // Only the eUICC the profile was installed on can report on it.
      const rows = await q.query(`SELECT 1 FROM profiles WHERE iccid = $1 AND eid = $2 AND state = 'Installed' FOR UPDATE`, [iccid, eid]);
      if (!rows.length) outcome = 'no-installed-profile';
      else {
        // An eUICC numbers its notifications in increasing order: one no newer than a notification
        // already applied to this profile (an LPA's retry or replay) is logged but must not undo a
        // later enable/disable/delete.
        const applied = await q.query<{ seq_number: number }>(
          `SELECT seq_number FROM notifications WHERE iccid = $1 AND eid = $2 AND verified AND outcome IN ('success', 'verified')
             AND seq_number >= $3 ORDER BY seq_number LIMIT 1`,
          [iccid, eid, meta.seqNumber],
        );
        if (applied.length) outcome = applied[0]!.seq_number === meta.seqNumber ? 'duplicate' : 'stale';
        else {
          await q.query(`UPDATE profiles SET device_state = $2, updated_at = now() WHERE iccid = $1`, [iccid, state]);
          await event(q, iccid, kind === 'delete' ? 'deleted' : `${kind}d`, { eid, seqNumber: meta.seqNumber });
          await familyProfileEvent(q, iccid, kind === 'delete' ? 'deleted' : kind === 'enable' ? 'enabled' : 'disabled');
        }
      }
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
