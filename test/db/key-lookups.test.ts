/**
 * TxOptions.keyLookups (the ES9+ transactions) on PostgreSQL: generic plans reused, sequential scans
 * off, only for that transaction; the pool's connections keep force_custom_plan otherwise.
 */
import t from 'tap';
import { migrate } from '../../src/db/migrate.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';

t.test('keyLookups transactions plan once, never by a sequential scan', { skip: !usingPostgres && 'PostgreSQL only (DATABASE_URL)' }, async (t) => {
  const db = await openTestDb(t);
  await migrate(db);
  const lookup = 'SELECT iccid FROM profiles WHERE iccid = $1';
  const inside = await db.tx(async (q) => {
    const [s] = await q.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode');
    const [e] = await q.query<{ enable_seqscan: string }>('SHOW enable_seqscan');
    for (let i = 0; i < 3; i++) await q.query(lookup, ['89000000000000000000']);
    const [p] = await q.query<{ generic_plans: string; custom_plans: string }>(
      'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1', [lookup]);
    const plan = await q.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${lookup.replace('$1', "'8900'")}`);
    return { mode: s!.plan_cache_mode, seqscan: e!.enable_seqscan, p, plan: plan.map((r) => r['QUERY PLAN']).join('\n') };
  }, { keyLookups: true });
  t.equal(inside.mode, 'force_generic_plan');
  t.equal(inside.seqscan, 'off');
  t.ok(Number(inside.p?.generic_plans) >= 1 && Number(inside.p?.custom_plans) === 0, `generic plan reused (${JSON.stringify(inside.p)})`);
  t.match(inside.plan, /Index/, 'the empty table is still read through its index');
  t.notMatch(inside.plan, /Seq Scan/);
  const after = await db.tx(async (q) => (await q.query<{ plan_cache_mode: string }>('SHOW plan_cache_mode'))[0]!.plan_cache_mode);
  t.equal(after, 'force_custom_plan', 'other transactions keep custom plans');
});
