/** ES2+.ReleaseProfile (SGP.22 §5.3.4): a Confirmed order becomes downloadable (Released). */
import { transition } from '../orders/state-machine.js';
import { callDetail, checkIccid, lockOwnedProfile, type Es2Context } from './auth.js';

export interface ReleaseProfileRequest {
  iccid: string;
}

export async function releaseProfile(ctx: Es2Context, req: ReleaseProfileRequest) {
  const iccid = checkIccid(req.iccid);
  await ctx.db.tx(async (q) => {
    const p = await lockOwnedProfile(q, ctx.operator, iccid);
    await transition(q, p, { action: 'releaseProfile', to: 'Released', detail: callDetail(ctx) });
  });
  return {};
}
