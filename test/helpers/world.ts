/**
 * A running SM-DP+ for end-to-end tests: a generated test PKI (both curves, shared by the tests of
 * one process), a fresh database (PGlite or PostgreSQL, see db.ts) and the Fastify app listening on
 * a free loopback port, plus helpers to create orders and read a profile back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { defaultConfig, type Config } from '../../src/config.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { openDatabase, type Database } from '../../src/db/db.js';
import { HttpClient } from '../../src/http/client.js';
import { createReleasedOrder, getProfile, type NewOrder } from '../../src/orders/store.js';
import { generatePki } from '../../src/pki/generate.js';
import { loadServerPki, type ServerPki } from '../../src/pki/load.js';
import { httpsServerOptions } from '../../src/tls-profile.js';
import { openTestDb } from './db.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

let sharedPki: Promise<string> | undefined;

/** One generated PKI folder per test process (generation is the slow part). */
export function testPkiDir(): Promise<string> {
  sharedPki ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-pki-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await generatePki(dir, { hostname: 'localhost' });
    return dir;
  })();
  return sharedPki;
}

export interface World {
  app: FastifyInstance;
  db: Database;
  pki: ServerPki;
  pkiDir: string;
  config: Config;
  url: string;
  http: HttpClient;
  order(o?: NewOrder): Promise<{ iccid: string; matchingId: string; activationCode: string }>;
  profile(iccid: string): ReturnType<typeof getProfile>;
}

export async function startWorld(
  t: TestLike,
  opts: { pkiDir?: string; smdpAddress?: string; tls?: boolean; tlsCurve?: CurveName; config?: Partial<Config> } = {},
): Promise<World> {
  const pkiDir = opts.pkiDir ?? (await testPkiDir());
  const pki = loadServerPki(pkiDir, opts.tlsCurve ? { tlsCurve: opts.tlsCurve } : {});
  const db = await openTestDb(t);
  const config: Config = {
    ...defaultConfig({}),
    smdpAddress: opts.smdpAddress ?? 'localhost:8443',
    certsDir: pkiDir,
    tls: opts.tls ?? false,
    logLevel: 'silent',
    ...opts.config,
  };
  const app = await buildApp(
    { config, db, pki },
    { logger: false, ...(config.tls ? { https: httpsServerOptions(config.tlsProfile, pki.tls!, pki.dsTls ? { dsTls: pki.dsTls } : {}) } : {}) } as object,
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  const url = `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const http = new HttpClient({
    baseUrl: url,
    ca: pki.cis.map((c) => c.toPem()),
    servername: 'localhost',
  });
  t.teardown(async () => {
    http.close();
    await app.close();
  });
  return {
    app, db, pki, pkiDir, config, url, http,
    async order(o: NewOrder = {}) {
      const p = await db.tx((q) => createReleasedOrder(q, o));
      const cc = p.cc_digest ? '$$1' : '';
      return { iccid: p.iccid, matchingId: p.matching_id!, activationCode: `LPA:1$${config.smdpAddress.toUpperCase()}$${p.matching_id}${cc}` };
    },
    profile: (iccid: string) => getProfile(db, iccid),
  };
}

/**
 * A second app on the world's database, as a second server instance (PostgreSQL: its own pool;
 * PGlite: the same handle), listening on a port of its own; answers an HTTP client for it.
 */
export async function secondInstance(t: TestLike, w: Pick<World, 'db' | 'config' | 'pki'>): Promise<HttpClient> {
  const url = (w.db as { url?: string }).url;
  const db2 = url ? await openDatabase({ url }) : w.db;
  if (url) t.teardown(() => db2.close());
  const app2 = await buildApp({ config: w.config, db: db2, pki: w.pki }, { logger: false });
  await app2.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app2.close());
  const client = new HttpClient({ baseUrl: `http://127.0.0.1:${(app2.server.address() as { port: number }).port}` });
  t.teardown(() => client.close());
  return client;
}
