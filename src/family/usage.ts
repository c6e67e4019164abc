/**
 * Usage against a family plan. Every usage event of a line (data MB, optionally over the hotspot;
 * voice minutes; SMS) gets a decision:
 *
 *   data   member cap (cap_data_mb, hotspot included) → at_cap 'block' → blocked / 'throttle' → throttled
 *          hotspot: member cap_hotspot_mb, then the group's hotspot allowance  → blocked
 *          pool (plan_data_mb)                                                  → throttled (for everyone)
 *   voice / sms: member cap, then the pool → blocked
 *
 * An event is granted whole or not at all; only allowed usage counts against caps and the pool
 * (throttled data is counted apart). Events of a group are serialised on its family_cycles row
 * (FOR UPDATE), so concurrent events never overspend. The first cap hit / pool exhaustion of a cycle
 * and each cycle rollover are logged as group events (and go to the operator's callback).
 */
import type { Database, Queryable } from '../db/db.js';
import { advanceClock, cycleOf, cycleStart, groupClock, isoDate, nextCycleStart } from './clock.js';
import { GROUP_EVENT, recordGroupEvent, type GroupEventType } from './events.js';

export type UsageKind = 'data' | 'voice' | 'sms';
export type Decision = 'allowed' | 'throttled' | 'blocked';
export type Reason = 'withinPlan' | 'memberCap' | 'memberHotspotCap' | 'hotspotAllowance' | 'poolExhausted';

export class UsageError extends Error {
  override name = 'UsageError';
  constructor(readonly code: 'notFound' | 'invalid', message: string) {
    super(message);
  }
}

export interface UsageInput {
  groupId: string;
  lineId: string;
  kind: UsageKind;
  amount: number;
  hotspot?: boolean;
}

interface GroupPlan {
  id: string;
  plan_data_mb: number;
  plan_voice_min: number;
  plan_sms: number;
  hotspot_mb: number;
  billing_cycle_day: number;
}

interface MemberCaps {
  id: string;
  name: string;
  role: string;
  cap_data_mb: number | null;
  cap_voice_min: number | null;
  cap_sms: number | null;
  cap_hotspot_mb: number | null;
  at_cap: 'block' | 'throttle';
}

export interface Counters {
  dataMb: number;
  hotspotMb: number;
  throttledMb: number;
  voiceMin: number;
  sms: number;
  blocked: number;
}

interface CounterRow {
  scope: 'group' | 'member' | 'line';
  scope_id: string;
  data_mb: string | number;
  hotspot_mb: string | number;
  throttled_mb: string | number;
  voice_min: string | number;
  sms: string | number;
  blocked: number;
  flags: string[];
}

const ZERO: Counters = { dataMb: 0, hotspotMb: 0, throttledMb: 0, voiceMin: 0, sms: 0, blocked: 0 };

function counters(r: CounterRow | undefined): Counters {
  if (!r) return { ...ZERO };
  return {
    dataMb: Number(r.data_mb), hotspotMb: Number(r.hotspot_mb), throttledMb: Number(r.throttled_mb),
    voiceMin: Number(r.voice_min), sms: Number(r.sms), blocked: Number(r.blocked),
  };
}

const GROUP_COLUMNS = 'id, plan_data_mb, plan_voice_min, plan_sms, hotspot_mb, billing_cycle_day';

async function loadGroup(q: Queryable, groupId: string): Promise<GroupPlan> {
  const [g] = await q.query<GroupPlan>(`SELECT ${GROUP_COLUMNS} FROM family_groups WHERE id = $1`, [groupId]);
  if (!g) throw new UsageError('notFound', `no family group ${groupId}`);
  return g;
}

export interface CycleState {
  /** The current cycle's start (YYYY-MM-DD) and end. */
  start: string;
  end: string;
  daysLeft: number;
  now: Date;
  offsetSeconds: number;
}

/**
 * Locks the group's cycle row (the group's usage lock) and moves it to the cycle the group's clock is
 * in now, logging a rollover when it changed. Call inside a transaction.
 */
async function syncCycle(q: Queryable, g: GroupPlan): Promise<CycleState> {
  const clock = await groupClock(q, g.id);
  const current = isoDate(cycleStart(clock.now, g.billing_cycle_day));
  await q.query('INSERT INTO family_cycles (group_id, cycle_start) VALUES ($1, $2) ON CONFLICT (group_id) DO NOTHING', [g.id, current]);
  const [row] = await q.query<{ cycle_start: string }>('SELECT cycle_start::text AS cycle_start FROM family_cycles WHERE group_id = $1 FOR UPDATE', [g.id]);
  let start = row!.cycle_start;
  if (start < current) {
    const [prev] = await q.query<CounterRow>(
      `SELECT * FROM family_usage_counters WHERE group_id = $1 AND cycle_start = $2 AND scope = 'group' AND scope_id = $1`, [g.id, start]);
    await q.query('UPDATE family_cycles SET cycle_start = $2, updated_at = now() WHERE group_id = $1', [g.id, current]);
    await recordGroupEvent(q, g.id, GROUP_EVENT.cycleRolledOver, { from: start, to: current, previousUsage: counters(prev) });
    start = current;
  }
  // A billing day moved backwards keeps the stored (later) cycle until the next one starts.
  const s = new Date(`${start}T00:00:00Z`);
  const end = nextCycleStart(s);
  return { start, end: isoDate(end), daysLeft: Math.ceil((end.getTime() - clock.now.getTime()) / 86_400_000), now: clock.now, offsetSeconds: clock.offsetSeconds };
}

export interface UsageResult {
  eventId: string;
  decision: Decision;
  reason: Reason;
  kind: UsageKind;
  amount: number;
  hotspot: boolean;
  groupId: string;
  memberId: string;
  lineId: string;
  at: string;
  cycle: { start: string; end: string };
  /** What is left after this event (null: no such cap). */
  remaining: { pool: number; member: number | null; hotspot: number | null; memberHotspot: number | null };
}

const POOL_OF: Record<UsageKind, keyof GroupPlan> = { data: 'plan_data_mb', voice: 'plan_voice_min', sms: 'plan_sms' };
const CAP_OF: Record<UsageKind, keyof MemberCaps> = { data: 'cap_data_mb', voice: 'cap_voice_min', sms: 'cap_sms' };
const USED_OF: Record<UsageKind, keyof Counters> = { data: 'dataMb', voice: 'voiceMin', sms: 'sms' };

function validate(u: UsageInput): void {
  if (!['data', 'voice', 'sms'].includes(u.kind)) throw new UsageError('invalid', 'kind must be data, voice or sms');
  if (!Number.isInteger(u.amount) || u.amount < 1 || u.amount > 10_000_000) throw new UsageError('invalid', 'amount must be a whole number from 1 to 10000000 (MB, minutes or messages)');
  if (u.hotspot && u.kind !== 'data') throw new UsageError('invalid', 'hotspot applies to data only');
}

/** Records one usage event and answers its decision. */
export async function recordUsage(db: Database, u: UsageInput): Promise<UsageResult> {
  validate(u);
  const hotspot = !!u.hotspot;
  return db.tx(async (q) => {
    const g = await loadGroup(q, u.groupId);
    const cycle = await syncCycle(q, g); // the group's lock from here on
    const [line] = await q.query<{ id: string; member_id: string }>('SELECT id, member_id FROM family_lines WHERE id = $1 AND group_id = $2', [u.lineId, g.id]);
    if (!line) throw new UsageError('notFound', `no line ${u.lineId} in group ${g.id}`);
    const [m] = await q.query<MemberCaps>(
      'SELECT id, name, role, cap_data_mb, cap_voice_min, cap_sms, cap_hotspot_mb, at_cap FROM family_members WHERE id = $1', [line.member_id]);
    await q.query(
      `INSERT INTO family_usage_counters (group_id, cycle_start, scope, scope_id)
       VALUES ($1, $2, 'group', $1), ($1, $2, 'member', $3), ($1, $2, 'line', $4) ON CONFLICT DO NOTHING`,
      [g.id, cycle.start, m!.id, line.id],
    );
    const rows = await q.query<CounterRow>('SELECT * FROM family_usage_counters WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)', [
      g.id, cycle.start, [g.id, m!.id, line.id],
    ]);
    const groupRow = rows.find((r) => r.scope === 'group')!;
    const memberRow = rows.find((r) => r.scope === 'member')!;
    const pool = counters(groupRow);
    const mine = counters(memberRow);
    const used = USED_OF[u.kind];
    const cap = m![CAP_OF[u.kind]] as number | null;
    const poolSize = g[POOL_OF[u.kind]] as number;

    let decision: Decision = 'allowed';
    let reason: Reason = 'withinPlan';
    if (cap !== null && mine[used] + u.amount > cap) {
      decision = u.kind === 'data' && m!.at_cap === 'throttle' ? 'throttled' : 'blocked';
      reason = 'memberCap';
    } else if (hotspot && m!.cap_hotspot_mb !== null && mine.hotspotMb + u.amount > m!.cap_hotspot_mb) {
      decision = 'blocked';
      reason = 'memberHotspotCap';
    } else if (hotspot && pool.hotspotMb + u.amount > g.hotspot_mb) {
      decision = 'blocked';
      reason = 'hotspotAllowance';
    } else if (pool[used] + u.amount > poolSize) {
      decision = u.kind === 'data' ? 'throttled' : 'blocked';
      reason = 'poolExhausted';
    }

    const column = { data: 'data_mb', voice: 'voice_min', sms: 'sms' }[u.kind];
    const set = decision === 'allowed'
      ? `${column} = ${column} + $4${hotspot ? ', hotspot_mb = hotspot_mb + $4' : ''}`
      : decision === 'throttled' ? 'throttled_mb = throttled_mb + $4' : 'blocked = blocked + 1';
    await q.query(
      `UPDATE family_usage_counters SET ${set} WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)`,
      [g.id, cycle.start, [g.id, m!.id, line.id], ...(decision === 'blocked' ? [] : [u.amount])],
    );
    const [ev] = await q.query<{ id: string | number }>(
      `INSERT INTO usage_events (group_id, member_id, line_id, cycle_start, at, kind, amount, hotspot, decision, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
      [g.id, m!.id, line.id, cycle.start, cycle.now, u.kind, u.amount, hotspot, decision, reason],
    );

    if (decision === 'allowed') {
      mine[used] += u.amount;
      pool[used] += u.amount;
      if (hotspot) {
        mine.hotspotMb += u.amount;
        pool.hotspotMb += u.amount;
      }
    }
    // Log the first time in the cycle a limit is reached (exactly, or by a refused event).
    const flag = async (row: CounterRow, name: string, reached: boolean, type: GroupEventType, detail: Record<string, unknown>) => {
      if (!reached || row.flags.includes(name)) return;
      await q.query(`UPDATE family_usage_counters SET flags = array_append(flags, $5::text) WHERE group_id = $1 AND cycle_start = $2 AND scope = $3 AND scope_id = $4`,
        [g.id, cycle.start, row.scope, row.scope_id, name]);
      await recordGroupEvent(q, g.id, type, { ...detail, cycle: cycle.start });
    };
    const who = { memberId: m!.id, memberName: m!.name, lineId: line.id };
    if (cap !== null) {
      await flag(memberRow, `capReached:${u.kind}`, reason === 'memberCap' || mine[used] >= cap, GROUP_EVENT.capReached,
        { scope: 'member', ...who, kind: u.kind, cap, used: mine[used], decision: m!.at_cap === 'throttle' && u.kind === 'data' ? 'throttled' : 'blocked' });
    }
    if (hotspot && m!.cap_hotspot_mb !== null) {
      await flag(memberRow, 'capReached:hotspot', reason === 'memberHotspotCap' || mine.hotspotMb >= m!.cap_hotspot_mb, GROUP_EVENT.capReached,
        { scope: 'member', ...who, kind: 'hotspot', cap: m!.cap_hotspot_mb, used: mine.hotspotMb, decision: 'blocked' });
    }
    if (hotspot) {
      await flag(groupRow, 'capReached:hotspot', reason === 'hotspotAllowance' || pool.hotspotMb >= g.hotspot_mb, GROUP_EVENT.capReached,
        { scope: 'group', ...who, kind: 'hotspot', cap: g.hotspot_mb, used: pool.hotspotMb, decision: 'blocked' });
    }
    await flag(groupRow, `poolExhausted:${u.kind}`, reason === 'poolExhausted' || pool[used] >= poolSize, GROUP_EVENT.poolExhausted,
      { kind: u.kind, pool: poolSize, used: pool[used], decision: u.kind === 'data' ? 'throttled' : 'blocked', ...who });

    return {
      eventId: String(ev!.id),
      decision,
      reason,
      kind: u.kind,
      amount: u.amount,
      hotspot,
      groupId: g.id,
      memberId: m!.id,
      lineId: line.id,
      at: cycle.now.toISOString(),
      cycle: { start: cycle.start, end: cycle.end },
      remaining: {
        pool: Math.max(0, poolSize - pool[used]),
        member: cap === null ? null : Math.max(0, cap - mine[used]),
        hotspot: u.kind === 'data' ? Math.max(0, g.hotspot_mb - pool.hotspotMb) : null,
        memberHotspot: u.kind === 'data' && m!.cap_hotspot_mb !== null ? Math.max(0, m!.cap_hotspot_mb - mine.hotspotMb) : null,
      },
    };
  });
}

// ---- summaries

export interface Limit {
  limit: number | null;
  used: number;
  remaining: number | null;
}

const limit = (lim: number | null, used: number): Limit => ({ limit: lim, used, remaining: lim === null ? null : Math.max(0, lim - used) });

export interface UsageSummary {
  groupId: string;
  cycle: { start: string; end: string; daysLeft: number; current: boolean };
  clock: { now: string; offsetSeconds: number };
  pool: { data: Limit & { throttledMb: number; exhausted: boolean }; hotspot: Limit; voice: Limit & { exhausted: boolean }; sms: Limit & { exhausted: boolean }; blocked: number };
  members: Array<{
    memberId: string;
    name: string;
    role: string;
    atCap: 'block' | 'throttle';
    data: Limit; hotspot: Limit; voice: Limit; sms: Limit;
    throttledMb: number;
    blocked: number;
    lines: Array<{ lineId: string; device: string; name: string | null; usage: Counters }>;
  }>;
}

/**
 * The group's usage in its current cycle (or in `cycle`, a past cycle's start date): the pool and
 * each member (with their lines). `memberId` limits the members to one.
 */
export async function usageSummary(db: Database, groupId: string, opts: { memberId?: string; cycle?: string } = {}): Promise<UsageSummary> {
  if (opts.cycle !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.cycle)) throw new UsageError('invalid', 'cycle must be a date YYYY-MM-DD');
  return db.tx(async (q) => {
    const g = await loadGroup(q, groupId);
    const cur = await syncCycle(q, g);
    const start = opts.cycle ?? cur.start;
    const current = start === cur.start;
    const rows = await q.query<CounterRow>('SELECT * FROM family_usage_counters WHERE group_id = $1 AND cycle_start = $2', [g.id, start]);
    const byId = new Map(rows.map((r) => [`${r.scope}:${r.scope_id}`, counters(r)]));
    const members = await q.query<MemberCaps>(
      `SELECT id, name, role, cap_data_mb, cap_voice_min, cap_sms, cap_hotspot_mb, at_cap FROM family_members WHERE group_id = $1
       ${opts.memberId ? 'AND id = $2' : ''} ORDER BY created_at, id`,
      opts.memberId ? [g.id, opts.memberId] : [g.id],
    );
    const lines = await q.query<{ id: string; member_id: string; device: string; name: string | null }>(
      'SELECT id, member_id, device, name FROM family_lines WHERE group_id = $1 ORDER BY created_at, id', [g.id]);
    const pool = byId.get(`group:${g.id}`) ?? { ...ZERO };
    const end = isoDate(nextCycleStart(new Date(`${start}T00:00:00Z`)));
    return {
      groupId: g.id,
      cycle: { start, end, daysLeft: current ? cur.daysLeft : 0, current },
      clock: { now: cur.now.toISOString(), offsetSeconds: cur.offsetSeconds },
      pool: {
        data: { ...limit(g.plan_data_mb, pool.dataMb), throttledMb: pool.throttledMb, exhausted: pool.dataMb >= g.plan_data_mb },
        hotspot: limit(g.hotspot_mb, pool.hotspotMb),
        voice: { ...limit(g.plan_voice_min, pool.voiceMin), exhausted: pool.voiceMin >= g.plan_voice_min },
        sms: { ...limit(g.plan_sms, pool.sms), exhausted: pool.sms >= g.plan_sms },
        blocked: pool.blocked,
      },
      members: members.map((m) => {
        const c = byId.get(`member:${m.id}`) ?? { ...ZERO };
        return {
          memberId: m.id,
          name: m.name,
          role: m.role,
          atCap: m.at_cap,
          data: limit(m.cap_data_mb, c.dataMb),
          hotspot: limit(m.cap_hotspot_mb, c.hotspotMb),
          voice: limit(m.cap_voice_min, c.voiceMin),
          sms: limit(m.cap_sms, c.sms),
          throttledMb: c.throttledMb,
          blocked: c.blocked,
          lines: lines.filter((l) => l.member_id === m.id).map((l) => ({ lineId: l.id, device: l.device, name: l.name, usage: byId.get(`line:${l.id}`) ?? { ...ZERO } })),
        };
      }),
    };
  });
}

export interface UsageEventRow {
  id: string;
  memberId: string;
  lineId: string;
  cycle: string;
  at: string;
  kind: UsageKind;
  amount: number;
  hotspot: boolean;
  decision: Decision;
  reason: Reason;
}

export async function listUsageEvents(q: Queryable, groupId: string, opts: { lineId?: string; memberId?: string; limit?: number } = {}): Promise<UsageEventRow[]> {
  const params: unknown[] = [groupId];
  let where = 'group_id = $1';
  if (opts.lineId) where += ` AND line_id = $${params.push(opts.lineId)}`;
  if (opts.memberId) where += ` AND member_id = $${params.push(opts.memberId)}`;
  const n = params.push(Math.min(Math.max(opts.limit ?? 500, 1), 5000));
  const rows = await q.query<{ id: string | number; member_id: string; line_id: string; cycle_start: string; at: Date | string; kind: UsageKind; amount: number; hotspot: boolean; decision: Decision; reason: Reason }>(
    `SELECT id, member_id, line_id, cycle_start::text AS cycle_start, at, kind, amount, hotspot, decision, reason FROM usage_events WHERE ${where} ORDER BY id DESC LIMIT $${n}`,
    params,
  );
  return rows.reverse().map((r) => ({
    id: String(r.id), memberId: r.member_id, lineId: r.line_id, cycle: r.cycle_start, at: new Date(r.at).toISOString(),
    kind: r.kind, amount: r.amount, hotspot: r.hotspot, decision: r.decision, reason: r.reason,
  }));
}

// ---- the clock

export interface ClockResult {
  groupId: string;
  now: string;
  offsetSeconds: number;
  cycle: { start: string; end: string; daysLeft: number };
  rolledOver: boolean;
  from: string;
}

async function moveClock(db: Database, groupId: string, seconds: (c: CycleState) => number): Promise<ClockResult> {
  return db.tx(async (q) => {
    const g = await loadGroup(q, groupId);
    const before = await syncCycle(q, g);
    await advanceClock(q, g.id, seconds(before));
    const after = await syncCycle(q, g);
    return {
      groupId: g.id, now: after.now.toISOString(), offsetSeconds: after.offsetSeconds,
      cycle: { start: after.start, end: after.end, daysLeft: after.daysLeft }, rolledOver: after.start !== before.start, from: before.start,
    };
  });
}

/** Moves the group's clock forward (days and/or seconds); rolls the cycle over when it passes its end. */
export function advanceGroupClock(db: Database, groupId: string, by: { days?: number; seconds?: number }): Promise<ClockResult> {
  const secs = (by.days ?? 0) * 86_400 + (by.seconds ?? 0);
  if (!Number.isFinite(secs) || secs <= 0 || secs > 3650 * 86_400) throw new UsageError('invalid', 'advance by a positive number of days (at most 3650) or seconds');
  return moveClock(db, groupId, () => secs);
}

/** Moves the group's clock to the start of its next billing cycle: the counters start again from zero. */
export function rollover(db: Database, groupId: string): Promise<ClockResult> {
  return moveClock(db, groupId, (c) => Math.ceil((new Date(`${c.end}T00:00:00Z`).getTime() - c.now.getTime()) / 1000));
}

/** The group's clock and cycle. */
export async function clockOf(db: Database, groupId: string): Promise<{ now: string; offsetSeconds: number; cycle: ReturnType<typeof cycleOf> }> {
  const g = await loadGroup(db, groupId);
  const c = await groupClock(db, g.id);
  return { now: c.now.toISOString(), offsetSeconds: c.offsetSeconds, cycle: cycleOf(c.now, g.billing_cycle_day) };
}
