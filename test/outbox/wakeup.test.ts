/**
 * The outbox worker sleeps while idle and is woken by the NOTIFY of migration 009's trigger: a new
 * callback goes out at once although the worker polls rarely; retries still go out when their
 * backoff ends; an idle worker runs (almost) no queries; a row waiting behind an earlier row of
 * its ICCID does not make it spin; several workers on one database send each callback once.
 */
import t from 'tap';
import { openDatabase, type Database, type Queryable } from '../../src/db/db.js';
import { startOutboxWorker, type OutboxWorker, type OutboxWorkerOptions } from '../../src/outbox/worker.js';
import { openTestDb, usingPostgres } from '../helpers/db.js';
import { receiver, until } from '../helpers/operator.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/** Polls so rarely that anything arriving quickly was woken by a notification or a due time. */
const SLEEPY: OutboxWorkerOptions = { pollIntervalMs: 60_000, idlePollMs: 60_000 };

async function worker(t: TestLike, db: Database, opts: OutboxWorkerOptions = {}): Promise<OutboxWorker> {
  const w = startOutboxWorker(db, { ...SLEEPY, ...opts });
  t.teardown(() => w.stop());
  await until(() => w.listening, 10_000);
  await until(async () => w.rounds >= 1 && (await new Promise((r) => setTimeout(r, 50, true)) as boolean));
  return w;
}

let opSeq = 0;
async function operator(db: Queryable): Promise<string> {
  const id = `op${++opSeq}`;
  await db.query('INSERT INTO operators (id, name) VALUES ($1, $1)', [id]);
  return id;
}

async function enqueue(q: Queryable, op: string, url: string, iccid: string, n = 1): Promise<void> {
  await q.query(
    `INSERT INTO outbox (operator_id, url, kind, payload, iccid)
     SELECT $1, $2, 'test', jsonb_build_object('header', '{}'::jsonb, 'iccid', $3::text, 'n', i), $3 FROM generate_series(1, $4::integer) i`,
    [op, url, iccid, n],
  );
}

t.test('a new callback is sent at once: the commit wakes the worker', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t);
  const op = await operator(db);
  await worker(t, db);
  const latencies: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await db.tx((q) => enqueue(q, op, rx.url, `iccid-${i}`));
    const [call] = (await rx.waitFor(i + 1, 5_000)).slice(i);
    latencies.push(call!.at - t0);
  }
  t.comment(`commit → operator: ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
  t.ok(Math.min(...latencies) < 100, `best of three under 100 ms (${Math.min(...latencies).toFixed(1)})`);
  t.ok(Math.max(...latencies) < 2_000, 'each far sooner than the 60 s poll');
});

t.test('a retry goes out when its backoff ends, without polling', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t, (n) => (n < 2 ? 503 : 204));
  const op = await operator(db);
  await worker(t, db, { baseDelayMs: 300 });
  await enqueue(db, op, rx.url, 'a');
  const calls = await rx.waitFor(3, 10_000);
  const gaps = [calls[1]!.at - calls[0]!.at, calls[2]!.at - calls[1]!.at];
  t.comment(`retry gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms (backoff 300, 600)`);
  t.ok(gaps[0]! >= 290 && gaps[0]! < 2_000, 'first retry after its 300 ms backoff');
  t.ok(gaps[1]! >= 590 && gaps[1]! < 2_500, 'second retry after its 600 ms backoff');
  await until(async () => (await db.query('SELECT 1 FROM outbox WHERE delivered_at IS NOT NULL')).length === 1);
});

t.test('an idle worker runs no claim rounds (default options)', async (t) => {
  const db = await openTestDb(t);
  const w = startOutboxWorker(db);
  t.teardown(() => w.stop());
  await until(() => w.listening, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  const before = w.rounds;
  await new Promise((r) => setTimeout(r, 3_000));
  t.ok(w.rounds - before <= 1, `${w.rounds - before} rounds in 3 s idle (polling every 500 ms would be 6)`);
});

t.test('a row waiting behind an earlier row of its ICCID does not make the worker spin', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t, (n) => (n === 0 ? 500 : 204));
  const op = await operator(db);
  const w = await worker(t, db, { baseDelayMs: 1_500 });
  await enqueue(db, op, rx.url, 'same', 2);
  await rx.waitFor(1);
  const before = w.rounds;
  await new Promise((r) => setTimeout(r, 1_000)); // the first row's backoff is still running
  t.ok(w.rounds - before <= 2, `${w.rounds - before} rounds while waiting for the backoff`);
  const calls = await rx.waitFor(3, 10_000);
  t.same(calls.map((c) => c.body.n), [1, 1, 2], 'then the retry and the row behind it, in order');
});

t.test('several workers on one database: each callback is sent once, soon', async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t);
  const op = await operator(db);
  const url = (db as { url?: string }).url;
  const handles = url ? await Promise.all([1, 2].map(() => openDatabase({ url, poolSize: 4 }))) : [db, db];
  if (url) t.teardown(() => Promise.all(handles.map((h) => h.close())));
  // Stopped (teardown) before their database handles are closed.
  for (const h of [db, ...handles]) await worker(t, h);
  await db.tx(async (q) => {
    for (let i = 0; i < 20; i++) await enqueue(q, op, rx.url, `iccid-${i}`, 2);
  });
  await rx.waitFor(40, 10_000);
  await until(async () => (await db.query('SELECT 1 FROM outbox WHERE delivered_at IS NULL')).length === 0);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(rx.calls.length, 40, 'forty callbacks, none twice');
  const seen = new Set(rx.calls.map((c) => `${c.body.iccid}/${c.body.n}`));
  t.equal(seen.size, 40);
  for (let i = 0; i < 20; i++) {
    const ns = rx.calls.filter((c) => c.body.iccid === `iccid-${i}`).map((c) => c.body.n);
    if (ns.join() !== '1,2') t.fail(`iccid-${i} out of order: ${ns.join()}`);
  }
});

t.test('PostgreSQL: with its LISTEN connection lost the worker polls, then listens again', { skip: !usingPostgres && 'PostgreSQL only (DATABASE_URL)' }, async (t) => {
  const db = await openTestDb(t);
  const rx = await receiver(t);
  const op = await operator(db);
  const w = await worker(t, db, { pollIntervalMs: 200 });
  await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN outbox'`);
  await until(() => !w.listening, 5_000);
  await enqueue(db, op, rx.url, 'while-lost');
  await rx.waitFor(1, 5_000);
  t.pass('delivered while not listening');
  await until(() => w.listening, 10_000);
  const t0 = performance.now();
  await enqueue(db, op, rx.url, 'after');
  const calls = await rx.waitFor(2, 5_000);
  t.ok(calls[1]!.at - t0 < 1_000, 'woken by NOTIFY again');
});

t.test("HTTPS callback URLs with a certificate from the server's own test PKI are delivered to (extraCa), others still verified", async (t) => {
  const { createServer } = await import('node:https');
  const { loadServerPki } = await import('../../src/pki/load.js');
  const { testPkiDir } = await import('../helpers/world.js');
  const pki = loadServerPki(await testPkiDir());
  const got: string[] = [];
  const server = createServer({ cert: pki.tls!.chainPem, key: pki.tls!.keyPem }, (req, res) => {
    got.push(req.url ?? '');
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const db = await openTestDb(t);
  const op = await operator(db);
  // The test PKI's TLS certificate names localhost.
  const url = `https://localhost:${port}/cb`;
  const plain = await worker(t, db);
  await enqueue(db, op, url, '89000000000000000001');
  await until(async () => (await db.query<{ attempts: number }>('SELECT attempts FROM outbox'))[0]!.attempts >= 1, 10_000);
  await plain.stop();
  t.same(got, [], "without the server's CI the certificate is refused");
  const [row] = await db.query<{ last_error: string | null; delivered_at: Date | null }>('SELECT last_error, delivered_at FROM outbox');
  t.equal(row!.delivered_at, null);
  t.match(row!.last_error, /certificate/i, 'the refusal is recorded');
  await db.query('UPDATE outbox SET next_attempt_at = now()');
  await worker(t, db, { extraCa: pki.cis.map((c) => c.toPem()) });
  await until(async () => (await db.query<{ delivered_at: Date | null }>('SELECT delivered_at FROM outbox'))[0]!.delivered_at !== null, 10_000);
  t.same(got, ['/cb'], 'delivered once the CI is trusted');
});
