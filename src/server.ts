/**
 * Starts the server process: PKI (a test PKI generated only where that cannot hide a mistake),
 * database + migrations, HTTPS, clean shutdown. Every way start-up can fail ends in a StartupError
 * or ConfigError whose message is one line naming the setting to fix (the CLI prints it and exits 1).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import { join, normalize } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { addressHost, ConfigError, DEFAULT_CERTS_DIR, redactUrl, smdsAddressOf, type Config } from './config.js';
import { DataDirLockedError, openDatabase, type Database } from './db/db.js';
import { migrate } from './db/migrate.js';
import { startRetention, type RetentionJob } from './db/retention.js';
import { startOutboxWorker, type OutboxWorker } from './outbox/worker.js';
import { generatePki } from './pki/generate.js';
import { loadServerPki, PkiError } from './pki/load.js';
import { smdsEs12ClientCas } from './smds/es12-tls.js';
import { httpsServerOptions } from './tls-profile.js';

/** The server could not start: a one-line message naming what to fix. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export interface RunningServer {
  app: FastifyInstance;
  db: Database;
  url: string;
  /** The operator-callback worker (outbox). */
  outbox: OutboxWorker;
  /** The hourly prune (RETENTION_DAYS). */
  retention: RetentionJob;
  close(): Promise<void>;
}

/**
 * The server's PKI. A test PKI for the server's host name is generated into the default folder
 * (`certs`) when it holds none, or into an existing empty folder; any other folder must already
 * hold a PKI in the SGP.26 layout, so that a mistyped CERTS_DIR (or an SGP.26 folder not yet
 * copied) stops the server instead of silently serving a new PKI under that name.
 */
export async function ensurePki(config: Config, log: (msg: string) => void = () => {}) {
  const dir = config.certsDir;
  const where = `the certificate folder ${dir} (CERTS_DIR / --certs)`;
  if (!existsSync(join(dir, 'CertificateIssuer'))) {
    const isDefault = normalize(dir) === DEFAULT_CERTS_DIR;
    if (existsSync(dir) && !statSync(dir).isDirectory()) throw new ConfigError(`${where} is not a folder`);
    if (!isDefault) {
      if (!existsSync(dir)) {
        throw new ConfigError(`${where} does not exist: give the folder of an SGP.26 PKI, or create an empty folder to have a test PKI generated into it (or run mock-smdp certs --dir ${dir})`);
      }
      if (readdirSync(dir).length > 0) {
        throw new ConfigError(`${where} holds no PKI in the SGP.26 layout (no CertificateIssuer/ in it): give the right folder, or an empty one to generate a test PKI`);
      }
    }
    log(`generating a test PKI for ${addressHost(config.smdpAddress)} in ${dir}`);
    await generatePki(dir, { hostname: addressHost(config.smdpAddress), smdsHostname: addressHost(smdsAddressOf(config)) });
  }
  try {
    return loadServerPki(dir);
  } catch (err) {
    if (err instanceof PkiError) throw new ConfigError(`${where}: ${err.message}`);
    throw err;
  }
}

/**
 * Opens the configured database and makes one round trip, so that an unreachable or refusing
 * PostgreSQL (or a PGlite folder held by another server) is one line naming the setting.
 */
export async function openConfiguredDatabase(config: Config, poolSize = config.dbPoolSize): Promise<Database> {
  let db: Database | undefined;
  try {
    db = await openDatabase({ url: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), poolSize, connectTimeoutMs: config.dbConnectTimeoutMs });
    await db.query('SELECT 1');
    return db;
  } catch (err) {
    await db?.close().catch(() => {});
    if (err instanceof DataDirLockedError) throw new StartupError(`DATA_DIR: ${err.message}`);
    const reason = oneLine(err);
    if (config.databaseUrl) throw new StartupError(`DATABASE_URL: cannot connect to ${redactUrl(config.databaseUrl)}: ${reason}`);
    throw new StartupError(`DATA_DIR: cannot open the embedded database in ${join(config.dataDir, 'pglite')}: ${reason}`);
  }
}

function oneLine(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { errors?: Error[] };
  // A connection to "localhost" tries ::1 and 127.0.0.1: an AggregateError with an empty message.
  const msg = e?.message || e?.errors?.map((x) => x.message).join('; ') || e?.code || String(err);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

/** The listen error as one line naming PORT / HOST. */
function listenError(err: unknown, config: Config): Error {
  const code = (err as NodeJS.ErrnoException).code;
  const at = `${config.listenHost}:${config.port}`;
  if (code === 'EADDRINUSE') return new StartupError(`port ${config.port} is in use (PORT / --port): another server is listening on ${at}`);
  if (code === 'EACCES') return new StartupError(`port ${config.port} needs privileges this process does not have (PORT / --port)`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new StartupError(`HOST / --host ${config.listenHost} is not an address of this machine`);
  return err as Error;
}

/**
 * Fails at once when the port cannot be listened on (another server has it), before the PKI and
 * the database are opened: a taken port is then one line within a second, not after start-up work.
 * The real listen later reports the (rare) race the same way.
 */
export async function checkPortFree(config: Config): Promise<void> {
  if (config.port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err) => reject(listenError(err, config)));
    probe.listen({ host: config.listenHost, port: config.port }, () => probe.close(() => resolve()));
  });
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLOURS: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
const OMIT = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'v']);

/** Colour on a terminal only, and never with NO_COLOR set (https://no-color.org) or TERM=dumb. */
export function useColour(stream: { isTTY?: boolean } = process.stdout): boolean {
  return !!stream.isTTY && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
}

/** One pino JSON line as a readable one: `12:00:01.234 INFO  message key=value …`. */
export function prettyLogLine(line: string, colour: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line);
  } catch {
    return line;
  }
  const level = Number(o.level);
  const time = new Date(Number(o.time ?? Date.now())).toISOString().slice(11, 23);
  const name = (LEVEL_NAMES[level] ?? String(o.level)).padEnd(5);
  const extra = Object.entries(o)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => {
      if (k === 'err' && v && typeof v === 'object') return `err=${JSON.stringify((v as { message?: string }).message ?? v)}`;
      return `${k}=${typeof v === 'string' && !/[\s"=]/.test(v) ? v : JSON.stringify(v)}`;
    })
    .join(' ');
  const paint = (c: string, s: string) => (colour ? `\x1b[${c}m${s}\x1b[0m` : s);
  return `${paint('90', time)} ${paint(LEVEL_COLOURS[level] ?? '0', name)} ${o.msg ?? ''}${extra ? ` ${paint('90', extra)}` : ''}\n`;
}

/**
 * Where the server's log goes: with LOG_FORMAT=pretty, or auto and stdout a terminal, a stream that
 * rewrites each pino line readably; otherwise undefined (pino's JSON lines on stdout).
 */
export function logStream(config: Pick<Config, 'logFormat'>, out: NodeJS.WriteStream = process.stdout): { write(s: string): void } | undefined {
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && !!out.isTTY);
  if (!pretty) return undefined;
  const colour = useColour(out);
  return { write: (s: string) => void out.write(s.split('\n').filter(Boolean).map((l) => prettyLogLine(l, colour)).join('')) };
}

export async function startServer(config: Config): Promise<RunningServer> {
  await checkPortFree(config);
  const pki = await ensurePki(config, (m) => console.error(m));
  if (config.tls && !pki.tls) throw new ConfigError(`no DP TLS certificate in ${config.certsDir}: add one, or set TLS=0 (plain HTTP behind a TLS proxy)`);
  const db = await openConfiguredDatabase(config);
  let app: FastifyInstance | undefined;
  let address: string;
  try {
    await migrate(db);
    const stream = logStream(config);
    app = await buildApp(
      { config, db, pki },
      {
        // ES12 callers' client certificates (docs/smds.md#es12-authentication) and CERT.DS.TLS by SNI.
        ...(config.tls ? { https: httpsServerOptions(config.tlsProfile, pki.tls!, { ...(pki.dsTls ? { dsTls: pki.dsTls } : {}), extraClientCas: smdsEs12ClientCas(config) }) } : {}),
        ...(stream ? { logger: { level: config.logLevel, stream } } : {}),
      } as object,
    );
    address = await app.listen({ host: config.listenHost, port: config.port }).catch((err: unknown) => {
      throw listenError(err, config);
    });
  } catch (err) {
    // Not started (e.g. the port is taken): nothing may keep the process alive.
    await app?.close().catch(() => {});
    await db.close().catch(() => {});
    throw err;
  }
  // Operator callbacks (ES2+ handleDownloadProgressInfo) from the outbox, in the background.
  const outbox = startOutboxWorker(db, { requesterIdentifier: config.smdpAddress, log: app.log, extraCa: pki.cis.map((c) => c.toPem()) });
  // Old sessions, delivered callbacks and finished orders' history: once now, then hourly.
  const retention = startRetention(db, { days: config.retentionDays, log: app.log });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await app.close();
      await Promise.all([outbox.stop(), retention.stop()]);
      await db.close();
    })());
  app.log.info({ smdpAddress: config.smdpAddress, database: db.kind, tls: config.tls, ...(config.tls ? { tlsProfile: config.tlsProfile } : {}) }, `SM-DP+ listening on ${address}`);
  return { app, db, url: address, outbox, retention, close };
}
