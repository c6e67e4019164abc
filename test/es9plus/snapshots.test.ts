/**
 * Snapshots (src/es9plus/snapshots.ts; docs/state-machine.md "Snapshots"): a step that reaches the
 * process that wrote the session's previous step skips its read, and a snapshot that no longer
 * holds (another instance went on with the session, a fault was set, a listener's column changed)
 * never changes an answer: the step reads again.
 */
import t from 'tap';
import { HttpClient } from '../../src/http/client.js';
import { Snapshots } from '../../src/es9plus/snapshots.js';
import { Lpa, LpaError } from '../../src/sim/lpa.js';
import { newDevice } from '../helpers/device.js';
import { secondInstance, startWorld, type World } from '../helpers/world.js';

/** An HTTP client for the LPA that sends call i to `route[i]` (0: the world, 1: `other`), after `before[i]`. */
function routed(w: World, other: HttpClient | undefined, route: number[], before: Record<number, () => Promise<unknown>> = {}) {
  let n = 0;
  const served: number[] = [];
  const http = {
    post: async (path: string, body: unknown, headers?: Record<string, string>) => {
      const i = n++;
      await before[i]?.();
      served.push(route[i] ?? 0);
      return (route[i] === 1 ? other! : w.http).post(path, body, headers);
    },
  } as unknown as HttpClient;
  return { http, served };
}

const outcomes = async (w: World, iccid: string) =>
  (await w.db.query<{ outcome: string }>(`SELECT outcome FROM notifications WHERE iccid = $1 AND kind = 'install' ORDER BY id`, [iccid])).map((r) => r.outcome);

t.test('the cache itself: each snapshot taken once, none for an expired session, oldest pushed out', async (t) => {
  const s = new Snapshots(2);
  const snap = (tid: string, expires = new Date(Date.now() + 60_000)) => ({
    session: { transaction_id: tid, expires_at: expires } as never,
    profile: { row_version: '7' } as never,
    faults_pending: false as const,
  });
  s.keep(snap('A'));
  t.ok(s.take('A'));
  t.notOk(s.take('A'), 'taken once');
  s.keep(snap('B', new Date(Date.now() - 1)));
  t.notOk(s.take('B'), 'expired');
  s.keep(snap('C'));
  s.keep(snap('D'));
  s.keep(snap('E'));
  t.equal(s.size, 2);
  t.notOk(s.take('C'), 'the oldest was pushed out');
  t.ok(s.take('E'));
  s.keep({ ...snap('F'), faults_pending: true as never });
  s.keep({ ...snap('G'), profile: { row_version: '' } as never });
  t.equal(s.size, 1, 'nothing kept with faults pending or an unknown row version');
});

t.test('the cache holds a bounded number of bytes: large templates push older snapshots out', async (t) => {
  const s = new Snapshots(100, 10_000);
  const snap = (tid: string, templateBytes: number) => ({
    session: { transaction_id: tid, expires_at: new Date(Date.now() + 60_000), euicc_certificate: Buffer.alloc(500) } as never,
    profile: { row_version: '7', template: Buffer.alloc(templateBytes) } as never,
    faults_pending: false as const,
  });
  s.keep(snap('A', 3000));
  s.keep(snap('B', 3000));
  t.equal(s.size, 2);
  s.keep(snap('C', 3000));
  t.equal(s.size, 2, 'over 10,000 bytes: the oldest went');
  t.notOk(s.take('A'));
  t.ok(s.heldBytes <= 10_000, `${s.heldBytes} bytes held`);
  s.keep(snap('D', 20_000));
  t.notOk(s.take('D'), 'a snapshot larger than the whole budget is not kept');
  t.ok(s.take('B') && s.take('C'), 'and pushes nothing out');
  t.equal(s.heldBytes, 0, 'taking releases the bytes');
});

t.test('another instance went on with the session: the stale snapshot is read again, and the download completes', async (t) => {
  const w = await startWorld(t);
  const other = await secondInstance(t, w);
  // initiateAuthentication and authenticateClient here (a snapshot kept), getBoundProfilePackage on
  // the other instance, the install result here again: its snapshot says 'authenticated'.
  const r = routed(w, other, [0, 0, 1, 0]);
  const { card } = await newDevice(w);
  const order = await w.order();
  const done = await new Lpa(card, { http: r.http }).download(order.activationCode);
  t.equal(done.notificationSent, true);
  t.same(r.served, [0, 0, 1, 0]);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  t.same(await outcomes(w, order.iccid), ['success'], 'recorded once, as a success (not as an unknown transaction)');
});

t.test('a fault set after the snapshot was kept still fires', async (t) => {
  const w = await startWorld(t);
  const order = await w.order();
  const r = routed(w, undefined, [], {
    2: () => w.app.inject({ method: 'POST', url: '/admin/faults', payload: { iccid: order.iccid, function: 'getBoundProfilePackage', mode: 'fail', subjectCode: '8.2', reasonCode: '3.7' } }),
  });
  const { card } = await newDevice(w);
  const err = await new Lpa(card, { http: r.http }).download(order.activationCode).catch((e) => e);
  t.ok(err instanceof LpaError);
  t.match(err, { function: 'getBoundProfilePackage', subjectCode: '8.2', reasonCode: '3.7' });
  t.not((await w.profile(order.iccid))!.state, 'Downloaded', 'no package bound');
});

t.test("a listener's column changed after the snapshot was kept (the operator's callback URL set): the change is read", async (t) => {
  const w = await startWorld(t);
  const order = await w.order();
  await w.db.query(`INSERT INTO operators (id, name, callback_url) VALUES ('op', 'Op', '')`);
  await w.db.query(`UPDATE profiles SET operator_id = 'op' WHERE iccid = $1`, [order.iccid]);
  // The URL is set between authenticateClient and getBoundProfilePackage: the profile row is unchanged.
  const r = routed(w, undefined, [], { 2: () => w.db.query(`UPDATE operators SET callback_url = 'http://127.0.0.1:9/cb' WHERE id = 'op'`) });
  const { card } = await newDevice(w);
  await new Lpa(card, { http: r.http }).download(order.activationCode);
  const outbox = await w.db.query<{ payload: { notificationPointId: number } }>('SELECT payload FROM outbox ORDER BY id');
  t.same(outbox.map((o) => o.payload.notificationPointId), [3, 4], 'the download and the install are reported to the new URL');
});

t.test('an install result refused on a snapshot (bad signature) is recorded once, and the genuine one then completes', async (t) => {
  const w = await startWorld(t);
  const order = await w.order();
  const { lpa } = await newDevice(w);
  t.equal((await lpa.download(order.activationCode, { sendPir: false })).notificationSent, false);
  const install = (await lpa.listNotifications()).find((n) => n.operation === 'install')!;
  const raw = await lpa.retrieveNotification(install.seqNumber);
  const forged = Buffer.from(raw);
  forged[forged.length - 1] ^= 0x01; // the last byte of the eUICC's signature
  const post = (b: Buffer) => w.http.post('/gsma/rsp2/es9plus/handleNotification', { pendingNotification: b.toString('base64') }, { 'X-Admin-Protocol': 'gsma/rsp/v2.1.0' });
  await post(forged);
  t.equal((await w.profile(order.iccid))!.state, 'Downloaded');
  await post(raw);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  t.same(await outcomes(w, order.iccid), ['bad-signature', 'success']);
});
