/**
 * One SQL dialect (PostgreSQL) over two engines: PGlite (PostgreSQL in WebAssembly, embedded, the
 * default) and a real PostgreSQL server when DATABASE_URL is set. Everything above this file sees
 * only `Database`.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface Queryable {
  /** Runs one statement with $1… parameters and returns its rows. bytea comes back as Buffer. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

/** Options of a statement run on its own (Database.query, autocommit). */
export interface QueryOptions {
  /**
   * The statement looks rows up by their keys (the ES9+ hot path): on PostgreSQL it runs on a
   * connection that plans each statement once and reuses the plan, with sequential scans disabled
   * (KEY_LOOKUP_CONNECTION_SETTINGS); like TxOptions.keyLookups, without a transaction around it.
   */
  keyLookups?: boolean;
}

/** One database connection, held for a while (session-level advisory locks live on one connection). */
export interface Connection extends Queryable {
  /** Runs fn in one transaction on this connection. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
}

/** A LISTEN on a channel (Database.listen). */
export interface Listener {
  /**
   * true while notifications are being received. On PostgreSQL the listening connection may drop:
   * it is re-established in the background (and `onNotify` called once then, as notifications may
   * have been missed), and in between a caller should poll.
   */
  readonly active: boolean;
  close(): Promise<void>;
}

export interface TxOptions {
  /**
   * The transaction's statements look rows up by their keys (the ES9+ hot path): on PostgreSQL
   * each is planned once per connection and its plan reused (plan_cache_mode=force_generic_plan),
   * with sequential scans disabled so that a plan made while a table was nearly empty cannot stay a
   * sequential scan as it grows (see CONNECTION_SETTINGS). Set with the BEGIN, in the same round trip.
   */
  keyLookups?: boolean;
}

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs one statement on its own (its own implicit transaction). */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts?: QueryOptions): Promise<T[]>;
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  tx<T>(fn: (q: Queryable) => Promise<T>, opts?: TxOptions): Promise<T>;
  /** Runs fn on one connection taken for the whole call (PGlite has just one). */
  connection<T>(fn: (c: Connection) => Promise<T>): Promise<T>;
  /**
   * Calls onNotify on each NOTIFY on `channel` (a lower-case SQL identifier). PostgreSQL: on a
   * dedicated connection outside the pool; PGlite: the notifications of this process's own
   * transactions (PGlite is single-process).
   */
  listen(channel: string, onNotify: () => void): Promise<Listener>;
  /** Runs a multi-statement script (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres://… — when set, a real PostgreSQL server is used. */
  url?: string;
  /** PGlite data folder; `memory://` keeps it in memory (tests). */
  dataDir?: string;
  /** Connection pool size for PostgreSQL. */
  poolSize?: number;
  /**
   * PostgreSQL: a new connection that is not ready (TCP, TLS, authentication) within this time fails
   * with "timeout expired" (default 5000). Waiting for a free pooled connection is not limited.
   */
  connectTimeoutMs?: number;
}

/** The PGlite data folder is held by another live process (see lockDataDir). */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(`the data folder ${dataDir} is in use by another mock-smdp server (pid ${pid}; lock file ${lockFile}): stop it, or give another DATA_DIR / --data`);
  }
}

/** This process's start time (field 22 of /proc/PID/stat), which tells a reused pid from the locker; undefined off Linux. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The data folders this process holds (a second open in the same process is refused as well). */
const heldLocks = new Set<string>();

/**
 * PGlite is one process's database: a second server on the same folder would corrupt it (it
 * aborts with a WebAssembly assertion). `<dataDir>.lock` holds the owner's pid, host and process
 * start time, created exclusively; a lock whose process is gone (or whose pid now belongs to a
 * process started later) is stale and taken over. Returns the release function.
 */
export function lockDataDir(dataDir: string): () => void {
  const file = `${dataDir.replace(/[\\/]+$/, '')}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const mine = JSON.stringify({ pid: process.pid, host: hostname(), start: processStart(process.pid) ?? null });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      try {
        writeSync(fd, `${mine}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 3) throw err;
    }
    let holder: { pid?: number; host?: string; start?: string | null } = {};
    try {
      holder = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      // Unreadable or half-written: treated as stale below only once it is old enough to not be in progress.
    }
    const pid = Number(holder.pid);
    const live =
      Number.isInteger(pid) && pid > 0 &&
      (holder.host === undefined || holder.host === hostname()) &&
      (pid === process.pid ? heldLocks.has(file) : processAlive(pid) && (!holder.start || holder.start === processStart(pid)));
    if (live) throw new DataDirLockedError(dataDir, pid, file);
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  heldLocks.add(file);
  const release = () => {
    if (!heldLocks.delete(file)) return;
    process.removeListener('exit', release);
    try {
      if (readFileSync(file, 'utf8').trim() === mine) unlinkSync(file);
    } catch {
      // Already gone.
    }
  };
  // A process that exits without closing (process.exit on a signal) leaves no lock behind.
  process.on('exit', release);
  return release;
}

function toBuffers<T>(rows: T[]): T[] {
  for (const row of rows as Array<Record<string, unknown>>) {
    for (const k of Object.keys(row)) {
      const v = row[k];
      if (v instanceof Uint8Array && !Buffer.isBuffer(v)) row[k] = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    }
  }
  return rows;
}

/** postgresql.conf lines of the embedded database. */
export const PGLITE_SETTINGS = ['shared_buffers = 16MB', 'temp_buffers = 1MB', 'wal_buffers = 1MB'];

async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite } = await import('@electric-sql/pglite');
  const inMemory = dataDir.startsWith('memory://');
  const unlock = inMemory ? () => {} : lockDataDir(dataDir);
  let pg: import('@electric-sql/pglite').PGlite;
  try {
    if (!inMemory) mkdirSync(dataDir, { recursive: true });
    // PGlite's WebAssembly memory grows to what PostgreSQL asks for and never shrinks: with the stock
    // 128 MB of shared buffers the embedded server peaked near 900 MiB under the bench; 16 MB holds
    // a test server's working set and keeps it near 400 MiB.
    pg = await PGlite.create(dataDir, { postgresqlconf: PGLITE_SETTINGS });
  } catch (err) {
    unlock();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const wrap = (q: { query: (s: string, p?: unknown[]) => Promise<{ rows: unknown[] }> }): Queryable => ({
    async query<T>(sql: string, params?: unknown[]) {
      const r = await q.query(sql, params as unknown[]);
      return toBuffers(r.rows as T[]);
    },
  });
  const base = wrap(pg as never);
  const tx = <T>(fn: (q: Queryable) => Promise<T>) => pg.transaction((t) => fn(wrap(t as never)));
  return {
    kind: 'pglite',
    query: base.query,
    tx,
    connection: (fn) => fn({ query: base.query, tx }),
    async listen(channel, onNotify) {
      checkChannel(channel);
      const unlisten = await pg.listen(channel, () => onNotify());
      let active = true;
      return {
        get active() {
          return active;
        },
        async close() {
          if (!active) return;
          active = false;
          await unlisten().catch(() => {});
        },
      };
    },
    exec: async (sql) => {
      await pg.exec(sql);
    },
    // Once: a second close (a test that closed it, then its teardown) is a no-op.
    close: () => (closing ??= pg.close().finally(unlock)),
  };
}

/** Named prepared statements: PostgreSQL parses and plans each SQL text once per connection. */
const statementNames = new Map<string, string>();
function statement(text: string, values?: unknown[]) {
  let name = statementNames.get(text);
  if (!name) {
    // Generated SQL (multi-row inserts) is not worth a slot: past a bound, statements go unnamed.
    if (statementNames.size >= 500) return { text, values: values as unknown[] };
    name = `s${statementNames.size + 1}`;
    statementNames.set(text, name);
  }
  return { name, text, values: values as unknown[] };
}

function checkChannel(channel: string): void {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(channel)) throw new Error(`bad channel name ${JSON.stringify(channel)}`);
}

/**
 * Settings every connection starts with. plan_cache_mode=force_custom_plan: a named prepared
 * statement (see statement()) is planned for its actual parameters on every execution. Left to
 * itself PostgreSQL switches a statement to a generic plan after five executions, and a generic plan
 * chosen while a table was nearly empty (a sequential scan of profiles on a fresh database) stays
 * with that pooled connection for its whole life, however large the table grows.
 */
export const CONNECTION_SETTINGS = ['-c plan_cache_mode=force_custom_plan'];

/**
 * The pg connection config for `url` with CONNECTION_SETTINGS added to the startup `options`,
 * keeping options given in the URL (`?options=…`) or in PGOPTIONS, which an explicit `options`
 * would otherwise replace (and a URL's would replace ours).
 */
export function pgConnectionConfig(url: string): { connectionString: string; options: string } {
  let connectionString = url;
  let given = process.env.PGOPTIONS;
  try {
    const u = new URL(url);
    const inUrl = u.searchParams.get('options');
    if (inUrl !== null) {
      given = inUrl;
      u.searchParams.delete('options');
      connectionString = u.toString();
    }
  } catch {
    // Not a URL (a libpq keyword string): passed on as it is.
  }
  return { connectionString, options: [given, ...CONNECTION_SETTINGS].filter((o) => o && o.trim()).join(' ') };
}

/** What BEGIN sets for a TxOptions.keyLookups transaction (SET LOCAL: until its end). */
export const KEY_LOOKUP_SETTINGS = 'SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off';

/** The same, for the connections of QueryOptions.keyLookups statements (a pool of their own). */
export const KEY_LOOKUP_CONNECTION_SETTINGS = ['-c plan_cache_mode=force_generic_plan', '-c enable_seqscan=off'];

/** Runs fn in a transaction on a client; `client` must not be used by anyone else meanwhile. */

async function clientTx<T>(client: import('pg').PoolClient | import('pg').Client, fn: (q: Queryable) => Promise<T>, opts: TxOptions = {}): Promise<T> {
  await client.query(opts.keyLookups ? `BEGIN; ${KEY_LOOKUP_SETTINGS}` : 'BEGIN');
  try {
    const result = await fn({
      async query<R>(sql: string, params?: unknown[]) {
        const r = await client.query(statement(sql, params));
        return r.rows as R[];
      },
    });
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function openPostgres(url: string, poolSize: number, connectTimeoutMs: number): Promise<Database> {
  const pgmod = await import('pg');
  // The timeout is the client's (connection establishment) only: a pool-level one would also fail
  // requests that wait for a free connection under load.
  const connConfig = { ...pgConnectionConfig(url), connectionTimeoutMillis: connectTimeoutMs };
  const { connectionTimeoutMillis: _unused, ...poolConfig } = connConfig;
  class TimedClient extends pgmod.default.Client {
    constructor(c: import('pg').ClientConfig = {}) {
      super({ ...c, connectionTimeoutMillis: connectTimeoutMs });
    }
  }
  const pool = new pgmod.default.Pool({ ...poolConfig, max: poolSize, Client: TimedClient });
  // Key-lookup statements run alone (QueryOptions.keyLookups), on connections of their own.
  const keyPool = new pgmod.default.Pool({
    ...poolConfig,
    options: [poolConfig.options, ...KEY_LOOKUP_CONNECTION_SETTINGS].join(' '),
    max: poolSize,
    Client: TimedClient,
  });
  let closing: Promise<void> | undefined;
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {});
  keyPool.on('error', () => {});
  const listeners = new Set<Listener>();

  /** LISTEN on a dedicated connection, re-established (1 s, 2 s … 30 s apart) when it drops. */
  async function listen(channel: string, onNotify: () => void): Promise<Listener> {
    checkChannel(channel);
    let client: import('pg').Client | undefined;
    let active = false;
    let closed = false;
    let retryMs = 1_000;
    let timer: NodeJS.Timeout | undefined;
    const connect = async (): Promise<void> => {
      const c = new pgmod.default.Client(connConfig);
      client = c;
      let lost = false;
      const onLost = () => {
        if (lost) return;
        lost = true;
        active = false;
        c.removeAllListeners('notification');
        c.end().catch(() => {});
        if (!closed) schedule();
      };
      c.on('error', onLost);
      c.on('end', onLost);
      c.on('notification', (n) => {
        if (n.channel === channel) onNotify();
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${channel}`);
      } catch {
        onLost();
        return;
      }
      if (closed) {
        await c.end().catch(() => {});
        return;
      }
      active = true;
      retryMs = 1_000;
      // What was written while nobody listened is due now.
      onNotify();
    };
    const schedule = () => {
      timer = setTimeout(() => void connect(), retryMs).unref();
      retryMs = Math.min(retryMs * 2, 30_000);
    };
    await connect();
    const l: Listener = {
      get active() {
        return active;
      },
      async close() {
        if (closed) return;
        closed = true;
        active = false;
        listeners.delete(l);
        clearTimeout(timer);
        await client?.end().catch(() => {});
      },
    };
    listeners.add(l);
    return l;
  }

  return {
    kind: 'postgres',
    async query<T>(sql: string, params?: unknown[], opts?: QueryOptions) {
      const r = await (opts?.keyLookups ? keyPool : pool).query(statement(sql, params));
      return r.rows as T[];
    },
    async tx<T>(fn: (q: Queryable) => Promise<T>, opts?: TxOptions): Promise<T> {
      const client = await pool.connect();
      try {
        return await clientTx(client, fn, opts);
      } finally {
        client.release();
      }
    },
    async connection<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await fn({
          async query<R>(sql: string, params?: unknown[]) {
            const r = await client.query(statement(sql, params));
            return r.rows as R[];
          },
          tx: (f) => clientTx(client, f),
        });
      } catch (err) {
        // The connection may hold session state (an advisory lock) it could not undo: not reused.
        broken = err as Error;
        throw err;
      } finally {
        client.release(broken);
      }
    },
    listen,
    async exec(sql) {
      await pool.query(sql);
    },
    close() {
      return (closing ??= (async () => {
        await Promise.all([...listeners].map((l) => l.close()));
        await Promise.all([pool.end(), keyPool.end()]);
      })());
    },
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.poolSize ?? 10, opts.connectTimeoutMs ?? 5000);
  return openPglite(opts.dataDir ?? 'data/pglite');
}
