/** ES9+.CancelSession (SGP.22 §5.6.5): verify the eUICC's signed cancellation, end the session, keep the order for a retry. */
import { verifyRaw } from '../crypto/ecdsa.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { canTransition, transition, type SqlPart } from '../orders/state-machine.js';
import { CANCEL_REASON, decodeCancelSessionResponse } from '../rsp/cancel.js';
import { KEY_LOOKUPS, type Es9Deps } from './context.js';
import { checkSignedTransactionId } from './authenticate-client.js';
import { sessionEuiccCertificate } from './certificates.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { lockSessionWithProfile } from './sessions.js';
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
  await deps.db.tx(async (q) => {
    const read = await lockSessionWithProfile(q, tid.hex);
    if (!read) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid.hex}`);
    checkFaultsHandled(deps, read);
    const session = read.session;
    const end: SqlPart = { sql: 'DELETE FROM rsp_sessions WHERE transaction_id = $1 RETURNING 1', params: [tid.hex] };
    if ('error' in csr) {
      // An unsigned "no such session" from the eUICC may only end a session that holds no eUICC
      // yet; an authenticated session ends by a signed cancellation, an install result or expiry.
      check(!session.euicc_certificate, SC.euiccVerificationFailed, 'an authenticated session needs a signed cancellation');
      await q.query(end.sql, end.params);
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
    await q.query(end.sql, end.params);
  }, KEY_LOOKUPS);
}
