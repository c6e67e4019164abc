/** ES2+.DownloadOrder (SGP.22 §5.3.1): reserve one of the operator's Available profiles, optionally linked to an EID. */
import type { Queryable } from '../db/db.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { OperatorRow } from '../operators/store.js';
import { transition, type LockedProfile } from '../orders/state-machine.js';
import { callDetail, checkEid, checkIccid, lockOwnedProfile, type Es2Context } from './auth.js';

export interface DownloadOrderRequest {
  eid?: string;
  iccid?: string;
  profileType?: string;
}

/** Verify the profile is Available, otherwise 8.2.1/3.3. */
export function checkProfileAvailable(p: LockedProfile): void {
  check(p.state === 'Available', SC.profileAlreadyUsed, `profile ${p.iccid} is ${p.state}, not Available`);
}

/** Verify a given profileType is the profile's, otherwise 8.2.5/3.8. */
export function checkProfileTypeMatches(p: LockedProfile, profileType: string | undefined): void {
  if (profileType === undefined) return;
  check(p.profile_type === profileType, SC.profileTypeMismatch, `profile ${p.iccid} is of type ${p.profile_type}, not ${profileType}`);
}

/** Verify the profile type exists, otherwise 8.2.5/3.9. */
export async function checkProfileTypeKnown(q: Queryable, profileType: string): Promise<void> {
  const rows = await q.query('SELECT 1 FROM profile_types WHERE name = $1', [profileType]);
  check(rows.length > 0, SC.profileTypeUnknown, `unknown profile type ${profileType}`);
}

/**
 * Lock one Available profile of this type owned by the operator. SKIP LOCKED: concurrent calls each
 * take a different row, never the same ICCID. None: 8.2.5/1.2 when the operator owns no profile of
 * the type at all, else 8.2.5/3.7.
 */
export async function pickAvailableProfile(q: Queryable, op: OperatorRow, profileType: string): Promise<LockedProfile> {
  const rows = await q.query<LockedProfile>(
    // `available` is state = 'Available', stored, for the pool's index (migration 018).
    `SELECT * FROM profiles WHERE operator_id = $1 AND profile_type = $2 AND available
      ORDER BY created_at, iccid LIMIT 1 FOR UPDATE SKIP LOCKED`,
    [op.id, profileType],
  );
  if (rows[0]) return rows[0];
  const owned = await q.query('SELECT 1 FROM profiles WHERE operator_id = $1 AND profile_type = $2 LIMIT 1', [op.id, profileType]);
  check(owned.length > 0, SC.profileTypeNotAllowed, `operator ${op.id} has no profiles of type ${profileType}`);
  throw new FunctionFailed(SC.profileTypeExhausted, `no Available profile of type ${profileType} left`);
}

/** The operator's limits as they apply to a new order. */
export function orderLimits(op: OperatorRow, now = Date.now()) {
  return {
    cc_max_attempts: op.cc_max_attempts,
    max_download_attempts: op.max_download_attempts,
    expires_at: op.order_ttl_seconds ? new Date(now + op.order_ttl_seconds * 1000) : null,
  };
}

export async function downloadOrder(ctx: Es2Context, req: DownloadOrderRequest) {
  const eid = req.eid !== undefined ? checkEid(req.eid) : undefined;
  const iccid = req.iccid !== undefined ? checkIccid(req.iccid) : undefined;
  if (iccid === undefined) check(req.profileType !== undefined, SC.profileTypeMissing);

  return ctx.db.tx(async (q) => {
    let p: LockedProfile;
    if (iccid !== undefined) {
      p = await lockOwnedProfile(q, ctx.operator, iccid);
      checkProfileAvailable(p);
      checkProfileTypeMatches(p, req.profileType);
    } else {
      await checkProfileTypeKnown(q, req.profileType!);
      p = await pickAvailableProfile(q, ctx.operator, req.profileType!);
    }
    const row = await transition(q, p, {
      action: 'downloadOrder',
      to: eid ? 'Linked' : 'Allocated',
      set: {
        eid: eid ?? null,
        matching_id: null,
        cc_digest: null,
        cc_attempts: 0,
        download_attempts: 0,
        device_state: null,
        ...orderLimits(ctx.operator),
      },
      detail: { ...callDetail(ctx), ...(eid ? { eid } : {}) },
    });
    return { iccid: row.iccid };
  });
}
