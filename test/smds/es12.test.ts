/**
 * ES12 end to end (docs/smds.md): ES2+ confirmOrder with smdsAddress registers the event at the
 * built-in SM-DS over HTTP (with releaseFlag false: at releaseProfile); a completed download (both
 * curves) or a cancelOrder deletes it; and the
 * SM-DS's refusals: no or an unknown key, a requester that is not the key's, another SM-DP+'s event,
 * another EID, an unknown or already deleted event, a taken EventID; an unreachable SM-DS.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { addSmdsClient, ownEs12Key } from '../../src/smds/es12-auth.js';
import { listEvents } from '../../src/smds/store.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator, statusOf, type Es2Operator } from '../helpers/es2plus.js';
import { newDevice, until } from '../helpers/operator.js';

let world: Promise<World> | undefined;
const getWorld = () => (world ??= startWorld(t));

async function ok(op: Es2Operator, fn: string, body: Record<string, unknown>) {
  const r = await op.call(fn, body);
  if (r.status !== 'Executed-Success') throw new Error(`${fn}: ${r.status} ${r.message}`);
  return r.body;
}

const eventsOf = async (w: World, eid: string) => (await listEvents(w.db, { eid })).map((e) => ({ eventId: e.eventId, rspServerAddress: e.rspServerAddress }));
const smdsOf = async (w: World, iccid: string) => (await w.db.query<{ smds_address: string | null }>('SELECT smds_address FROM profiles WHERE iccid = $1', [iccid]))[0]!.smds_address;
const pendingDeletions = async (w: World) => Number((await w.db.query<{ n: string }>('SELECT count(*)::text AS n FROM smds_deletions'))[0]!.n);

async function es12(w: World, fn: string, body: Record<string, unknown>, key: string | undefined, requester: string) {
  const r = await w.http.request<Record<string, any>>('POST', `/gsma/rsp2/es12/${fn}`,
    { header: { functionRequesterIdentifier: requester, functionCallIdentifier: randomUUID() }, ...body },
    key === undefined ? {} : { 'x-api-key': key });
  t.equal(r.status, 200, `${fn} answers HTTP 200`);
  return statusOf(r.json!);
}

for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
  t.test(`confirmOrder with smdsAddress registers the event; the install deletes it (${curve})`, async (t) => {
    const w = await getWorld();
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card, lpa } = await newDevice(w, curve);
    const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
    const c = await ok(op, 'confirmOrder', { iccid: d.iccid, eid: card.eid, smdsAddress: w.config.smdpAddress, releaseFlag: true });
    t.same(await eventsOf(w, card.eid), [{ eventId: c.matchingId, rspServerAddress: w.config.smdpAddress }], 'one event: the MatchingID at this SM-DP+');
    t.equal(await smdsOf(w, d.iccid), w.config.smdpAddress);

    const r = await lpa.download(`LPA:1$${w.config.smdpAddress}$${c.matchingId}`);
    t.equal(r.iccid, d.iccid);
    t.equal((await w.profile(d.iccid))!.state, 'Installed');
    await until(async () => (await eventsOf(w, card.eid)).length === 0 && (await pendingDeletions(w)) === 0);
    t.pass('the event is deleted at the SM-DS and no deletion is left to send');
  });
}

t.test('releaseFlag false: the event is registered at releaseProfile; cancelOrder deletes it', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  await ok(op, 'confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, matchingId: `EV-${card.eid.slice(-8)}`, releaseFlag: false });
  t.same(await eventsOf(w, card.eid), [], 'not released: no event yet');
  t.equal(await smdsOf(w, d.iccid), w.config.smdpAddress, 'the order keeps the SM-DS address');
  await ok(op, 'releaseProfile', { iccid: d.iccid });
  t.same((await eventsOf(w, card.eid)).map((e) => e.eventId), [`EV-${card.eid.slice(-8)}`], 'released: the given MatchingID is the EventID');
  await ok(op, 'cancelOrder', { iccid: d.iccid, finalProfileStatusIndicator: 'Available' });
  await until(async () => (await eventsOf(w, card.eid)).length === 0);
  t.equal(await smdsOf(w, d.iccid), null);
});

t.test('releaseFlag false, cancelled before the release: no event, nothing to delete', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, releaseFlag: false });
  await ok(op, 'cancelOrder', { iccid: d.iccid, finalProfileStatusIndicator: 'Available' });
  const queued = await w.db.query('SELECT 1 FROM smds_deletions WHERE event_id = $1', [c.matchingId]);
  t.equal(queued.length, 0, 'no DeleteEvent queued for an event never registered');
  t.same(await eventsOf(w, card.eid), []);
});

t.test('releaseProfile: SM-DS unreachable or refusing, the order stays Confirmed and may be released later', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(2);
  const { card } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  await ok(op, 'confirmOrder', { iccid: d.iccid, smdsAddress: '127.0.0.1:1', releaseFlag: false });
  t.equal((await op.call('releaseProfile', { iccid: d.iccid })).status, 'Failed 8.9/5.1', 'unreachable');
  t.equal((await w.profile(d.iccid))!.state, 'Confirmed', 'nothing changed');

  // The EventID is taken at the SM-DS by another SM-DP+: releaseProfile is refused, then works once it is free.
  const who = `other-rel-${card.eid.slice(-6)}`;
  const other = await addSmdsClient(w.db, who);
  const d2 = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  const id = `REL-${card.eid.slice(-6)}`;
  await ok(op, 'confirmOrder', { iccid: d2.iccid, smdsAddress: w.config.smdpAddress, matchingId: id, releaseFlag: false });
  t.equal(await es12(w, 'registerEvent', { eid: card.eid, eventId: id, rspServerAddress: 'other.example.com' }, other, who), 'Executed-Success');
  const refused = await op.call('releaseProfile', { iccid: d2.iccid });
  t.equal(refused.status, 'Failed 8.9/4.2');
  t.match(refused.message, /8\.9\.5\/3\.3/);
  t.equal((await w.profile(d2.iccid))!.state, 'Confirmed');
  t.equal(await es12(w, 'deleteEvent', { eid: card.eid, eventId: id }, other, who), 'Executed-Success');
  await ok(op, 'releaseProfile', { iccid: d2.iccid });
  t.equal((await w.profile(d2.iccid))!.state, 'Released');
  t.same(await eventsOf(w, card.eid), [{ eventId: id, rspServerAddress: w.config.smdpAddress }], 'registered at the release');
});

t.test('confirmOrder: SM-DS unreachable, refused or misnamed; an empty MatchingID', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  t.equal((await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: '127.0.0.1:1', releaseFlag: true })).status, 'Failed 8.9/5.1', 'unreachable');
  t.equal((await w.profile(d.iccid))!.state, 'Linked', 'nothing changed');
  t.equal((await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: 'not an address', releaseFlag: true })).status, 'Failed 8.9.1/2.1');
  t.equal((await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, matchingId: '', releaseFlag: true })).status, 'Failed 8.2.6/2.1');

  // The EventID is taken at the SM-DS by another SM-DP+: the SM-DS refuses, so does confirmOrder.
  const other = await addSmdsClient(w.db, `other-smdp-${card.eid.slice(-6)}`);
  t.equal(await es12(w, 'registerEvent', { eid: card.eid, eventId: `TAKEN-${card.eid.slice(-6)}`, rspServerAddress: 'other.example.com' }, other, `other-smdp-${card.eid.slice(-6)}`), 'Executed-Success');
  const taken = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, matchingId: `TAKEN-${card.eid.slice(-6)}`, releaseFlag: true });
  t.equal(taken.status, 'Failed 8.9/4.2');
  t.match(taken.message ?? taken.body.header.functionExecutionStatus.statusCodeData.message, /8\.9\.5\/3\.3/);
  t.equal((await w.profile(d.iccid))!.state, 'Linked', 'nothing changed');
  t.same((await eventsOf(w, card.eid)).map((e) => e.rspServerAddress), ['other.example.com'], 'the other SM-DP+\'s event stays');
});

t.test('ES12 refusals on the built-in SM-DS', async (t) => {
  const w = await getWorld();
  const own = ownEs12Key(w.pki);
  const me = w.pki.smdpOid;
  const eid = '89049032000000000000000000000019';
  const other = await addSmdsClient(w.db, 'smdp.other.example');
  const ev = { eid, eventId: 'REF-1', rspServerAddress: w.config.smdpAddress };

  t.equal(await es12(w, 'registerEvent', ev, undefined, me), 'Failed 1.1/1.1', 'no key');
  t.equal(await es12(w, 'registerEvent', ev, 'wrong', me), 'Failed 1.1/1.1', 'unknown key');
  t.equal(await es12(w, 'registerEvent', ev, own, 'smdp.other.example'), 'Failed 1.1/1.2', 'requester is not the key\'s');
  t.equal(await es12(w, 'registerEvent', { ...ev, eid: '123' }, own, me), 'Failed 8.1.1/2.1');
  t.equal(await es12(w, 'registerEvent', { ...ev, eventId: 'a$b' }, own, me), 'Failed 8.9.5/2.1');
  t.equal(await es12(w, 'registerEvent', { eid, eventId: 'REF-1' }, own, me), 'Failed 1.3.1/2.2', 'no rspServerAddress');
  t.equal(await es12(w, 'registerEvent', ev, own, me), 'Executed-Success');
  t.equal(await es12(w, 'registerEvent', ev, own, me), 'Executed-Success', 'the same event again');
  t.equal(await es12(w, 'registerEvent', { ...ev, eid: '89049032000000000000000000000027' }, own, me), 'Failed 8.9.5/3.3', 'its EventID for another EID');
  t.equal(await es12(w, 'deleteEvent', { eid, eventId: 'REF-1' }, other, 'smdp.other.example'), 'Failed 1.1/1.2', 'another SM-DP+\'s event');
  t.equal(await es12(w, 'deleteEvent', { eid: '89049032000000000000000000000027', eventId: 'REF-1' }, own, me), 'Failed 8.1.1/3.10', 'another EID');
  t.equal(await es12(w, 'deleteEvent', { eid, eventId: 'NOPE' }, own, me), 'Failed 8.9.5/3.9', 'unknown event');
  t.equal(await es12(w, 'deleteEvent', { eid, eventId: 'REF-1' }, own, me), 'Executed-Success');
  t.equal(await es12(w, 'deleteEvent', { eid, eventId: 'REF-1' }, own, me), 'Failed 8.9.5/3.9', 'already deleted');

  const bad = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es12/registerEvent', Buffer.from('{'), { 'content-type': 'application/json', 'x-api-key': own });
  t.ok(bad.status < 500, `malformed JSON: ${bad.status}`);
});
