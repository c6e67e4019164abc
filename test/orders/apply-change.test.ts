/**
 * applyChange (docs/state-machine.md, "Optimistic writes"): a change to a profile read without a
 * lock is written whole, as one statement, while the rows it read are as read; when the profile or
 * the guarded session changed in between, nothing at all is written (not the profile, not its
 * history, not the caller's extra parts) and ChangedMeanwhile tells the caller to read again.
 * Listeners' after work runs with the statement, in one transaction, only when they want it.
 */
import t from 'tap';
import type { Database } from '../../src/db/db.js';
import {
  applyChange, ChangedMeanwhile, onProfileChange, profileColumns, ROW_VERSION, type ProfileContext, type SqlPart,
} from '../../src/orders/state-machine.js';
import { createReleasedOrder } from '../../src/orders/store.js';
import { sessionGuard } from '../../src/es9plus/sessions.js';
import { openTestDb } from '../helpers/db.js';

// A listener with after work it wants only for profiles whose matching ID starts with AFTER-.
const afterSeen: string[] = [];
onProfileChange({
  columns: [`(p.matching_id LIKE 'AFTER-%') AS test_wants_after`],
  wantsAfter: (c) => c.row.test_wants_after === true,
  async after(q, c) {
    if (c.action !== 'authenticated') return;
    // Runs in the change's transaction: it sees the change written.
    const [row] = await q.query<{ state: string; download_attempts: number }>('SELECT state, download_attempts FROM profiles WHERE iccid = $1', [c.iccid]);
    afterSeen.push(`${c.iccid}:${row!.download_attempts}`);
  },
});

let tidCounter = 0;

async function setup(db: Database, matchingId?: string) {
  const p = await db.tx((q) => createReleasedOrder(q, matchingId ? { matchingId } : {}));
  const tid = (++tidCounter).toString(16).toUpperCase().padStart(32, '0');
  // A session authenticateClient wrote; the change under test is the next step's (authenticated → bound).
  await db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, expires_at)
                  VALUES ($1, 'authenticated', 'AA', 'localhost', $2, now() + interval '60 seconds')`, [tid, Buffer.alloc(16)]);
  return { iccid: p.iccid, tid };
}

async function readUnlocked(db: Database, iccid: string) {
  return (await db.query<ProfileContext & { row_version: string }>(`SELECT p.*, ${ROW_VERSION}${profileColumns()} FROM profiles p WHERE p.iccid = $1`, [iccid]))[0]!;
}

/** A change recorded with the session's step: the attempt count and the session, in one statement. */
function authenticate(db: Database, p: ProfileContext & { row_version: string }, tid: string) {
  const sessionPart: SqlPart = {
    sql: `UPDATE rsp_sessions SET state = 'bound' WHERE transaction_id = $1 AND state = 'authenticated' AND EXISTS (SELECT 1 FROM t) RETURNING 1`,
    params: [tid],
  };
  return applyChange(db, p, { action: 'authenticated', to: p.state, set: { download_attempts: p.download_attempts + 1 } }, [sessionPart], sessionGuard(tid, 'authenticated'));
}

async function state(db: Database, iccid: string, tid: string) {
  const [p] = await db.query<{ state: string; download_attempts: number; cc_attempts: number }>('SELECT state, download_attempts, cc_attempts FROM profiles WHERE iccid = $1', [iccid]);
  const events = (await db.query<{ event: string }>('SELECT event FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid])).map((e) => e.event);
  const [s] = await db.query<{ state: string }>('SELECT state FROM rsp_sessions WHERE transaction_id = $1', [tid]);
  return { ...p!, events, session: s?.state };
}

t.test('unchanged since the read: written whole', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  await authenticate(db, p, tid);
  t.match(await state(db, iccid, tid), { state: 'Released', download_attempts: 1, events: ['created', 'released', 'authenticated'], session: 'bound' });
});

t.test('the profile changed since the read: nothing written, ChangedMeanwhile', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  // Another session of the same order counted a refused confirmation code meanwhile (state unchanged).
  await db.query('UPDATE profiles SET cc_attempts = cc_attempts + 1 WHERE iccid = $1', [iccid]);
  await t.rejects(authenticate(db, p, tid), ChangedMeanwhile);
  t.match(await state(db, iccid, tid), { download_attempts: 0, cc_attempts: 1, events: ['created', 'released'], session: 'authenticated' },
    'no attempt counted, no history, the session not moved on');
  // Read again: now it goes through, on top of the other change.
  await authenticate(db, await readUnlocked(db, iccid), tid);
  t.match(await state(db, iccid, tid), { download_attempts: 1, cc_attempts: 1, session: 'bound' });
});

t.test('the session moved on since the read: nothing written, ChangedMeanwhile', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  await db.query(`UPDATE rsp_sessions SET state = 'bound' WHERE transaction_id = $1`, [tid]);
  await t.rejects(authenticate(db, p, tid), ChangedMeanwhile);
  t.match(await state(db, iccid, tid), { download_attempts: 0, events: ['created', 'released'], session: 'bound' });
  await db.query('DELETE FROM rsp_sessions WHERE transaction_id = $1', [tid]);
  await t.rejects(authenticate(db, await readUnlocked(db, iccid), tid), ChangedMeanwhile, 'nor once the session is gone');
  t.match(await state(db, iccid, tid), { download_attempts: 0, events: ['created', 'released'] });
});

t.test('a state change meanwhile (an operator cancelled the order): nothing written', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  await db.query(`UPDATE profiles SET state = 'Available' WHERE iccid = $1`, [iccid]);
  await t.rejects(authenticate(db, p, tid), ChangedMeanwhile);
  t.match(await state(db, iccid, tid), { state: 'Available', download_attempts: 0, session: 'authenticated' });
});

t.test("after work: run in the change's transaction when a listener wants it, skipped otherwise", async (t) => {
  const db = await openTestDb(t);
  afterSeen.length = 0;
  const plain = await setup(db);
  await authenticate(db, await readUnlocked(db, plain.iccid), plain.tid);
  t.same(afterSeen, [], 'not wanted: not run');
  const wanted = await setup(db, `AFTER-${tidCounter}`);
  await authenticate(db, await readUnlocked(db, wanted.iccid), wanted.tid);
  t.same(afterSeen, [`${wanted.iccid}:1`], 'wanted: run once, seeing the change');
  const stale = await readUnlocked(db, wanted.iccid);
  await db.query('UPDATE profiles SET cc_attempts = 1 WHERE iccid = $1', [wanted.iccid]);
  await t.rejects(authenticate(db, stale, wanted.tid), ChangedMeanwhile);
  t.equal(afterSeen.length, 1, 'not run when the change was not written');
});

t.test('the guard locks: two writers of the same read, one wins', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  const results = await Promise.allSettled([authenticate(db, p, tid), authenticate(db, p, tid)]);
  t.equal(results.filter((r) => r.status === 'fulfilled').length, 1, 'one written');
  const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  t.type(lost.reason, ChangedMeanwhile, 'the other told to read again');
  t.match(await state(db, iccid, tid), { download_attempts: 1, events: ['created', 'released', 'authenticated'] });
});


t.test('a statement PostgreSQL ended to break a deadlock is a change meanwhile (nothing was written)', async (t) => {
  const db = await openTestDb(t);
  const { iccid, tid } = await setup(db);
  const p = await readUnlocked(db, iccid);
  const deadlocked = Object.assign(new Error('deadlock detected'), { code: '40P01' });
  const failing = { ...db, query: async () => { throw deadlocked; }, tx: async () => { throw deadlocked; } } as unknown as Database;
  await t.rejects(authenticate(failing, p, tid), ChangedMeanwhile);
  const other = Object.assign(new Error('no such table'), { code: '42P01' });
  await t.rejects(authenticate({ ...db, query: async () => { throw other; } } as unknown as Database, p, tid), { message: 'no such table' }, 'any other error stands');
});
