/** ES9+.CancelSession (SGP.22 §5.6.5): verify the eUICC's signed cancellation, end the session, keep the order for a retry. */
import { verifyRaw } from '../crypto/ecdsa.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { event } from '../orders/store.js';
import { enqueueProgress, SESSION_CANCELLED } from '../es2plus/callbacks.js';
import { CANCEL_REASON, decodeCancelSessionResponse } from '../rsp/cancel.js';
import type { Es9Deps } from './context.js';
import { checkSignedTransactionId } from './authenticate-client.js';
import { sessionEuiccCertificate } from './certificates.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { endSession, lockSession } from './sessions.js';

export interface CancelSessionRequest {
  transactionId: string;
  cancelSessionResponse: string;
}


export async function cancelSession(deps: Es9Deps, req: CancelSessionRequest): Promise<void> {
  const tid = transactionIdOf(req.transactionId);
  const csr = decodeField('cancelSessionResponse', () => decodeCancelSessionResponse(b64(req.cancelSessionResponse, 'cancelSessionResponse')));
  await deps.db.tx(async (q) => {
    const session = await lockSession(q, tid.hex);
    if (!session) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid.hex}`);
    if ('error' in csr) {
      // An unsigned "no such session" from the eUICC may only end a session that holds no eUICC
      // yet; an authenticated session ends by a signed cancellation, an install result or expiry.
      check(!session.euicc_certificate, SC.euiccVerificationFailed, 'an authenticated session needs a signed cancellation');
      await endSession(q, tid.hex);
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
    if (session.iccid) {
      // A cancelled download leaves the order Released so the user can try again.
      await q.query(`UPDATE profiles SET state = 'Released', updated_at = now() WHERE iccid = $1 AND state = 'Downloaded'`, [session.iccid]);
      await event(q, session.iccid, 'session-cancelled', { transactionId: tid.hex, reason, eid: session.eid });
      await enqueueProgress(q, { iccid: session.iccid, ...SESSION_CANCELLED, message: `session cancelled: ${reason}`, eid: session.eid });
    }
    await endSession(q, tid.hex);
  });
}
