/** ES9+.CancelSession (SGP.22 §5.6.5): verify the eUICC's signed cancellation, end the session, keep the order for a retry. */
import { verifyRaw } from '../crypto/ecdsa.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { Queryable } from '../db/db.js';
import { canTransition, ChangedMeanwhile, transition, type SqlPart } from '../orders/state-machine.js';
import { CANCEL_REASON, decodeCancelSessionResponse } from '../rsp/cancel.js';
import { KEY_LOOKUPS, type Es9Deps } from './context.js';
import { checkSignedTransactionId } from './authenticate-client.js';
import { sessionEuiccCertificate } from './certificates.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { END_SESSION, FAULTS_PENDING, canSessionStep, lockSessionWithProfile, openedSession, optimistically, type SessionRead, type SessionRow } from './sessions.js';
import { checkFaultsHandled } from './faults.js';

export interface CancelSessionRequest {
  transactionId: string;
  cancelSessionResponse: string;
}


export async function cancelSession(deps: Es9Deps, req: CancelSessionRequest): Promise<void> {
  const tid = transactionIdOf(req.transactionId);
  const csr = decodeField('cancelSessionResponse', () => decodeCancelSessionResponse(b64(req.cancelSessionResponse, 'cancelSessionResponse')));
  // The session's snapshot, if this process kept one, will not be needed (nor valid) again.
  deps.snapshots?.drop(tid.hex);
  await optimistically(() => deps.db.tx(async (q) => {
    const read = await lockSessionWithProfile(q, tid.hex) ?? await openedRead(deps, q, tid);
    if (!read || !canSessionStep(read.session, 'cancelSession')) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid.hex}`);
    checkFaultsHandled(deps, read);
    const session = read.session;
    // A session opened without a write (state 'initiated') ends by its first row, 'ended'.
    const end: SqlPart = session.state === 'initiated' ? endOpened(session) : { sql: `${END_SESSION} WHERE transaction_id = $1 RETURNING 1`, params: [tid.hex] };
    if ('error' in csr) {
      // An unsigned "no such session" from the eUICC may only end a session that holds no eUICC
      // yet; an authenticated session ends by a signed cancellation, an install result or expiry.
      check(!session.euicc_certificate, SC.euiccVerificationFailed, 'an authenticated session needs a signed cancellation');
      await endSession(q, end);
      return;
    }
    const { signed, signature } = csr.ok;
    checkSignedTransactionId(signed.transactionId, tid.hex);
    const dp = deps.pki.byCiSkiHex.get(session.ci_ski)!;
    // Before authenticateClient succeeded the server holds no eUICC key, and no order is touched.
    if (session.euicc_certificate) {
      check(verifyRaw(sessionEuiccCertificate(session.euicc_certificate).publicKey, signed.raw, signature), SC.euiccVerificationFailed, 'euiccCancelSessionSignature verification failed');
    }
    const ownOid = dp.auth.cert.sanRegisteredIds[0];
    check(signed.smdpOid === ownOid, SC.smdpOidMismatch, `smdpOid ${signed.smdpOid} is not ${ownOid}`);

    const reason = codeName(CANCEL_REASON, signed.reason);
    const p = read.profile;
    if (session.iccid && p && canTransition('sessionCancelled', p.state, 'Released')) {
      // A cancelled download leaves the order Released so the user can try again; one statement for
      // the order, its history, the operator's callback and the end of the session.
      await transition(q, p, {
        action: 'sessionCancelled', to: 'Released',
        detail: { transactionId: tid.hex, reason, eid: session.eid },
        facts: { eid: session.eid, message: `session cancelled: ${reason}` },
      }, [end]);
      return;
    }
    await endSession(q, end);
  }, KEY_LOOKUPS));
}

/** Writes the end of the session; none written (authenticateClient wrote the row meanwhile): read again. */
async function endSession(q: Queryable, end: SqlPart): Promise<void> {
  if (!(await q.query(end.sql, end.params)).length) throw new ChangedMeanwhile('session written meanwhile');
}

/**
 * A transactionId issued and not yet used (no session row): the session it opened, 'initiated'
 * (src/es9plus/transaction-ids.ts), with whether fault injections are pending; undefined when this
 * server did not issue it or it expired.
 */
async function openedRead(deps: Es9Deps, q: Queryable, tid: { hex: string; bytes: Buffer }): Promise<SessionRead | undefined> {
  const opened = await deps.tids.open(tid.bytes, deps.config.smdpAddress);
  const session = opened && openedSession(tid.hex, opened, deps.config.smdpAddress, deps.config.sessionTtlSeconds);
  if (!session) return undefined;
  const [row] = await q.query<{ faults_pending: boolean }>(`SELECT ${FAULTS_PENDING}`);
  return { session, faults_pending: row!.faults_pending };
}

/**
 * The end of a session that has no row yet: its row, 'ended', so the transactionId is refused from
 * now on. Written meanwhile by authenticateClient: the primary key refuses this one, and the
 * cancellation is tried again on that row.
 */
function endOpened(s: SessionRow): SqlPart {
  return {
    sql: `INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, created_at, expires_at)
          VALUES ($1, 'ended', $2, $3, $4, $5, $6) ON CONFLICT (transaction_id) DO NOTHING RETURNING 1`,
    params: [s.transaction_id, s.ci_ski, s.server_address, s.server_challenge, s.created_at, s.expires_at],
  };
}
