/** GET /health answers 200 with the database's round trip, and 503 (not a hang, not a 500) when the database is gone. */
import t from 'tap';
import { startWorld } from '../helpers/world.js';

t.test('/health: 200 with a database check', async (t) => {
  const w = await startWorld(t);
  const r = await w.app.inject({ method: 'GET', url: '/health' });
  t.equal(r.statusCode, 200);
  t.match(r.json(), { status: 'ok', database: w.db.kind, databaseOk: true, databaseMs: Number, smdpAddress: 'localhost:8443' });
});

t.test('/health: 503 naming the database when it does not answer', async (t) => {
  const w = await startWorld(t);
  await w.db.close();
  const started = Date.now();
  const r = await w.app.inject({ method: 'GET', url: '/health' });
  t.equal(r.statusCode, 503);
  t.match(r.json(), { status: 'unavailable', databaseOk: false, message: /^database: / });
  t.ok(Date.now() - started < 5000, 'answers within a few seconds');
});

t.test('/health: 503 within a few seconds when PostgreSQL accepts connections but never answers', async (t) => {
  const { default: net } = await import('node:net');
  const { buildApp } = await import('../../src/app.js');
  const { defaultConfig } = await import('../../src/config.js');
  const { openDatabase } = await import('../../src/db/db.js');
  const { loadServerPki } = await import('../../src/pki/load.js');
  const { testPkiDir } = await import('../helpers/world.js');
  const sockets = new Set<import('node:net').Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as import('node:net').AddressInfo).port;
  const db = await openDatabase({ url: `postgres://u:p@127.0.0.1:${port}/db`, connectTimeoutMs: 3000 });
  t.teardown(() => db.close().catch(() => {}));
  const pkiDir = await testPkiDir();
  const app = await buildApp({ config: { ...defaultConfig({}), certsDir: pkiDir, tls: false, logLevel: 'silent' }, db, pki: loadServerPki(pkiDir) }, { logger: false });
  t.teardown(() => app.close());
  const started = Date.now();
  const r = await app.inject({ method: 'GET', url: '/health' });
  t.equal(r.statusCode, 503);
  t.match(r.json(), { status: 'unavailable', database: 'postgres', databaseOk: false, message: 'database: no answer within 2000 ms' });
  t.ok(Date.now() - started < 5000, `answered in ${Date.now() - started} ms`);
});
