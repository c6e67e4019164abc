/**
 * Sessions opened without a write (docs/state-machine.md, "Sessions opened without a write";
 * src/es9plus/transaction-ids.ts): initiateAuthentication stores nothing, its transactionId carries
 * the session under a tag, and authenticateClient writes the session's first row. A transactionId
 * this server did not issue, an expired one, or one used already is 8.10.1/3.9 and leaves no trace;
 * two calls with one transactionId get one session.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { encodeCancelSessionResponse, CANCEL_SESSION_ERROR } from '../../src/rsp/cancel.js';
import { TransactionIds, transactionIdKey } from '../../src/es9plus/transaction-ids.js';
import { LPA_HEADERS, LpaError } from '../../src/sim/lpa.js';
import { openTestDb } from '../helpers/db.js';
import { startWorld } from '../helpers/world.js';
import { device, ES9, failedWith, succeeded, toB64, untouched, type Asserts, type Body } from '../helpers/wire.js';

const CI_A = 'AA'.repeat(20);
const CI_B = 'BB'.repeat(20);

t.test('TransactionIds: issued ones open, with their CI, time and challenge; anything else does not', async (t) => {
  const key = randomBytes(32);
  const ids = new TransactionIds(key, [CI_B, CI_A]);
  const now = Date.now();
  const a = await ids.issue(CI_A, 'smdp.example', now);
  const b = await ids.issue(CI_B.toLowerCase(), 'smdp.example', now);
  t.equal(a.transactionId.length, 16, 'SGP.22 TransactionId: 16 bytes');
  t.equal(a.serverChallenge.length, 16);
  t.not(a.transactionId.toString('hex'), (await ids.issue(CI_A, 'smdp.example', now)).transactionId.toString('hex'), 'two sessions opened at once differ');
  t.same(await ids.open(a.transactionId, 'smdp.example'), { ciSki: CI_A, openedAt: new Date(now), serverChallenge: a.serverChallenge });
  t.equal((await ids.open(b.transactionId, 'SMDP.example'))!.ciSki, CI_B, 'the CI chosen; the address compares case-insensitively');
  t.same((await ids.open(a.transactionId, 'SMDP.EXAMPLE'))!.serverChallenge, a.serverChallenge);
  t.notSame((await ids.open(a.transactionId, 'other.example'))!.serverChallenge, a.serverChallenge, 'the challenge is bound to the address signed');
  t.notSame(a.serverChallenge, b.serverChallenge);

  // The same CIs in another order: the same places, so instances loading the certificates differently agree.
  t.ok(await new TransactionIds(key, [CI_A, CI_B]).open(a.transactionId, 'smdp.example'), 'CI places do not depend on the order given');
  t.equal(await new TransactionIds(randomBytes(32), [CI_A, CI_B]).open(a.transactionId, 'smdp.example'), undefined, 'another key: not ours');
  t.equal(await new TransactionIds(key, [CI_A]).open(b.transactionId, 'smdp.example'), undefined, 'a CI this server no longer holds');
  for (let i = 0; i < 16; i++) {
    const x = Buffer.from(a.transactionId);
    x[i]! ^= 0x01;
    t.equal(await ids.open(x, 'smdp.example'), undefined, `byte ${i} changed: refused`);
  }
  t.equal(await ids.open(a.transactionId.subarray(0, 15), 'smdp.example'), undefined, '15 bytes: refused');
  t.equal(await ids.open(randomBytes(16), 'smdp.example'), undefined, 'random bytes: refused');
  await t.rejects(ids.issue('CC'.repeat(20), 'smdp.example'), /no CI/);
});

t.test('TransactionIds: the key read on first use, once; a failed read is tried again', async (t) => {
  const key = randomBytes(32);
  let reads = 0;
  const ids = new TransactionIds(async () => {
    if (++reads === 1) throw new Error('database down');
    return key;
  }, [CI_A]);
  await t.rejects(ids.issue(CI_A, 'smdp.example'), /database down/);
  const [a, b] = await Promise.all([ids.issue(CI_A, 'smdp.example'), ids.issue(CI_A, 'smdp.example')]);
  t.equal(reads, 2, 'read again after the failure, once for two calls at once');
  t.ok(await new TransactionIds(key, [CI_A]).open(a.transactionId, 'smdp.example'), 'issued with the key read');
  t.ok(await ids.open(b.transactionId, 'smdp.example'));
  t.equal(reads, 2, 'not read again');
});

const w = await startWorld(t);
const count = async (sql: string, params: unknown[] = []) => (await w.db.query(sql, params)).length;

t.test('the key: written once, read by every instance, also by several at once on an empty database', async (t) => {
  const k1 = await transactionIdKey(w.db);
  const k2 = await transactionIdKey(w.db);
  t.equal(k1.length, 32);
  t.same(k1, k2, 'a second instance reads the first one\'s key');
  t.equal(await count('SELECT 1 FROM server_secrets'), 1);
  const empty = await openTestDb(t);
  const keys = await Promise.all([1, 2, 3, 4].map(() => transactionIdKey(empty)));
  t.equal(new Set(keys.map((k) => k.toString('hex'))).size, 1, 'four at once: one key');
});

t.test('initiateAuthentication writes nothing; authenticateClient writes the session\'s first row', async (t) => {
  let rowsAtAuthenticate = -1;
  const { lpa } = await device(w, {
    request: {
      authenticateClient: async (b) => {
        rowsAtAuthenticate = await count('SELECT 1 FROM rsp_sessions WHERE transaction_id = $1', [b.transactionId]);
        return b;
      },
    },
  });
  const order = await w.order();
  const r = await lpa.download(order.activationCode, { sendPir: false });
  t.equal(rowsAtAuthenticate, 0, 'no row after initiateAuthentication');
  t.equal(r.iccid, order.iccid);
  t.same(await w.db.query('SELECT state, iccid FROM rsp_sessions WHERE iccid = $1', [order.iccid]), [{ state: 'bound', iccid: order.iccid }]);
});

/** A download whose authenticateClient request gets another transactionId; the refused exchange. */
async function withTransactionId(t: Asserts, tid: () => Promise<string> | string) {
  const { lpa, wire } = await device(w, { request: { authenticateClient: async (b) => ({ ...b, transactionId: await tid() }) } });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  t.ok(err instanceof LpaError);
  const ex = wire.tampered;
  failedWith(t, ex, '8.10.1', '3.9');
  untouched(t, ex);
  t.equal((await w.profile(order.iccid))!.download_attempts, 0, 'no attempt counted');
  t.equal(await count('SELECT 1 FROM rsp_sessions WHERE transaction_id = $1', [(ex.sent as Body).transactionId]), 0, 'no session row');
}

t.test('a transactionId this server did not issue: 8.10.1/3.9', (t) => withTransactionId(t, () => randomBytes(16).toString('hex').toUpperCase()));

t.test('one issued with another key, well formed: 8.10.1/3.9', (t) => withTransactionId(t, async () => {
  const other = new TransactionIds(randomBytes(32), w.pki.byCiSkiHex.keys());
  return (await other.issue([...w.pki.byCiSkiHex.keys()][0]!, w.config.smdpAddress)).transactionId.toString('hex').toUpperCase();
}));

t.test('one of ours past the session lifetime: 8.10.1/3.9', (t) => withTransactionId(t, async () => {
  const ours = new TransactionIds(await transactionIdKey(w.db), w.pki.byCiSkiHex.keys());
  const opened = Date.now() - (w.config.sessionTtlSeconds + 1) * 1000;
  return (await ours.issue([...w.pki.byCiSkiHex.keys()][0]!, w.config.smdpAddress, opened)).transactionId.toString('hex').toUpperCase();
}));

t.test('cancelSession before authenticateClient ends the transactionId: its row, ended, refuses authenticateClient', async (t) => {
  let cancel: { status: number } | undefined;
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: async (b) => {
        const csr = encodeCancelSessionResponse({ error: { code: CANCEL_SESSION_ERROR.undefinedError } });
        cancel = await w.http.post(`${ES9}/cancelSession`, { transactionId: b.transactionId, cancelSessionResponse: toB64(csr) }, { ...LPA_HEADERS });
        return b;
      },
    },
  });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  t.equal(cancel!.status, 200, 'cancelled');
  t.ok(err instanceof LpaError);
  failedWith(t, wire.tampered, '8.10.1', '3.9');
  const tid = (wire.tampered.sent as Body).transactionId;
  t.same(await w.db.query('SELECT state, iccid, eid FROM rsp_sessions WHERE transaction_id = $1', [tid]), [{ state: 'ended', iccid: null, eid: null }]);
  t.equal((await w.profile(order.iccid))!.download_attempts, 0);
  const again = await w.http.post(`${ES9}/cancelSession`, { transactionId: tid, cancelSessionResponse: toB64(encodeCancelSessionResponse({ error: { code: CANCEL_SESSION_ERROR.undefinedError } })) }, { ...LPA_HEADERS });
  t.match(again.json, { header: { functionExecutionStatus: { status: 'Failed', statusCodeData: { subjectCode: '8.10.1', reasonCode: '3.9' } } } }, 'an ended session cannot be cancelled again');
});

t.test('two authenticateClient calls with one transactionId at once: one session, one attempt', async (t) => {
  let extra: Promise<{ status: number; json?: { header: { functionExecutionStatus: { status: string } } } }> | undefined;
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b) => {
        extra = w.http.post(`${ES9}/authenticateClient`, b, { ...LPA_HEADERS });
        return b;
      },
    },
  });
  const order = await w.order();
  await lpa.download(order.activationCode, { sendPir: false }).catch((e) => e);
  const other = await extra!;
  const statuses = [wire.tampered.json.header.functionExecutionStatus.status, other.json!.header.functionExecutionStatus.status].sort();
  t.same(statuses, ['Executed-Success', 'Failed'], 'one succeeded, the other was refused');
  const refused = wire.tampered.json.header.functionExecutionStatus.status === 'Failed' ? wire.tampered.json : other.json;
  t.match(refused, { header: { functionExecutionStatus: { statusCodeData: { subjectCode: '8.10.1', reasonCode: '3.9' } } } });
  const p = (await w.profile(order.iccid))!;
  t.equal(p.download_attempts, 1, 'one attempt');
  t.equal(await count(`SELECT 1 FROM profile_events WHERE iccid = $1 AND event = 'authenticated'`, [order.iccid]), 1, 'one authenticated event');
  t.equal(await count('SELECT 1 FROM rsp_sessions WHERE transaction_id = $1', [(wire.tampered.sent as Body).transactionId]), 1, 'one session row');
  if (wire.tampered.json.header.functionExecutionStatus.status === 'Executed-Success') succeeded(t, wire.tampered);
});
