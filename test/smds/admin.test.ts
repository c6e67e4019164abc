/**
 * The SM-DS admin API (docs/smds.md#admin-api): GET /admin/smds/events lists what ES12 registered
 * (all, or one EID's), POST /admin/smds/clients allows another SM-DP+ whose key then works on ES12;
 * bad input is a 400, a remote caller without the token a 401.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { startWorld } from '../helpers/world.js';
import { addEs2Operator, statusOf } from '../helpers/es2plus.js';
import { newDevice } from '../helpers/operator.js';

t.test('events and clients', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card } = await newDevice(w);
  const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
  const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, releaseFlag: true });
  t.equal(c.status, 'Executed-Success');

  const all = await w.http.request<{ events: any[] }>('GET', '/admin/smds/events');
  t.equal(all.status, 200);
  t.match(all.json!.events, [{ eventId: c.body.matchingId, eid: card.eid, rspServerAddress: w.config.smdpAddress, registeredBy: w.pki.smdpOid }]);
  const one = await w.http.request<{ events: any[] }>('GET', `/admin/smds/events?eid=${card.eid}`);
  t.equal(one.json!.events.length, 1);
  const none = await w.http.request<{ events: any[] }>('GET', '/admin/smds/events?eid=89049032000000000000000000000027');
  t.same(none.json!.events, []);
  t.equal((await w.http.request('GET', '/admin/smds/events?eid=12')).status, 400);
  t.equal((await w.http.request('GET', '/admin/smds/events?limit=0')).status, 400);

  const made = await w.http.request<{ requester: string; apiKey: string }>('POST', '/admin/smds/clients', { requester: 'smdp.partner.example' });
  t.equal(made.status, 201);
  const reg = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es12/registerEvent', {
    header: { functionRequesterIdentifier: 'smdp.partner.example', functionCallIdentifier: randomUUID() },
    eid: card.eid, eventId: 'PARTNER-1', rspServerAddress: 'smdp.partner.example',
  }, { 'x-api-key': made.json!.apiKey });
  t.equal(statusOf(reg.json!), 'Executed-Success', 'the partner SM-DP+ registers an event');
  t.equal((await w.http.request<{ events: any[] }>('GET', `/admin/smds/events?eid=${card.eid}`)).json!.events.length, 2);
  t.equal((await w.http.request('POST', '/admin/smds/clients', { requester: '' })).status, 400);
  t.equal((await w.http.request('POST', '/admin/smds/clients', {})).status, 400);
});

t.test('401 for a remote caller with a token set', async (t) => {
  const w = await startWorld(t, { config: { adminToken: 'sekret-token' } });
  t.equal((await w.http.request('GET', '/admin/smds/events')).status, 401);
  t.equal((await w.http.request('GET', '/admin/smds/events', undefined, { authorization: 'Bearer sekret-token' })).status, 200);
});
