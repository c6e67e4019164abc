/**
 * The QA console's routes (docs/console.md): the page and its files, the callback catcher, the
 * callbacks list, the family admin reads, the live feed (SSE) and the admin token, on whichever engine
 * the suite runs on (PGlite, or PostgreSQL with DATABASE_URL).
 */
import t from 'tap';
import { feeds } from '../../src/console/routes.js';
import { IdCursor } from '../../src/console/feed.js';
import { deleteEvent, insertEvent, listEvents } from '../../src/smds/store.js';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice, until } from '../helpers/operator.js';
import { startWorld, type World } from '../helpers/world.js';

/** Reads a running server's live feed: the messages so far, and a way to wait for one. */
async function watch(w: World, headers: Record<string, string> = {}) {
  const ctl = new AbortController();
  const res = await fetch(`${w.url}/admin/console/events`, { headers, signal: ctl.signal });
  const messages: Array<{ event: string; data: any }> = [];
  let ended = false;
  const reading = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) messages.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    res,
    messages,
    get ended() {
      return ended;
    },
    async next(pred: (m: { event: string; data: any }) => boolean, ms = 10_000) {
      await until(() => messages.some(pred), ms);
      return messages.find(pred)!;
    },
    async close() {
      ctl.abort();
      await reading;
    },
  };
}

t.test('the page and its files are served; nothing else from the folder', async (t) => {
  const w = await startWorld(t);
  const page = await w.app.inject({ url: '/console' });
  t.equal(page.statusCode, 200);
  t.match(page.headers['content-type'], /^text\/html/);
  t.match(page.body, /<script type="module" src="\/console\/app.js">/);
  for (const [file, type] of [['app.js', /^text\/javascript/], ['style.css', /^text\/css/], ['orders.js', /^text\/javascript/], ['live.js', /^text\/javascript/]] as const) {
    const r = await w.app.inject({ url: `/console/${file}` });
    t.equal(r.statusCode, 200, file);
    t.match(r.headers['content-type'], type, file);
  }
  const missing = await w.app.inject({ url: '/console/nothing.js' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { error: 'notFound', details: { file: 'nothing.js' } });
  for (const bad of ['/console/..%2Fpackage.json', '/console/%2e%2e%2froutes.ts', '/console/routes.ts']) {
    const r = await w.app.inject({ url: bad });
    t.ok(r.statusCode === 400 || r.statusCode === 404, `${bad}: ${r.statusCode}`);
    t.notMatch(r.body, /consoleRoutes|"name": "mock-smdp"/, `${bad} does not leak a file`);
  }
  t.equal((await w.app.inject({ url: '/console/' })).statusCode, 302);
});

t.test('the callback catcher stores what it receives, answers the status asked for, and lists it', async (t) => {
  const w = await startWorld(t);
  const body = JSON.stringify({ iccid: '89000123456789012345', notificationPointId: 4, notificationPointStatus: { status: 'Executed-Success' } });
  const r = await w.app.inject({ method: 'POST', url: '/catcher/op1/gsma/rsp2/es2plus/handleDownloadProgressInfo', headers: { 'content-type': 'application/json;charset=UTF-8', 'x-api-key': 'secret' }, body });
  t.equal(r.statusCode, 200);
  t.match(r.json(), { header: { functionExecutionStatus: { status: 'Executed-Success' } }, caught: /^\d+$/ });
  const failing = await w.app.inject({ method: 'POST', url: '/catcher/op1?status=503', headers: { 'content-type': 'text/plain' }, body: 'not json \u00e9' });
  t.equal(failing.statusCode, 503);
  t.match(failing.json(), { error: 'caught' });
  const other = await w.app.inject({ method: 'PUT', url: '/catcher/other', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from([0, 1, 2, 0xff]) });
  t.equal(other.statusCode, 200);
  const empty = await w.app.inject({ method: 'POST', url: '/catcher/op1' });
  t.equal(empty.statusCode, 200, 'an empty request is caught too');

  const list = (await w.app.inject({ url: '/admin/catcher?bin=op1' })).json();
  t.equal(list.requests.length, 3);
  const [last, second, first] = list.requests;
  t.match(first, {
    bin: 'op1', method: 'POST', path: '/catcher/op1/gsma/rsp2/es2plus/handleDownloadProgressInfo', answered: 200,
    headers: { 'content-type': 'application/json;charset=UTF-8', 'x-api-key': '(present)' },
    json: { iccid: '89000123456789012345', notificationPointId: 4 },
    summary: '89000123456789012345 point 4 Executed-Success',
  });
  t.notMatch(JSON.stringify(first.headers), /secret/, 'credentials are not kept');
  t.match(second, { answered: 503, body: 'not json \u00e9', json: null, path: '/catcher/op1?status=503' });
  t.match(last, { size: 0, body: '' });
  t.same(list.bins.map((b: any) => [b.bin, b.count]), [['op1', 3], ['other', 1]]);
  const one = (await w.app.inject({ url: `/admin/catcher/requests/${first.id}` })).json();
  t.equal(one.id, first.id);
  t.equal((await w.app.inject({ url: '/admin/catcher/requests/999999' })).json().error, 'notFound');

  // Bad input: 4xx JSON, nothing stored.
  for (const url of ['/catcher/bad%20bin', '/catcher/a%00b', '/catcher/op1?status=99', '/catcher/op1?status=abc']) {
    const bad = await w.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{}' });
    t.equal(bad.statusCode, 400, url);
    t.match(bad.json(), { error: String }, url);
  }
  t.equal((await w.app.inject({ url: '/admin/catcher?bin=a%00b' })).statusCode, 400);
  t.equal((await w.app.inject({ url: '/admin/catcher?limit=0' })).statusCode, 400);
  // Other parameters of a callback URL are welcome; a large body is cut in the list, whole in the request.
  const large = JSON.stringify({ data: 'y'.repeat(100_000) });
  const withQuery = await w.app.inject({ method: 'POST', url: '/catcher/big?operator=op9&x=1', headers: { 'content-type': 'application/json' }, body: large });
  t.equal(withQuery.statusCode, 200);
  const [cut] = (await w.app.inject({ url: '/admin/catcher?bin=big' })).json().requests;
  t.match(cut, { path: '/catcher/big?operator=op9&x=1', size: large.length, truncated: true, json: null });
  t.equal(cut.body.length, 64 * 1024);
  const whole = (await w.app.inject({ url: `/admin/catcher/requests/${cut.id}` })).json();
  t.match(whole, { truncated: false, body: large, json: { data: String } });
  await w.app.inject({ method: 'DELETE', url: '/admin/catcher?bin=big' });

  const big = await w.app.inject({ method: 'POST', url: '/catcher/op1', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 1) });
  t.equal(big.statusCode, 413);
  t.equal((await w.app.inject({ url: '/admin/catcher' })).json().requests.length, 4, 'refused requests are not stored');

  const cleared = await w.app.inject({ method: 'DELETE', url: '/admin/catcher?bin=op1' });
  t.same(cleared.json(), { deleted: 3 });
  t.same((await w.app.inject({ url: '/admin/catcher' })).json().bins.map((b: any) => b.bin), ['other']);
});

t.test('an operator whose callback URL is the catcher: callbacks delivered, with their state, pending ones retried', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w, { callbackUrl: `${w.url}/catcher/ops` });
  const failing = await addEs2Operator(w, { callbackUrl: `${w.url}/catcher/down?status=503` });
  const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20, baseDelayMs: 60_000 });
  t.teardown(() => outbox.stop());

  const orderFor = async (o: typeof op) => {
    const [iccid] = await o.stock(1);
    t.equal((await o.call('downloadOrder', { iccid })).status, 'Executed-Success');
    const c = await o.call('confirmOrder', { iccid: iccid!, releaseFlag: true });
    t.equal(c.status, 'Executed-Success');
    return { iccid: iccid!, activationCode: `LPA:1$${w.config.smdpAddress}$${c.body.matchingId}` };
  };
  const good = await orderFor(op);
  const bad = await orderFor(failing);
  const { lpa } = await newDevice(w);
  await lpa.download(good.activationCode);
  // The failing operator's order: a download too, so that callbacks are queued for it.
  await (await newDevice(w)).lpa.download(bad.activationCode);

  await until(async () => (await w.app.inject({ url: '/admin/catcher?bin=ops' })).json().requests.length === 3);
  const caught = (await w.app.inject({ url: '/admin/catcher?bin=ops' })).json().requests.reverse();
  t.same(caught.map((r: any) => r.json.notificationPointId), [1, 3, 4], 'points 1, 3 and 4 in order');
  t.ok(caught.every((r: any) => r.path === '/catcher/ops' && r.json.iccid === good.iccid && r.headers['x-admin-protocol'] === 'gsma/rsp/v2.5.0'));

  // The catcher records a callback when it arrives; the outbox marks it delivered once the answer is
  // back: wait for that too.
  const callbacksOf = async (iccid: string) => (await w.app.inject({ url: `/admin/callbacks?iccid=${iccid}` })).json();
  await until(async () => (await callbacksOf(good.iccid)).counts.delivered === 3);
  const mine = await callbacksOf(good.iccid);
  t.equal(mine.callbacks.length, 3);
  t.ok(mine.callbacks.every((c: any) => c.state === 'delivered' && c.deliveredAt && c.attempts === 1 && c.operatorId === op.id));
  t.same(mine.callbacks.map((c: any) => c.summary), ['point 4 Executed-Success', 'point 3 Executed-Success', 'point 1 Executed-Success'], 'newest first');
  t.same(mine.counts, { pending: 0, retrying: 0, delivered: 3 });

  await until(async () => (await w.app.inject({ url: `/admin/callbacks?iccid=${bad.iccid}&state=retrying` })).json().callbacks.length === 1);
  const theirs = (await w.app.inject({ url: `/admin/callbacks?operator=${failing.id}` })).json();
  t.match(theirs.counts, { retrying: 1, delivered: 0 });
  t.match(theirs.callbacks.find((c: any) => c.state === 'retrying'), { attempts: 1, lastError: 'HTTP 503', summary: 'point 1 Executed-Success' });
  t.ok(theirs.callbacks.filter((c: any) => c.state === 'pending').length >= 1, 'later callbacks of the ICCID wait behind the first');
  t.ok((await w.app.inject({ url: '/admin/catcher?bin=down' })).json().requests.every((r: any) => r.answered === 503));

  for (const url of ['/admin/callbacks?state=lost', '/admin/callbacks?iccid=12', '/admin/callbacks?operator=a%00b', '/admin/callbacks?iccid=89000000000000000000&groupId=fg_1', '/admin/callbacks?limit=5000']) {
    const r = await w.app.inject({ url });
    t.equal(r.statusCode, 400, url);
    t.match(r.json(), { error: 'invalid', message: String }, url);
  }
});

t.test('family groups for the admin: members, lines with the live state, usage against plan and caps', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w, { stock: 3 });
  const fam = await createFamily(api, {
    name: 'The Okafors',
    plan: { dataMb: 10_000, voiceMin: 500, sms: 100, hotspotMb: 2000 },
    members: [
      { name: 'Ada', role: 'owner', lines: [{ device: 'phone', name: "Ada's phone" }] },
      { name: 'Obi', role: 'child', caps: { dataMb: 1000 }, lines: [{ device: 'phone' }] },
    ],
  });
  const g = fam.groupId;
  const ada = fam.byName.Ada!;
  const obi = fam.byName.Obi!;
  const issued = await api.ok('POST', `/family/groups/${g}/members/${ada.id}/lines/${ada.lines[0]!.id}/profile`, {}, 201);
  await (await newDevice(w)).lpa.download(issued.activationCode);
  await api.ok('POST', `/family/groups/${g}/lines/${obi.lines[0]!.id}/usage`, { kind: 'data', amount: 600 });

  const list = await w.app.inject({ url: '/admin/family/groups' });
  t.equal(list.statusCode, 200);
  t.match(list.json().groups, [{ id: g, name: 'The Okafors', operatorId: api.operatorId, members: 2, lines: 2, plan: { dataMb: 10_000 } }]);
  t.same((await w.app.inject({ url: `/admin/family/groups?operator=${api.operatorId}` })).json().groups.map((x: any) => x.id), [g]);
  t.same((await w.app.inject({ url: '/admin/family/groups?operator=nobody' })).json().groups, []);

  const r = await w.app.inject({ url: `/admin/family/groups/${g}` });
  t.equal(r.statusCode, 200);
  const v = r.json();
  t.match(v.group, { id: g, name: 'The Okafors', plan: { dataMb: 10_000, voiceMin: 500, sms: 100, hotspotMb: 2000 } });
  t.same(v.profileStates, { Installed: 1 });
  t.match(v.pool, { data: { limit: 10_000, used: 600, remaining: 9400 }, voice: { limit: 500, used: 0 }, sms: { limit: 100 }, hotspot: { limit: 2000 } });
  const adaV = v.members.find((m: any) => m.name === 'Ada');
  const obiV = v.members.find((m: any) => m.name === 'Obi');
  t.match(adaV, { role: 'owner', lines: [{ name: "Ada's phone", device: 'phone', iccid: issued.iccid, profile: { iccid: issued.iccid, state: 'Installed' } }] });
  t.match(obiV, { role: 'child', caps: { dataMb: 1000 }, usage: { data: { limit: 1000, used: 600, remaining: 400 } }, lines: [{ iccid: null, profile: null, usage: { dataMb: 600 } }] });
  t.ok(v.events.length > 0 && v.events[0].type, 'latest events, newest first');
  t.ok(v.events.some((e: any) => /installed/i.test(e.type)));

  const missing = await w.app.inject({ url: '/admin/family/groups/fg_nope' });
  t.equal(missing.statusCode, 404);
  t.match(missing.json(), { error: 'notFound', details: { group: 'fg_nope' } });
  for (const bad of ['/admin/family/groups/a%00b', '/admin/family/groups/x%20y', '/admin/family/groups?operator=%00']) {
    const b = await w.app.inject({ url: bad });
    t.equal(b.statusCode, 400, bad);
    t.match(b.json(), { error: 'invalid' }, bad);
  }
});

t.test('the live feed: state changes pushed while watched, no polling when nobody watches', async (t) => {
  const w = await startWorld(t);
  const feed = feeds.get(w.app)!;
  t.ok(feed);
  await new Promise((r) => setTimeout(r, feed.pollMs * 3));
  t.equal(feed.polls, 0, 'no page connected: no polling');

  const s = await watch(w);
  t.equal(s.res.status, 200);
  t.match(s.res.headers.get('content-type'), /^text\/event-stream/);
  await s.next((m) => m.event === 'hello');
  t.equal(feed.watching, 1);
  const order = await w.order();
  const released = await s.next((m) => m.event === 'order' && m.data.order.iccid === order.iccid);
  t.match(released.data, { type: 'order', order: { iccid: order.iccid, state: 'Released', matchingId: order.matchingId, activationCode: order.activationCode }, events: ['created', 'released'] });

  // A second watcher shares the one poller.
  const s2 = await watch(w);
  await s2.next((m) => m.event === 'hello');
  t.equal(feed.watching, 2);
  await (await newDevice(w)).lpa.download(order.activationCode);
  for (const x of [s, s2]) await x.next((m) => m.event === 'order' && m.data.order.state === 'Installed');
  const states = s.messages.filter((m) => m.event === 'order').map((m) => m.data.order.state);
  t.equal(states.at(-1), 'Installed');

  // The catcher's requests and the family events come too.
  await w.app.inject({ method: 'POST', url: '/catcher/live', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
  const caught = await s.next((m) => m.event === 'caught');
  t.match(caught.data.request, { bin: 'live', method: 'POST', path: '/catcher/live', answered: 200, size: 7 });

  await s.close();
  await s2.close();
  await until(() => feed.watching === 0);
  const polls = feed.polls;
  await new Promise((r) => setTimeout(r, feed.pollMs * 4));
  t.equal(feed.polls, polls, 'the last watcher gone: polling stopped');

  // Watched again: it starts from the database as it is now.
  const s3 = await watch(w);
  await s3.next((m) => m.event === 'hello');
  const again = await w.order();
  await s3.next((m) => m.event === 'order' && m.data.order.iccid === again.iccid);
  t.notOk(s3.messages.some((m) => m.event === 'order' && m.data.order.iccid === order.iccid), 'old changes are not sent again');
  await s3.close();
});

t.test('the live feed: smds when the SM-DS event records change (registered, deleted), not otherwise', async (t) => {
  const w = await startWorld(t);
  const feed = feeds.get(w.app)!;
  const s = await watch(w);
  await s.next((m) => m.event === 'hello');
  const eid = '89049032000000000000000000000019';
  t.ok(await insertEvent(w.db, { eventId: 'FEED-SMDS-1', eid, rspServerAddress: w.config.smdpAddress, registeredBy: '2.999.10' }));
  const added = await s.next((m) => m.event === 'smds');
  t.match(added.data, { type: 'smds', count: 1 });
  t.type(added.data.newest, 'string');
  t.ok(await insertEvent(w.db, { eventId: 'FEED-SMDS-2', eid, rspServerAddress: w.config.smdpAddress, registeredBy: '2.999.10' }));
  await s.next((m) => m.event === 'smds' && m.data.count === 2);
  // Nothing changed: no further smds message over a few polls.
  const polls = feed.polls;
  await until(() => feed.polls >= polls + 3);
  t.equal(s.messages.filter((m) => m.event === 'smds').length, 2, 'one message per change');
  t.ok(await deleteEvent(w.db, 'FEED-SMDS-2'));
  await s.next((m) => m.event === 'smds' && m.data.count === 1);
  t.ok(await deleteEvent(w.db, 'FEED-SMDS-1'));
  const gone = await s.next((m) => m.event === 'smds' && m.data.count === 0);
  t.equal(gone.data.newest, null);
  await s.close();
});

t.test('the live feed sees what another instance on the same database changed', async (t) => {
  const w1 = await startWorld(t);
  const { buildApp } = await import('../../src/app.js');
  const { openDatabase } = await import('../../src/db/db.js');
  const url = (w1.db as { url?: string }).url;
  const db2 = url ? await openDatabase({ url }) : w1.db; // PGlite is one process: the same database
  const app2 = await buildApp({ config: w1.config, db: db2, pki: w1.pki }, { logger: false });
  t.teardown(async () => {
    await app2.close();
    if (db2 !== w1.db) await db2.close();
  });
  const s = await watch(w1);
  await s.next((m) => m.event === 'hello');
  const created = await app2.inject({ method: 'POST', url: '/admin/orders', payload: { confirmationCode: '1234' }, remoteAddress: '127.0.0.1' });
  t.equal(created.statusCode, 201);
  const iccid = created.json().iccid;
  const m = await s.next((x) => x.event === 'order' && x.data.order.iccid === iccid);
  t.match(m.data.order, { state: 'Released', confirmationCodeRequired: true });
  t.match(m.data.order.activationCode, /\$\$1$/);
  await s.close();
});

t.test('with ADMIN_TOKEN: the page loads, everything under /admin needs the token, the catcher does not', async (t) => {
  const w = await startWorld(t, { config: { adminToken: 'qa-secret' } });
  t.equal((await w.app.inject({ url: '/console' })).statusCode, 200, 'the page itself is public: it asks for the token');
  t.equal((await w.app.inject({ url: '/console/api.js' })).statusCode, 200);
  for (const url of ['/admin/callbacks', '/admin/family/groups', '/admin/catcher', '/admin/console/events']) {
    const r = await w.app.inject({ url, remoteAddress: '127.0.0.1' });
    t.equal(r.statusCode, 401, url);
    t.match(r.json(), { error: 'unauthorised' });
    t.equal((await w.app.inject({ url, headers: { authorization: 'Bearer wrong-secret' } })).statusCode, 401, `${url}, wrong token`);
  }
  t.equal((await w.app.inject({ url: '/admin/callbacks', headers: { authorization: 'Bearer qa-secret' } })).statusCode, 200);
  t.equal((await w.app.inject({ method: 'POST', url: '/catcher/x', headers: { 'content-type': 'application/json' }, body: '{}' })).statusCode, 200,
    'the catcher takes callbacks without a token (the outbox worker sends none)');

  const denied = await fetch(`${w.url}/admin/console/events`);
  t.equal(denied.status, 401);
  const s = await watch(w, { authorization: 'Bearer qa-secret' });
  t.equal(s.res.status, 200);
  await s.next((m) => m.event === 'hello');
  await s.close();
});

t.test('IdCursor: ids committed out of order are not lost, a rolled-back id is given up on', async (t) => {
  const c = new IdCursor(10, 1000);
  t.same(c.accept([11, 13], 0), [11n, 13n]);
  t.equal(c.after, '11', '12 may still commit');
  t.same(c.accept([13], 100), [], 'seen ones are not handed out again');
  t.same(c.accept([12, 13, 14], 200), [12n, 14n], 'the late one arrives');
  t.equal(c.after, '14');
  t.same(c.accept([16], 300), [16n]);
  t.equal(c.after, '14');
  t.same(c.accept([16], 1299), []);
  t.equal(c.after, '14', 'still waiting for 15');
  t.same(c.accept([16], 1301), []);
  t.equal(c.after, '16', '15 given up on after the gap time');
});

t.test("an order's SM-DS event: the built-in SM-DS's, and an external SM-DS's (registered, not yet, DeleteEvent pending, deleted); the feed's order view names its SM-DS", async (t) => {
  // The external SM-DS: another instance over TLS (same test PKI, so it trusts this SM-DP+'s CERT.DP.TLS).
  const ext = await startWorld(t, { tls: true });
  const extAddress = `localhost:${(ext.app.server.address() as { port: number }).port}`;
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  await op.stock(4);
  const view = async (iccid: string) => {
    const r = await w.app.inject({ url: `/admin/smds/orders/${iccid}`, remoteAddress: '127.0.0.1' });
    t.equal(r.statusCode, 200);
    return r.json();
  };
  const s = await watch(w);
  await s.next((m) => m.event === 'hello');

  // The built-in SM-DS: its record.
  const { card: c0 } = await newDevice(w);
  const d0 = (await op.call('downloadOrder', { profileType: 'default', eid: c0.eid })).body;
  const m0 = (await op.call('confirmOrder', { iccid: d0.iccid, smdsAddress: w.config.smdpAddress, releaseFlag: true })).body.matchingId;
  t.match(await view(d0.iccid), { smdsAddress: w.config.smdpAddress, builtIn: true, eventId: m0, state: 'registered', event: { eventId: m0, eid: c0.eid }, deletion: null });
  const fed = await s.next((m) => m.event === 'order' && m.data.order.iccid === d0.iccid && m.data.order.state === 'Released');
  t.equal(fed.data.order.smdsAddress, w.config.smdpAddress, 'the feed\'s order view has smdsAddress');

  // An external SM-DS: registered there; after the install, deleted there.
  const { card: c1, lpa: l1 } = await newDevice(w);
  const d1 = (await op.call('downloadOrder', { profileType: 'default', eid: c1.eid })).body;
  const c = await op.call('confirmOrder', { iccid: d1.iccid, smdsAddress: extAddress, releaseFlag: true });
  t.equal(c.status, 'Executed-Success', c.message ?? 'RegisterEvent at the external SM-DS');
  t.match(await view(d1.iccid), { smdsAddress: extAddress, builtIn: false, eventId: c.body.matchingId, state: 'registered', rspServerAddress: w.config.smdpAddress, event: null });
  t.same((await listEvents(ext.db, { eid: c1.eid })).map((e) => e.eventId), [c.body.matchingId], 'the external SM-DS has it');
  await l1.download(`LPA:1$${w.config.smdpAddress}$${c.body.matchingId}`);
  await until(async () => (await view(d1.iccid)).state === 'deleted');
  t.same(await listEvents(ext.db, { eid: c1.eid }), [], 'deleted at the external SM-DS');

  // Not released: not registered yet.
  const { card: c2 } = await newDevice(w);
  const d2 = (await op.call('downloadOrder', { profileType: 'default', eid: c2.eid })).body;
  await op.call('confirmOrder', { iccid: d2.iccid, smdsAddress: extAddress, releaseFlag: false });
  t.match(await view(d2.iccid), { state: 'not-registered', builtIn: false });

  // The external SM-DS goes away after the registration: the install's DeleteEvent stays pending, with its error.
  const { card: c3, lpa: l3 } = await newDevice(w);
  const d3 = (await op.call('downloadOrder', { profileType: 'default', eid: c3.eid })).body;
  const m3 = (await op.call('confirmOrder', { iccid: d3.iccid, smdsAddress: extAddress, releaseFlag: true })).body.matchingId;
  await ext.app.close();
  await l3.download(`LPA:1$${w.config.smdpAddress}$${m3}`);
  await until(async () => ((await view(d3.iccid)).deletion?.attempts ?? 0) >= 1);
  t.match(await view(d3.iccid), { state: 'deleting', eventId: m3, deletion: { lastError: /unreachable/ } });

  t.match(await view((await w.order()).iccid), { state: 'none', smdsAddress: null });
  t.equal((await w.app.inject({ url: '/admin/smds/orders/89000123456789012341', remoteAddress: '127.0.0.1' })).statusCode, 404);
  t.equal((await w.app.inject({ url: '/admin/smds/orders/12', remoteAddress: '127.0.0.1' })).statusCode, 400);
  await s.close();
});
