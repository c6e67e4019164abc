/**
 * ES2+.CancelOrder (SGP.22 §5.3.3): end a pending order. The profile becomes Available again (order
 * data cleared, ready for a new downloadOrder) or Unavailable for good; live RSP sessions of the
 * profile end with it.
 */
import { check, SC } from '../errors.js';
import { checkTransition, transition, type LockedProfile } from '../orders/state-machine.js';
import { callDetail, checkIccid, lockOwnedProfile, type Es2Context } from './auth.js';

export interface CancelOrderRequest {
  iccid: string;
  eid?: string;
  matchingId?: string;
  finalProfileStatusIndicator: 'Available' | 'Unavailable';
}

/** Verify a given EID is the order's, otherwise 8.1.1/3.10. */
export function checkCancelEid(p: LockedProfile, eid: string | undefined): void {
  if (eid === undefined) return;
  check(p.eid === eid, SC.eidMismatch, `profile ${p.iccid} is not ordered for EID ${eid}`);
}

/** Verify a given MatchingID is the order's, otherwise 8.2.6/3.10. */
export function checkCancelMatchingId(p: LockedProfile, matchingId: string | undefined): void {
  if (matchingId === undefined) return;
  check((p.matching_id ?? '') === matchingId.toUpperCase(), SC.matchingIdMismatch, `profile ${p.iccid} does not have MatchingID ${matchingId}`);
}

export async function cancelOrder(ctx: Es2Context, req: CancelOrderRequest) {
  const iccid = checkIccid(req.iccid);
  await ctx.db.tx(async (q) => {
    const p = await lockOwnedProfile(q, ctx.operator, iccid);
    checkCancelEid(p, req.eid);
    checkCancelMatchingId(p, req.matchingId);
    checkTransition('cancelOrder', p.state);
    const to = req.finalProfileStatusIndicator;
    await transition(q, p, {
      action: 'cancelOrder',
      to,
      // Available: a clean profile for the next order. Unavailable: the order data stays as a record
      // (an activation code of it is then refused as used, 8.2.1/3.3).
      set: to === 'Available'
        ? { eid: null, matching_id: null, cc_digest: null, cc_attempts: 0, download_attempts: 0, expires_at: null, device_state: null, smds_address: null }
        : {},
      detail: { ...callDetail(ctx), eid: p.eid, matchingId: p.matching_id },
    });
    await q.query('DELETE FROM rsp_sessions WHERE iccid = $1', [iccid]);
  });
  return {};
}
