/**
 * The database layer: PostgreSQL connections plan every statement for its parameters
 * (plan_cache_mode), keeping startup options given in the URL; LISTEN on both engines, including
 * its re-connection on PostgreSQL; one connection held by connection().
 */
import t from 'tap';
import { CONNECTION_SETTINGS, openDatabase, pgConnectionConfig } from '../../src/db/db.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';
import { until } from '../helpers/operator.js';

const PG_ONLY = { skip: !usingPostgres && 'PostgreSQL only (DATABASE_URL)' };

t.test('pgConnectionConfig adds plan_cache_mode to the startup options, keeping the URL\'s own', async (t) => {
  const saved = process.env.PGOPTIONS;
  t.teardown(() => {
    if (saved === undefined) delete process.env.PGOPTIONS;
    else process.env.PGOPTIONS = saved;
  });
  delete process.env.PGOPTIONS;
  t.same(pgConnectionConfig('postgres://u:p@h:5432/db'), { connectionString: 'postgres://u:p@h:5432/db', options: '-c plan_cache_mode=force_custom_plan' });
  t.same(pgConnectionConfig('postgres://u:p@h/db?sslmode=disable&options=-c%20work_mem%3D8MB'), {
    connectionString: 'postgres://u:p@h/db?sslmode=disable',
    options: '-c work_mem=8MB -c plan_cache_mode=force_custom_plan',
  });
  process.env.PGOPTIONS = '-c statement_timeout=5000';
  t.equal(pgConnectionConfig('postgres://h/db').options, '-c statement_timeout=5000 -c plan_cache_mode=force_custom_plan', 'PGOPTIONS kept');
  t.same(CONNECTION_SETTINGS, ['-c plan_cache_mode=force_custom_plan']);
});

t.test('pooled connections use plan_cache_mode=force_custom_plan', PG_ONLY, async (t) => {
  const db = await openTestDb(t);
  const show = async (q: { query: typeof db.query }) => (await q.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0]!.plan_cache_mode;
  // Several at once: more than one connection of the pool.
  t.same(await Promise.all([1, 2, 3, 4].map(() => show(db))), Array(4).fill('force_custom_plan'), 'db.query');
  t.equal(await db.tx((q) => show(q)), 'force_custom_plan', 'db.tx');
  t.equal(await db.connection((c) => show(c)), 'force_custom_plan', 'db.connection');
  const url = new URL((db as { url?: string }).url!);
  url.searchParams.set('options', '-c work_mem=7MB');
  const db2 = await openDatabase({ url: url.toString(), poolSize: 1 });
  t.teardown(() => db2.close());
  t.equal(await show(db2), 'force_custom_plan', 'with options in the URL');
  t.same(await db2.query('SHOW work_mem'), [{ work_mem: '7MB' }], 'the URL\'s options are applied too');
});

t.test('a named statement is planned for its parameters on every execution', PG_ONLY, async (t) => {
  const db = await openTestDb(t);
  await db.connection(async (c) => {
    const sql = 'SELECT iccid FROM profiles WHERE iccid = $1';
    for (let i = 0; i < 8; i++) await c.query(sql, [`8900000000000000000${i}`]);
    // Past five executions PostgreSQL would otherwise switch this statement to its generic plan.
    const [ps] = await c.query<{ generic_plans: string; custom_plans: string }>(
      'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1', [sql]);
    t.same({ generic: Number(ps!.generic_plans), custom: Number(ps!.custom_plans) }, { generic: 0, custom: 8 }, 'eight custom plans, no generic one');
  });
});

t.test('connection() holds one connection for its callback', async (t) => {
  const db = await openTestDb(t);
  const pids = await db.connection(async (c) => {
    const a = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const b = await c.tx((q) => q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'));
    return [a[0]!.pid, b[0]!.pid];
  });
  t.equal(pids[0], pids[1]);
  await t.rejects(db.connection(async () => {
    throw new Error('boom');
  }), /boom/);
  t.same(await db.query('SELECT 1 AS x'), [{ x: 1 }], 'the pool works after a failed callback');
});

t.test('listen: a committed INSERT into outbox notifies, a rolled back one does not', async (t) => {
  const db = await openTestDb(t);
  let n = 0;
  const l = await db.listen('outbox', () => n++);
  t.teardown(() => l.close());
  t.ok(l.active);
  await until(() => n >= (usingPostgres ? 1 : 0)); // PostgreSQL: the initial catch-up call
  const base = n;
  await db.query(`INSERT INTO operators (id, name) VALUES ('op1', 'op')`);
  await db.query(`INSERT INTO outbox (operator_id, url, kind, payload) VALUES ('op1', 'http://x', 'k', '{}')`);
  await until(() => n === base + 1);
  await t.rejects(db.tx(async (q) => {
    await q.query(`INSERT INTO outbox (operator_id, url, kind, payload) VALUES ('op1', 'http://x', 'k', '{}')`);
    throw new Error('rollback');
  }));
  await db.tx(async (q) => {
    for (let i = 0; i < 3; i++) await q.query(`INSERT INTO outbox (operator_id, url, kind, payload) VALUES ('op1', 'http://x', 'k', '{}')`);
  });
  await until(() => n >= base + 2);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(n, base + 2, 'one notification for the committed transaction, none for the rolled back one');
  await l.close();
  t.notOk(l.active);
});

t.test('listen on PostgreSQL: a lost connection is re-established, and the caller told', PG_ONLY, async (t) => {
  const db = await openTestDb(t);
  let n = 0;
  const l = await db.listen('outbox', () => n++);
  t.teardown(() => l.close());
  await until(() => n === 1);
  const killed = await db.query<{ ok: boolean }>(
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN outbox'`);
  t.same(killed, [{ ok: true }], 'the listening connection was terminated');
  await until(() => !l.active, 5_000);
  await until(() => l.active && n === 2, 10_000);
  t.pass('active again, with a catch-up call');
  await db.query(`INSERT INTO operators (id, name) VALUES ('op1', 'op')`);
  await db.query(`INSERT INTO outbox (operator_id, url, kind, payload) VALUES ('op1', 'http://x', 'k', '{}')`);
  await until(() => n === 3);
});
