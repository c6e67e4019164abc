/**
 * Local times for family-control tests: the instant of a wall-clock time in a zone (found with Intl,
 * as the server reads it back), a coming weekday, and moving a group's test clock there.
 */
import type { FamilyApi } from './family-usage.js';

/** The instant of local date `ymd` (YYYY-MM-DD) at `hhmm` in `zone`. */
export function instantAt(zone: string, ymd: string, hhmm: string): Date {
  const [y, mo, d] = ymd.split('-').map(Number) as [number, number, number];
  const [h, mi] = hhmm.split(':').map(Number) as [number, number];
  const guess = Date.UTC(y, mo - 1, d, h, mi);
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
    .formatToParts(new Date(guess)).map((p) => [p.type, p.value]));
  const seen = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour) % 24, Number(parts.minute));
  return new Date(guess - (seen - guess));
}

/** The date (YYYY-MM-DD, UTC) of the first `weekday` (0 = Sunday … 6 = Saturday) at least `minDays` after `from`. */
export function nextWeekday(from: Date, weekday: number, minDays: number): string {
  const d = new Date(from.getTime() + minDays * 86_400_000);
  while (d.getUTCDay() !== weekday) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

export const addDays = (ymd: string, n: number) => new Date(Date.parse(`${ymd}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

/** Moves the group's clock forward to `target` (it only moves forward). */
export async function clockTo(api: FamilyApi, g: string, target: Date): Promise<void> {
  const c = await api.ok('GET', `/family/groups/${g}/clock`);
  const seconds = Math.ceil((target.getTime() - Date.parse(c.now)) / 1000);
  if (seconds <= 0) throw new Error(`clock already past ${target.toISOString()}`);
  await api.ok('POST', `/family/groups/${g}/clock/advance`, { seconds });
}
