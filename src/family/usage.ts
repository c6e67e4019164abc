/**
 * Usage against a family plan. Every usage event of a line (data MB, optionally over the hotspot;
 * voice minutes; SMS) gets a decision:
 *
 *   data   member cap (cap_data_mb, hotspot included) → at_cap 'block' → blocked / 'throttle' → throttled
 *          hotspot: member cap_hotspot_mb, then the group's hotspot allowance  → blocked
 *          pool (plan_data_mb)                                                  → throttled (for everyone)
 *   voice / sms: member cap, then the pool → blocked
 *
 * Before those, the controls of docs/family.md, in this order: an emergency number (voice, SMS) is
 * always allowed and free; a time window of the member blocking the kind at the group's local time
 * blocks it, unless the other party is one of the member's trusted numbers; a roaming event (a
 * visited country other than the home country) draws from a roaming pass, else from the member's and
 * the pool's roaming allowance (block or throttle at the allowance), never from the home pool; at
 * home, data the member cap or the pool would refuse is carried by a data pass when the member has one.
 * Each decision names its rule (Rule).
 *
 * An event is granted whole or not at all; only allowed usage counts against caps and the pool
 * (throttled data is counted apart). Events of a group are serialised on its family_cycles row
 * (FOR UPDATE), so concurrent events never overspend. The first cap hit / pool exhaustion of a cycle
 * and each cycle rollover are logged as group events (and go to the operator's callback).
 */
import type { Database, Queryable } from '../db/db.js';
import { advanceClock, cycleOf, cycleStart, groupClock, isoDate, nextCycleStart } from './clock.js';
import { activeWindow, localTime, normaliseNumber, type GroupControlColumns, type MemberControlColumns } from './controls.js';
import { GROUP_EVENT, recordGroupEvent, type GroupEventType } from './events.js';
import { listPurchases, publicPurchase, purchaseState, usablePasses, type PublicPurchase, type PurchaseRow } from './purchases.js';

export type UsageKind = 'data' | 'voice' | 'sms';
export type Decision = 'allowed' | 'throttled' | 'blocked';
export type Reason =
  | 'withinPlan' | 'memberCap' | 'memberHotspotCap' | 'hotspotAllowance' | 'poolExhausted'
  // controls (docs/family.md)
  | 'emergencyNumber' | 'trustedNumber' | 'timeWindow' | 'roamingAllowance' | 'roamingMemberAllowance' | 'roamingPass' | 'dataPass';

/**
 * The rule that decided an event (usage_events.rule, the `rule` of the answer and of the event log):
 * 'emergency-number', 'time-window:<window name>', 'trusted-number' (a window let it through),
 * 'member-cap', 'member-hotspot-cap', 'hotspot-allowance', 'pool' (allowed from, or refused by, the
 * home pool), 'data-pass', 'roaming-pass', 'roaming-member-allowance', 'roaming-allowance'.
 */
export type Rule = string;

const RULE_OF: Record<Reason, Rule> = {
  withinPlan: 'pool', poolExhausted: 'pool', memberCap: 'member-cap', memberHotspotCap: 'member-hotspot-cap', hotspotAllowance: 'hotspot-allowance',
  emergencyNumber: 'emergency-number', trustedNumber: 'trusted-number', timeWindow: 'time-window', roamingAllowance: 'roaming-allowance',
  roamingMemberAllowance: 'roaming-member-allowance', roamingPass: 'roaming-pass', dataPass: 'data-pass',
};

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
  /** Voice and SMS: the number called or texted (emergency and trusted numbers are exempt from time windows). */
  otherParty?: string;
  /** ISO 3166-1 alpha-2 country the line is in; absent or the group's home country: home. */
  visitedCountry?: string;
}

/** The group row as usage reads it: the plan and the controls' group columns (controls.ts). */
interface GroupPlan extends Omit<GroupControlColumns, 'pass_currency' | 'pass_offers'> {
  id: string;
  plan_data_mb: number;
  plan_voice_min: number;
  plan_sms: number;
  hotspot_mb: number;
  billing_cycle_day: number;
}

/** A member as usage reads it: its caps and its controls' columns (controls.ts). */
interface MemberCaps extends MemberControlColumns {
  id: string;
  name: string;
  role: string;
  cap_data_mb: number | null;
  cap_voice_min: number | null;
  cap_sms: number | null;
  cap_hotspot_mb: number | null;
  at_cap: 'block' | 'throttle';
}

const MEMBER_COLUMNS = `id, name, role, cap_data_mb, cap_voice_min, cap_sms, cap_hotspot_mb, at_cap, time_windows, trusted_numbers,
  roaming_cap_data_mb, roaming_cap_voice_min, roaming_cap_sms, spend_limit`;

export interface Counters {
  dataMb: number;
  hotspotMb: number;
  throttledMb: number;
  voiceMin: number;
  sms: number;
  blocked: number;
  roamingDataMb: number;
  roamingVoiceMin: number;
  roamingSms: number;
  roamingThrottledMb: number;
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
  roaming_data_mb: string | number;
  roaming_voice_min: string | number;
  roaming_sms: string | number;
  roaming_throttled_mb: string | number;
}

const ZERO: Counters = { dataMb: 0, hotspotMb: 0, throttledMb: 0, voiceMin: 0, sms: 0, blocked: 0, roamingDataMb: 0, roamingVoiceMin: 0, roamingSms: 0, roamingThrottledMb: 0 };

function counters(r: CounterRow | undefined): Counters {
  if (!r) return { ...ZERO };
  return {
    dataMb: Number(r.data_mb), hotspotMb: Number(r.hotspot_mb), throttledMb: Number(r.throttled_mb),
    voiceMin: Number(r.voice_min), sms: Number(r.sms), blocked: Number(r.blocked),
    roamingDataMb: Number(r.roaming_data_mb ?? 0), roamingVoiceMin: Number(r.roaming_voice_min ?? 0), roamingSms: Number(r.roaming_sms ?? 0),
    roamingThrottledMb: Number(r.roaming_throttled_mb ?? 0),
  };
}

const GROUP_COLUMNS = `id, plan_data_mb, plan_voice_min, plan_sms, hotspot_mb, billing_cycle_day, time_zone, emergency_numbers, home_country,
  roaming_data_mb, roaming_voice_min, roaming_sms, roaming_at_allowance`;

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
export async function syncCycle(q: Queryable, g: Pick<GroupPlan, 'id' | 'billing_cycle_day'>): Promise<CycleState> {
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
  /** The rule that decided (see Rule). */
  rule: Rule;
  kind: UsageKind;
  amount: number;
  hotspot: boolean;
  otherParty: string | null;
  visitedCountry: string | null;
  roaming: boolean;
  /** The pass the event drew from (rule data-pass or roaming-pass). */
  purchaseId: string | null;
  groupId: string;
  memberId: string;
  lineId: string;
  at: string;
  /** The group's local time the time windows were read at ('mon 08:15') and its zone. */
  localTime: { zone: string; at: string };
  cycle: { start: string; end: string };
  /** What is left after this event (null: no such cap). */
  remaining: {
    pool: number; member: number | null; hotspot: number | null; memberHotspot: number | null;
    roaming?: { pool: number; member: number | null };
    pass?: number;
  };
}

const POOL_OF: Record<UsageKind, keyof GroupPlan> = { data: 'plan_data_mb', voice: 'plan_voice_min', sms: 'plan_sms' };
const CAP_OF: Record<UsageKind, keyof MemberCaps> = { data: 'cap_data_mb', voice: 'cap_voice_min', sms: 'cap_sms' };
const USED_OF: Record<UsageKind, keyof Counters> = { data: 'dataMb', voice: 'voiceMin', sms: 'sms' };
const ROAMING_POOL_OF: Record<UsageKind, keyof GroupPlan> = { data: 'roaming_data_mb', voice: 'roaming_voice_min', sms: 'roaming_sms' };
const ROAMING_CAP_OF: Record<UsageKind, keyof MemberCaps> = { data: 'roaming_cap_data_mb', voice: 'roaming_cap_voice_min', sms: 'roaming_cap_sms' };
const ROAMING_USED_OF: Record<UsageKind, keyof Counters> = { data: 'roamingDataMb', voice: 'roamingVoiceMin', sms: 'roamingSms' };
const PASS_LEFT: Record<UsageKind, (p: PurchaseRow) => number> = {
  data: (p) => p.data_mb - Number(p.used_data_mb),
  voice: (p) => p.voice_min - Number(p.used_voice_min),
  sms: (p) => p.sms - Number(p.used_sms),
};

function validate(u: UsageInput): void {
  if (!['data', 'voice', 'sms'].includes(u.kind)) throw new UsageError('invalid', 'kind must be data, voice or sms');
  if (!Number.isInteger(u.amount) || u.amount < 1 || u.amount > 10_000_000) throw new UsageError('invalid', 'amount must be a whole number from 1 to 10000000 (MB, minutes or messages)');
  if (u.hotspot && u.kind !== 'data') throw new UsageError('invalid', 'hotspot applies to data only');
  if (u.otherParty !== undefined) {
    if (u.kind === 'data') throw new UsageError('invalid', 'otherParty is the number called or texted: voice and sms only');
    if (typeof u.otherParty !== 'string' || !/^\+?[0-9]{2,15}$/.test(normaliseNumber(u.otherParty))) throw new UsageError('invalid', 'otherParty must be a phone number: 2 to 15 digits, optionally after +');
  }
  if (u.visitedCountry !== undefined && (typeof u.visitedCountry !== 'string' || !/^[A-Z]{2}$/.test(u.visitedCountry))) {
    throw new UsageError('invalid', 'visitedCountry must be an ISO 3166-1 alpha-2 code (two capital letters)');
  }
}

/** Where an allowed event is counted. */
type Draw = 'home' | 'roaming' | 'pass' | 'free';

/** Records one usage event and answers its decision. */
export async function recordUsage(db: Database, u: UsageInput): Promise<UsageResult> {
  validate(u);
  const hotspot = !!u.hotspot;
  return db.tx(async (q) => {
    const g = await loadGroup(q, u.groupId);
    const cycle = await syncCycle(q, g); // the group's lock from here on
    const [line] = await q.query<{ id: string; member_id: string }>('SELECT id, member_id FROM family_lines WHERE id = $1 AND group_id = $2', [u.lineId, g.id]);
    if (!line) throw new UsageError('notFound', `no line ${u.lineId} in group ${g.id}`);
    const [m] = await q.query<MemberCaps>(`SELECT ${MEMBER_COLUMNS} FROM family_members WHERE id = $1`, [line.member_id]);
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
    const roamingUsed = ROAMING_USED_OF[u.kind];
    const roamingPool = g[ROAMING_POOL_OF[u.kind]] as number;
    const roamingCap = m![ROAMING_CAP_OF[u.kind]] as number | null;

    const otherParty = u.otherParty !== undefined ? normaliseNumber(u.otherParty) : null;
    const visitedCountry = u.visitedCountry ?? null;
    const roaming = visitedCountry !== null && visitedCountry !== g.home_country;
    const local = localTime(cycle.now, g.time_zone);
    const atAllowance = (): Decision => (u.kind === 'data' && g.roaming_at_allowance === 'throttle' ? 'throttled' : 'blocked');

    let decision: Decision = 'allowed';
    let reason: Reason = 'withinPlan';
    let rule: Rule | undefined;
    let draw: Draw = 'home';
    let pass: PurchaseRow | undefined;
    let trusted = false;
    let decided = false;

    // 1. Emergency numbers: always allowed, free, whatever else applies.
    if (otherParty !== null && g.emergency_numbers.includes(otherParty)) {
      reason = 'emergencyNumber';
      draw = 'free';
      decided = true;
    }
    // 2. The member's time windows (in the group's time zone); trusted numbers pass them.
    if (!decided) {
      const w = activeWindow(m!.time_windows ?? [], u.kind, local.weekday, local.minute);
      if (w && otherParty !== null && (m!.trusted_numbers ?? []).includes(otherParty)) {
        trusted = true;
      } else if (w) {
        decision = 'blocked';
        reason = 'timeWindow';
        rule = `time-window:${w.name}`;
        draw = 'free';
        decided = true;
      }
    }
    // 3. Roaming: a roaming pass first (it expires), then the member's and the pool's roaming allowance. Never the home pool.
    if (!decided && roaming) {
      pass = (await usablePasses(q, m!.id, 'roaming', cycle.now)).find((p) => PASS_LEFT[u.kind](p) >= u.amount);
      if (pass) {
        reason = 'roamingPass';
        draw = 'pass';
      } else if (roamingCap !== null && mine[roamingUsed] + u.amount > roamingCap) {
        decision = atAllowance();
        reason = 'roamingMemberAllowance';
      } else if (pool[roamingUsed] + u.amount > roamingPool) {
        decision = atAllowance();
        reason = 'roamingAllowance';
      } else {
        reason = 'roamingAllowance';
        draw = 'roaming';
      }
      decided = true;
    }
    // 4. Home: member cap, hotspot, pool; a data pass carries data the cap or the pool would refuse.
    if (!decided) {
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
      if (decision !== 'allowed' && u.kind === 'data' && (reason === 'memberCap' || reason === 'poolExhausted')) {
        pass = (await usablePasses(q, m!.id, 'data', cycle.now)).find((p) => PASS_LEFT.data(p) >= u.amount);
        if (pass) {
          decision = 'allowed';
          reason = 'dataPass';
          draw = 'pass';
        }
      }
    }
    if (trusted && decision === 'allowed') reason = 'trustedNumber';
    rule ??= RULE_OF[reason];
    if (decision !== 'allowed') draw = 'free';

    // Count it: allowed usage where it was drawn from; throttled data apart; a refusal once.
    const ids = [g.id, m!.id, line.id];
    if (decision === 'allowed' && draw === 'home') {
      const column = { data: 'data_mb', voice: 'voice_min', sms: 'sms' }[u.kind];
      await q.query(`UPDATE family_usage_counters SET ${column} = ${column} + $4${hotspot ? ', hotspot_mb = hotspot_mb + $4' : ''} WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)`,
        [g.id, cycle.start, ids, u.amount]);
    } else if (decision === 'allowed' && draw === 'roaming') {
      const column = { data: 'roaming_data_mb', voice: 'roaming_voice_min', sms: 'roaming_sms' }[u.kind];
      await q.query(`UPDATE family_usage_counters SET ${column} = ${column} + $4 WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)`, [g.id, cycle.start, ids, u.amount]);
    } else if (decision === 'allowed' && draw === 'pass') {
      const column = { data: 'used_data_mb', voice: 'used_voice_min', sms: 'used_sms' }[u.kind];
      await q.query(`UPDATE family_purchases SET ${column} = ${column} + $2 WHERE id = $1`, [pass!.id, u.amount]);
    } else if (decision === 'throttled') {
      const column = roaming ? 'roaming_throttled_mb' : 'throttled_mb';
      await q.query(`UPDATE family_usage_counters SET ${column} = ${column} + $4 WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)`, [g.id, cycle.start, ids, u.amount]);
    } else if (decision === 'blocked') {
      await q.query('UPDATE family_usage_counters SET blocked = blocked + 1 WHERE group_id = $1 AND cycle_start = $2 AND scope_id = ANY($3)', [g.id, cycle.start, ids]);
    }
    const [ev] = await q.query<{ id: string | number }>(
      `INSERT INTO usage_events (group_id, member_id, line_id, cycle_start, at, kind, amount, hotspot, decision, reason, other_party, visited_country, roaming, rule, purchase_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
      [g.id, m!.id, line.id, cycle.start, cycle.now, u.kind, u.amount, hotspot, decision, reason, otherParty, visitedCountry, roaming, rule, pass?.id ?? null],
    );

    if (decision === 'allowed' && draw === 'home') {
      mine[used] += u.amount;
      pool[used] += u.amount;
      if (hotspot) {
        mine.hotspotMb += u.amount;
        pool.hotspotMb += u.amount;
      }
    } else if (decision === 'allowed' && draw === 'roaming') {
      mine[roamingUsed] += u.amount;
      pool[roamingUsed] += u.amount;
    }
    // Log the first time in the cycle a limit is reached (exactly, or by a refused event).
    const flag = async (row: CounterRow, name: string, reached: boolean, type: GroupEventType, detail: Record<string, unknown>) => {
      if (!reached || row.flags.includes(name)) return;
      await q.query(`UPDATE family_usage_counters SET flags = array_append(flags, $5::text) WHERE group_id = $1 AND cycle_start = $2 AND scope = $3 AND scope_id = $4`,
        [g.id, cycle.start, row.scope, row.scope_id, name]);
      await recordGroupEvent(q, g.id, type, { ...detail, cycle: cycle.start });
    };
    const who = { memberId: m!.id, memberName: m!.name, lineId: line.id };
    if (roaming) {
      if (draw !== 'pass' && roamingCap !== null) {
        await flag(memberRow, `roamingAllowance:${u.kind}`, reason === 'roamingMemberAllowance' || mine[roamingUsed] >= roamingCap, GROUP_EVENT.roamingAllowanceReached,
          { scope: 'member', ...who, kind: u.kind, allowance: roamingCap, used: mine[roamingUsed], visitedCountry, decision: atAllowance() });
      }
      if (draw !== 'pass' && reason !== 'roamingMemberAllowance') {
        await flag(groupRow, `roamingAllowance:${u.kind}`, reason === 'roamingAllowance' && (decision !== 'allowed' || pool[roamingUsed] >= roamingPool), GROUP_EVENT.roamingAllowanceReached,
          { scope: 'group', ...who, kind: u.kind, allowance: roamingPool, used: pool[roamingUsed], visitedCountry, decision: atAllowance() });
      }
    } else if (reason !== 'emergencyNumber' && reason !== 'timeWindow' && reason !== 'dataPass') {
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
    }

    const remaining: UsageResult['remaining'] = {
      pool: Math.max(0, poolSize - pool[used]),
      member: cap === null ? null : Math.max(0, cap - mine[used]),
      hotspot: u.kind === 'data' ? Math.max(0, g.hotspot_mb - pool.hotspotMb) : null,
      memberHotspot: u.kind === 'data' && m!.cap_hotspot_mb !== null ? Math.max(0, m!.cap_hotspot_mb - mine.hotspotMb) : null,
    };
    if (roaming) remaining.roaming = { pool: Math.max(0, roamingPool - pool[roamingUsed]), member: roamingCap === null ? null : Math.max(0, roamingCap - mine[roamingUsed]) };
    if (pass) remaining.pass = Math.max(0, PASS_LEFT[u.kind](pass) - (decision === 'allowed' ? u.amount : 0));
    return {
      eventId: String(ev!.id),
      decision,
      reason,
      rule,
      kind: u.kind,
      amount: u.amount,
      hotspot,
      otherParty,
      visitedCountry,
      roaming,
      purchaseId: pass?.id ?? null,
      groupId: g.id,
      memberId: m!.id,
      lineId: line.id,
      at: cycle.now.toISOString(),
      localTime: { zone: g.time_zone, at: local.text },
      cycle: { start: cycle.start, end: cycle.end },
      remaining,
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
  pool: {
    data: Limit & { throttledMb: number; exhausted: boolean }; hotspot: Limit; voice: Limit & { exhausted: boolean }; sms: Limit & { exhausted: boolean }; blocked: number;
    /** The pooled roaming allowance (drawn by roaming usage only). */
    roaming: RoamingUsage & { homeCountry: string | null; atAllowance: 'block' | 'throttle' };
  };
  members: Array<{
    memberId: string;
    name: string;
    role: string;
    atCap: 'block' | 'throttle';
    data: Limit; hotspot: Limit; voice: Limit; sms: Limit;
    throttledMb: number;
    blocked: number;
    /** Roaming drawn from the allowance against the member's own roaming allowance (null limit: the pool's only). */
    roaming: RoamingUsage;
    /** Add-on spending this cycle (active purchases), what waits for approval, and the limit. */
    spend: { limit: number | null; spent: number; pending: number };
    /** The member's passes that can still be used (active, not expired, something left). */
    passes: PublicPurchase[];
    lines: Array<{ lineId: string; device: string; name: string | null; usage: Counters }>;
  }>;
}

export interface RoamingUsage {
  data: Limit;
  voice: Limit;
  sms: Limit;
  throttledMb: number;
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
      `SELECT ${MEMBER_COLUMNS} FROM family_members WHERE group_id = $1
       ${opts.memberId ? 'AND id = $2' : ''} ORDER BY created_at, id`,
      opts.memberId ? [g.id, opts.memberId] : [g.id],
    );
    const lines = await q.query<{ id: string; member_id: string; device: string; name: string | null }>(
      'SELECT id, member_id, device, name FROM family_lines WHERE group_id = $1 ORDER BY created_at, id', [g.id]);
    const pool = byId.get(`group:${g.id}`) ?? { ...ZERO };
    const purchases = await listPurchases(q, g.id, opts.memberId ? { memberId: opts.memberId } : {});
    const spend = new Map(members.map((m) => {
      let spent = 0;
      let pending = 0;
      for (const p of purchases) {
        if (p.member_id !== m.id) continue;
        if (p.status === 'active' && p.cycle_start === start) spent += p.price;
        if (p.status === 'pending' && current) pending += p.price;
      }
      return [m.id, { spent, pending }] as const;
    }));
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
        roaming: {
          data: limit(g.roaming_data_mb, pool.roamingDataMb), voice: limit(g.roaming_voice_min, pool.roamingVoiceMin), sms: limit(g.roaming_sms, pool.roamingSms),
          throttledMb: pool.roamingThrottledMb, homeCountry: g.home_country, atAllowance: g.roaming_at_allowance,
        },
      },
      members: members.map((m) => {
        const c = byId.get(`member:${m.id}`) ?? { ...ZERO };
        const sp = spend.get(m.id) ?? { spent: 0, pending: 0 };
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
          roaming: {
            data: limit(m.roaming_cap_data_mb, c.roamingDataMb), voice: limit(m.roaming_cap_voice_min, c.roamingVoiceMin), sms: limit(m.roaming_cap_sms, c.roamingSms),
            throttledMb: c.roamingThrottledMb,
          },
          spend: { limit: m.spend_limit, ...sp },
          passes: purchases.filter((p) => p.member_id === m.id && purchaseState(p, cur.now) === 'active').map((p) => publicPurchase(p, cur.now)),
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
  rule: Rule;
  otherParty: string | null;
  visitedCountry: string | null;
  roaming: boolean;
  purchaseId: string | null;
}

export async function listUsageEvents(q: Queryable, groupId: string, opts: { lineId?: string; memberId?: string; limit?: number } = {}): Promise<UsageEventRow[]> {
  const params: unknown[] = [groupId];
  let where = 'group_id = $1';
  if (opts.lineId) where += ` AND line_id = $${params.push(opts.lineId)}`;
  if (opts.memberId) where += ` AND member_id = $${params.push(opts.memberId)}`;
  const n = params.push(Math.min(Math.max(opts.limit ?? 500, 1), 5000));
  const rows = await q.query<{ id: string | number; member_id: string; line_id: string; cycle_start: string; at: Date | string; kind: UsageKind; amount: number; hotspot: boolean; decision: Decision; reason: Reason;
    rule: string | null; other_party: string | null; visited_country: string | null; roaming: boolean; purchase_id: string | null }>(
    `SELECT id, member_id, line_id, cycle_start::text AS cycle_start, at, kind, amount, hotspot, decision, reason, rule, other_party, visited_country, roaming, purchase_id FROM usage_events WHERE ${where} ORDER BY id DESC LIMIT $${n}`,
    params,
  );
  return rows.reverse().map((r) => ({
    id: String(r.id), memberId: r.member_id, lineId: r.line_id, cycle: r.cycle_start, at: new Date(r.at).toISOString(),
    kind: r.kind, amount: r.amount, hotspot: r.hotspot, decision: r.decision, reason: r.reason,
    rule: r.rule ?? RULE_OF[r.reason] ?? r.reason, otherParty: r.other_party, visitedCountry: r.visited_country, roaming: r.roaming, purchaseId: r.purchase_id,
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
