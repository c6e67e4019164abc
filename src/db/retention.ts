/**
 * Retention: a rare, cheap prune of what the server no longer needs (RETENTION_DAYS, default 7;
 * 0 keeps all history). Run once at start and then every hour by each server process; it deletes
 * in batches of `batchSize` rows, one short transaction each, so it never holds many locks or
 * delays ES9+ for long.
 *
 * - rsp_sessions past expires_at (always, whatever RETENTION_DAYS: an expired session can no longer
 *   be continued, lockSessionWithProfile ignores it; sessions that ended keep their row until then, and
 *   authenticateClient deletes a batch of expired ones now and then too, `pruneExpiredSessions`);
 * - delivered outbox rows delivered more than RETENTION_DAYS ago (undelivered rows never);
 * - notifications and profile_events older than RETENTION_DAYS of profiles in a final state,
 *   Installed or Unavailable (src/orders/state-machine.ts), plus notifications that belong to no
 *   profile (no ICCID, or an ICCID that is not ours). The history of any other profile, a live
 *   order, is never touched. Of an Installed or Unavailable profile a few rows stay however old,
 *   because live logic reads them: its 'installed' event (the family live state compares device
 *   notifications with it), the newest verified enable/disable/delete notification (the family
 *   live state), and per eUICC the applied notification with the highest seqNumber (replay
 *   protection of handleNotification: a notification no newer than it is not applied).
 *
 * Several instances on one PostgreSQL database: each batch first takes a transaction-level
 * advisory try-lock, and an instance that does not get it leaves this run to the one that has it.
 */
import type { Database, Queryable } from './db.js';

/** Advisory lock key of the prune ('mocksmdr' in ASCII; migrations use 'mocksmdp'). */
export const RETENTION_LOCK_KEY = '7885631175453451378';

export interface RetentionOptions {
  /** History kept, in days; 0 keeps everything but expired sessions. */
  days: number;
  /** Time between runs (ms, default one hour). */
  intervalMs?: number;
  /** Rows deleted per statement (default 1000). */
  batchSize?: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface PruneCounts {
  sessions: number;
  outbox: number;
  notifications: number;
  profileEvents: number;
}

const FINAL_STATES = `('Installed', 'Unavailable')`;

/** One DELETE per kind of row, each taking at most $1 rows; those about history take the cutoff in days as $2. */
const PRUNE: Record<keyof PruneCounts, { history: boolean; sql: string }> = {
  sessions: {
    history: false,
    sql: `DELETE FROM rsp_sessions WHERE transaction_id IN (
            SELECT transaction_id FROM rsp_sessions WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED)`,
  },
  outbox: {
    history: true,
    sql: `DELETE FROM outbox WHERE id IN (
            SELECT id FROM outbox WHERE delivered_at < now() - make_interval(days => $2::integer)
             ORDER BY delivered_at LIMIT $1 FOR UPDATE SKIP LOCKED)`,
  },
  notifications: {
    history: true,
    sql: `DELETE FROM notifications WHERE id IN (
            SELECT n.id FROM notifications n LEFT JOIN profiles p ON p.iccid = n.iccid
             WHERE n.received_at < now() - make_interval(days => $2::integer)
               AND (p.iccid IS NULL OR p.state IN ${FINAL_STATES})
               AND NOT (p.iccid IS NOT NULL AND n.verified AND n.kind IN ('enable', 'disable', 'delete')
                        AND NOT EXISTS (SELECT 1 FROM notifications m
                                         WHERE m.iccid = n.iccid AND m.verified AND m.kind IN ('enable', 'disable', 'delete') AND m.id > n.id))
               AND NOT (p.iccid IS NOT NULL AND n.verified AND n.outcome IN ('success', 'verified')
                        AND NOT EXISTS (SELECT 1 FROM notifications m
                                         WHERE m.iccid = n.iccid AND m.eid IS NOT DISTINCT FROM n.eid AND m.verified
                                           AND m.outcome IN ('success', 'verified')
                                           AND (coalesce(m.seq_number, -1), m.id) > (coalesce(n.seq_number, -1), n.id)))
             ORDER BY n.received_at LIMIT $1 FOR UPDATE OF n SKIP LOCKED)`,
  },
  profileEvents: {
    history: true,
    sql: `DELETE FROM profile_events WHERE id IN (
            SELECT e.id FROM profile_events e JOIN profiles p ON p.iccid = e.iccid
             WHERE e.at < now() - make_interval(days => $2::integer)
               AND p.state IN ${FINAL_STATES}
               AND NOT (p.state = 'Installed' AND e.event = 'installed')
             ORDER BY e.at LIMIT $1 FOR UPDATE OF e SKIP LOCKED)`,
  },
};

/** One batch of one kind under the advisory try-lock: rows deleted, or null when another instance is pruning. */
async function batch(db: Database, kind: keyof PruneCounts, limit: number, days: number): Promise<number | null> {
  return db.tx(async (q: Queryable) => {
    const [lock] = await q.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS ok', [RETENTION_LOCK_KEY]);
    if (!lock?.ok) return null;
    const p = PRUNE[kind];
    const rows = await q.query(`${p.sql} RETURNING 1`, p.history ? [limit, days] : [limit]);
    return rows.length;
  });
}

/** One batch of expired RSP sessions, without the advisory lock (SKIP LOCKED keeps batches apart): rows deleted. */
export async function pruneExpiredSessions(db: Database, limit = 1000): Promise<number> {
  return (await db.query(`${PRUNE.sessions.sql} RETURNING 1`, [limit])).length;
}

/**
 * Prunes now (see the file comment); resolves with the rows deleted per kind. `shouldStop` is
 * asked between batches (server shutdown).
 */
export async function prune(db: Database, opts: { days: number; batchSize?: number; shouldStop?: () => boolean }): Promise<PruneCounts> {
  const limit = opts.batchSize ?? 1000;
  const counts: PruneCounts = { sessions: 0, outbox: 0, notifications: 0, profileEvents: 0 };
  for (const kind of Object.keys(PRUNE) as Array<keyof PruneCounts>) {
    if (PRUNE[kind].history && opts.days <= 0) continue;
    for (;;) {
      if (opts.shouldStop?.()) return counts;
      const n = await batch(db, kind, limit, opts.days);
      if (n === null) return counts; // another instance holds the lock: this run is theirs
      counts[kind] += n;
      if (n < limit) break;
      await new Promise((r) => setImmediate(r)); // let requests in between batches
    }
  }
  return counts;
}

export interface RetentionJob {
  /** Runs a prune now (queued behind one in progress). */
  runNow(): Promise<PruneCounts>;
  stop(): Promise<void>;
}

/** Prunes once now and then every `intervalMs`. */
export function startRetention(db: Database, opts: RetentionOptions): RetentionJob {
  const intervalMs = opts.intervalMs ?? 3_600_000;
  let stopped = false;
  let running: Promise<PruneCounts> = Promise.resolve({ sessions: 0, outbox: 0, notifications: 0, profileEvents: 0 });
  const runNow = () =>
    (running = running.catch(() => undefined).then(async () => {
      const counts = await prune(db, { days: opts.days, batchSize: opts.batchSize, shouldStop: () => stopped });
      if (counts.sessions + counts.outbox + counts.notifications + counts.profileEvents > 0) {
        opts.log?.info({ pruned: counts, retentionDays: opts.days }, 'retention: old rows deleted');
      }
      return counts;
    }));
  const tick = () =>
    void runNow().catch((err) => {
      if (!stopped) opts.log?.warn({ err }, 'retention: prune failed');
    });
  const first = setTimeout(tick, 0);
  const timer = setInterval(tick, intervalMs);
  first.unref();
  timer.unref();
  return {
    runNow,
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running.catch(() => {});
    },
  };
}
