/**
 * DeleteEvent after an order is done (docs/smds.md#when-events-are-deleted): a profile with an SM-DS
 * event (smds_address set at confirmOrder) that is installed, or whose order is cancelled, gets a row
 * in smds_deletions written in the statement of that change (a listener of
 * src/orders/state-machine.ts, like the operator callbacks); the app's deleter then calls ES12
 * DeleteEvent outside any transaction and removes the row, retrying with back-off while the SM-DS is
 * unreachable. An SM-DS that no longer knows the event (8.9.5/3.9) counts as done. Idle, the
 * deleter sleeps until a NOTIFY (migration 016) or the next due retry.
 */
import type { FastifyInstance } from 'fastify';
import type { Database, Listener, Queryable } from '../db/db.js';
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

/** One pass: claims the due rows (a lease of a minute), calls DeleteEvent for each; answers how many it claimed. */
export async function runDeletions(db: Database, caller: Es12Caller, limit = 20): Promise<number> {
  const rows = await db.query<DeletionRow>(
    `UPDATE smds_deletions SET next_attempt_at = now() + interval '60 seconds'
      WHERE id IN (SELECT id FROM smds_deletions WHERE next_attempt_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING id, smds_address, eid, event_id, attempts`,
    [limit],
  );
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
    } else {
      await db.query(
        `UPDATE smds_deletions SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + make_interval(secs => $3::int) WHERE id = $1`,
        [r.id, error.slice(0, 500), backoffSeconds(r.attempts)],
      );
    }
  }
  return rows.length;
}

/** The NOTIFY channel of migration 016's trigger on smds_deletions. */
export const SMDS_DELETIONS_CHANNEL = 'smds_deletions';

/** Milliseconds until the earliest queued deletion is due (<= 0: now), or null when none is queued. */
async function nextDueInMs(db: Database): Promise<number | null> {
  const [r] = await db.query<{ ms: number | null }>(
    'SELECT (extract(epoch FROM min(next_attempt_at) - now()) * 1000)::double precision AS ms FROM smds_deletions',
  );
  return r?.ms == null ? null : Number(r.ms);
}

export interface DeleterOptions {
  /** Sleep between passes while LISTEN is not working (ms, default 500). */
  pollMs?: number;
  /** Longest sleep while LISTEN works and nothing is due (ms, default 30 000). */
  idlePollMs?: number;
}

/**
 * Runs the deleter while the app is up. After a pass that found work it runs again at once; idle,
 * it sleeps until a NOTIFY on SMDS_DELETIONS_CHANNEL (a deletion queued by a commit), the earliest
 * queued deletion's due time, or `idlePollMs` as a safety net; without a working LISTEN it polls
 * every `pollMs`.
 */
export function startDeleter(app: FastifyInstance, db: Database, caller: Es12Caller, opts: DeleterOptions = {}): void {
  const pollMs = opts.pollMs ?? 500;
  const idlePollMs = opts.idlePollMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let again = false;
  let stopped = false;
  let listener: Listener | undefined;
  const schedule = (ms: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(tick, Math.max(0, ms)).unref();
  };
  const sleepMs = async (): Promise<number> => {
    const longest = listener?.active ? idlePollMs : pollMs;
    const due = await nextDueInMs(db);
    return due === null ? longest : Math.max(10, Math.min(longest, Math.ceil(due)));
  };
  function tick() {
    if (stopped) return;
    // A notification during a pass runs the next one right after it.
    if (running) return void (again = true);
    again = false;
    running = runDeletions(db, caller)
      .then(async (claimed) => (claimed > 0 || again ? 0 : sleepMs()))
      .catch((err) => {
        app.log.warn({ err }, 'SM-DS event deletion failed');
        return pollMs;
      })
      .then((ms) => {
        running = undefined;
        schedule(again ? 0 : ms);
      });
  }
  app.addHook('onReady', async () => {
    // Not awaited: a database slow to answer must not hold the app's start (until LISTEN works, it polls).
    db.listen(SMDS_DELETIONS_CHANNEL, () => schedule(0)).then(
      (l) => (stopped ? void l.close().catch(() => {}) : (listener = l)),
      (err: unknown) => app.log.warn({ err }, 'SM-DS event deletion: LISTEN failed, polling'),
    );
    schedule(0);
  });
  app.addHook('preClose', async () => {
    stopped = true;
    clearTimeout(timer);
    await running;
    await listener?.close();
  });
}
