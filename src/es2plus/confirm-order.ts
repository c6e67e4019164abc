/**
 * ES2+.ConfirmOrder (SGP.22 §5.3.2): give a reserved profile its MatchingID (generated when none is
 * given; none at all for the default SM-DP+ case), an optional confirmation code (only its SHA-256
 * is stored, checked later as hashCc, docs/protocol.md "Confirmation code") and release it now or later (releaseProfile).
 */
import type { Queryable } from '../db/db.js';
import { confirmationCodeDigest } from '../crypto/hashcc.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { checkTransition, transition, type LockedProfile } from '../orders/state-machine.js';
import { generateMatchingId } from '../orders/store.js';
import { MATCHING_ID_RE } from '../rsp/activation-code.js';
import { callDetail, checkEid, checkIccid, lockOwnedProfile, type Es2Context } from './auth.js';

export interface ConfirmOrderRequest {
  iccid: string;
  eid?: string;
  matchingId?: string;
  confirmationCode?: string;
  smdsAddress?: string;
  releaseFlag: boolean;
}

/** Verify a given MatchingID is 1-64 of 0-9, A-Z and '-' (SGP.22 §4.1), otherwise 8.2.6/2.1. Empty: none. */
export function checkMatchingIdFormat(matchingId: string | undefined): void {
  if (matchingId === undefined || matchingId === '') return;
  check(MATCHING_ID_RE.test(matchingId), SC.matchingIdInvalid, `MatchingID must be 1-64 of 0-9, A-Z and '-': ${matchingId}`);
}

/** Verify a given EID is the one the order is bound to, if any, otherwise 8.2.1/3.10; returns the order's EID. */
export function checkConfirmEid(p: LockedProfile, eid: string | undefined): string | null {
  if (eid === undefined) return p.eid;
  check(p.eid === null || p.eid === eid, SC.iccidEidMismatch, `profile ${p.iccid} is linked to another EID`);
  return eid;
}

/** Verify an EID is known when the order needs one (empty MatchingID or an SM-DS), otherwise 8.1.1/2.2. */
export function checkEidRequired(eid: string | null, req: ConfirmOrderRequest): void {
  if (req.matchingId === '') check(eid, SC.eidRequired, 'an empty matchingId (default SM-DP+ case) needs an EID');
  if (req.smdsAddress !== undefined) check(eid, SC.eidRequired, 'an SM-DS event registration needs an EID');
}

/** Verify no other profile uses the MatchingID, otherwise 8.2.6/3.3. */
export async function checkMatchingIdFree(q: Queryable, iccid: string, matchingId: string): Promise<void> {
  const rows = await q.query('SELECT 1 FROM profiles WHERE matching_id = $1 AND iccid <> $2', [matchingId, iccid]);
  check(rows.length === 0, SC.matchingIdInUse, `MatchingID ${matchingId} is already used by another order`);
}

/** Verify no SM-DS registration is asked for: this SM-DP+ has no SM-DS, so 8.9/5.1 (nothing changes). */
export function checkNoSmds(smdsAddress: string | undefined): void {
  if (smdsAddress === undefined) return;
  throw new FunctionFailed(SC.smdsInaccessible,
    `no SM-DS is configured on this SM-DP+, so no event can be registered at ${smdsAddress}; confirm without smdsAddress and hand out the activation code instead`);
}

async function unusedMatchingId(q: Queryable, iccid: string): Promise<string> {
  for (;;) {
    const m = generateMatchingId();
    const rows = await q.query('SELECT 1 FROM profiles WHERE matching_id = $1 AND iccid <> $2', [m, iccid]);
    if (!rows.length) return m;
  }
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

export async function confirmOrder(ctx: Es2Context, req: ConfirmOrderRequest) {
  const iccid = checkIccid(req.iccid);
  if (req.eid !== undefined) checkEid(req.eid);
  checkMatchingIdFormat(req.matchingId);

  try {
    return await ctx.db.tx(async (q) => {
      const p = await lockOwnedProfile(q, ctx.operator, iccid);
      checkTransition('confirmOrder', p.state);
      const eid = checkConfirmEid(p, req.eid);
      checkEidRequired(eid, req);
      if (req.matchingId) await checkMatchingIdFree(q, iccid, req.matchingId);
      checkNoSmds(req.smdsAddress);

      const matchingId = req.matchingId === undefined ? await unusedMatchingId(q, iccid) : req.matchingId || null;
      const cc = req.confirmationCode ? confirmationCodeDigest(req.confirmationCode) : null;
      await transition(q, p, {
        action: 'confirmOrder',
        to: req.releaseFlag ? 'Released' : 'Confirmed',
        set: { eid, matching_id: matchingId, cc_digest: cc, cc_attempts: 0 },
        detail: { ...callDetail(ctx), matchingId, eid, confirmationCode: cc !== null },
      });
      return { ...(eid ? { eid } : {}), matchingId: matchingId ?? '', smdpAddress: ctx.config.smdpAddress };
    });
  } catch (err) {
    // Two orders confirmed at once with the same MatchingID: the unique index decides.
    if (isUniqueViolation(err)) throw new FunctionFailed(SC.matchingIdInUse, `MatchingID ${req.matchingId ?? ''} is already used by another order`);
    throw err;
  }
}
