/**
 * `mock-smdp serve --workers N` (WORKERS=N): N server processes sharing one port (node:cluster),
 * over one PostgreSQL database. The primary creates the test PKI when needed and runs the
 * migrations once, then forks the workers; each worker is an ordinary server (startServer). What
 * they share lives in the database: RSP sessions (any worker continues any session), the outbox
 * (rows claimed FOR UPDATE SKIP LOCKED, so each callback goes out once), the prune (an advisory
 * try-lock, see src/db/retention.ts). PGlite is one process: N > 1 without DATABASE_URL is refused.
 *
 * SIGINT or SIGTERM to the primary stops every worker (each closes its listener, finishes or hands
 * back its callbacks, closes its pool) and then the primary. A worker that dies on its own is
 * replaced, unless it died while starting, which would only repeat: then everything stops with
 * exit code 1.
 */
import cluster, { type Worker } from 'node:cluster';
import { pino } from 'pino';
import { ConfigError, type Config } from './config.js';
import { migrate } from './db/migrate.js';
import { checkPortFree, ensurePki, logStream, openConfiguredDatabase } from './server.js';

/** A worker that exits within this time of its start failed to start (ms). */
const STARTUP_MS = 10_000;
/** Time a worker gets to shut down before SIGKILL (ms). */
const SHUTDOWN_MS = 20_000;

export function checkClusterConfig(config: Config): void {
  if (config.workers > 1 && !config.databaseUrl) {
    throw new ConfigError(`--workers ${config.workers} (WORKERS) needs PostgreSQL (DATABASE_URL): PGlite serves one process only`);
  }
}

/** Runs the primary; resolves with the exit code once every worker has exited. */
export async function runPrimary(config: Config): Promise<number> {
  checkClusterConfig(config);
  const stream = logStream(config);
  const log = stream ? pino({ level: config.logLevel }, stream) : pino({ level: config.logLevel });
  await checkPortFree(config);
  await ensurePki(config, (m) => console.error(m));
  const db = await openConfiguredDatabase(config, 1);
  try {
    const applied = await migrate(db);
    if (applied.length) log.info({ applied }, 'migrations applied');
  } finally {
    await db.close();
  }

  const started = new Map<Worker, number>();
  let stopping = false;
  let exitCode = 0;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));
  const fork = () => started.set(cluster.fork(), Date.now());

  const stopAll = (reason: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ workers: started.size }, `${reason}: stopping the workers`);
    for (const w of started.keys()) {
      w.process.kill('SIGTERM');
      setTimeout(() => {
        if (!w.isDead()) w.process.kill('SIGKILL');
      }, SHUTDOWN_MS).unref();
    }
    if (!started.size) done(exitCode);
  };

  cluster.on('exit', (w, code, signal) => {
    const since = started.get(w);
    started.delete(w);
    if (stopping) {
      if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGINT') exitCode = 1;
      if (!started.size) done(exitCode);
      return;
    }
    const lived = since === undefined ? 0 : Date.now() - since;
    if (lived < STARTUP_MS) {
      log.error({ pid: w.process.pid, code, signal }, 'worker failed while starting; stopping');
      exitCode = 1;
      stopAll('worker failure');
      return;
    }
    log.warn({ pid: w.process.pid, code, signal }, 'worker died; starting another');
    fork();
  });
  cluster.on('online', (w) => log.debug({ pid: w.process.pid }, 'worker online'));

  process.once('SIGINT', () => stopAll('SIGINT'));
  process.once('SIGTERM', () => stopAll('SIGTERM'));
  for (let i = 0; i < config.workers; i++) fork();
  log.info({ workers: config.workers, port: config.port }, 'cluster started');
  return finished;
}

export const isClusterWorker = () => cluster.isWorker;
