/**
 * The steps of a download change a profile without new index entries (migration 018;
 * docs/state-machine.md, "What a download writes"): no index of `profiles` holds `state`, the pool
 * index reads the stored `available` column instead, and PostgreSQL makes those updates HOT.
 */
import t from 'tap';
import { createReleasedOrder } from '../../src/orders/store.js';
import { openTestDb } from '../helpers/db.js';

t.test('no index of profiles holds state, and available follows it', async (t) => {
  const db = await openTestDb(t);
  const defs = (await db.query<{ def: string }>(
    `SELECT pg_get_indexdef(indexrelid) AS def FROM pg_index WHERE indrelid = 'profiles'::regclass`)).map((r) => r.def);
  t.ok(defs.length >= 5, `indexes read: ${defs.length}`);
  for (const def of defs) t.notMatch(def, /\bstate\b/, def);
  t.ok(defs.some((d) => /\bWHERE available\b/.test(d)), 'the pool index is partial on available');

  const p = await db.tx((q) => createReleasedOrder(q, {}));
  const avail = async () => (await db.query<{ available: boolean }>('SELECT available FROM profiles WHERE iccid = $1', [p.iccid]))[0]!.available;
  t.equal(await avail(), false, 'a released order is not in the pool');
  await db.query(`UPDATE profiles SET state = 'Available' WHERE iccid = $1`, [p.iccid]);
  t.equal(await avail(), true, 'an Available profile is');
});

t.test("a download's state changes are HOT, binding the EID is not", async (t) => {
  const db = await openTestDb(t);
  const p = await db.tx((q) => createReleasedOrder(q, {}));
  const hot = await db.tx(async (q) => {
    // This transaction's own count of HOT updates of the table (PostgreSQL's statistics functions).
    const count = async () => Number((await q.query<{ n: string }>(`SELECT pg_stat_get_xact_tuples_hot_updated('profiles'::regclass) AS n`))[0]!.n);
    const before = await count();
    await q.query(`UPDATE profiles SET eid = '89049032000000000000000000000001', download_attempts = 1, updated_at = now() WHERE iccid = $1`, [p.iccid]);
    const afterEid = await count();
    await q.query(`UPDATE profiles SET state = 'Downloaded', updated_at = now() WHERE iccid = $1`, [p.iccid]);
    await q.query(`UPDATE profiles SET state = 'Installed', device_state = 'Disabled', updated_at = now() WHERE iccid = $1`, [p.iccid]);
    return { eid: afterEid - before, steps: (await count()) - afterEid };
  });
  t.equal(hot.eid, 0, 'binding the EID adds index entries (eid is indexed)');
  t.equal(hot.steps, 2, 'downloaded and installed are HOT');
});
