/**
 * Family groups in the database (migration 005_family.sql): groups with their shared plan, members
 * with roles, caps and bearer tokens (stored as SHA-256), lines (devices) and the profiles bound to
 * them. Plain data access; who may call what is src/family/auth.ts, issuing is src/family/issue.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { PROFILE_EVENT, TRANSITIONS, lockProfile, profileEventSql, transition } from '../orders/state-machine.js';
import type { ProfileRow, ProfileState } from '../orders/store.js';
import type { NotificationOperationName } from '../rsp/notification.js';
import { memberControlsOf } from './controls.js';
import { GROUP_EVENT, recordGroupEvent } from './events.js';

export type Role = 'owner' | 'adult' | 'child';
export type Device = 'phone' | 'watch' | 'tablet';
export type NumberMode = 'shared' | 'own';
export type AtCap = 'block' | 'throttle';

export class FamilyError extends Error {
  override name = 'FamilyError';
  constructor(
    readonly code: 'unauthorised' | 'forbidden' | 'notFound' | 'invalid' | 'conflict',
    message: string,
  ) {
    super(message);
  }
}

export const HTTP_STATUS: Record<FamilyError['code'], number> = { unauthorised: 401, forbidden: 403, notFound: 404, invalid: 400, conflict: 409 };

export interface GroupRow {
  id: string;
  operator_id: string;
  name: string;
  profile_type: string | null;
  plan_data_mb: number;
  plan_voice_min: number;
  plan_sms: number;
  hotspot_mb: number;
  billing_cycle_day: number;
  msisdns: string[];
  created_at: Date;
  updated_at: Date;
}

export interface MemberRow {
  id: string;
  group_id: string;
  name: string;
  role: Role;
  cap_data_mb: number | null;
  cap_voice_min: number | null;
  cap_sms: number | null;
  cap_hotspot_mb: number | null;
  at_cap: AtCap;
  token_sha256: Buffer;
  created_at: Date;
  updated_at: Date;
}

export interface LineRow {
  id: string;
  group_id: string;
  member_id: string;
  name: string | null;
  device: Device;
  number_mode: NumberMode;
  msisdn: string | null;
  eid: string | null;
  iccid: string | null;
  created_at: Date;
  updated_at: Date;
}

export interface Plan {
  profileType: string;
  dataMb?: number;
  voiceMin?: number;
  sms?: number;
  hotspotMb?: number;
  billingCycleDay?: number;
  msisdns?: string[];
}

export interface Caps {
  dataMb?: number | null;
  voiceMin?: number | null;
  sms?: number | null;
  hotspotMb?: number | null;
  atCap?: AtCap;
}

const newId = (prefix: string) => `${prefix}_${randomBytes(8).toString('hex')}`;

export const MEMBER_TOKEN_PREFIX = 'fam_';

function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

// ---- groups

export async function createGroup(q: Queryable, operatorId: string, name: string): Promise<GroupRow> {
  const rows = await q.query<GroupRow>('INSERT INTO family_groups (id, operator_id, name) VALUES ($1, $2, $3) RETURNING *', [newId('fg'), operatorId, name]);
  await recordGroupEvent(q, rows[0]!.id, GROUP_EVENT.groupCreated, { operator: operatorId, name });
  return rows[0]!;
}

export async function getGroup(q: Queryable, id: string, opts: { lock?: boolean } = {}): Promise<GroupRow | undefined> {
  return (await q.query<GroupRow>(`SELECT * FROM family_groups WHERE id = $1${opts.lock ? ' FOR UPDATE' : ''}`, [id]))[0];
}

export async function listGroups(q: Queryable, operatorId: string): Promise<GroupRow[]> {
  return q.query<GroupRow>('SELECT * FROM family_groups WHERE operator_id = $1 ORDER BY created_at, id', [operatorId]);
}

export async function renameGroup(q: Queryable, id: string, name: string): Promise<GroupRow> {
  const rows = await q.query<GroupRow>('UPDATE family_groups SET name = $2, updated_at = now() WHERE id = $1 RETURNING *', [id, name]);
  await recordGroupEvent(q, id, GROUP_EVENT.groupRenamed, { name });
  return rows[0]!;
}

export async function setPlan(q: Queryable, group: GroupRow, plan: Plan): Promise<GroupRow> {
  const known = await q.query('SELECT 1 FROM profile_types WHERE name = $1', [plan.profileType]);
  if (!known.length) throw new FamilyError('invalid', `unknown profile type ${plan.profileType}`);
  const msisdns = plan.msisdns ?? [];
  // Numbers still used by lines must stay in the plan.
  const used = await q.query<{ msisdn: string }>('SELECT DISTINCT msisdn FROM family_lines WHERE group_id = $1 AND msisdn IS NOT NULL', [group.id]);
  const dropped = used.map((u) => u.msisdn).filter((m) => !msisdns.includes(m));
  if (dropped.length) throw new FamilyError('conflict', `numbers ${dropped.join(', ')} are used by lines of the group; change those lines first`);
  const rows = await q.query<GroupRow>(
    `UPDATE family_groups SET profile_type = $2, plan_data_mb = $3, plan_voice_min = $4, plan_sms = $5, hotspot_mb = $6,
       billing_cycle_day = $7, msisdns = $8, updated_at = now() WHERE id = $1 RETURNING *`,
    [group.id, plan.profileType, plan.dataMb ?? 0, plan.voiceMin ?? 0, plan.sms ?? 0, plan.hotspotMb ?? 0, plan.billingCycleDay ?? 1, msisdns],
  );
  await recordGroupEvent(q, group.id, GROUP_EVENT.planSet, { ...plan, msisdns });
  return rows[0]!;
}

function publicPlan(g: GroupRow) {
  return {
    profileType: g.profile_type,
    dataMb: g.plan_data_mb,
    voiceMin: g.plan_voice_min,
    sms: g.plan_sms,
    hotspotMb: g.hotspot_mb,
    billingCycleDay: g.billing_cycle_day,
    msisdns: g.msisdns,
  };
}

export function publicGroup(g: GroupRow) {
  return { id: g.id, operatorId: g.operator_id, name: g.name, plan: publicPlan(g), createdAt: g.created_at.toISOString(), updatedAt: g.updated_at.toISOString() };
}

// ---- members

export async function createMember(q: Queryable, groupId: string, m: { name: string; role: Role; caps?: Caps }): Promise<{ member: MemberRow; token: string }> {
  const token = `${MEMBER_TOKEN_PREFIX}${randomBytes(24).toString('base64url')}`;
  const c = m.caps ?? {};
  try {
    const rows = await q.query<MemberRow>(
      `INSERT INTO family_members (id, group_id, name, role, cap_data_mb, cap_voice_min, cap_sms, cap_hotspot_mb, at_cap, token_sha256)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
      [newId('fm'), groupId, m.name, m.role, c.dataMb ?? null, c.voiceMin ?? null, c.sms ?? null, c.hotspotMb ?? null, c.atCap ?? 'block', tokenDigest(token)],
    );
    await recordGroupEvent(q, groupId, GROUP_EVENT.memberAdded, { member: rows[0]!.id, name: m.name, role: m.role });
    return { member: rows[0]!, token };
  } catch (err) {
    if (isUniqueViolation(err)) throw new FamilyError('conflict', `group ${groupId} already has an owner`);
    throw err;
  }
}

export async function getMember(q: Queryable, groupId: string, id: string, opts: { lock?: boolean } = {}): Promise<MemberRow | undefined> {
  return (await q.query<MemberRow>(`SELECT * FROM family_members WHERE id = $1 AND group_id = $2${opts.lock ? ' FOR UPDATE' : ''}`, [id, groupId]))[0];
}

export async function findMemberByToken(q: Queryable, token: string): Promise<MemberRow | undefined> {
  return (await q.query<MemberRow>('SELECT * FROM family_members WHERE token_sha256 = $1', [tokenDigest(token)]))[0];
}

export async function listMembers(q: Queryable, groupId: string): Promise<MemberRow[]> {
  return q.query<MemberRow>('SELECT * FROM family_members WHERE group_id = $1 ORDER BY created_at, id', [groupId]);
}

export async function updateMember(q: Queryable, m: MemberRow, change: { name?: string; role?: Role }): Promise<MemberRow> {
  try {
    const rows = await q.query<MemberRow>(
      'UPDATE family_members SET name = COALESCE($2, name), role = COALESCE($3, role), updated_at = now() WHERE id = $1 RETURNING *',
      [m.id, change.name ?? null, change.role ?? null],
    );
    await recordGroupEvent(q, m.group_id, GROUP_EVENT.memberChanged, { member: m.id, ...change });
    return rows[0]!;
  } catch (err) {
    if (isUniqueViolation(err)) throw new FamilyError('conflict', `group ${m.group_id} already has an owner`);
    throw err;
  }
}

/** The caps as stored: absent fields are no cap (null), atCap defaults to block. */
export function normaliseCaps(c: Caps): Required<Caps> {
  return { dataMb: c.dataMb ?? null, voiceMin: c.voiceMin ?? null, sms: c.sms ?? null, hotspotMb: c.hotspotMb ?? null, atCap: c.atCap ?? 'block' };
}

export function capsOf(m: MemberRow): Required<Caps> {
  return { dataMb: m.cap_data_mb, voiceMin: m.cap_voice_min, sms: m.cap_sms, hotspotMb: m.cap_hotspot_mb, atCap: m.at_cap };
}

export async function setCaps(q: Queryable, m: MemberRow, caps: Required<Caps>, by: string): Promise<MemberRow> {
  const rows = await q.query<MemberRow>(
    `UPDATE family_members SET cap_data_mb = $2, cap_voice_min = $3, cap_sms = $4, cap_hotspot_mb = $5, at_cap = $6, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [m.id, caps.dataMb, caps.voiceMin, caps.sms, caps.hotspotMb, caps.atCap],
  );
  await recordGroupEvent(q, m.group_id, GROUP_EVENT.capsSet, { member: m.id, before: capsOf(m), after: caps, by });
  return rows[0]!;
}

export function publicMember(m: MemberRow) {
  return { id: m.id, groupId: m.group_id, name: m.name, role: m.role, caps: capsOf(m), controls: memberControlsOf(m), createdAt: m.created_at.toISOString() };
}

// ---- lines

export interface NewLine {
  name?: string;
  device: Device;
  numberMode: NumberMode;
  msisdn?: string | null;
  eid?: string | null;
}

/** Verify a line's number is one of the group's, and an own number is no other line's. */
async function checkLineNumber(q: Queryable, group: GroupRow, lineId: string, mode: NumberMode, msisdn: string | null): Promise<void> {
  if (msisdn === null) return;
  if (!group.msisdns.includes(msisdn)) throw new FamilyError('invalid', `${msisdn} is not one of the group's numbers (${group.msisdns.join(', ') || 'none: set the plan first'})`);
  const others = await q.query<{ id: string; number_mode: NumberMode }>('SELECT id, number_mode FROM family_lines WHERE group_id = $1 AND msisdn = $2 AND id <> $3', [group.id, msisdn, lineId]);
  if (mode === 'own' && others.length) throw new FamilyError('conflict', `${msisdn} is already used by line ${others[0]!.id}; an own number belongs to one line`);
  const owner = others.find((o) => o.number_mode === 'own');
  if (mode === 'shared' && owner) throw new FamilyError('conflict', `${msisdn} is the own number of line ${owner.id}`);
}

export async function createLine(q: Queryable, group: GroupRow, member: MemberRow, l: NewLine): Promise<LineRow> {
  const id = newId('fl');
  await checkLineNumber(q, group, id, l.numberMode, l.msisdn ?? null);
  const rows = await q.query<LineRow>(
    `INSERT INTO family_lines (id, group_id, member_id, name, device, number_mode, msisdn, eid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
    [id, group.id, member.id, l.name ?? null, l.device, l.numberMode, l.msisdn ?? null, l.eid ?? null],
  );
  await recordGroupEvent(q, group.id, GROUP_EVENT.lineAdded, { member: member.id, line: id, device: l.device, numberMode: l.numberMode, msisdn: l.msisdn ?? null });
  return rows[0]!;
}

export async function getLine(q: Queryable, memberId: string, id: string, opts: { lock?: boolean } = {}): Promise<LineRow | undefined> {
  return (await q.query<LineRow>(`SELECT * FROM family_lines WHERE id = $1 AND member_id = $2${opts.lock ? ' FOR UPDATE' : ''}`, [id, memberId]))[0];
}

export async function listLines(q: Queryable, where: { groupId?: string; memberId?: string }): Promise<LineRow[]> {
  if (where.memberId) return q.query<LineRow>('SELECT * FROM family_lines WHERE member_id = $1 ORDER BY created_at, id', [where.memberId]);
  return q.query<LineRow>('SELECT * FROM family_lines WHERE group_id = $1 ORDER BY created_at, id', [where.groupId]);
}

export async function updateLine(q: Queryable, group: GroupRow, line: LineRow, change: Partial<NewLine>): Promise<LineRow> {
  const next = {
    name: change.name !== undefined ? change.name : line.name,
    device: change.device ?? line.device,
    numberMode: change.numberMode ?? line.number_mode,
    msisdn: change.msisdn !== undefined ? change.msisdn : line.msisdn,
    eid: change.eid !== undefined ? change.eid : line.eid,
  };
  if (next.eid !== line.eid && line.iccid !== null) {
    throw new FamilyError('conflict', `line ${line.id} has profile ${line.iccid}: change its device with POST …/lines/${line.id}/move`);
  }
  await checkLineNumber(q, group, line.id, next.numberMode, next.msisdn);
  const rows = await q.query<LineRow>(
    'UPDATE family_lines SET name = $2, device = $3, number_mode = $4, msisdn = $5, eid = $6, updated_at = now() WHERE id = $1 RETURNING *',
    [line.id, next.name, next.device, next.numberMode, next.msisdn, next.eid],
  );
  await recordGroupEvent(q, group.id, GROUP_EVENT.lineChanged, { member: line.member_id, line: line.id, ...change });
  return rows[0]!;
}

// ---- profiles of lines

/** Binds an issued profile to its line (the line's current profile) and records it in the history. */
export async function bindProfile(q: Queryable, line: LineRow, iccid: string, eid: string | null): Promise<LineRow> {
  const rows = await q.query<LineRow>('UPDATE family_lines SET iccid = $2, eid = COALESCE($3, eid), updated_at = now() WHERE id = $1 RETURNING *', [line.id, iccid, eid]);
  await q.query('INSERT INTO family_line_profiles (group_id, member_id, line_id, iccid, eid) VALUES ($1, $2, $3, $4, $5)', [line.group_id, line.member_id, line.id, iccid, eid]);
  return rows[0]!;
}

/** Ends the binding of the line's current profile (history kept with the reason). */
export async function unbindProfile(q: Queryable, line: LineRow, reason: string, set: { eid?: string | null } = {}): Promise<LineRow> {
  await q.query('UPDATE family_line_profiles SET released_at = now(), reason = $3 WHERE line_id = $1 AND iccid = $2 AND released_at IS NULL', [line.id, line.iccid, reason]);
  const rows = await q.query<LineRow>(
    `UPDATE family_lines SET iccid = NULL${set.eid !== undefined ? ', eid = $2' : ''}, updated_at = now() WHERE id = $1 RETURNING *`,
    set.eid !== undefined ? [line.id, set.eid] : [line.id],
  );
  return rows[0]!;
}

/** States whose order can still be cancelled (ES2+ cancelOrder's sources). */
const CANCELLABLE = new Set<ProfileState>(TRANSITIONS.cancelOrder.from);

export interface ReleaseOutcome {
  iccid: string;
  /** cancelled: the order was cancelled and the profile is Available again; unbound: the profile is on a device (or gone) and only unbound. */
  outcome: 'cancelled' | 'unbound';
  state: ProfileState;
  deviceState: ProfileRow['device_state'];
}

/**
 * Lets go of a line's profile: a pending order (Allocated … Released, Downloaded, Error) is cancelled
 * through the state machine, as ES2+ cancelOrder does (profile back to Available, RSP sessions
 * ended); an installed profile can only be unbound. Used when a line or member is removed.
 */
async function releaseLineProfile(q: Queryable, line: LineRow, reason: string, by: string): Promise<ReleaseOutcome | undefined> {
  if (!line.iccid) return undefined;
  const p = await lockProfile(q, line.iccid);
  let out: ReleaseOutcome;
  if (p && CANCELLABLE.has(p.state)) {
    const row = await transition(q, p, {
      action: 'cancelOrder',
      to: 'Available',
      set: { eid: null, matching_id: null, cc_digest: null, cc_attempts: 0, download_attempts: 0, expires_at: null, device_state: null, smds_address: null },
      detail: { via: 'family', group: line.group_id, member: line.member_id, line: line.id, reason, by, eid: p.eid, matchingId: p.matching_id },
    });
    await q.query('DELETE FROM rsp_sessions WHERE iccid = $1', [p.iccid]);
    out = { iccid: p.iccid, outcome: 'cancelled', state: row.state, deviceState: row.device_state };
  } else {
    out = { iccid: line.iccid, outcome: 'unbound', state: p?.state ?? 'Unavailable', deviceState: p?.device_state ?? null };
  }
  await unbindProfile(q, line, reason);
  await recordGroupEvent(q, line.group_id, out.outcome === 'cancelled' ? GROUP_EVENT.orderCancelled : GROUP_EVENT.profileUnbound, { member: line.member_id, line: line.id, iccid: out.iccid, reason, by });
  return out;
}

export async function deleteLine(q: Queryable, line: LineRow, by: string): Promise<ReleaseOutcome | undefined> {
  const r = await releaseLineProfile(q, line, 'line-removed', by);
  await q.query('DELETE FROM family_lines WHERE id = $1', [line.id]);
  await recordGroupEvent(q, line.group_id, GROUP_EVENT.lineRemoved, { member: line.member_id, line: line.id, by });
  return r;
}

export async function deleteMember(q: Queryable, m: MemberRow, by: string): Promise<ReleaseOutcome[]> {
  const out: ReleaseOutcome[] = [];
  for (const l of await q.query<LineRow>('SELECT * FROM family_lines WHERE member_id = $1 ORDER BY id FOR UPDATE', [m.id])) {
    const r = await releaseLineProfile(q, l, 'member-removed', by);
    if (r) out.push(r);
  }
  await q.query('DELETE FROM family_members WHERE id = $1', [m.id]);
  await recordGroupEvent(q, m.group_id, GROUP_EVENT.memberRemoved, { member: m.id, by, profiles: out });
  return out;
}

export async function deleteGroup(q: Queryable, g: GroupRow, by: string): Promise<ReleaseOutcome[]> {
  const out: ReleaseOutcome[] = [];
  for (const l of await q.query<LineRow>('SELECT * FROM family_lines WHERE group_id = $1 ORDER BY id FOR UPDATE', [g.id])) {
    const r = await releaseLineProfile(q, l, 'group-removed', by);
    if (r) out.push(r);
  }
  // Logged before the delete, so the event still reaches the operator's callback URL.
  await recordGroupEvent(q, g.id, GROUP_EVENT.groupRemoved, { by, profiles: out });
  await q.query('DELETE FROM family_groups WHERE id = $1', [g.id]);
  return out;
}

/** A profile row with whether the eUICC has reported on it (a verified enable/disable/delete notification since its install). */
export type FamilyProfile = ProfileRow & { device_reported: boolean };

/**
 * A profile's live state as a family sees it: Released, Downloaded, Installed … from the order; once
 * the eUICC has sent a verified enable/disable/delete notification, Enabled, Disabled or Deleted
 * (profiles.device_state; the install itself leaves a profile disabled, shown as Installed).
 */
export function liveState(p: Pick<FamilyProfile, 'state' | 'device_state' | 'device_reported'>): string {
  if (p.device_state === 'Deleted') return 'Deleted';
  if (p.state === 'Installed' && p.device_reported && p.device_state) return p.device_state;
  return p.state;
}

export function publicLine(l: LineRow, p?: FamilyProfile) {
  return {
    id: l.id,
    groupId: l.group_id,
    memberId: l.member_id,
    name: l.name,
    device: l.device,
    numberMode: l.number_mode,
    msisdn: l.msisdn,
    eid: l.eid,
    iccid: l.iccid,
    profile: p
      ? { iccid: p.iccid, state: liveState(p), orderState: p.state, deviceState: p.device_state, eid: p.eid, matchingId: p.matching_id, updatedAt: p.updated_at.toISOString() }
      : null,
  };
}

/** The notifications that report the device's own state of an installed profile (notifications.kind). */
const DEVICE_KINDS = (['enable', 'disable', 'delete'] as const satisfies readonly NotificationOperationName[]).map((k) => `'${k}'`).join(', ');

/** The profiles with these ICCIDs, with `device_reported` for liveState. */
export async function profilesOf(q: Queryable, iccids: string[]): Promise<Map<string, FamilyProfile>> {
  if (!iccids.length) return new Map();
  const rows = await q.query<FamilyProfile>(
    `SELECT p.*, EXISTS (
        SELECT 1 FROM notifications n
         WHERE n.iccid = p.iccid AND n.verified AND n.kind IN (${DEVICE_KINDS})
           AND n.received_at >= COALESCE((SELECT max(e.at) FROM profile_events e WHERE e.iccid = p.iccid AND e.event = ${profileEventSql(PROFILE_EVENT.installed)}), '-infinity'::timestamptz)
      ) AS device_reported
       FROM profiles p WHERE p.iccid = ANY($1)`,
    [iccids],
  );
  return new Map(rows.map((r) => [r.iccid, r]));
}
