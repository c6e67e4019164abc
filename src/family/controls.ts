/**
 * Family controls (docs/family.md, "Controls"): the group's time zone, emergency numbers, home
 * country and roaming allowance, the add-ons it sells; each member's time windows, trusted numbers,
 * own roaming allowance and spend limit. Plain data access and the pure time-window logic; the
 * decisions that use them are in usage.ts, purchases in purchases.ts.
 */
import type { Queryable } from '../db/db.js';
import { GROUP_EVENT, recordGroupEvent } from './events.js';
import { FamilyError, type GroupRow, type MemberRow } from './store.js';

export type Blockable = 'voice' | 'sms' | 'data';
export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

export interface TimeWindow {
  /** Names the rule of a decision it makes: 'time-window:<name>'. */
  name: string;
  blocks: Blockable[];
  /** The days the window starts on (a window crossing midnight runs into the next day). */
  days: Weekday[];
  /** 'HH:MM' local time; `to` may be '24:00'; `to` before `from` crosses midnight. */
  from: string;
  to: string;
}

export const DEFAULT_EMERGENCY_NUMBERS = ['112', '911', '999', '000', '110', '119'];

export interface GroupControls {
  timeZone: string;
  emergencyNumbers: string[];
}

export interface RoamingPlan {
  homeCountry: string | null;
  dataMb: number;
  voiceMin: number;
  sms: number;
  atAllowance: 'block' | 'throttle';
}

export interface PassOffer {
  id: string;
  name: string;
  kind: 'roaming' | 'data';
  dataMb: number;
  voiceMin: number;
  sms: number;
  validityHours: number;
  /** Minor units of the group's pass currency. */
  price: number;
}

export interface MemberControls {
  timeWindows: TimeWindow[];
  trustedNumbers: string[];
  roaming: { dataMb: number | null; voiceMin: number | null; sms: number | null };
  /** Add-on spending per billing cycle, minor units (null: no limit). */
  spendLimit: number | null;
}

/** The columns of 012_family_controls.sql on the two rows (SELECT * brings them). */
export interface GroupControlColumns {
  time_zone: string;
  emergency_numbers: string[];
  home_country: string | null;
  roaming_data_mb: number;
  roaming_voice_min: number;
  roaming_sms: number;
  roaming_at_allowance: 'block' | 'throttle';
  pass_currency: string;
  pass_offers: PassOffer[];
}

export interface MemberControlColumns {
  time_windows: TimeWindow[];
  trusted_numbers: string[];
  roaming_cap_data_mb: number | null;
  roaming_cap_voice_min: number | null;
  roaming_cap_sms: number | null;
  spend_limit: number | null;
}

type G = GroupRow & Partial<GroupControlColumns>;
type M = MemberRow & Partial<MemberControlColumns>;

// ---- numbers

/** A phone number as compared: digits only (a leading + and spaces, dashes, dots, brackets dropped). */
export function normaliseNumber(n: string): string {
  return n.replace(/[\s().-]/g, '').replace(/^\+/, '');
}

const NUMBER = /^\+?[0-9]{2,15}$/;

export function checkNumber(n: string, what: string): string {
  const s = normaliseNumber(n);
  if (!NUMBER.test(s)) throw new FamilyError('invalid', `${what} ${JSON.stringify(n)} is not a phone number (2 to 15 digits, optionally after +)`);
  return s;
}

function checkNumbers(list: string[], what: string): string[] {
  return [...new Set(list.map((n) => checkNumber(n, what)))];
}

// ---- time zone and local time

/** Verify an IANA time-zone name (as Intl knows it); answers it. */
export function checkTimeZone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new FamilyError('invalid', `unknown time zone ${JSON.stringify(tz)}: give an IANA name such as Europe/Berlin or America/New_York`);
  }
  return tz;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday (0 = Monday … 6 = Sunday) and minute of the day of `at` in zone `tz`. */
export function localTime(at: Date, tz: string): { weekday: number; minute: number; text: string } {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(tz, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  const weekday = WEEKDAYS.indexOf(String(parts.weekday).slice(0, 3).toLowerCase() as Weekday);
  const hour = Number(parts.hour) % 24;
  const minute = hour * 60 + Number(parts.minute);
  return { weekday, minute, text: `${WEEKDAYS[weekday]} ${String(hour).padStart(2, '0')}:${String(parts.minute).padStart(2, '0')}` };
}

const HHMM = /^([01][0-9]|2[0-3]):([0-5][0-9])$|^24:00$/;

function minuteOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

/** Verify a member's windows: names unique, times HH:MM, from ≠ to, something blocked on some day. */
export function checkWindows(ws: TimeWindow[]): TimeWindow[] {
  const names = new Set<string>();
  for (const w of ws) {
    if (names.has(w.name)) throw new FamilyError('invalid', `two time windows are named ${JSON.stringify(w.name)}; a window's name names its rule`);
    names.add(w.name);
    if (!HHMM.test(w.from) || w.from === '24:00') throw new FamilyError('invalid', `window ${w.name}: from must be HH:MM (00:00-23:59)`);
    if (!HHMM.test(w.to)) throw new FamilyError('invalid', `window ${w.name}: to must be HH:MM (00:00-24:00)`);
    if (w.to !== '24:00' && minuteOf(w.from) === minuteOf(w.to)) throw new FamilyError('invalid', `window ${w.name}: from and to are the same time; for a whole day use 00:00-24:00`);
    if (!w.blocks.length || !w.days.length) throw new FamilyError('invalid', `window ${w.name}: blocks and days must not be empty`);
  }
  return ws.map((w) => ({ name: w.name, blocks: [...new Set(w.blocks)], days: [...new Set(w.days)], from: w.from, to: w.to }));
}

/**
 * The first window blocking `kind` at local (weekday, minute). A window from 21:00 to 07:00 on 'sun'
 * covers Sunday 21:00-24:00 and Monday 00:00-07:00; `to` is not part of the window.
 */
export function activeWindow(ws: TimeWindow[], kind: Blockable, weekday: number, minute: number): TimeWindow | undefined {
  const day = WEEKDAYS[weekday]!;
  const before = WEEKDAYS[(weekday + 6) % 7]!;
  return ws.find((w) => {
    if (!w.blocks.includes(kind)) return false;
    const from = minuteOf(w.from);
    const to = minuteOf(w.to);
    if (from < to) return w.days.includes(day) && minute >= from && minute < to;
    return (w.days.includes(day) && minute >= from) || (w.days.includes(before) && minute < to);
  });
}

// ---- reading

export function groupControlsOf(g: G): GroupControls & { roaming: RoamingPlan; passes: { currency: string; offers: PassOffer[] } } {
  return {
    timeZone: g.time_zone ?? 'UTC',
    emergencyNumbers: g.emergency_numbers ?? DEFAULT_EMERGENCY_NUMBERS,
    roaming: {
      homeCountry: g.home_country ?? null,
      dataMb: g.roaming_data_mb ?? 0,
      voiceMin: g.roaming_voice_min ?? 0,
      sms: g.roaming_sms ?? 0,
      atAllowance: g.roaming_at_allowance ?? 'block',
    },
    passes: { currency: g.pass_currency ?? 'EUR', offers: g.pass_offers ?? [] },
  };
}

export function memberControlsOf(m: M): MemberControls {
  return {
    timeWindows: m.time_windows ?? [],
    trustedNumbers: m.trusted_numbers ?? [],
    roaming: { dataMb: m.roaming_cap_data_mb ?? null, voiceMin: m.roaming_cap_voice_min ?? null, sms: m.roaming_cap_sms ?? null },
    spendLimit: m.spend_limit ?? null,
  };
}

// ---- writing (each logs its group event, in the caller's transaction)

export async function setTimeZone(q: Queryable, g: GroupRow, timeZone: string, by: string): Promise<G> {
  const tz = checkTimeZone(timeZone);
  const [row] = await q.query<G>('UPDATE family_groups SET time_zone = $2, updated_at = now() WHERE id = $1 RETURNING *', [g.id, tz]);
  await recordGroupEvent(q, g.id, GROUP_EVENT.timeZoneSet, { from: (g as G).time_zone ?? 'UTC', to: tz, by });
  return row!;
}

export async function setEmergencyNumbers(q: Queryable, g: GroupRow, numbers: string[] | null, by: string): Promise<G> {
  const list = numbers === null ? DEFAULT_EMERGENCY_NUMBERS : checkNumbers(numbers, 'emergency number');
  const [row] = await q.query<G>('UPDATE family_groups SET emergency_numbers = $2, updated_at = now() WHERE id = $1 RETURNING *', [g.id, list]);
  await recordGroupEvent(q, g.id, GROUP_EVENT.emergencyNumbersSet, { numbers: list, by });
  return row!;
}

export async function setRoamingPlan(q: Queryable, g: GroupRow, r: Partial<RoamingPlan>, by: string): Promise<G> {
  const plan: RoamingPlan = {
    homeCountry: r.homeCountry ?? null, dataMb: r.dataMb ?? 0, voiceMin: r.voiceMin ?? 0, sms: r.sms ?? 0, atAllowance: r.atAllowance ?? 'block',
  };
  if (plan.homeCountry !== null && !/^[A-Z]{2}$/.test(plan.homeCountry)) throw new FamilyError('invalid', 'homeCountry must be an ISO 3166-1 alpha-2 code (two capital letters)');
  const [row] = await q.query<G>(
    `UPDATE family_groups SET home_country = $2, roaming_data_mb = $3, roaming_voice_min = $4, roaming_sms = $5, roaming_at_allowance = $6, updated_at = now()
      WHERE id = $1 RETURNING *`,
    [g.id, plan.homeCountry, plan.dataMb, plan.voiceMin, plan.sms, plan.atAllowance],
  );
  await recordGroupEvent(q, g.id, GROUP_EVENT.roamingPlanSet, { ...plan, by });
  return row!;
}

export async function setPassOffers(q: Queryable, g: GroupRow, p: { currency?: string; offers: PassOffer[] }, by: string): Promise<G> {
  const ids = new Set<string>();
  for (const o of p.offers) {
    if (ids.has(o.id)) throw new FamilyError('invalid', `two passes have the id ${o.id}`);
    ids.add(o.id);
    if (!(o.dataMb || o.voiceMin || o.sms)) throw new FamilyError('invalid', `pass ${o.id} gives nothing: set dataMb, voiceMin or sms`);
  }
  const offers = p.offers.map((o) => ({ id: o.id, name: o.name, kind: o.kind, dataMb: o.dataMb ?? 0, voiceMin: o.voiceMin ?? 0, sms: o.sms ?? 0, validityHours: o.validityHours, price: o.price }));
  const currency = p.currency ?? (g as G).pass_currency ?? 'EUR';
  const [row] = await q.query<G>('UPDATE family_groups SET pass_offers = $2, pass_currency = $3, updated_at = now() WHERE id = $1 RETURNING *', [g.id, JSON.stringify(offers), currency]);
  await recordGroupEvent(q, g.id, GROUP_EVENT.passesSet, { currency, passes: offers.map((o) => o.id), by });
  return row!;
}

/** Replaces the member's controls with those given (absent parts are kept). */
export async function setMemberControls(q: Queryable, m: MemberRow, c: Partial<MemberControls>, by: string): Promise<M> {
  if (c.timeWindows === undefined && c.trustedNumbers === undefined && c.roaming === undefined && c.spendLimit === undefined) {
    throw new FamilyError('invalid', 'nothing to set: give timeWindows, trustedNumbers, roaming or spendLimit');
  }
  const before = memberControlsOf(m);
  const next: MemberControls = {
    timeWindows: c.timeWindows !== undefined ? checkWindows(c.timeWindows) : before.timeWindows,
    trustedNumbers: c.trustedNumbers !== undefined ? checkNumbers(c.trustedNumbers, 'trusted number') : before.trustedNumbers,
    roaming: c.roaming !== undefined
      ? { dataMb: c.roaming.dataMb ?? null, voiceMin: c.roaming.voiceMin ?? null, sms: c.roaming.sms ?? null }
      : before.roaming,
    spendLimit: c.spendLimit !== undefined ? c.spendLimit : before.spendLimit,
  };
  const [row] = await q.query<M>(
    `UPDATE family_members SET time_windows = $2, trusted_numbers = $3, roaming_cap_data_mb = $4, roaming_cap_voice_min = $5, roaming_cap_sms = $6,
       spend_limit = $7, updated_at = now() WHERE id = $1 RETURNING *`,
    [m.id, JSON.stringify(next.timeWindows), next.trustedNumbers, next.roaming.dataMb, next.roaming.voiceMin, next.roaming.sms, next.spendLimit],
  );
  const changed = (Object.keys(next) as Array<keyof MemberControls>).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(before[k]));
  await recordGroupEvent(q, m.group_id, GROUP_EVENT.controlsSet, { member: m.id, memberName: m.name, changed, after: next, by });
  return row!;
}
