/**
 * ES2+.ReleaseProfile (SGP.22 §5.3.4): a Confirmed order becomes downloadable (Released). An order
 * confirmed with smdsAddress and releaseFlag false gets its SM-DS event now (docs/smds.md#confirmorder-with-smdsaddress):
 * checked first, RegisterEvent sent outside any transaction, then released with the same check;
 * SM-DS unreachable 8.9/5.1 or refusing 8.9/4.2, and the order stays Confirmed.
 */
import { checkTransition, transition } from '../orders/state-machine.js';
import { queueSmdsDeletion } from '../smds/deletions.js';
import { callDetail, checkIccid, lockOwnedProfile, type Es2Context } from './auth.js';
import { registerSmdsEvent } from './confirm-order.js';

export interface ReleaseProfileRequest {
  iccid: string;
}

export async function releaseProfile(ctx: Es2Context, req: ReleaseProfileRequest) {
  const iccid = checkIccid(req.iccid);
  let registered: { smdsAddress: string; eid: string; eventId: string } | undefined;
  const first = await ctx.db.tx(async (q) => {
    const p = await lockOwnedProfile(q, ctx.operator, iccid);
    checkTransition('releaseProfile', p.state);
    return p;
  });
  if (first.smds_address && first.eid && first.matching_id) {
    await registerSmdsEvent(ctx, first.smds_address, first.eid, first.matching_id);
    registered = { smdsAddress: first.smds_address, eid: first.eid, eventId: first.matching_id };
  }
  try {
    await ctx.db.tx(async (q) => {
      const p = await lockOwnedProfile(q, ctx.operator, iccid);
      await transition(q, p, { action: 'releaseProfile', to: 'Released', detail: { ...callDetail(ctx), ...(registered ? { smdsAddress: registered.smdsAddress } : {}) } });
    });
  } catch (err) {
    // Cancelled meanwhile, say: the event just registered goes again (src/smds/deletions.ts).
    if (registered) await queueSmdsDeletion(ctx.db, registered.smdsAddress, registered.eid, registered.eventId);
    throw err;
  }
  return {};
}
