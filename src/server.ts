/** Starts the server process: PKI (generated when the folder is empty), database + migrations, HTTPS, clean shutdown. */
import { existsSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { addressHost, type Config } from './config.js';
import { openDatabase, type Database } from './db/db.js';
import { migrate } from './db/migrate.js';
import { generatePki } from './pki/generate.js';
import { loadServerPki } from './pki/load.js';
import { startRetention, type RetentionJob } from './db/retention.js';
import { startOutboxWorker, type OutboxWorker } from './outbox/worker.js';
import { httpsServerOptions } from './tls-profile.js';
import { join } from 'node:path';

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

/** Creates the test PKI for this server's host name when the certificate folder is empty. */
export async function ensurePki(config: Config, log: (msg: string) => void = () => {}) {
  if (!existsSync(join(config.certsDir, 'CertificateIssuer'))) {
    log(`generating a test PKI for ${addressHost(config.smdpAddress)} in ${config.certsDir}`);
    await generatePki(config.certsDir, { hostname: addressHost(config.smdpAddress) });
  }
  return loadServerPki(config.certsDir);
}

export async function startServer(config: Config): Promise<RunningServer> {
  const pki = await ensurePki(config, (m) => console.error(m));
  const db = await openDatabase({ url: config.databaseUrl, dataDir: join(config.dataDir, 'pglite'), poolSize: config.dbPoolSize });
  let app: FastifyInstance | undefined;
  let address: string;
  try {
    await migrate(db);
    if (config.tls && !pki.tls) throw new Error(`no DP TLS certificate in ${config.certsDir}: add one or set TLS=0`);
    app = await buildApp(
      { config, db, pki },
      config.tls ? { https: httpsServerOptions(config.tlsProfile, pki.tls!) } as object : {},
    );
    address = await app.listen({ host: config.listenHost, port: config.port });
  } catch (err) {
    // Not started (e.g. the port is taken): nothing may keep the process alive.
    await app?.close().catch(() => {});
    await db.close();
    throw err;
  }
  // Operator callbacks (ES2+ handleDownloadProgressInfo) from the outbox, in the background.
  const outbox = startOutboxWorker(db, { requesterIdentifier: config.smdpAddress, log: app.log });
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
