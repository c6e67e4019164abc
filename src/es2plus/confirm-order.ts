/**
 * ES2+.ConfirmOrder (SGP.22 §5.3.2): give a reserved profile its MatchingID (generated when none is
 * given; none at all for the default SM-DP+ case), an optional confirmation code (only its SHA-256
 * is stored, checked later as hashCc, docs/protocol.md "Confirmation code") and release it now or later (releaseProfile).
 * With smdsAddress, the SM-DS event is registered when the order is released (docs/smds.md#confirmorder-with-smdsaddress).
 */
import type { Queryable } from '../db/db.js';
import { confirmationCodeDigest } from '../crypto/hashcc.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { checkTransition, transition, type LockedProfile } from '../orders/state-machine.js';
import { generateMatchingId } from '../orders/store.js';
import { MATCHING_ID_RE } from '../rsp/activation-code.js';
import { queueSmdsDeletion } from '../smds/deletions.js';
import { es12CallerFor, SMDS_ERROR } from '../smds/es12-client.js';
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

/** Verify an SM-DS event gets a MatchingID to be its EventID (not the empty one of the default SM-DP+ case), otherwise 8.2.6/2.1. */
export function checkSmdsMatchingId(req: ConfirmOrderRequest): void {
  if (req.smdsAddress === undefined) return;
  check(req.matchingId !== '', SC.matchingIdInvalid, 'an SM-DS event needs a MatchingID (its EventID): give one or leave matchingId out');
}

/** Verify the SM-DS address is host[:port], otherwise 8.9.1/2.1 (SM-DS address invalid). */
export function checkSmdsAddress(smdsAddress: string | undefined): void {
  if (smdsAddress === undefined) return;
  check(SMDS_ADDRESS_RE.test(smdsAddress) && smdsAddress.length <= 255, SMDS_ADDRESS_INVALID, `smdsAddress must be host[:port]: ${smdsAddress}`);
}

const SMDS_ADDRESS_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*(?::\d{1,5})?$/;
const SMDS_ADDRESS_INVALID = { subjectCode: '8.9.1', reasonCode: '2.1', message: 'Invalid SM-DS address' };

/**
 * ES12.RegisterEvent at the order's SM-DS (SGP.22 §3.1.2, §5.3.2, §5.3.4; docs/smds.md): at
 * confirmOrder with releaseFlag true, else at releaseProfile. Unreachable 8.9/5.1, refused 8.9/4.2
 * with the SM-DS's status in the message.
 */
export async function registerSmdsEvent(ctx: Es2Context, smdsAddress: string, eid: string, eventId: string): Promise<void> {
  const caller = es12CallerFor(ctx.config);
  if (!caller) throw new FunctionFailed(SC.smdsInaccessible, 'no ES12 client is configured on this SM-DP+');
  const r = await caller.registerEvent(smdsAddress, { eid, eventId });
  if (!r.ok) throw new FunctionFailed(SMDS_ERROR, `SM-DS ${smdsAddress} refused RegisterEvent: ${r.status.subjectCode}/${r.status.reasonCode} ${r.status.message}`);
}

async function unusedMatchingId(q: Queryable, iccid: string): Promise<string> {
  for (;;) {
    const m = generateMatchingId();
    const rows = await q.query('SELECT 1 FROM profiles WHERE matching_id = $1 AND iccid <> $2', [m, iccid]);
    if (!rows.length) return m;
  }
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

interface Confirmation {
  p: LockedProfile;
  eid: string | null;
  matchingId: string | null;
}

/** Every check of confirmOrder on the locked profile, and the EID and MatchingID it would get. */
async function prepare(q: Queryable, ctx: Es2Context, iccid: string, req: ConfirmOrderRequest, matchingId?: string | null): Promise<Confirmation> {
  const p = await lockOwnedProfile(q, ctx.operator, iccid);
  checkTransition('confirmOrder', p.state);
  const eid = checkConfirmEid(p, req.eid);
  checkEidRequired(eid, req);
  if (req.matchingId) await checkMatchingIdFree(q, iccid, req.matchingId);
  const m = matchingId !== undefined ? matchingId : req.matchingId === undefined ? await unusedMatchingId(q, iccid) : req.matchingId || null;
  if (matchingId !== undefined && m) await checkMatchingIdFree(q, iccid, m);
  return { p, eid, matchingId: m };
}

export async function confirmOrder(ctx: Es2Context, req: ConfirmOrderRequest) {
  const iccid = checkIccid(req.iccid);
  if (req.eid !== undefined) checkEid(req.eid);
  checkMatchingIdFormat(req.matchingId);
  checkSmdsMatchingId(req);
  checkSmdsAddress(req.smdsAddress);

  // With an SM-DS and releaseFlag: check first, register the event (an HTTP call, never inside a
  // transaction), then confirm with the same checks again; if that fails after all, the event is
  // deleted again. Without releaseFlag the order keeps the SM-DS address and releaseProfile
  // registers the event: an event is only there for a profile that can be downloaded.
  let registered: { eid: string; matchingId: string } | undefined;
  if (req.smdsAddress !== undefined && req.releaseFlag) {
    const first = await ctx.db.tx((q) => prepare(q, ctx, iccid, req));
    await registerSmdsEvent(ctx, req.smdsAddress, first.eid!, first.matchingId!);
    registered = { eid: first.eid!, matchingId: first.matchingId! };
  }

  try {
    return await ctx.db.tx(async (q) => {
      const { p, eid, matchingId } = await prepare(q, ctx, iccid, req, registered?.matchingId);
      if (registered) check(eid === registered.eid, SC.iccidEidMismatch, `profile ${p.iccid} was linked to another EID meanwhile`);
      const cc = req.confirmationCode ? confirmationCodeDigest(req.confirmationCode) : null;
      await transition(q, p, {
        action: 'confirmOrder',
        to: req.releaseFlag ? 'Released' : 'Confirmed',
        set: { eid, matching_id: matchingId, cc_digest: cc, cc_attempts: 0, ...(req.smdsAddress !== undefined ? { smds_address: req.smdsAddress } : {}) },
        detail: { ...callDetail(ctx), matchingId, eid, confirmationCode: cc !== null, ...(req.smdsAddress !== undefined ? { smdsAddress: req.smdsAddress } : {}) },
      });
      return { ...(eid ? { eid } : {}), matchingId: matchingId ?? '', smdpAddress: ctx.config.smdpAddress };
    });
  } catch (err) {
    if (registered) {
      // The event registered for an order that was not confirmed: src/smds/deletions.ts deletes it.
      await queueSmdsDeletion(ctx.db, req.smdsAddress!, registered.eid, registered.matchingId);
    }
    // Two orders confirmed at once with the same MatchingID: the unique index decides.
    if (isUniqueViolation(err)) throw new FunctionFailed(SC.matchingIdInUse, `MatchingID ${req.matchingId ?? ''} is already used by another order`);
    throw err;
  }
}
