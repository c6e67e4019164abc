/**
 * The carrier flow end to end: ES2+ downloadOrder → confirmOrder (→ releaseProfile) by an operator,
 * then the device simulator downloads over ES9+ and the profile ends Installed; and the order
 * rules the operator's limits set: confirmation code retries, download attempts, expiry, EID
 * binding, and the default SM-DP+ case.
 */
import t from 'tap';
import { profileHistory } from '../../src/orders/store.js';
import { Lpa, LpaError } from '../../src/sim/lpa.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator, type Es2Operator } from '../helpers/es2plus.js';
import { newDevice } from '../helpers/operator.js';

let world: Promise<World> | undefined;
const getWorld = () => (world ??= startWorld(t));

const ac = (w: World, matchingId: string, cc = false) => `LPA:1$${w.config.smdpAddress}$${matchingId}${cc ? '$$1' : ''}`;

async function ok(op: Es2Operator, fn: string, body: Record<string, unknown>) {
  const r = await op.call(fn, body);
  if (r.status !== 'Executed-Success') throw new Error(`${fn}: ${r.status} ${r.message}`);
  return r.body;
}

const events = async (w: World, iccid: string) => (await profileHistory(w.db, iccid)).map((e) => e.event);

t.test('downloadOrder without EID, confirmOrder released, no confirmation code', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  const stocked = await op.stock(3);
  const d = await ok(op, 'downloadOrder', { profileType: 'default' });
  t.ok(stocked.includes(d.iccid), 'one of the operator\'s Available profiles');
  const iccid: string = d.iccid;
  const c = await ok(op, 'confirmOrder', { iccid, releaseFlag: true });
  const { card, lpa } = await newDevice(w);
  const r = await lpa.download(ac(w, c.matchingId));
  t.equal(r.iccid, iccid);
  const p = (await w.profile(iccid))!;
  t.equal(p.state, 'Installed');
  t.equal(p.eid, card.eid, 'bound to the eUICC at download');
  t.same(await events(w, iccid), ['created', 'allocated', 'released', 'authenticated', 'downloaded', 'installed']);
  t.equal((await op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Available' })).status, 'Failed 8.2.1/3.5', 'an Installed profile cannot be cancelled');
});

t.test('downloadOrder with EID, confirmOrder with a confirmation code, releaseProfile', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card, lpa } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, eid: card.eid, confirmationCode: 'cc-4711', releaseFlag: false });
  t.equal(c.eid, card.eid);

  const early = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'cc-4711' }).catch((e) => e);
  t.match(early, { subjectCode: '8.2', reasonCode: '1.2' }, 'Confirmed is not yet downloadable');

  await ok(op, 'releaseProfile', { iccid: d.iccid });
  const r = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'cc-4711' });
  t.equal(r.iccid, d.iccid);
  t.equal((await w.profile(d.iccid))!.state, 'Installed');
  t.same(await events(w, d.iccid), ['created', 'linked', 'confirmed', 'released', 'authenticated', 'downloaded', 'installed']);
});

t.test('EID binding: another eUICC is refused', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(1);
  const a = await newDevice(w);
  const b = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: a.card.eid });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, releaseFlag: true });
  t.equal(c.eid, a.card.eid, 'the linked EID is answered');
  const e = await b.lpa.download(ac(w, c.matchingId)).catch((x) => x);
  t.match(e, { subjectCode: '8.1.1', reasonCode: '3.8' });
  t.equal((await a.lpa.download(ac(w, c.matchingId))).iccid, d.iccid, 'the linked eUICC gets it');
});

t.test('confirmation code retry limit of the operator kills the order', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w, { ccMaxAttempts: 2 });
  await op.stock(1);
  const { lpa } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default' });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, confirmationCode: 'right', releaseFlag: true });
  const first = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'wrong' }).catch((e) => e);
  t.match(first, { subjectCode: '8.2.7', reasonCode: '3.8' }, 'first wrong code');
  const second = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'wrong' }).catch((e) => e);
  t.match(second, { subjectCode: '8.2.7', reasonCode: '6.4' }, 'second wrong code: limit');
  t.equal((await w.profile(d.iccid))!.state, 'Error', 'order ended');
  const third = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'right' }).catch((e) => e);
  t.ok(third instanceof LpaError, 'even the right code is too late');
  t.equal((await op.call('cancelOrder', { iccid: d.iccid, finalProfileStatusIndicator: 'Available' })).status, 'Executed-Success', 'the operator can take the profile back');
  t.equal((await w.profile(d.iccid))!.state, 'Available');
});

t.test('download attempt limit of the operator', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w, { maxDownloadAttempts: 1 });
  await op.stock(1);
  const { lpa } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default' });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, confirmationCode: 'right', releaseFlag: true });
  const first = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'wrong' }).catch((e) => e);
  t.match(first, { subjectCode: '8.2.7', reasonCode: '3.8' }, 'attempt 1 fails on the code');
  const second = await lpa.download(ac(w, c.matchingId, true), { confirmationCode: 'right' }).catch((e) => e);
  t.match(second, { subjectCode: '8.8.5', reasonCode: '6.4' }, 'attempt 2 is over the limit');
});

t.test('order expiry of the operator', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w, { orderTtlSeconds: 1 });
  await op.stock(1);
  const { lpa } = await newDevice(w);
  const d = await ok(op, 'downloadOrder', { profileType: 'default' });
  const c = await ok(op, 'confirmOrder', { iccid: d.iccid, releaseFlag: true });
  await new Promise((r) => setTimeout(r, 1200));
  const e = await lpa.download(ac(w, c.matchingId)).catch((x) => x);
  t.match(e, { subjectCode: '8.8.5', reasonCode: '4.10' });
});

t.test('default SM-DP+ case: an order for the EID, downloaded with no MatchingID', async (t) => {
  const w = await getWorld();
  const op = await addEs2Operator(w);
  await op.stock(2);
  for (const matchingId of ['', undefined]) {
    const { card } = await newDevice(w);
    const lpa = new Lpa(card, { http: w.http, smdpAddress: w.config.smdpAddress });
    const d = await ok(op, 'downloadOrder', { profileType: 'default', eid: card.eid });
    const c = await ok(op, 'confirmOrder', { iccid: d.iccid, ...(matchingId !== undefined ? { matchingId } : {}), releaseFlag: true });
    t.equal(c.eid, card.eid);
    if (matchingId === '') t.equal(c.matchingId, '', 'no MatchingID');
    const r = await lpa.download('');
    t.equal(r.iccid, d.iccid, `found by EID (${matchingId === '' ? 'empty' : 'generated'} MatchingID)`);
    t.equal((await w.profile(d.iccid))!.state, 'Installed');
  }
  const { card } = await newDevice(w);
  const none = await new Lpa(card, { http: w.http, smdpAddress: w.config.smdpAddress }).download('').catch((e) => e);
  t.match(none, { subjectCode: '8.1.1', reasonCode: '3.8' }, 'no order for this EID');
});
