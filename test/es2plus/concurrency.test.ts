/**
 * Concurrent ES2+ calls (meant for PostgreSQL, where they really run in parallel; PGlite runs them
 * one after another and must give the same answers): no ICCID handed out twice, and racing
 * confirm/cancel calls on one order end in one consistent state that its events agree with.
 */
import t from 'tap';
import { profileHistory } from '../../src/orders/store.js';
import { startWorld } from '../helpers/world.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { usingPostgres } from '../helpers/db.js';

t.comment(`database: ${usingPostgres ? 'PostgreSQL' : 'PGlite'}`);

t.test('50 parallel downloadOrders for one profile type get 50 distinct ICCIDs; the 51st gets 8.2.5/3.7', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const pool = await op.stock(50);
  const answers = await Promise.all(Array.from({ length: 50 }, () => op.call('downloadOrder', { profileType: 'default' })));
  t.same(answers.map((a) => a.status), Array(50).fill('Executed-Success'), 'all served');
  const got = answers.map((a) => a.body.iccid as string);
  t.equal(new Set(got).size, 50, 'no ICCID twice');
  t.same([...got].sort(), [...pool].sort(), 'exactly the pool');
  t.equal((await op.call('downloadOrder', { profileType: 'default' })).status, 'Failed 8.2.5/3.7', '51st: none left');
  const allocated = await w.db.query<{ n: string | number }>(`SELECT count(*) AS n FROM profile_events WHERE event = 'allocated'`);
  t.equal(Number(allocated[0]!.n), 50, 'one allocation event per profile');
});

t.test('parallel confirmOrder and cancelOrder on one order end consistent', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const orders = await op.stock(20);
  for (const iccid of orders) await op.call('downloadOrder', { iccid });

  const outcomes = { confirmFirst: 0, cancelFirst: 0 };
  t.teardown(() => t.comment(`confirm won ${outcomes.confirmFirst}, cancel won ${outcomes.cancelFirst}`));
  await Promise.all(orders.map(async (iccid, i) => {
    const release = i % 2 === 0;
    const [confirm, cancel] = await Promise.all([
      op.call('confirmOrder', { iccid, releaseFlag: release }),
      op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Available' }),
    ]);
    const p = (await w.profile(iccid))!;
    const events = (await profileHistory(w.db, iccid)).map((e) => e.event).slice(2); // after created, allocated
    t.equal(cancel.status, 'Executed-Success', `${iccid}: cancel always possible (Allocated, Confirmed and Released are cancellable)`);
    t.equal(p.state, 'Available', `${iccid}: ends Available`);
    t.equal(p.matching_id, null, `${iccid}: no MatchingID left behind`);
    outcomes[confirm.status === 'Executed-Success' ? 'confirmFirst' : 'cancelFirst']++;
    if (confirm.status === 'Executed-Success') {
      t.same(events, [release ? 'released' : 'confirmed', 'cancelled'], `${iccid}: confirm then cancel`);
    } else {
      t.equal(confirm.status, 'Failed 8.2.1/3.5', `${iccid}: confirm after cancel refused`);
      t.same(events, ['cancelled'], `${iccid}: cancel only`);
    }
  }));
});

t.test('parallel confirmOrder + releaseProfile + cancelOrder(Unavailable): one history, one state', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const orders = await op.stock(15);
  for (const iccid of orders) await op.call('downloadOrder', { iccid });
  await Promise.all(orders.map(async (iccid) => {
    const calls = await Promise.all([
      op.call('confirmOrder', { iccid, releaseFlag: false }),
      op.call('releaseProfile', { iccid }),
      op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Unavailable' }),
    ]);
    const p = (await w.profile(iccid))!;
    const events = (await profileHistory(w.db, iccid)).slice(2);
    // Replaying the recorded transitions from Allocated must give the final state.
    let state = 'Allocated';
    for (const e of events) {
      t.equal((e.detail as { from: string }).from, state, `${iccid}: ${e.event} starts where the last one ended`);
      state = (e.detail as { to: string }).to;
    }
    t.equal(p.state, state, `${iccid}: the events explain the state`);
    t.equal(calls.filter((c) => c.status === 'Executed-Success').length, events.length, `${iccid}: one event per successful call`);
    t.ok(calls.every((c) => c.status === 'Executed-Success' || c.status === 'Failed 8.2.1/3.5'), `${iccid}: refusals are 8.2.1/3.5`);
  }));
});

t.test('the same MatchingID confirmed on two orders at once: exactly one gets it', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const pairs = await op.stock(20);
  for (const iccid of pairs) await op.call('downloadOrder', { iccid });
  for (let i = 0; i < pairs.length; i += 2) {
    const mid = `RACE-${i}`;
    const [a, b] = await Promise.all([pairs[i], pairs[i + 1]].map((iccid) => op.call('confirmOrder', { iccid, matchingId: mid, releaseFlag: true })));
    const statuses = [a!.status, b!.status].sort();
    t.same(statuses, ['Executed-Success', 'Failed 8.2.6/3.3'], `${mid}: one winner`);
    const holders = await w.db.query('SELECT iccid FROM profiles WHERE matching_id = $1', [mid]);
    t.equal(holders.length, 1);
  }
});

t.test('parallel cancelOrders: one succeeds, the others are invalid transitions', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const [iccid] = await op.stock(1);
  await op.call('downloadOrder', { iccid });
  const r = await Promise.all(Array.from({ length: 8 }, () => op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Available' })));
  t.equal(r.filter((x) => x.status === 'Executed-Success').length, 1);
  t.equal(r.filter((x) => x.status === 'Failed 8.2.1/3.5').length, 7);
  t.same((await profileHistory(w.db, iccid!)).map((e) => e.event), ['created', 'allocated', 'cancelled']);
});
