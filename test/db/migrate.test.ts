/**
 * Migrations: the statement splitter (quotes, comments, $$ bodies), and concurrent migrators on an
 * empty PostgreSQL database (several server instances starting together): all succeed, each
 * migration is applied exactly once.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';
import { defaultConfig } from '../../src/config.js';
import { openDatabase, type Database } from '../../src/db/db.js';
import { loadMigrations, migrate, splitStatements } from '../../src/db/migrate.js';
import { startServer } from '../../src/server.js';
import { emptyPgDatabase, openTestDb, usingPostgres } from '../helpers/db.js';
import { testPkiDir } from '../helpers/world.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const versions = loadMigrations().map((m) => m.version);
const PG_ONLY = { skip: !usingPostgres && 'PostgreSQL only (DATABASE_URL)' };

t.test('splitStatements: semicolons in strings, identifiers, comments and $$ bodies do not split', async (t) => {
  t.same(splitStatements('SELECT 1; SELECT 2;\n\n;'), ['SELECT 1', 'SELECT 2']);
  t.same(splitStatements("INSERT INTO t VALUES ('a;b', 'it''s; fine');SELECT 2"), ["INSERT INTO t VALUES ('a;b', 'it''s; fine')", 'SELECT 2']);
  t.same(splitStatements(String.raw`SELECT E'a\';b'; SELECT 'c\'; SELECT 3`), [String.raw`SELECT E'a\';b'`, String.raw`SELECT 'c\'`, 'SELECT 3'], 'backslash escapes only in E strings');
  t.same(splitStatements('SELECT "a;b" FROM "x""y;"; SELECT 2'), ['SELECT "a;b" FROM "x""y;"', 'SELECT 2']);
  t.same(splitStatements("-- one; two\nSELECT 1; -- it's; here\nSELECT /* a; /* nested; */ b; */ 2"), ['SELECT 1', 'SELECT   2']);
  const fn = `CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('c', ''); -- a comment; inside
  RETURN NULL;
END;
$$`;
  t.same(splitStatements(`${fn};\nCREATE TRIGGER x AFTER INSERT ON t EXECUTE FUNCTION f();`), [fn, 'CREATE TRIGGER x AFTER INSERT ON t EXECUTE FUNCTION f()'], 'a $$ body is one statement, kept verbatim');
  const tagged = "DO $body$ BEGIN RAISE NOTICE '$$;'; END $body$";
  t.same(splitStatements(`${tagged}; SELECT $1::int, $2`), [tagged, 'SELECT $1::int, $2'], '$tag$ bodies; $1 parameters are no tags');
  t.throws(() => splitStatements("SELECT 'open; SELECT 2"), /unterminated string/);
  t.throws(() => splitStatements('DO $$ BEGIN; SELECT 2'), /unterminated \$\$/);
});

t.test('the migrations split as before, and 009 keeps its function body whole', async (t) => {
  const old = (sql: string) => sql.replace(/--.*$/gm, '').split(';').map((s) => s.trim()).filter(Boolean);
  const norm = (a: string[]) => a.map((s) => s.replace(/\s+/g, ' '));
  for (const m of loadMigrations()) {
    if (m.version < '009') t.same(norm(splitStatements(m.sql)), norm(old(m.sql)), m.version);
  }
  const m009 = loadMigrations().find((m) => m.version.startsWith('009_'))!;
  t.match(splitStatements(m009.sql)[0], /^CREATE OR REPLACE FUNCTION outbox_notify\(\)[\s\S]*RETURN NULL;\s*END;\s*\$\$$/);
});

t.test('the numbering: unique, increasing, only 003 missing (src/db/migrate.ts says why)', async (t) => {
  const numbers = versions.map((v) => Number(v.slice(0, 3)));
  t.same(numbers, [...new Set(numbers)].sort((a, b) => a - b), 'one file per number, in order');
  const missing = Array.from({ length: Math.max(...numbers) }, (_, i) => i + 1).filter((n) => !numbers.includes(n));
  t.same(missing, [3], 'no number reused for the gap, none skipped since');
});

t.test('a gap in the numbering: every file runs once, in name order, and a rerun applies nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-gap-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, '001_a.sql'), 'CREATE TABLE gap_log (n integer NOT NULL);\nINSERT INTO gap_log VALUES (1);');
  writeFileSync(join(dir, '004_d.sql'), 'INSERT INTO gap_log VALUES (4);');
  writeFileSync(join(dir, '010_j.sql'), 'INSERT INTO gap_log VALUES (10);');
  writeFileSync(join(dir, 'notes.txt'), 'not a migration');
  const url = usingPostgres ? await emptyPgDatabase(t) : undefined;
  const db = await openDatabase(url ? { url, poolSize: 2 } : { dataDir: 'memory://' });
  t.teardown(() => db.close());
  t.same(await migrate(db, dir), ['001_a', '004_d', '010_j'], 'applied past the gaps');
  t.same((await db.query<{ n: number }>('SELECT n FROM gap_log')).map((r) => r.n), [1, 4, 10], 'in name order');
  t.same(await migrate(db, dir), [], 'nothing the second time');
  t.same((await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')).map((r) => r.version), ['001_a', '004_d', '010_j']);
});

t.test('migrate twice: the second run applies nothing', async (t) => {
  const db = await openTestDb(t);
  t.same(await migrate(db), []);
  const rows = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
  t.same(rows.map((r) => r.version), versions);
});

async function appliedOnce(t: Test, db: Database, runs: string[][]) {
  const all = runs.flat();
  t.same([...all].sort(), versions, `every migration applied by exactly one migrator (${runs.map((r) => r.length).join(' + ')})`);
  const rows = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
  t.same(rows.map((r) => r.version), versions, 'schema_migrations lists each once');
  const [trg] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_trigger WHERE tgname = 'outbox_notify'`);
  t.equal(trg!.n, 1, 'the schema is complete');
}

t.test('two Database handles migrating one empty PostgreSQL database at once', PG_ONLY, async (t) => {
  // The race is on the very first statements (schema_migrations' creation): repeated to hit it.
  for (let round = 0; round < 5; round++) {
    const url = await emptyPgDatabase(t);
    const dbs = await Promise.all([1, 2, 3].map(() => openDatabase({ url, poolSize: 2 })));
    try {
      const runs = await Promise.all(dbs.map((db) => migrate(db)));
      await appliedOnce(t, dbs[0]!, runs);
    } finally {
      await Promise.all(dbs.map((db) => db.close()));
    }
  }
});

t.test('two servers starting together on an empty PostgreSQL database', PG_ONLY, async (t) => {
  const url = await emptyPgDatabase(t);
  const dataDir = mkdtempSync(join(tmpdir(), 'mock-smdp-migrate-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = {
    ...defaultConfig({}), listenHost: '127.0.0.1', port: 0, tls: false, certsDir: await testPkiDir(), dataDir, databaseUrl: url, logLevel: 'silent',
  };
  const starts = await Promise.allSettled([startServer(config), startServer(config)]);
  const servers = starts.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    t.same(starts.map((s) => (s.status === 'rejected' ? String(s.reason) : 'started')), ['started', 'started'], 'both servers start');
    for (const s of servers) t.equal((await fetch(`${s.url}/health`)).status, 200, `${s.url} up`);
    const rows = await servers[0]!.db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    t.same(rows.map((r) => r.version), versions);
  } finally {
    // Before the database is dropped.
    await Promise.all(servers.map((s) => s.close()));
  }
});

t.test('two processes migrating one empty PostgreSQL database at once', PG_ONLY, async (t) => {
  const url = await emptyPgDatabase(t);
  const script = `
    const { openDatabase } = await import(${JSON.stringify(join(repo, 'src/db/db.ts'))});
    const { migrate } = await import(${JSON.stringify(join(repo, 'src/db/migrate.ts'))});
    const db = await openDatabase({ url: process.env.URL });
    console.log(JSON.stringify(await migrate(db)));
    await db.close();`;
  const child = () => run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: repo, env: { ...process.env, URL: url }, encoding: 'utf8' });
  const outs = await Promise.all([child(), child()]);
  const db = await openDatabase({ url, poolSize: 1 });
  t.teardown(() => db.close());
  await appliedOnce(t, db, outs.map((o) => JSON.parse(o.stdout) as string[]));
});
