/**
 * The download order / profile state machine (notes §5.1). Every state change of a profile goes
 * through `transition()`: on a row the caller has locked (`lockProfile`, in its transaction), it
 * refuses an illegal change with 8.2.1/3.5 and changes nothing, else updates the row and records
 * the change in profile_events.
 *
 *   Available  -downloadOrder(no EID)-> Allocated | -downloadOrder(EID)-> Linked
 *   Allocated|Linked -confirmOrder(releaseFlag=false)-> Confirmed | (releaseFlag=true)-> Released
 *   Confirmed  -releaseProfile-> Released
 *   Released|Downloaded -bppDownloaded-> Downloaded -installed-> Installed | -installFailed-> Error
 *   Released|Downloaded -orderKilled (CC retry limit)-> Error
 *   Allocated|Linked|Confirmed|Released|Downloaded|Error -cancelOrder-> Available | Unavailable
 *   Installed -deleted (verified delete notification from the eUICC it is installed on)-> Unavailable
 *
 * Installed and Unavailable are final as far as ES2+ goes (an Unavailable ICCID is never reused).
 * A profile deleted on its eUICC goes to Unavailable (device_state 'Deleted'), not back to
 * Available: SGP.22 makes Unavailable the final state of a profile whose ICCID must not be used
 * again, and an ICCID that was on a device (with its Ki/OPc, now known to that device's history and
 * to the network) is not handed out a second time (notes §5.1).
 */
import type { Queryable } from '../db/db.js';
import { FunctionFailed, SC } from '../errors.js';
import { event, type ProfileRow, type ProfileState } from './store.js';

export type Action =
  | 'downloadOrder' | 'confirmOrder' | 'releaseProfile' | 'cancelOrder'
  | 'bppDownloaded' | 'installed' | 'installFailed' | 'orderKilled' | 'deleted';

export const TRANSITIONS: Readonly<Record<Action, { from: readonly ProfileState[]; to: readonly ProfileState[] }>> = {
  downloadOrder: { from: ['Available'], to: ['Allocated', 'Linked'] },
  confirmOrder: { from: ['Allocated', 'Linked'], to: ['Confirmed', 'Released'] },
  releaseProfile: { from: ['Confirmed'], to: ['Released'] },
  cancelOrder: { from: ['Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Error'], to: ['Available', 'Unavailable'] },
  bppDownloaded: { from: ['Released', 'Downloaded'], to: ['Downloaded'] },
  installed: { from: ['Downloaded'], to: ['Installed'] },
  installFailed: { from: ['Downloaded'], to: ['Error'] },
  orderKilled: { from: ['Released', 'Downloaded'], to: ['Error'] },
  deleted: { from: ['Installed'], to: ['Unavailable'] },
};

/** The event name recorded for each action (or per target state where one action has two). */
const EVENT: Record<Action, (to: ProfileState) => string> = {
  downloadOrder: (to) => (to === 'Linked' ? 'linked' : 'allocated'),
  confirmOrder: (to) => (to === 'Released' ? 'released' : 'confirmed'),
  releaseProfile: () => 'released',
  cancelOrder: (to) => (to === 'Available' ? 'cancelled' : 'cancelled-unavailable'),
  bppDownloaded: () => 'downloaded',
  installed: () => 'installed',
  installFailed: () => 'install-failed',
  orderKilled: () => 'order-killed',
  deleted: () => 'deleted',
};

export function canTransition(action: Action, from: ProfileState, to: ProfileState): boolean {
  const t = TRANSITIONS[action];
  return t.from.includes(from) && t.to.includes(to);
}

/** Verify `action` may move a profile from `from` (to `to` when given), otherwise 8.2.1/3.5. */
export function checkTransition(action: Action, from: ProfileState, to?: ProfileState): void {
  const t = TRANSITIONS[action];
  if (!t.from.includes(from)) throw new FunctionFailed(SC.invalidTransition, `${action} is not possible on a profile in state ${from}`);
  if (to !== undefined && !t.to.includes(to)) throw new FunctionFailed(SC.invalidTransition, `${action} cannot lead to state ${to}`);
}

export type LockedProfile = ProfileRow & { operator_id: string | null; smds_address: string | null };

/** The profile row, locked for the rest of the caller's transaction. */
export async function lockProfile(q: Queryable, iccid: string): Promise<LockedProfile | undefined> {
  return (await q.query<LockedProfile>('SELECT * FROM profiles WHERE iccid = $1 FOR UPDATE', [iccid]))[0];
}

/** Columns a transition may set besides state. */
export type TransitionColumns = Partial<Pick<LockedProfile,
  'eid' | 'matching_id' | 'cc_digest' | 'cc_attempts' | 'cc_max_attempts' | 'download_attempts' |
  'max_download_attempts' | 'expires_at' | 'device_state' | 'smds_address'>>;

const SETTABLE = new Set<string>(['eid', 'matching_id', 'cc_digest', 'cc_attempts', 'cc_max_attempts', 'download_attempts',
  'max_download_attempts', 'expires_at', 'device_state', 'smds_address']);

export interface TransitionRequest {
  action: Action;
  to: ProfileState;
  set?: TransitionColumns;
  /** Recorded with the event (functionCallIdentifier, operator, …). */
  detail?: Record<string, unknown>;
}

/**
 * Moves the locked profile `p` to `to` by `action` (8.2.1/3.5 and no change when illegal), sets the
 * given columns and records the event. The UPDATE is guarded by the state read under the lock, so
 * a caller that forgot the lock still cannot apply a transition twice.
 */
export async function transition(q: Queryable, p: Pick<ProfileRow, 'iccid' | 'state'>, r: TransitionRequest): Promise<LockedProfile> {
  checkTransition(r.action, p.state, r.to);
  const cols = Object.entries(r.set ?? {}).filter(([k, v]) => SETTABLE.has(k) && v !== undefined);
  const params: unknown[] = [p.iccid, p.state, r.to, ...cols.map(([, v]) => v)];
  const sets = cols.map(([k], i) => `${k} = $${i + 4}`);
  const rows = await q.query<LockedProfile>(
    `UPDATE profiles SET state = $3, ${[...sets, 'updated_at = now()'].join(', ')}
      WHERE iccid = $1 AND state = $2 RETURNING *`,
    params,
  );
  if (!rows[0]) throw new FunctionFailed(SC.invalidTransition, `profile ${p.iccid} is no longer ${p.state}`);
  await event(q, p.iccid, EVENT[r.action](r.to), { from: p.state, to: r.to, ...(r.detail ?? {}) });
  return rows[0];
}
