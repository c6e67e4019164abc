/**
 * DeleteEvent after an order is done (docs/smds.md#when-events-are-deleted): a profile with an SM-DS
 * event (smds_address set at confirmOrder) that is installed, or whose order is cancelled, gets a row
 * in smds_deletions written in the statement of that change (a listener of
 * src/orders/state-machine.ts, like the operator callbacks); the app's deleter then calls ES12
 * DeleteEvent outside any transaction and removes the row, retrying with back-off while the SM-DS is
 * unreachable. An SM-DS that no longer knows the event (8.9.5/3.9) counts as done.
 */
import type { FastifyInstance } from 'fastify';
import type { Database, Queryable } from '../db/db.js';
import { FunctionFailed } from '../errors.js';
import { onProfileChange, type Action, type ProfileChange } from '../orders/state-machine.js';
import type { Es12Caller } from './es12-client.js';

/** The changes that end an SM-DS event: a completed download, a cancelled order. */
const ENDS_EVENT = new Set<Action>(['installed', 'cancelOrder']);

export function deletionWanted(c: ProfileChange): { smdsAddress: string; eid: string; eventId: string } | undefined {
  const { smds_address: smds, eid, matching_id: eventId } = c.row;
  if (!smds || !eid || !eventId || !ENDS_EVENT.has(c.action)) return undefined;
  // A Confirmed order has no event yet: it is registered when the order is released (docs/smds.md).
  if (c.from === 'Confirmed') return undefined;
  return { smdsAddress: smds, eid, eventId };
}

onProfileChange({
  parts(c) {
    const d = deletionWanted(c);
    if (!d) return [];
    return [{
      sql: `INSERT INTO smds_deletions (smds_address, eid, event_id) SELECT $1::text, $2::text, $3::text FROM t`,
      params: [d.smdsAddress, d.eid, d.eventId],
    }];
  },
});

/** A DeleteEvent to send later (an event registered for a change that did not happen after all). */
export async function queueSmdsDeletion(q: Queryable, smdsAddress: string, eid: string, eventId: string): Promise<void> {
  await q.query('INSERT INTO smds_deletions (smds_address, eid, event_id) VALUES ($1, $2, $3)', [smdsAddress, eid, eventId]);
}

interface DeletionRow {
  id: string;
  smds_address: string;
  eid: string;
  event_id: string;
  attempts: number;
}

/** Back-off after a failed attempt: 5 s doubling up to an hour. */
const backoffSeconds = (attempts: number) => Math.min(5 * 2 ** Math.min(attempts, 10), 3600);

/** One pass: claims the due rows (a lease of a minute), calls DeleteEvent for each; answers how many were done. */
export async function runDeletions(db: Database, caller: Es12Caller, limit = 20): Promise<number> {
  const rows = await db.query<DeletionRow>(
    `UPDATE smds_deletions SET next_attempt_at = now() + interval '60 seconds'
      WHERE id IN (SELECT id FROM smds_deletions WHERE next_attempt_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING id, smds_address, eid, event_id, attempts`,
    [limit],
  );
  let done = 0;
  for (const r of rows) {
    let error: string | undefined;
    try {
      const res = await caller.deleteEvent(r.smds_address, { eid: r.eid, eventId: r.event_id });
      if (!res.ok && !(res.status.subjectCode === '8.9.5' && res.status.reasonCode === '3.9')) {
        error = `${res.status.subjectCode}/${res.status.reasonCode} ${res.status.message}`;
      }
    } catch (err) {
      error = err instanceof FunctionFailed ? err.message : String(err);
    }
    if (error === undefined) {
      await db.query('DELETE FROM smds_deletions WHERE id = $1', [r.id]);
      done++;
    } else {
      await db.query(
        `UPDATE smds_deletions SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3::int) WHERE id = $1`,
        [r.id, error.slice(0, 500), backoffSeconds(r.attempts)],
      );
    }
  }
  return done;
}

/** Runs the deleter every `intervalMs` while the app is up. */
export function startDeleter(app: FastifyInstance, db: Database, caller: Es12Caller, intervalMs = 500): void {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const tick = () => {
    if (stopped) return;
    running = runDeletions(db, caller)
      .catch((err) => app.log.warn({ err }, 'SM-DS event deletion failed'))
      .finally(() => { running = undefined; if (!stopped) timer = setTimeout(tick, intervalMs).unref(); });
  };
  app.addHook('onReady', async () => { timer = setTimeout(tick, intervalMs).unref(); });
  app.addHook('preClose', async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  });
}
