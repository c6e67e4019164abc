/**
 * The one state machine of a profile and its download order (docs/protocol.md#profile-states;
 * docs/state-machine.md).
 * Every change the server makes to a profile's state, and every protocol step that is recorded
 * against a profile without changing its state (authenticated, confirmation code refused, BPP
 * re-sent, enabled/disabled), is an action of TRANSITIONS and goes through `transition()`, inside
 * the caller's transaction, on a row the caller locked, or through `applyChange()`, one guarded
 * statement on a row read without a lock (the ES9+ download functions; docs/state-machine.md).
 *
 *   Available  -downloadOrder(no EID)-> Allocated | -downloadOrder(EID)-> Linked
 *   Available  -released (admin order)-> Released
 *   Allocated|Linked -confirmOrder(releaseFlag=false)-> Confirmed | (releaseFlag=true)-> Released
 *   Confirmed  -releaseProfile-> Released
 *   Released|Downloaded -authenticated-> (unchanged)      ES9+ authenticateClient
 *   Released|Downloaded -confirmationCodeRefused-> (unchanged) | -orderKilled (CC retry limit)-> Error
 *   Released|Downloaded -bppDownloaded-> Downloaded -bppResent-> Downloaded
 *   Released|Downloaded -sessionCancelled-> Released      ES9+ cancelSession: the user may try again
 *   Downloaded -installed-> Installed | -installFailed-> Error
 *   Installed  -deviceStateChanged (enable/disable notification)-> Installed
 *   Installed  -deleted (verified delete notification from the eUICC it is installed on)-> Unavailable
 *   Allocated|Linked|Confirmed|Released|Downloaded|Error -cancelOrder-> Available | Unavailable
 *
 * Installed and Unavailable are final as far as ES2+ goes (an Unavailable ICCID is never reused).
 * A profile deleted on its eUICC goes to Unavailable (device_state 'Deleted'), not back to
 * Available: SGP.22 makes Unavailable the final state of a profile whose ICCID must not be used
 * again, and an ICCID that was on a device (with its Ki/OPc, now known to that device's history and
 * to the network) is not handed out a second time (docs/protocol.md#profile-states).
 *
 * What follows from a change is not written here: modules register listeners (`onProfileChange`).
 * The history listener (profile_events) is this module's own; ES2+ adds the operator's progress
 * callback and family adds the group event. A listener may add columns to the row read under the
 * lock (so it learns, in the same round trip, whether it has anything to do) and SQL parts to the
 * one statement that writes the change.
 */
import type { Database, Queryable } from '../db/db.js';
import { FunctionFailed, SC } from '../errors.js';
import type { ProfileRow, ProfileState } from './store.js';

export type Action =
  | 'downloadOrder' | 'released' | 'confirmOrder' | 'releaseProfile' | 'cancelOrder'
  | 'authenticated' | 'confirmationCodeRefused' | 'orderKilled' | 'bppDownloaded' | 'bppResent' | 'sessionCancelled'
  | 'installed' | 'installFailed' | 'deviceStateChanged' | 'deleted';

export const TRANSITIONS: Readonly<Record<Action, { from: readonly ProfileState[]; to: readonly ProfileState[] }>> = {
  downloadOrder: { from: ['Available'], to: ['Allocated', 'Linked'] },
  released: { from: ['Available'], to: ['Released'] },
  confirmOrder: { from: ['Allocated', 'Linked'], to: ['Confirmed', 'Released'] },
  releaseProfile: { from: ['Confirmed'], to: ['Released'] },
  cancelOrder: { from: ['Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Error'], to: ['Available', 'Unavailable'] },
  authenticated: { from: ['Released', 'Downloaded'], to: ['Released', 'Downloaded'] },
  confirmationCodeRefused: { from: ['Released', 'Downloaded'], to: ['Released', 'Downloaded'] },
  orderKilled: { from: ['Released', 'Downloaded'], to: ['Error'] },
  bppDownloaded: { from: ['Released', 'Downloaded'], to: ['Downloaded'] },
  bppResent: { from: ['Downloaded'], to: ['Downloaded'] },
  sessionCancelled: { from: ['Released', 'Downloaded'], to: ['Released'] },
  installed: { from: ['Downloaded'], to: ['Installed'] },
  installFailed: { from: ['Downloaded'], to: ['Error'] },
  deviceStateChanged: { from: ['Installed'], to: ['Installed'] },
  deleted: { from: ['Installed'], to: ['Unavailable'] },
};

/** Actions that record a protocol step and leave the state where it is. */
const IN_PLACE = new Set<Action>(['authenticated', 'confirmationCodeRefused', 'bppResent', 'deviceStateChanged']);

/**
 * The names of the profile history events (`profile_events.event`, the `history` of GET
 * /admin/orders/:iccid): the one list of them. Producers (this module's EVENT table, `event()` and
 * `insertProfile` in store.ts, fault injection) take a `ProfileEventName`, and SQL that looks events
 * up by name builds its text from these constants (`profileEventSql`), so renaming one is a compile
 * error at each use, not a query that silently stops matching. The strings are what the database
 * holds: changing one changes the history API and no longer matches older rows.
 */
export const PROFILE_EVENT = {
  /** A profile was inserted (admin order, inventory import or generation); detail.source says which. */
  created: 'created',
  allocated: 'allocated',
  linked: 'linked',
  confirmed: 'confirmed',
  released: 'released',
  cancelled: 'cancelled',
  cancelledUnavailable: 'cancelled-unavailable',
  authenticated: 'authenticated',
  confirmationCodeRefused: 'confirmation-code-refused',
  confirmationCodeLimit: 'confirmation-code-limit',
  downloaded: 'downloaded',
  bppResent: 'bpp-resent',
  sessionCancelled: 'session-cancelled',
  installed: 'installed',
  installFailed: 'install-failed',
  enabled: 'enabled',
  disabled: 'disabled',
  deleted: 'deleted',
  /** A fault injection was set on the profile's functions, or fired (src/es9plus/faults.ts). */
  faultSet: 'fault-set',
  faultInjected: 'fault-injected',
} as const;

export type ProfileEventName = (typeof PROFILE_EVENT)[keyof typeof PROFILE_EVENT];

/** A profile event name as an SQL string literal, for statements that match events by name. */
export function profileEventSql(name: ProfileEventName): string {
  return `'${name.replace(/'/g, "''")}'`;
}

/** The history event recorded for each action (per target state, or per device state, where one action has several). */
const EVENT: Record<Action, (to: ProfileState, c: { device_state?: string | null }) => ProfileEventName> = {
  downloadOrder: (to) => (to === 'Linked' ? PROFILE_EVENT.linked : PROFILE_EVENT.allocated),
  released: () => PROFILE_EVENT.released,
  confirmOrder: (to) => (to === 'Released' ? PROFILE_EVENT.released : PROFILE_EVENT.confirmed),
  releaseProfile: () => PROFILE_EVENT.released,
  cancelOrder: (to) => (to === 'Available' ? PROFILE_EVENT.cancelled : PROFILE_EVENT.cancelledUnavailable),
  authenticated: () => PROFILE_EVENT.authenticated,
  confirmationCodeRefused: () => PROFILE_EVENT.confirmationCodeRefused,
  orderKilled: () => PROFILE_EVENT.confirmationCodeLimit,
  bppDownloaded: () => PROFILE_EVENT.downloaded,
  bppResent: () => PROFILE_EVENT.bppResent,
  sessionCancelled: () => PROFILE_EVENT.sessionCancelled,
  installed: () => PROFILE_EVENT.installed,
  installFailed: () => PROFILE_EVENT.installFailed,
  deviceStateChanged: (_to, c) => (c.device_state === 'Enabled' ? PROFILE_EVENT.enabled : PROFILE_EVENT.disabled),
  deleted: () => PROFILE_EVENT.deleted,
};

/** The history event `transition()` records for a change (the EVENT table). */
export function eventOf(c: Pick<ProfileChange, 'action' | 'to' | 'set' | 'row'>): ProfileEventName {
  return EVENT[c.action](c.to, { device_state: c.set?.device_state ?? c.row.device_state });
}

export function canTransition(action: Action, from: ProfileState, to: ProfileState): boolean {
  const t = TRANSITIONS[action];
  return t.from.includes(from) && t.to.includes(to) && (!IN_PLACE.has(action) || from === to);
}

/** Verify `action` may move a profile from `from` (to `to` when given), otherwise 8.2.1/3.5. */
export function checkTransition(action: Action, from: ProfileState, to?: ProfileState): void {
  const t = TRANSITIONS[action];
  if (!t.from.includes(from)) throw new FunctionFailed(SC.invalidTransition, `${action} is not possible on a profile in state ${from}`);
  if (to !== undefined && !canTransition(action, from, to)) throw new FunctionFailed(SC.invalidTransition, `${action} cannot lead from ${from} to ${to}`);
}

export type LockedProfile = ProfileRow & { operator_id: string | null; smds_address: string | null };

/** A locked profile row with the columns listeners added to the read (see `profileColumns`). */
export type ProfileContext = LockedProfile & Record<string, unknown>;

/** The profile row (with listener columns), locked for the rest of the caller's transaction. */
export async function lockProfile(q: Queryable, iccid: string): Promise<ProfileContext | undefined> {
  return (await q.query<ProfileContext>(`SELECT p.*${profileColumns()} FROM profiles p WHERE p.iccid = $1 FOR UPDATE`, [iccid]))[0];
}

/** Columns a transition may set besides state. */
export type TransitionColumns = Partial<Pick<LockedProfile,
  'eid' | 'matching_id' | 'cc_digest' | 'cc_attempts' | 'cc_max_attempts' | 'download_attempts' |
  'max_download_attempts' | 'expires_at' | 'device_state' | 'smds_address'>>;

const SETTABLE = new Set<string>(['eid', 'matching_id', 'cc_digest', 'cc_attempts', 'cc_max_attempts', 'download_attempts',
  'max_download_attempts', 'expires_at', 'device_state', 'smds_address']);

/**
 * The settable columns of a text domain (migration 015), whose values are sent as text: a parameter
 * of the domain's own type is read through the domain's input function, which sets up its check
 * anew for every value bound; assigned as text, the check is prepared with the statement.
 */
const TEXT_DOMAIN = new Set<string>(['eid', 'device_state']);

/** Protocol facts of a change that listeners report on (the operator callback, the family event). */
export interface ChangeFacts {
  eid?: string | null;
  transactionId?: string;
  /** Why a step failed, in words (a confirmation code refused, the eUICC's error). */
  message?: string;
  /** The signed notification as received (install result, delete notification). */
  notification?: Buffer;
  seqNumber?: number;
}

export interface TransitionRequest {
  action: Action;
  to: ProfileState;
  set?: TransitionColumns;
  /** Recorded with the history event (functionCallIdentifier, operator, …). */
  detail?: Record<string, unknown>;
  facts?: ChangeFacts;
}

/** A change as listeners see it: the row as it was read under the lock, and what happens to it. */
export interface ProfileChange extends TransitionRequest {
  iccid: string;
  from: ProfileState;
  row: ProfileContext;
}

/**
 * A part of the statement that writes a change: a data-modifying statement (with its own $1… and
 * explicit casts where a parameter has no column to take its type from) that may read `t`, the
 * updated profile row, so it is written only if the change is.
 */
export interface SqlPart {
  sql: string;
  params: unknown[];
}

export interface ProfileListener {
  /** Select-list expressions over the profile row `p`, each `… AS name` (read with the lock). */
  columns?: string[];
  /** Parts of the writing statement for a change (none when the listener has nothing to do). */
  parts?(c: ProfileChange): SqlPart[];
  /** Work that needs its own statements, after the change is written (keep it for rare cases). */
  after?(q: Queryable, c: ProfileChange): Promise<void>;
  /**
   * Whether `after` has anything to do for this change (read from the row's listener columns);
   * without it, a listener with `after` is assumed to. A change none of whose listeners has after
   * work is written by `applyChange` as one statement with no transaction around it.
   */
  wantsAfter?(c: ProfileChange): boolean;
}

const listeners: ProfileListener[] = [];
/** The listeners' columns as `[expression, name]`, worked out once after the last registration. */
let keptColumns: Array<[string, string]> | undefined;

/** Registers what follows from a profile change. Modules call it once, when they are loaded. */
export function onProfileChange(l: ProfileListener): void {
  listeners.push(l);
  keptColumns = undefined;
}

/** `, expr AS name, …` of every listener, for `SELECT p.*${profileColumns()} FROM profiles p …`. */
export function profileColumns(): string {
  return listeners.flatMap((l) => l.columns ?? []).map((c) => `, ${c}`).join('');
}

// The history of every change: the first listener, so events are recorded before anything else.
onProfileChange({
  parts: (c) => [{
    sql: `INSERT INTO profile_events (iccid, event, detail) SELECT t.iccid, $1::text, $2::jsonb FROM t`,
    params: [eventOf(c), JSON.stringify({ from: c.from, to: c.to, ...(c.detail ?? {}) })],
  }],
});

/** Whether a row carries every column the listeners add to the locked read. */
function hasListenerColumns(row: object): boolean {
  return listeners.every((l) => (l.columns ?? []).every((c) => (c.match(/\bAS\s+(\w+)\s*$/i)?.[1] ?? '') in row));
}

/** Renumbers the `$n` of a part's SQL by `offset`. */
function shift(sql: string, offset: number): string {
  return offset ? sql.replace(/\$(\d+)/g, (_m, n: string) => `$${Number(n) + offset}`) : sql;
}

/**
 * One statement that writes a change: the guarded UPDATE of the profile as `t`, then every
 * listener's parts and the caller's own `extra` parts (session or notification writes, …), as
 * data-modifying CTEs that PostgreSQL runs to completion whether or not the final SELECT reads
 * them; the statement answers the updated row, or nothing when the row was no longer in `from`.
 */
function changeStatement(c: ProfileChange, extra: SqlPart[] = [], guard?: SqlPart, answer: Answer = '*'): SqlPart {
  checkTransition(c.action, c.from, c.to);
  const cols = Object.entries(c.set ?? {}).filter(([k, v]) => SETTABLE.has(k) && v !== undefined);
  const parts = [...listeners.flatMap((l) => l.parts?.(c) ?? []), ...extra];
  // A step recorded in place that sets nothing leaves the row as it is (only its history grows).
  const updates = cols.length > 0 || !IN_PLACE.has(c.action);
  const params: unknown[] = [c.iccid, c.from, c.to];
  for (const [, v] of cols) params.push(v);
  if (guard) params.push(...guard.params);
  for (const p of parts) params.push(...p.params);
  // The text depends only on the statement's shape: built once per shape (a download makes a few).
  // The key names each SQL text by a small number, so it stays short (no long string to hash per call).
  let key = `${answer}\u0001${updates ? cols.map(([k]) => k).join(',') : '-'}\u0001${guard ? textId(guard.sql) : ''}`;
  for (const p of parts) key += `\u0001${textId(p.sql)}`;
  let sql = statementTexts.get(key);
  if (sql === undefined) {
    sql = changeText(cols.map(([k]) => k), updates, guard, parts, answer);
    if (statementTexts.size < 1000) statementTexts.set(key, sql);
  }
  return { sql, params };
}

const statementTexts = new Map<string, string>();
const textIds = new Map<string, number>();
let uncounted = 0;

/** A small number for an SQL text (parts and guards are a few constant texts; past 1,000, each call its own). */
function textId(sql: string): number {
  let id = textIds.get(sql);
  if (id === undefined) {
    if (textIds.size >= 1000) return -++uncounted;
    textIds.set(sql, (id = textIds.size));
  }
  return id;
}

/** What a change statement answers: the updated row, or only the new row version (applyChange). */
type Answer = '*' | 'version';

function changeText(cols: string[], updates: boolean, guard: SqlPart | undefined, parts: SqlPart[], answer: Answer): string {
  let n = 3 + cols.length;
  const sets = cols.map((k, i) => `${k} = $${i + 4}${TEXT_DOMAIN.has(k) ? '::text' : ''}`);
  const ctes: string[] = [];
  let guarded = '';
  if (guard) {
    // The guard is a condition of the profile's own UPDATE (over its row `p`): the change is written
    // only if it holds, checked again on the row's newest version when another writer got there first.
    guarded = ` AND (${shift(guard.sql, n)})`;
    n += guard.params.length;
  }
  ctes.push(updates
    ? `t AS (UPDATE profiles p SET state = $3::text, ${[...sets, 'updated_at = now()'].join(', ')} WHERE p.iccid = $1 AND p.state = $2${guarded} RETURNING *, xmin::text AS row_version)`
    : `t AS (SELECT *, xmin::text AS row_version FROM profiles p WHERE p.iccid = $1 AND p.state = $2 AND p.state = $3${guarded} FOR UPDATE)`);
  parts.forEach((p, i) => {
    ctes.push(`w${i} AS (${shift(p.sql, n)})`);
    n += p.params.length;
  });
  return `WITH ${ctes.join(',\n')}\nSELECT ${answer === '*' ? '*' : 't.row_version, t.updated_at'} FROM t`;
}

/**
 * Applies a change to the locked profile `p` (8.2.1/3.5 and no change when illegal): one statement
 * for the change, what listeners add to it and `extra`, then the listeners' `after` work. The UPDATE
 * is guarded by the state read under the lock, so a caller that forgot the lock still cannot apply a
 * transition twice.
 */
export async function transition(q: Queryable, p: ProfileRow | ProfileContext, r: TransitionRequest, extra: SqlPart[] = []): Promise<LockedProfile> {
  // A row read without the listeners' columns is read again with them (callers should use lockProfile).
  const row = hasListenerColumns(p) ? (p as ProfileContext) : await lockProfile(q, p.iccid);
  if (!row) throw new FunctionFailed(SC.iccidUnknown, `no profile ${p.iccid}`);
  const change: ProfileChange = { ...r, iccid: p.iccid, from: p.state, row };
  const st = changeStatement(change, extra);
  const rows = await q.query<LockedProfile>(st.sql, st.params);
  if (!rows[0]) throw new FunctionFailed(SC.invalidTransition, `profile ${p.iccid} is no longer ${p.state}`);
  for (const l of afterWork(change)) await l.after!(q, change);
  return rows[0];
}

/** The text of applyChange's guard for each caller's guard text (with a snapshot: its own). */
const guardTexts = new Map<string, string>();
const snapshotGuardTexts = new Map<string, string>();

/** The listeners with after work for this change. */
function afterWork(c: ProfileChange): ProfileListener[] {
  return listeners.filter((l) => l.after && (l.wantsAfter?.(c) ?? true));
}

/** A guarded change found its rows changed since they were read (`applyChange`): read again and retry. */
export class ChangedMeanwhile extends Error {
  override name = 'ChangedMeanwhile';
}

/**
 * The row version of a profile read without a lock, for `applyChange`'s guard: PostgreSQL's xmin,
 * the transaction that wrote the row version, which every write of the row changes.
 */
export const ROW_VERSION = 'p.xmin::text AS row_version';

/** A profile read without a lock, for `applyChange`: with the listener columns and its row version. */
export type ReadProfile = ProfileContext & { row_version: string };

export interface ApplyOptions {
  /**
   * The row was not read for this call but kept from the write of the session's previous step (a
   * snapshot, docs/state-machine.md "Snapshots"): the guard then also verifies what the row
   * version does not cover, i.e. every listener column still has the value kept and no fault
   * injection is pending.
   */
  snapshot?: boolean;
}

/** The listener columns as `[expression, name]`, for the snapshot guard. */
function listenerExpressions(): Array<[string, string]> {
  return (keptColumns ??= listeners.flatMap((l) => l.columns ?? []).map((c) => {
    const m = c.match(/^([\s\S]*)\bAS\s+(\w+)\s*$/i);
    if (!m) throw new Error(`listener column without a name: ${c}`);
    return [m[1]!.trim(), m[2]!] as [string, string];
  }));
}

/**
 * Applies a change to a profile read WITHOUT a lock (`p` carries the listener columns and its
 * `row_version`), as ONE statement on its own, no transaction around it (docs/state-machine.md,
 * "Optimistic writes"). `guard` is a condition that holds only while everything else the caller
 * read still holds (e.g. its RSP session in the state it read, `EXISTS (… FOR UPDATE)`); with the
 * profile's own version it becomes a condition of the profile's UPDATE. Every other part of the
 * statement depends on that UPDATE, so the change is written whole or not at all; when the
 * condition fails, `ChangedMeanwhile` is thrown and the caller reads again. `extra` parts must read
 * `t` (`… FROM t`, `… AND EXISTS (SELECT 1 FROM t)`).
 * When a listener has after work for this change, the statement and that work run in a transaction.
 * Answers the profile as written: `p` with the change applied and its new row version.
 */
export async function applyChange(
  db: Database, p: ReadProfile, r: TransitionRequest, extra: SqlPart[], guard: SqlPart, opts: ApplyOptions = {},
): Promise<ReadProfile> {
  const change: ProfileChange = { ...r, iccid: p.iccid, from: p.state, row: p };
  const kept = opts.snapshot ? listenerExpressions() : [];
  const texts = opts.snapshot ? snapshotGuardTexts : guardTexts;
  let sql = texts.get(guard.sql);
  if (sql === undefined) {
    let n = 1 + guard.params.length;
    const still = kept.map(([expr]) => ` AND (${expr})::text IS NOT DISTINCT FROM $${++n}::text`).join('');
    const noFaults = opts.snapshot ? ' AND NOT EXISTS (SELECT 1 FROM fault_injections WHERE remaining > 0)' : '';
    sql = `p.xmin = $1::text::xid${still}${noFaults} AND ${shift(guard.sql, 1)}`;
    if (texts.size < 100) texts.set(guard.sql, sql);
  }
  const keptValues = kept.map(([, name]) => (p[name] === null || p[name] === undefined ? null : String(p[name])));
  const st = changeStatement(change, extra, { sql, params: [p.row_version, ...guard.params, ...keptValues] }, 'version');
  const after = afterWork(change);
  let rows: Array<{ row_version: string; updated_at: Date }>;
  try {
    rows = after.length
      ? await db.tx(async (q) => {
          const written = await q.query<{ row_version: string; updated_at: Date }>(st.sql, st.params);
          if (written[0]) for (const l of after) await l.after!(q, change);
          return written;
        }, { keyLookups: true })
      : await db.query(st.sql, st.params, { keyLookups: true });
  } catch (err) {
    // PostgreSQL ended the statement to break a lock cycle with a concurrent writer of the same
    // rows (deadlock_detected): nothing was written, so it is a change meanwhile like any other.
    if ((err as { code?: string }).code === '40P01') throw new ChangedMeanwhile(`profile ${p.iccid}: ${(err as Error).message}`);
    throw err;
  }
  const w = rows[0];
  if (!w) throw new ChangedMeanwhile(`profile ${p.iccid} changed since it was read`);
  // After work may have written the row again: its version is then unknown here (null never matches).
  const version = after.length ? '' : w.row_version;
  return { ...p, ...definedColumns(r.set), state: r.to, updated_at: w.updated_at, row_version: version };
}

/** The columns a change sets, without those it leaves alone (undefined). */
function definedColumns(set: TransitionColumns | undefined): TransitionColumns {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(set ?? {})) if (SETTABLE.has(k) && v !== undefined) out[k] = v;
  return out as TransitionColumns;
}
