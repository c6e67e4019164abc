/**
 * Retention (src/db/retention.ts) on backdated rows: expired sessions go; delivered callbacks,
 * notifications and order events older than RETENTION_DAYS go for profiles in a final state only,
 * except the rows live logic still reads; live orders keep their whole history; undelivered
 * callbacks stay; RETENTION_DAYS=0 keeps all history; concurrent prunes (several instances) agree.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { ConfigError, defaultConfig } from '../../src/config.js';
import { openDatabase, type Database, type Queryable } from '../../src/db/db.js';
import { prune, pruneExpiredSessions, startRetention } from '../../src/db/retention.js';
import { PROFILE_EVENT, type ProfileEventName } from '../../src/orders/state-machine.js';
import { openTestDb } from '../helpers/db.js';
import { until } from '../helpers/operator.js';

const EID = '89049032123451234512345678901235';
const OLD = `now() - interval '10 days'`;
const NEW = `now() - interval '1 day'`;

async function profile(q: Queryable, iccid: string, state: string, deviceState: string | null = null) {
  await q.query(
    `INSERT INTO profiles (iccid, profile_type, imsi, ki, opc, state, eid, device_state) VALUES ($1, 'default', '001010123456789', $2, $2, $3, $4, $5)`,
    [iccid, randomBytes(16), state, state === 'Installed' || state === 'Unavailable' ? EID : null, deviceState],
  );
}

/** A backdated history event, named as the server names it (so retention's kept 'installed' event follows PROFILE_EVENT). */
async function ev(q: Queryable, iccid: string, event: ProfileEventName, when: string) {
  const [r] = await q.query<{ id: string }>(`INSERT INTO profile_events (iccid, event, at) VALUES ($1, $2, ${when}) RETURNING id::text`, [iccid, event]);
  return r!.id;
}

async function note(q: Queryable, n: { iccid: string | null; kind: string; verified: boolean; seq?: number; outcome: string; when: string }) {
  const [r] = await q.query<{ id: string }>(
    `INSERT INTO notifications (iccid, eid, kind, verified, seq_number, outcome, raw, received_at)
     VALUES ($1, $2, $3, $4, $5, $6, '\\x00', ${n.when}) RETURNING id::text`,
    [n.iccid, n.iccid ? EID : null, n.kind, n.verified, n.seq ?? null, n.outcome],
  );
  return r!.id;
}

const LIVE = '89000000000000000011';
const INSTALLED = '89000000000000000029';
const GONE = '89000000000000000037'; // Unavailable, deleted on its eUICC
const ERROR = '89000000000000000045';
const INSTALLED2 = '89000000000000000052';

/** Fills the database; returns the ids expected to stay and to go. */
async function fill(db: Database) {
  const keep: Record<string, string[]> = { events: [], notifications: [] };
  const drop: Record<string, string[]> = { events: [], notifications: [] };
  await db.tx(async (q) => {
    await profile(q, LIVE, 'Released');
    await profile(q, INSTALLED, 'Installed', 'Disabled');
    await profile(q, GONE, 'Unavailable', 'Deleted');
    await profile(q, ERROR, 'Error');
    await profile(q, INSTALLED2, 'Installed', 'Enabled');
    // A live order (Released) and an Error one (may still be cancelled): everything stays.
    for (const i of [LIVE, ERROR]) {
      keep.events!.push(await ev(q, i, PROFILE_EVENT.created, OLD), await ev(q, i, PROFILE_EVENT.released, NEW));
      keep.notifications!.push(await note(q, { iccid: i, kind: 'install', verified: false, outcome: 'unknown-transaction', when: OLD }));
    }
    // Installed: old events go except 'installed'; recent ones stay.
    drop.events!.push(await ev(q, INSTALLED, PROFILE_EVENT.created, OLD), await ev(q, INSTALLED, PROFILE_EVENT.released, OLD));
    keep.events!.push(await ev(q, INSTALLED, PROFILE_EVENT.installed, OLD), await ev(q, INSTALLED, PROFILE_EVENT.disabled, NEW));
    drop.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'install', verified: true, seq: 1, outcome: 'success', when: OLD }));
    drop.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'enable', verified: true, seq: 3, outcome: 'verified', when: OLD }));
    // The applied one with the highest seqNumber (replay protection) …
    keep.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'disable', verified: true, seq: 5, outcome: 'verified', when: OLD }));
    // … and the newest verified device report, applied or not (the family live state asks for any).
    keep.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'enable', verified: true, seq: 4, outcome: 'stale', when: OLD }));
    drop.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'enable', verified: false, seq: 9, outcome: 'bad-signature', when: OLD }));
    keep.notifications!.push(await note(q, { iccid: INSTALLED, kind: 'enable', verified: false, seq: 9, outcome: 'bad-signature', when: NEW }));
    // Installed2: the applied row with the highest seqNumber and the newest verified device
    // report are different rows; both stay.
    drop.notifications!.push(await note(q, { iccid: INSTALLED2, kind: 'install', verified: true, seq: 1, outcome: 'success', when: OLD }));
    keep.notifications!.push(await note(q, { iccid: INSTALLED2, kind: 'enable', verified: true, seq: 2, outcome: 'verified', when: OLD }));
    keep.notifications!.push(await note(q, { iccid: INSTALLED2, kind: 'enable', verified: true, seq: 2, outcome: 'duplicate', when: OLD }));
    // Unavailable: all old events go.
    drop.events!.push(await ev(q, GONE, PROFILE_EVENT.installed, OLD), await ev(q, GONE, PROFILE_EVENT.deleted, OLD));
    drop.notifications!.push(await note(q, { iccid: GONE, kind: 'install', verified: true, seq: 1, outcome: 'success', when: OLD }));
    keep.notifications!.push(await note(q, { iccid: GONE, kind: 'delete', verified: true, seq: 2, outcome: 'verified', when: OLD }));
    // Notifications of no profile of ours.
    drop.notifications!.push(await note(q, { iccid: null, kind: 'install', verified: false, outcome: 'unknown-transaction', when: OLD }));
    drop.notifications!.push(await note(q, { iccid: '89000000000000000060', kind: 'enable', verified: true, seq: 1, outcome: 'no-installed-profile', when: OLD }));
    keep.notifications!.push(await note(q, { iccid: null, kind: 'install', verified: false, outcome: 'unknown-transaction', when: NEW }));

    await q.query(`INSERT INTO operators (id, name) VALUES ('op', 'op')`);
    const ob = (delivered: string | null, tag: string) =>
      q.query(`INSERT INTO outbox (operator_id, url, kind, payload, delivered_at, created_at) VALUES ('op', 'http://x', $1, '{}', ${delivered ?? 'NULL'}, ${OLD})`, [tag]);
    await ob(OLD, 'old-delivered');
    await ob(OLD, 'old-delivered');
    await ob(OLD, 'old-delivered');
    await ob(NEW, 'recent-delivered');
    await ob(null, 'undelivered');

    const ses = (tid: string, expires: string) =>
      q.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, euicc_challenge, server_challenge, expires_at)
               VALUES ($1, 'authenticated', 'AA', 'x', '\\x00', '\\x00', ${expires})`, [tid]);
    await ses('EXPIRED1', `now() - interval '1 second'`);
    await ses('EXPIRED2', OLD);
    await ses('LIVE', `now() + interval '10 minutes'`);
  });
  return { keep, drop };
}

async function ids(db: Database, table: string): Promise<string[]> {
  return (await db.query<{ id: string }>(`SELECT id::text AS id FROM ${table} ORDER BY ${table}.id`)).map((r) => r.id);
}

const sorted = (a: string[]) => [...a].sort((x, y) => Number(x) - Number(y));

t.test('prune: what goes and what stays', async (t) => {
  const db = await openTestDb(t);
  const { keep, drop } = await fill(db);
  const counts = await prune(db, { days: 7, batchSize: 2 });
  t.same(counts, { sessions: 2, outbox: 3, notifications: drop.notifications!.length, profileEvents: drop.events!.length }, 'counts, deleted in batches of 2');
  t.same(await ids(db, 'profile_events'), sorted(keep.events!), 'profile_events: live and Error orders whole, final profiles\' recent rows and installed event');
  t.same(await ids(db, 'notifications'), sorted(keep.notifications!), 'notifications');
  t.same((await db.query<{ kind: string }>('SELECT kind FROM outbox ORDER BY id')).map((r) => r.kind), ['recent-delivered', 'undelivered'], 'outbox');
  t.same((await db.query<{ transaction_id: string }>('SELECT transaction_id FROM rsp_sessions')).map((r) => r.transaction_id), ['LIVE'], 'sessions');
  t.same(await prune(db, { days: 7 }), { sessions: 0, outbox: 0, notifications: 0, profileEvents: 0 }, 'a second run finds nothing');
});

t.test('RETENTION_DAYS=0 keeps all history; expired sessions still go', async (t) => {
  const db = await openTestDb(t);
  await fill(db);
  const before = { e: await ids(db, 'profile_events'), n: await ids(db, 'notifications'), o: await ids(db, 'outbox') };
  t.same(await prune(db, { days: 0 }), { sessions: 2, outbox: 0, notifications: 0, profileEvents: 0 });
  t.same({ e: await ids(db, 'profile_events'), n: await ids(db, 'notifications'), o: await ids(db, 'outbox') }, before);
});

t.test('a longer retention keeps the 10-day-old rows', async (t) => {
  const db = await openTestDb(t);
  await fill(db);
  t.same(await prune(db, { days: 30 }), { sessions: 2, outbox: 0, notifications: 0, profileEvents: 0 });
});

t.test('prunes running at once (several instances) delete each row once, without errors', async (t) => {
  const db = await openTestDb(t);
  const { drop } = await fill(db);
  const url = (db as { url?: string }).url;
  const others = url ? await Promise.all([1, 2].map(() => openDatabase({ url, poolSize: 2 }))) : [db, db];
  if (url) t.teardown(() => Promise.all(others.map((o) => o.close())));
  const runs = await Promise.all([db, ...others].map((h) => prune(h, { days: 7, batchSize: 1 })));
  const sum = (k: keyof (typeof runs)[number]) => runs.reduce((a, r) => a + r[k], 0);
  t.same({ sessions: sum('sessions'), outbox: sum('outbox'), notifications: sum('notifications'), profileEvents: sum('profileEvents') },
    { sessions: 2, outbox: 3, notifications: drop.notifications!.length, profileEvents: drop.events!.length });
  // Whatever a run left to another that held the lock, a later run finishes.
  await prune(db, { days: 7 });
  t.same((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox')), [{ n: 2 }]);
});

t.test('pruneExpiredSessions (authenticateClient, now and then): expired sessions, ended or not, in one batch', async (t) => {
  const db = await openTestDb(t);
  const ses = (tid: string, state: string, expires: string) =>
    db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, expires_at)
              VALUES ($1, $2, 'AA', 'x', '\\x00', ${expires})`, [tid, state]);
  await ses('ENDED-EXPIRED', 'ended', `now() - interval '1 second'`);
  await ses('BOUND-EXPIRED', 'bound', `now() - interval '1 hour'`);
  await ses('ENDED-LIVE', 'ended', `now() + interval '10 minutes'`);
  await ses('LIVE', 'authenticated', `now() + interval '10 minutes'`);
  t.equal(await pruneExpiredSessions(db, 1), 1, 'at most the batch');
  t.equal(await pruneExpiredSessions(db), 1);
  t.same((await db.query<{ transaction_id: string }>('SELECT transaction_id FROM rsp_sessions ORDER BY 1')).map((r) => r.transaction_id), ['ENDED-LIVE', 'LIVE'],
    'an ended session stays until it expires: its transactionId is still refused');
});

t.test('startRetention prunes once at start and then on its interval', async (t) => {
  const db = await openTestDb(t);
  await fill(db);
  const job = startRetention(db, { days: 7, intervalMs: 200 });
  t.teardown(() => job.stop());
  await until(async () => (await db.query('SELECT 1 FROM rsp_sessions')).length === 1, 5_000);
  await db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, euicc_challenge, server_challenge, expires_at)
                  VALUES ('EXPIRED3', 'authenticated', 'AA', 'x', '\\x00', '\\x00', now() - interval '1 second')`);
  await until(async () => (await db.query(`SELECT 1 FROM rsp_sessions WHERE transaction_id = 'EXPIRED3'`)).length === 0, 5_000);
  t.pass('pruned again on the interval');
  await job.stop();
});

t.test('RETENTION_DAYS: default 7, 0 allowed, garbage refused', async (t) => {
  t.equal(defaultConfig({}).retentionDays, 7);
  t.equal(defaultConfig({ RETENTION_DAYS: '0' }).retentionDays, 0);
  t.equal(defaultConfig({ RETENTION_DAYS: '30' }).retentionDays, 30);
  t.throws(() => defaultConfig({ RETENTION_DAYS: '-1' }), new ConfigError('RETENTION_DAYS must be a non-negative integer (got "-1")'));
  t.throws(() => defaultConfig({ RETENTION_DAYS: 'week' }), ConfigError);
});
