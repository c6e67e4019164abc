/**
 * The family-plan clock: the database's now() plus an offset that tests and QA can advance (globally
 * with scope '*', or for one group), and the billing cycles it falls in. A cycle starts at 00:00 UTC
 * on the group's billing_cycle_day (1..28) and ends where the next one starts.
 */
import type { Queryable } from '../db/db.js';

const GLOBAL_SCOPE = '*';
const DAY_MS = 86_400_000;

export interface GroupClock {
  now: Date;
  offsetSeconds: number;
}

/** The group's current time and its total offset (global + group). */
export async function groupClock(q: Queryable, groupId: string): Promise<GroupClock> {
  const [r] = await q.query<{ now: Date; off: string | number | null }>(
    `SELECT now() AS now, (SELECT COALESCE(sum(offset_seconds), 0) FROM family_clock WHERE scope IN ($1, $2)) AS off`,
    [GLOBAL_SCOPE, groupId],
  );
  const offsetSeconds = Number(r!.off ?? 0);
  return { now: new Date(new Date(r!.now).getTime() + offsetSeconds * 1000), offsetSeconds };
}

/** Moves a clock (a group's, or '*' for all) forward by `seconds`; answers the scope's new offset. */
export async function advanceClock(q: Queryable, scope: string, seconds: number): Promise<number> {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError('the clock only moves forward');
  const [r] = await q.query<{ offset_seconds: string | number }>(
    `INSERT INTO family_clock (scope, offset_seconds) VALUES ($1, $2)
     ON CONFLICT (scope) DO UPDATE SET offset_seconds = family_clock.offset_seconds + EXCLUDED.offset_seconds, updated_at = now()
     RETURNING offset_seconds`,
    [scope, Math.round(seconds)],
  );
  return Number(r!.offset_seconds);
}

/** 'YYYY-MM-DD' of a UTC date. */
export function isoDate(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/** The start (00:00 UTC) of the billing cycle containing `at`. */
export function cycleStart(at: Date, billingDay: number): Date {
  let y = at.getUTCFullYear();
  let m = at.getUTCMonth();
  if (at.getUTCDate() < billingDay) {
    m -= 1;
    if (m < 0) {
      m = 11;
      y -= 1;
    }
  }
  return new Date(Date.UTC(y, m, billingDay));
}

/** The start of the cycle after the one starting at `start`. */
export function nextCycleStart(start: Date): Date {
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, start.getUTCDate()));
}

export interface Cycle {
  start: string;
  end: string;
  daysLeft: number;
}

export function cycleOf(at: Date, billingDay: number): Cycle {
  const s = cycleStart(at, billingDay);
  const e = nextCycleStart(s);
  return { start: isoDate(s), end: isoDate(e), daysLeft: Math.ceil((e.getTime() - at.getTime()) / DAY_MS) };
}
