/**
 * CPU time of the PostgreSQL backends of one database, for the bench's "PostgreSQL CPU per download".
 *
 * The backends are the rows of pg_stat_activity whose datname is the server's database (client
 * backends, and autovacuum or parallel workers working on it), the monitor's own connection
 * excepted; their CPU comes from /proc/<pid>/stat, so PostgreSQL must run on this machine (as the
 * same or another user: stat files are world-readable). Processes that serve every database
 * (checkpointer, WAL writer, background writer, …) are sampled separately and not counted, and
 * backends of other databases (other people's tests, say) never are.
 *
 * Backends come and go (a pool closes idle connections and opens new ones): the set is re-read every
 * `intervalMs`. A backend that exists at the start counts from its CPU then; one first seen later
 * counts from 0 when it started after the start (all its work is ours), else from its first
 * sighting; one that ends counts up to its last sighting, so at most one interval of its work can
 * be missed (`exited` says how many did).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { CLK_TCK, procStat } from './proc.js';

interface Tracked {
  type: string;
  startTicks: number;
  base: number;
  last: number;
  gone: boolean;
}

export interface PgCpu {
  database: string;
  /** CPU seconds of the database's backends over the window. */
  backendsCpu: number;
  /** The same by backend_type ('client backend', 'autovacuum worker', …). */
  byType: Record<string, number>;
  /** Backends seen during the window, started during it, and ended during it. */
  seen: number;
  started: number;
  exited: number;
  /** Backends whose /proc entry could not be read (PostgreSQL on another machine or hidden pids). */
  unreadable: number;
  /** CPU seconds of PostgreSQL's shared processes (no database) over the window: not counted. */
  sharedCpu: number;
  samples: number;
  /**
   * pg_stat_database counters of the database over the window (backends report them at most once a
   * second, so a few of the last transactions may be missing): transactions (each statement outside
   * BEGIN…COMMIT is one) and rows written.
   */
  stats: { commits: number; rollbacks: number; rowsInserted: number; rowsUpdated: number; rowsDeleted: number } | null;
}

type DbStats = NonNullable<PgCpu['stats']>;

/** Type recorded for PostgreSQL's shared processes (no database). */
const SHARED = '(shared)';

export class PgBackendMonitor {
  readonly #client: pg.Client;
  readonly #database: string;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #tracked = new Map<number, Tracked>();
  #shared = new Map<number, Tracked>();
  #startTicks = 0;
  #started = 0;
  #unreadable = new Set<number>();
  #samples = 0;
  #busy: Promise<void> | undefined;
  #stats0: DbStats | null = null;
  /** Backends (of the database) whose pid was taken over by a newer process during the window. */
  #ended: Tracked[] = [];

  private constructor(client: pg.Client, database: string, intervalMs: number) {
    this.#client = client;
    this.#database = database;
    this.#intervalMs = intervalMs;
  }

  /** Connects with `url` (any database of the server) to watch the backends of `database`. */
  static async connect(url: string, database: string, intervalMs = 200): Promise<PgBackendMonitor> {
    const client = new pg.Client({ connectionString: url, application_name: 'mock-smdp bench monitor' });
    client.on('error', () => {});
    await client.connect();
    return new PgBackendMonitor(client, database, intervalMs);
  }

  async #list(): Promise<Array<{ pid: number; datname: string | null; backend_type: string }>> {
    const r = await this.#client.query<{ pid: number; datname: string | null; backend_type: string }>(
      `SELECT pid, datname, backend_type FROM pg_stat_activity
        WHERE pid <> pg_backend_pid() AND (datname = $1 OR (datname IS NULL AND backend_type <> 'client backend'))`,
      [this.#database],
    );
    return r.rows;
  }

  async #dbStats(): Promise<DbStats | null> {
    try {
      const r = await this.#client.query<Record<string, string>>(
        `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = $1`,
        [this.#database],
      );
      const row = r.rows[0];
      if (!row) return null;
      return {
        commits: Number(row.xact_commit),
        rollbacks: Number(row.xact_rollback),
        rowsInserted: Number(row.tup_inserted),
        rowsUpdated: Number(row.tup_updated),
        rowsDeleted: Number(row.tup_deleted),
      };
    } catch {
      return null;
    }
  }

  async #sample(initial: boolean): Promise<void> {
    const rows = await this.#list();
    this.#samples++;
    const present = new Set<number>();
    for (const row of rows) {
      present.add(row.pid);
      const s = procStat(row.pid);
      if (!s) {
        this.#unreadable.add(row.pid);
        continue;
      }
      const map = row.datname === null ? this.#shared : this.#tracked;
      const t = map.get(row.pid);
      if (t && t.startTicks === s.startTicks) {
        t.last = s.cpu;
        t.gone = false;
        continue;
      }
      if (t) {
        // The pid was reused by a new process: keep what the old one did.
        this.#ended.push(t);
      }
      const startedDuring = !initial && s.startTicks >= this.#startTicks;
      if (startedDuring && map === this.#tracked) this.#started++;
      map.set(row.pid, { type: map === this.#shared ? SHARED : row.backend_type, startTicks: s.startTicks, base: startedDuring ? 0 : s.cpu, last: s.cpu, gone: false });
    }
    for (const [pid, t] of [...this.#tracked, ...this.#shared]) if (!present.has(pid)) t.gone = true;
  }

  /** Starts the window: the current backends are the baseline, then re-reads every interval. */
  async start(): Promise<void> {
    this.#tracked.clear();
    this.#shared.clear();
    this.#ended = [];
    this.#unreadable.clear();
    this.#started = 0;
    this.#samples = 0;
    // Boot-relative "now" in ticks, to tell backends started during the window from older ones.
    let uptime = NaN;
    try {
      uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    } catch {
      // not Linux: every backend first seen later counts from its first sighting
    }
    this.#startTicks = Number.isFinite(uptime) ? Math.floor(uptime * CLK_TCK) : Infinity;
    this.#stats0 = await this.#dbStats();
    await this.#sample(true);
    this.#timer = setInterval(() => {
      this.#busy ??= this.#sample(false)
        .catch(() => {})
        .finally(() => (this.#busy = undefined));
    }, this.#intervalMs);
  }

  /** Ends the window with a last reading. */
  async stop(): Promise<PgCpu> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#busy;
    await this.#sample(false);
    const s0 = this.#stats0;
    const s1 = await this.#dbStats();
    const stats = s0 && s1 ? (Object.fromEntries(Object.keys(s1).map((k) => [k, s1[k as keyof DbStats] - s0[k as keyof DbStats]])) as DbStats) : null;
    const byType: Record<string, number> = {};
    let backendsCpu = 0;
    let exited = 0;
    const ended = this.#ended.filter((e) => e.type !== SHARED);
    for (const t of [...this.#tracked.values(), ...ended]) {
      const d = Math.max(0, t.last - t.base);
      backendsCpu += d;
      byType[t.type] = (byType[t.type] ?? 0) + d;
    }
    for (const t of this.#tracked.values()) if (t.gone) exited++;
    exited += ended.length;
    let sharedCpu = 0;
    for (const t of [...this.#shared.values(), ...this.#ended.filter((e) => e.type === SHARED)]) sharedCpu += Math.max(0, t.last - t.base);
    return {
      database: this.#database,
      backendsCpu,
      byType,
      seen: this.#tracked.size + ended.length,
      started: this.#started,
      exited,
      unreadable: this.#unreadable.size,
      sharedCpu,
      samples: this.#samples,
      stats,
    };
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#client.end().catch(() => {});
  }
}

/** The database name of a postgres:// URL. */
export function databaseOf(url: string): string {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return name || decodeURIComponent(u.username) || 'postgres';
}

/** The same URL with another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/**
 * A fresh database for the server the bench starts (so that only its backends are counted and no
 * one else's data is touched); dropped by the returned function.
 */
export async function createBenchDatabase(url: string): Promise<{ url: string; database: string; drop: () => Promise<void> }> {
  const database = `mocksmdp_bench_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => {});
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end().catch(() => {});
  }
  return {
    url: withDatabase(url, database),
    database,
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => {});
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      } finally {
        await c.end().catch(() => {});
      }
    },
  };
}
