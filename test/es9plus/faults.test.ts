/**
 * Fault injection on ES9+: a chosen status seen by the LPA (count honoured, then normal service), a
 * measurable delay, a dropped connection, the order's history, the admin API and the CLI.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { profileHistory } from '../../src/orders/store.js';
import { LpaError } from '../../src/sim/lpa.js';
import { newDevice } from '../helpers/operator.js';
import { startWorld, type World } from '../helpers/world.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

const w = await startWorld(t);

async function addFault(w: World, body: Record<string, unknown>) {
  const r = await w.app.inject({ method: 'POST', url: '/admin/faults', payload: body });
  return { status: r.statusCode, json: r.json() as Record<string, any> };
}

const events = async (iccid: string) => (await profileHistory(w.db, iccid)).map((e) => e.event);

t.test('fail: the LPA sees the chosen status, count times, then the download works', async (t) => {
  const order = await w.order();
  const f = await addFault(w, { iccid: order.iccid, function: 'authenticateClient', mode: 'fail', subjectCode: '8.1', reasonCode: '4.8', message: 'no room', count: 2 });
  t.equal(f.status, 201);
  t.match(f.json, { mode: 'fail', remaining: 2, fired: 0, function: 'authenticateClient' });
  const { lpa } = await newDevice(w);
  for (let i = 0; i < 2; i++) {
    const err = await lpa.download(order.activationCode).catch((e) => e);
    t.ok(err instanceof LpaError, `attempt ${i + 1} fails`);
    t.match(err, { code: 'es9Failed', function: 'authenticateClient', subjectCode: '8.1', reasonCode: '4.8', message: /no room/ });
  }
  const r = await lpa.download(order.activationCode);
  t.equal(r.iccid, order.iccid, 'the third attempt succeeds');
  const p = await w.profile(order.iccid);
  t.equal(p!.state, 'Installed');
  t.equal(p!.download_attempts, 1, 'the injected failures did not run the function');

  const list = await w.app.inject({ method: 'GET', url: '/admin/faults?all=true' });
  t.match(list.json().faults.find((x: { id: string }) => x.id === f.json.id), { remaining: 0, fired: 2 });
  t.notOk((await w.app.inject({ method: 'GET', url: '/admin/faults' })).json().faults.some((x: { id: string }) => x.id === f.json.id), 'spent faults are not listed by default');

  const history = await w.app.inject({ method: 'GET', url: `/admin/profiles/${order.iccid}` });
  const h = history.json().history as Array<{ event: string; detail: Record<string, unknown> }>;
  t.same(h.map((e) => e.event), ['created', 'released', 'fault-set', 'fault-injected', 'fault-injected', 'authenticated', 'downloaded', 'installed']);
  t.match(h.filter((e) => e.event === 'fault-injected').map((e) => e.detail), [
    { faultId: f.json.id, function: 'authenticateClient', mode: 'fail', subjectCode: '8.1', reasonCode: '4.8', remaining: 1 },
    { remaining: 0 },
  ]);
});

t.test('fail by MatchingID on getBoundProfilePackage, and by EID', async (t) => {
  const order = await w.order();
  const dev = await newDevice(w);
  t.equal((await addFault(w, { matchingId: order.matchingId.toLowerCase(), function: 'getBoundProfilePackage', mode: 'fail', subjectCode: '8.2', reasonCode: '3.7' })).status, 201);
  const err = await dev.lpa.download(order.activationCode).catch((e) => e);
  t.match(err, { code: 'es9Failed', function: 'getBoundProfilePackage', subjectCode: '8.2', reasonCode: '3.7' });
  t.equal((await w.profile(order.iccid))!.state, 'Released', 'the order is untouched');

  // By EID: only this eUICC is affected, whatever the order.
  const other = await newDevice(w);
  t.equal((await addFault(w, { eid: dev.card.eid, function: 'authenticateClient', mode: 'fail', subjectCode: '8.1.1', reasonCode: '3.8' })).status, 201);
  const o2 = await w.order();
  t.equal((await other.lpa.download(o2.activationCode)).iccid, o2.iccid, 'another eUICC is served');
  t.match(await dev.lpa.download(order.activationCode).catch((e) => e), { subjectCode: '8.1.1', reasonCode: '3.8' });
  t.equal((await dev.lpa.download(order.activationCode)).iccid, order.iccid, 'then this one is served too');
  t.equal((await events(order.iccid)).filter((e) => e === 'fault-injected').length, 2);
});

t.test('delay: the call takes at least the delay, then succeeds', async (t) => {
  const order = await w.order();
  const { lpa } = await newDevice(w);
  const base = await lpa.download((await w.order()).activationCode);
  t.equal((await addFault(w, { iccid: order.iccid, function: 'getBoundProfilePackage', mode: 'delay', delayMs: 800 })).status, 201);
  const r = await lpa.download(order.activationCode);
  t.equal(r.iccid, order.iccid);
  const ms = r.timings.getBoundProfilePackage;
  t.ok(ms >= 790, `getBoundProfilePackage took ${ms.toFixed(0)} ms`);
  t.ok(ms < 800 + base.timings.getBoundProfilePackage + 1000, 'and not much more');
  t.ok((await events(order.iccid)).includes('fault-injected'));
});

t.test('drop: the LPA gets an HTTP error, the next try works', async (t) => {
  const order = await w.order();
  const { lpa } = await newDevice(w);
  t.equal((await addFault(w, { iccid: order.iccid, function: 'getBoundProfilePackage', mode: 'drop' })).status, 201);
  const err = await lpa.download(order.activationCode).catch((e) => e);
  t.ok(err instanceof LpaError);
  t.match(err, { code: 'http', function: 'getBoundProfilePackage' });
  t.equal((await w.profile(order.iccid))!.state, 'Released');
  t.equal((await lpa.download(order.activationCode)).iccid, order.iccid, 'served after the drop');
  t.match(await events(order.iccid), ['created', 'released', 'fault-set', 'authenticated', 'fault-injected']);
});

t.test('a fault on another order or function does not fire', async (t) => {
  const a = await w.order();
  const b = await w.order();
  const f = await addFault(w, { iccid: a.iccid, function: 'cancelSession', mode: 'fail', subjectCode: '1.2', reasonCode: '4.2' });
  const { lpa } = await newDevice(w);
  await lpa.download(b.activationCode);
  await lpa.download(a.activationCode);
  const list = (await w.app.inject({ method: 'GET', url: '/admin/faults' })).json().faults as Array<{ id: string; remaining: number }>;
  t.match(list.find((x) => x.id === f.json.id), { remaining: 1 }, 'still armed');
  t.equal((await w.app.inject({ method: 'DELETE', url: `/admin/faults/${f.json.id}` })).statusCode, 204);
  t.equal((await w.app.inject({ method: 'DELETE', url: `/admin/faults/${f.json.id}` })).statusCode, 404);
});

t.test('admin API refuses faults it cannot apply', async (t) => {
  const order = await w.order();
  t.equal((await addFault(w, { mode: 'drop' })).status, 400, 'no target');
  t.equal((await addFault(w, { iccid: order.iccid, function: 'initiateAuthentication', mode: 'drop' })).status, 400, 'initiateAuthentication carries no order');
  t.equal((await addFault(w, { iccid: order.iccid, mode: 'fail' })).status, 400, 'fail needs a status');
  t.equal((await addFault(w, { iccid: order.iccid, mode: 'delay' })).status, 400, 'delay needs delayMs');
  t.equal((await addFault(w, { iccid: '123', mode: 'drop' })).status, 400, 'bad ICCID');
});

t.test('CLI: fault add, list, clear', async (t) => {
  const order = await w.order();
  const env = { ...process.env, MOCK_SMDP_URL: w.url, ADMIN_TOKEN: '' };
  const cli = (...args: string[]) =>
    promisify(execFile)(process.execPath, ['--import', 'tsx', resolve(repo, 'src/cli.ts'), ...args], { cwd: repo, env }).catch((e) => e as { stdout: string; stderr: string; code: number });
  const added = await cli('fault', 'add', '--iccid', order.iccid, '--function', 'authenticateClient', '--fail', '8.2.6/3.8', '--count', '3');
  const fault = JSON.parse(added.stdout);
  t.match(fault, { iccid: order.iccid, mode: 'fail', subjectCode: '8.2.6', reasonCode: '3.8', remaining: 3 });
  const listed = JSON.parse((await cli('fault', 'list', '--json')).stdout);
  t.ok(listed.faults.some((f: { id: string }) => f.id === fault.id));
  t.match(await cli('fault', 'add', '--iccid', order.iccid, '--delay', '100', '--drop'), { code: 2 }, 'one mode only');
  t.match(await cli('fault', 'add', '--iccid', order.iccid, '--fail', '8.2.6'), { code: 2 }, 'fail wants SUBJECT/REASON');
  const cleared = await cli('fault', 'clear', fault.id);
  t.match(cleared.stdout, /cleared/);
  const { lpa } = await newDevice(w);
  t.equal((await lpa.download(order.activationCode)).iccid, order.iccid, 'a cleared fault does not fire');
});
