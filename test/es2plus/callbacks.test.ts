/**
 * ES2+ handleDownloadProgressInfo through the outbox: the points a download produces, at-least-once
 * delivery with backoff, order per ICCID, survival across a worker restart, and ES9+ never waiting
 * for the operator.
 */
import t from 'tap';
import { enqueueProgress, progressTimestamp, SESSION_CANCELLED } from '../../src/es2plus/callbacks.js';
import { openDatabase, type Database } from '../../src/db/db.js';
import { createReleasedOrder } from '../../src/orders/store.js';
import { backoffMs, startOutboxWorker, type OutboxWorkerOptions } from '../../src/outbox/worker.js';
import { decodePendingNotification } from '../../src/rsp/notification.js';
import { LpaError } from '../../src/sim/lpa.js';
import { openTestDb } from '../helpers/db.js';
import { addOperator, newDevice, receiver, until } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

function worker(t: { teardown(fn: () => unknown): void }, db: Database, opts: OutboxWorkerOptions = {}) {
  const w = startOutboxWorker(db, { pollIntervalMs: 20, baseDelayMs: 100, requesterIdentifier: 'smdp.test', ...opts });
  t.teardown(() => w.stop());
  return w;
}

t.test('backoff doubles from the base and is capped', async (t) => {
  t.same([1, 2, 3, 4, 12].map((n) => backoffMs(n, 1000, 300_000)), [1000, 2000, 4000, 8000, 300_000]);
  t.equal(progressTimestamp(new Date(Date.UTC(2024, 0, 9, 17, 59, 59, 123))), '2024-01-09T17:59:59Z');
});

t.test('a download through the simulator reports points 1, 3 and 4 in order', async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t);
  const order = await w.order();
  const opId = await addOperator(w.db, rx.url, [order.iccid]);
  worker(t, w.db);
  const { card, lpa } = await newDevice(w);
  const result = await lpa.download(order.activationCode);
  t.equal(result.notificationSent, true);

  const calls = await rx.waitFor(3);
  t.same(calls.map((c) => c.body.notificationPointId), [1, 3, 4], 'points 1, 3, 4 in that order');
  for (const c of calls) {
    t.equal(c.path, '/gsma/rsp2/es2plus/handleDownloadProgressInfo', 'bare callback URL gets the ES2+ path');
    t.match(c.headers['content-type'], /^application\/json/);
    t.match(c.headers['x-admin-protocol'], /^gsma\/rsp\/v2\./);
    t.equal(c.body.iccid, order.iccid);
    t.equal(c.body.eid, card.eid);
    t.equal(c.body.profileType, 'default');
    t.match(c.body.timestamp, TS_RE);
    t.same(c.body.notificationPointStatus, { status: 'Executed-Success' });
    t.equal(c.body.header.functionRequesterIdentifier, 'smdp.test');
  }
  t.equal(new Set(calls.map((c) => c.body.header.functionCallIdentifier)).size, 3, 'each callback has its own functionCallIdentifier');
  t.notOk('resultData' in calls[0]!.body, 'no resultData before the install');
  const [note] = await w.db.query<{ raw: Buffer }>(`SELECT raw FROM notifications WHERE iccid = $1 AND kind = 'install'`, [order.iccid]);
  t.equal(calls[2]!.body.resultData, note!.raw.toString('base64'), 'point 4 carries the PendingNotification as received');
  const pn = decodePendingNotification(Buffer.from(calls[2]!.body.resultData, 'base64'));
  t.ok('pir' in pn && 'success' in pn.pir.data.finalResult, 'resultData decodes as a successful PIR');

  await until(async () => (await w.db.query('SELECT 1 FROM outbox WHERE delivered_at IS NULL')).length === 0);
  const rows = await w.db.query<{ operator_id: string; attempts: number; delivered: boolean }>(
    'SELECT operator_id, attempts, delivered_at IS NOT NULL AS delivered FROM outbox ORDER BY id');
  t.same(rows, [1, 2, 3].map(() => ({ operator_id: opId, attempts: 1, delivered: true })));
});

t.test('a wrong confirmation code reports point 2, the cancelled session the cancel point', async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t);
  const order = await w.order({ confirmationCode: '1234' });
  await addOperator(w.db, `${rx.url}/es2/progress`, [order.iccid]);
  worker(t, w.db);
  const { lpa } = await newDevice(w);
  const err = await lpa.download(order.activationCode, { confirmationCode: '9999' }).catch((e) => e);
  t.ok(err instanceof LpaError);
  t.match(err, { subjectCode: '8.2.7', reasonCode: '3.8' });
  t.equal(err.cancel?.es9, 'Executed-Success', 'the LPA cancelled the session');

  const calls = await rx.waitFor(3);
  t.equal(calls[0]!.path, '/es2/progress', 'a callback URL with a path is used as is');
  t.same(calls.map((c) => c.body.notificationPointId), [1, 2, SESSION_CANCELLED.point]);
  t.match(calls[1]!.body.notificationPointStatus, { status: 'Failed', statusCodeData: { subjectCode: '8.2.7', reasonCode: '3.8' } });
  t.match(calls[2]!.body.notificationPointStatus, {
    status: 'Failed',
    statusCodeData: { subjectCode: SESSION_CANCELLED.statusCode.subjectCode, reasonCode: SESSION_CANCELLED.statusCode.reasonCode, message: /endUserRejection/ },
  });
});

t.test('no operator, or no callback URL: nothing is queued', async (t) => {
  const w = await startWorld(t);
  const a = await w.order();
  const b = await w.order();
  await addOperator(w.db, null, [b.iccid]);
  for (const o of [a, b]) await (await newDevice(w)).lpa.download(o.activationCode);
  t.same(await w.db.query('SELECT 1 FROM outbox'), []);
});

async function orderWithOperator(db: Database, url: string) {
  const p = await db.tx((q) => createReleasedOrder(q, {}));
  await addOperator(db, url, [p.iccid]);
  return p.iccid;
}

t.test('a receiver failing twice gets the callback on the third attempt, after the backoff', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t, (n) => (n < 2 ? 503 : 204));
  const iccid = await orderWithOperator(db, rx.url);
  await db.tx((q) => enqueueProgress(q, { iccid, point: 3, status: 'Executed-Success' }));
  worker(t, db, { baseDelayMs: 150 });
  const calls = await rx.waitFor(3);
  await until(async () => (await db.query('SELECT 1 FROM outbox WHERE delivered_at IS NOT NULL')).length === 1);
  const [row] = await db.query<{ attempts: number; last_error: string | null }>('SELECT attempts, last_error FROM outbox');
  t.same(row, { attempts: 3, last_error: null }, 'three attempts, delivered');
  t.equal(new Set(calls.map((c) => c.body.header.functionCallIdentifier)).size, 1, 'the same call is retried');
  const gap1 = calls[1]!.at - calls[0]!.at;
  const gap2 = calls[2]!.at - calls[1]!.at;
  t.ok(gap1 >= 140, `first retry after ≥ 150 ms (${gap1.toFixed(0)})`);
  t.ok(gap2 >= 290, `second retry after ≥ 300 ms (${gap2.toFixed(0)})`);
});

t.test("one ICCID's callbacks go out in order; another ICCID is not held up", async (t) => {
  const db = await openTestDb(t);
  let failedOnce = false;
  const rx = await receiver(t, (_n, body) => {
    if (body.notificationPointId === 1 && !failedOnce) {
      failedOnce = true;
      return 500;
    }
    return 204;
  });
  const a = await orderWithOperator(db, rx.url);
  const b = await orderWithOperator(db, rx.url);
  await db.tx(async (q) => {
    await enqueueProgress(q, { iccid: a, point: 1, status: 'Executed-Success' });
    await enqueueProgress(q, { iccid: a, point: 3, status: 'Executed-Success' });
    await enqueueProgress(q, { iccid: b, point: 1, status: 'Executed-Success' });
  });
  worker(t, db, { baseDelayMs: 200 });
  const calls = await rx.waitFor(4);
  const seq = calls.map((c) => `${c.body.iccid === a ? 'a' : 'b'}${c.body.notificationPointId}`);
  t.same(seq.filter((s) => s.startsWith('a')), ['a1', 'a1', 'a3'], 'a3 waits until a1 is delivered');
  t.ok(seq.indexOf('b1') < seq.lastIndexOf('a1'), 'b1 went out while a1 was waiting for its retry');
});

t.test('pending callbacks survive a restart', async (t) => {
  const db = await openTestDb(t);
  let up = false;
  const rx = await receiver(t, () => (up ? 204 : 'hang'));
  const iccid = await orderWithOperator(db, rx.url);
  await db.tx((q) => enqueueProgress(q, { iccid, point: 1, status: 'Executed-Success' }));
  // The first process starts sending, then stops (shutdown) while the operator has not answered.
  const w1 = startOutboxWorker(db, { pollIntervalMs: 20, timeoutMs: 30_000 });
  await rx.waitFor(1);
  await w1.stop();
  t.same(await db.query('SELECT attempts FROM outbox WHERE delivered_at IS NULL'), [{ attempts: 0 }], 'still pending, not counted as a failure');

  // A new process (PostgreSQL: its own connection pool) on the same database delivers it.
  up = true;
  const url = (db as { url?: string }).url;
  const db2 = url ? await openDatabase({ url }) : db;
  if (url) t.teardown(() => db2.close());
  worker(t, db2);
  const calls = await rx.waitFor(2);
  t.equal(calls[1]!.body.header.functionCallIdentifier, calls[0]!.body.header.functionCallIdentifier, 'the same callback, sent again');
  await until(async () => (await db.query('SELECT 1 FROM outbox WHERE delivered_at IS NOT NULL')).length === 1);
});

t.test('a failed callback is retried after a restart, once its backoff is over', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t, (n) => (n === 0 ? 500 : 204));
  const iccid = await orderWithOperator(db, rx.url);
  await db.tx((q) => enqueueProgress(q, { iccid, point: 4, status: 'Executed-Success' }));
  const w1 = startOutboxWorker(db, { pollIntervalMs: 20, baseDelayMs: 300 });
  await rx.waitFor(1);
  await until(async () => (await db.query('SELECT 1 FROM outbox WHERE attempts = 1')).length === 1);
  await w1.stop();
  const w2 = worker(t, db, { baseDelayMs: 300 });
  t.equal(await w2.runOnce(), 0, 'not due before its backoff');
  await rx.waitFor(2);
  t.ok(rx.calls[1]!.at - rx.calls[0]!.at >= 290, 'sent again after the backoff');
});

t.test('ES9+ does not wait for a hanging operator', async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t, () => 'hang');
  const order = await w.order();
  await addOperator(w.db, rx.url, [order.iccid]);
  worker(t, w.db, { timeoutMs: 20_000 });
  const { lpa } = await newDevice(w);
  const t0 = performance.now();
  const result = await lpa.download(order.activationCode);
  const ms = performance.now() - t0;
  t.equal(result.notificationSent, true);
  // The worker may pick the first callback up only after the download ended: wait for it.
  await until(() => rx.calls.length >= 1);
  t.ok(rx.calls.length >= 1, 'the operator got the first callback and never answered it');
  t.ok(ms < 10_000, `the download finished in ${ms.toFixed(0)} ms, long before the callback timeout`);
  const pending = await w.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE delivered_at IS NULL');
  t.equal(pending[0]!.n, 3, 'all three callbacks queued, none delivered');
});
