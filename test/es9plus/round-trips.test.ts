/**
 * What one download costs the database (issue: few round trips). A whole download
 * (initiateAuthentication, authenticateClient, getBoundProfilePackage, the install result) is at
 * most 12 statements in at most 4 transactions. initiateAuthentication writes nothing (its
 * transactionId carries the session: docs/state-machine.md, "Sessions opened without a write");
 * each later function writes once, as one statement (applyChange, guarded by what the function
 * read), so 3 transactions write; reads run alone, with no BEGIN/COMMIT round trips around them,
 * and on one process only authenticateClient reads (the other steps take the snapshot their
 * previous step kept): 4 statements, 4 transactions. With and without an operator callback, and no
 * statement for an unset fault.
 */
import t from 'tap';
import type { Database } from '../../src/db/db.js';
import { addFault } from '../../src/es9plus/faults.js';
import { newDevice } from '../helpers/device.js';
import { startWorld, type World } from '../helpers/world.js';

interface Count {
  statements: string[];
  /** Transactions: explicit ones and statements run alone (each its own). */
  transactions: number;
  /** Of those, the ones with a statement that writes. */
  writing: number;
  /** Round trips: statements, plus BEGIN and COMMIT of explicit transactions. */
  roundTrips: number;
}

const writes = (sql: string) => /\b(INSERT|UPDATE|DELETE)\b/i.test(sql);

/** Counts what the app asks of the database: statements (inside transactions or alone) and transactions. */
function countQueries(w: World): Count {
  const c: Count = { statements: [], transactions: 0, writing: 0, roundTrips: 0 };
  const db = w.db as unknown as { query: Database['query']; tx: Database['tx'] };
  const query = db.query.bind(db);
  const tx = db.tx.bind(db);
  db.query = (sql, params, opts) => {
    c.statements.push(sql);
    c.transactions++;
    c.roundTrips++;
    if (writes(sql)) c.writing++;
    return query(sql, params, opts);
  };
  db.tx = (fn, opts) => {
    c.transactions++;
    c.roundTrips += 2;
    let wrote = false;
    return tx((q) => fn({
      query: (sql, params) => {
        c.statements.push(sql);
        c.roundTrips++;
        if (writes(sql) && !wrote) (wrote = true), c.writing++;
        return q.query(sql, params);
      },
    }), opts);
  };
  return c;
}

for (const withOperator of [false, true]) {
  t.test(`one download ${withOperator ? 'of an operator with a callback URL' : 'without an operator'}: at most 12 statements, 4 transactions`, async (t) => {
    const w = await startWorld(t);
    const { lpa } = await newDevice(w);
    // A fault for another order exists in one run: it must cost nothing for this one beyond the flag.
    const order = await w.order();
    if (withOperator) {
      await w.db.query(`INSERT INTO operators (id, name, callback_url) VALUES ('op', 'Op', 'http://127.0.0.1:9/cb')`);
      await w.db.query(`UPDATE profiles SET operator_id = 'op' WHERE iccid = $1`, [order.iccid]);
    }
    // A first download: what the app does once after its start (its workers' first passes, the
    // transactionId key) is done before the count.
    await lpa.download((await w.order()).activationCode);
    const c = countQueries(w);
    const r = await lpa.download(order.activationCode);
    t.equal(r.notificationSent, true);
    t.equal((await w.profile(order.iccid))!.state, 'Installed');
    const during = c.statements.length - 1; // the profile read just above
    t.ok(during <= 12, `${during} statements per download`);
    t.equal(during, 4, 'one read (authenticateClient) and three writes: initiateAuthentication and the later steps read nothing');
    t.equal(c.writing, 3, 'initiateAuthentication writes nothing; the three other functions one statement each');
    t.ok(c.transactions - 1 <= 4, `${c.transactions - 1} transactions per download`);
    t.ok(c.roundTrips - 1 <= 8, `${c.roundTrips - 1} round trips per download (${c.transactions - 1} transactions, each statement alone)`);
    t.notOk(c.statements.some((s) => /fault_injections WHERE remaining > 0 AND/.test(s)), 'no fault lookup when none is set');
    const outbox = await w.db.query<{ payload: { notificationPointId: number } }>('SELECT payload FROM outbox ORDER BY id');
    t.same(outbox.map((o) => o.payload.notificationPointId), withOperator ? [1, 3, 4] : [], 'callbacks written in the same statements');
  });
}

t.test('a fault set for another order does not fire; only while one is set do calls look for a matching fault', async (t) => {
  const w = await startWorld(t);
  const { lpa } = await newDevice(w);
  const other = await w.order();
  await addFault(w.db, { iccid: other.iccid, mode: 'fail', subjectCode: '8.2.6', reasonCode: '3.8' });
  const order = await w.order();
  const c = countQueries(w);
  const r = await lpa.download(order.activationCode);
  t.equal(r.notificationSent, true, 'the fault for the other order did not fire');
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  t.ok(c.statements.length - 1 > 12, 'with a fault pending, each call also looks for a matching fault');
});
