/**
 * POST /admin/reset (docs/api.md): off unless RESET_ENABLED=1 (404 naming it); otherwise one
 * transaction that empties sessions, notifications, callbacks, faults and the orders' history,
 * deletes the profiles admin orders created, returns inventory profiles to the pool and unbinds the
 * family lines that held them, and answers the counts; ?all=1 empties everything but the built-in
 * profile type. After a reset the server orders and downloads as before.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { PROFILE_EVENT } from '../../src/orders/state-machine.js';
import { withLuhn } from '../../src/rsp/identifiers.js';
import { newDevice } from '../helpers/device.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { familyOperator, PROFILE_TYPE } from '../helpers/family.js';
import { startWorld, type World } from '../helpers/world.js';

const count = async (w: World, table: string) => (await w.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;

async function addSession(w: World) {
  await w.db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, euicc_challenge, server_challenge, expires_at)
    VALUES ($1, 'authenticated', 'ab', 'localhost', $2, $2, now() + interval '1 hour')`, [randomBytes(16).toString('hex').toUpperCase(), randomBytes(16)]);
}

t.test('off unless RESET_ENABLED=1: 404 naming the setting, nothing changed', async (t) => {
  const w = await startWorld(t);
  t.equal(w.config.resetEnabled, false, 'off by default');
  await w.order();
  const r = await w.app.inject({ method: 'POST', url: '/admin/reset' });
  t.equal(r.statusCode, 404);
  t.match(r.json(), { error: 'notFound', message: /RESET_ENABLED=1/, details: { setting: 'RESET_ENABLED' } });
  t.equal(await count(w, 'profiles'), 1, 'the order is still there');
});

t.test('reset: orders and sessions emptied in one go, inventory and configuration kept', async (t) => {
  const w = await startWorld(t, { config: { resetEnabled: true } });
  const api = (method: 'GET' | 'POST', url: string, payload?: object) => w.app.inject({ method, url, ...(payload ? { payload } : {}) });

  // An operator with stock and a callback URL; an ES2+ order it downloads (notifications, callbacks).
  const op = await addEs2Operator(w, { callbackUrl: 'http://127.0.0.1:9/callbacks' });
  const [stocked] = await op.stock(2);
  const d = await op.call('downloadOrder', { iccid: stocked });
  t.equal(d.status, 'Executed-Success');
  const c = await op.call('confirmOrder', { iccid: stocked, releaseFlag: true });
  const { lpa } = await newDevice(w);
  await lpa.download(`LPA:1$${w.config.smdpAddress}$${c.body.matchingId}`);
  t.equal((await w.profile(stocked!))!.state, 'Installed');

  // Admin orders: two new profiles, and one on an imported inventory profile.
  const made = (await api('POST', '/admin/orders', { count: 2 })).json().orders.map((o: { iccid: string }) => o.iccid) as string[];
  const imported = withLuhn('898820000000000077');
  const hex = () => randomBytes(16).toString('hex');
  t.equal((await api('POST', '/admin/inventory/import', { type: 'default', format: 'json', data: [{ iccid: imported, imsi: '001019990000077', ki: hex(), opc: hex() }] })).statusCode, 201);
  const onImported = (await api('POST', '/admin/orders', { iccid: imported, eid: '89049032123451234512345678901235', confirmationCode: '0000' })).json();
  t.equal(onImported.state, 'Released');
  t.equal((await api('POST', '/admin/faults', { matchingId: onImported.matchingId, mode: 'drop' })).statusCode, 201);
  await addSession(w);
  // A request the console's callback catcher received.
  t.equal((await w.app.inject({ method: 'POST', url: '/catcher/reset-test', payload: { hello: 'catcher' } })).statusCode, 200);

  // A family line holding a profile issued for it.
  const fop = await familyOperator(w, 2);
  const fam = async (method: string, url: string, payload?: object) => (await w.app.inject({ method: method as 'POST', url: `/family${url}`, headers: { 'x-api-key': fop.apiKey }, ...(payload ? { payload } : {}) })).json();
  const g = await fam('POST', '/groups', { name: 'Reset family' });
  await fam('PUT', `/groups/${g.id}/plan`, { profileType: PROFILE_TYPE });
  const m = await fam('POST', `/groups/${g.id}/members`, { name: 'Mo', role: 'owner' });
  const line = await fam('POST', `/groups/${g.id}/members/${m.id}/lines`, { device: 'phone', numberMode: 'shared' });
  const issued = await fam('POST', `/groups/${g.id}/members/${m.id}/lines/${line.id}/profile`, {});
  t.ok(issued.iccid, 'a profile issued for the line');

  const before = {
    sessions: await count(w, 'rsp_sessions'), notifications: await count(w, 'notifications'), callbacks: await count(w, 'outbox'), faults: await count(w, 'fault_injections'),
    caughtRequests: await count(w, 'caught_requests'),
  };
  t.ok(before.sessions > 0 && before.notifications > 0 && before.callbacks > 0 && before.faults > 0 && before.caughtRequests > 0, `something to reset: ${JSON.stringify(before)}`);
  const typesBefore = (await api('GET', '/admin/profile-types')).json().profileTypes.map((p: { name: string }) => p.name);

  const r = await api('POST', '/admin/reset');
  t.equal(r.statusCode, 200);
  const s = r.json();
  t.match(s, { scope: 'orders', deleted: { ...before, orders: made.length }, returnedToPool: 3, unboundLines: 1 }, 'the summary counts what went');
  t.ok(s.deleted.events > 0, 'history deleted');

  for (const table of ['rsp_sessions', 'notifications', 'outbox', 'fault_injections', 'caught_requests', 'smds_events', 'smds_sessions', 'smds_deletions', 'family_line_profiles']) t.equal(await count(w, table), 0, `${table} empty`);
  for (const iccid of made) t.notOk(await w.profile(iccid), `profile ${iccid} made by an order: deleted`);
  for (const iccid of [stocked!, imported, issued.iccid as string]) {
    const p = (await w.profile(iccid))!;
    t.match(p, { state: 'Available', eid: null, matching_id: null, cc_digest: null, cc_attempts: 0, download_attempts: 0, expires_at: null, device_state: null }, `inventory profile ${iccid} back in the pool`);
    t.same((await api('GET', `/admin/orders/${iccid}/history`)).json().history.map((h: { event: string }) => h.event), [PROFILE_EVENT.created], `${iccid}: only its creation left in the history`);
  }
  t.equal((await api('GET', '/admin/orders')).json().orders.length, 0, 'no orders listed');
  t.same((await api('GET', '/admin/profile-types')).json().profileTypes.map((p: { name: string }) => p.name), typesBefore, 'profile types kept');
  t.equal((await api('GET', '/admin/operators')).json().operators.length, 2, 'operators kept');
  const view = await fam('GET', `/groups/${g.id}/view`);
  t.equal(view.members[0].lines[0].iccid, null, 'the family line is kept, without its profile');
  t.equal(await count(w, 'profiles'), 5, 'the inventory is all there');

  // The same again: nothing left to reset.
  t.match((await api('POST', '/admin/reset')).json(), { deleted: { sessions: 0, notifications: 0, callbacks: 0, faults: 0, caughtRequests: 0, smdsEvents: 0, orders: 0 }, returnedToPool: 0, unboundLines: 0 });

  // The server works as before: the operator orders its profile again and a device installs it.
  const again = await op.call('downloadOrder', { iccid: stocked });
  t.equal(again.status, 'Executed-Success', 'the returned profile can be ordered again');
  const c2 = await op.call('confirmOrder', { iccid: stocked, releaseFlag: true });
  const dev2 = await newDevice(w);
  await dev2.lpa.download(`LPA:1$${w.config.smdpAddress}$${c2.body.matchingId}`);
  t.equal((await w.profile(stocked!))!.state, 'Installed', 'and installed again');
  const fresh = (await api('POST', '/admin/orders', {})).json();
  t.equal(fresh.state, 'Released', 'new admin orders too');
});

t.test('reset ?all=1: everything but the built-in profile type', async (t) => {
  const w = await startWorld(t, { config: { resetEnabled: true } });
  const fop = await familyOperator(w, 2);
  await w.app.inject({ method: 'POST', url: '/family/groups', headers: { 'x-api-key': fop.apiKey }, payload: { name: 'Gone' } });
  await w.app.inject({ method: 'POST', url: '/admin/orders', payload: { count: 2 } });
  await addSession(w);
  const r = await w.app.inject({ method: 'POST', url: '/admin/reset?all=1' });
  t.equal(r.statusCode, 200);
  t.match(r.json(), { scope: 'all', deleted: { sessions: 1, profiles: 4, operators: 1, profileTypes: 1, familyGroups: 1 } });
  for (const table of ['profiles', 'profile_events', 'operators', 'family_groups', 'rsp_sessions', 'group_events']) t.equal(await count(w, table), 0, `${table} empty`);
  t.same((await w.db.query<{ name: string }>('SELECT name FROM profile_types')).map((x) => x.name), ['default'], 'only the built-in type');
  t.equal((await w.app.inject({ method: 'POST', url: '/admin/orders', payload: {} })).statusCode, 201, 'orders work after it');
  t.equal((await w.app.inject({ method: 'POST', url: '/admin/reset?all=maybe' })).statusCode, 400, 'all is a boolean');
});
