/**
 * The family API end to end: groups, plan, members, lines (CRUD and validation), issuing profiles
 * through the ES2+ pipeline and downloading them with the device simulator, the group view's live
 * states from verified ES9+ notifications, moving a line and removing a member.
 */
import t from 'tap';
import { LpaError } from '../../src/sim/lpa.js';
import { newDevice } from '../helpers/device.js';
import { caller, familyOperator, PROFILE_TYPE, snapshot } from '../helpers/family.js';
import { startWorld } from '../helpers/world.js';

t.test('groups, plan, members and lines: create, read, update, delete', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 0);
  const call = caller(w);

  const g = await call('POST', '/groups', op.cred, { name: 'The Smiths' });
  t.equal(g.status, 201);
  t.match(g.body, { name: 'The Smiths', operatorId: op.id, plan: { profileType: null, billingCycleDay: 1, msisdns: [] } });
  const gid = g.body.id as string;

  t.equal((await call('POST', '/groups', op.cred, { name: '' })).status, 400, 'schema: empty name');
  t.equal((await call('PUT', `/groups/${gid}/plan`, op.cred, { profileType: PROFILE_TYPE, billingCycleDay: 29 })).status, 400, 'billing day 1-28');
  const unknownType = await call('PUT', `/groups/${gid}/plan`, op.cred, { profileType: 'nope' });
  t.equal(unknownType.status, 400);
  t.match(unknownType.body.message, /unknown profile type/);

  const plan = { profileType: PROFILE_TYPE, dataMb: 50_000, voiceMin: 3000, sms: 1000, hotspotMb: 10_000, billingCycleDay: 15, msisdns: ['447700900001', '447700900002', '447700900003'] };
  const p = await call('PUT', `/groups/${gid}/plan`, op.cred, plan);
  t.equal(p.status, 200);
  t.same(p.body.plan, plan);

  const renamed = await call('PATCH', `/groups/${gid}`, op.cred, { name: 'Smith family' });
  t.equal(renamed.body.name, 'Smith family');

  const owner = await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Alex', role: 'owner' });
  t.equal(owner.status, 201);
  t.match(owner.body.token, /^fam_[A-Za-z0-9_-]{32}$/, 'token returned once');
  const stored = await w.db.query<{ token_sha256: Buffer }>('SELECT token_sha256 FROM family_members WHERE id = $1', [owner.body.id]);
  t.equal(stored[0]!.token_sha256.length, 32, 'only the SHA-256 is stored');
  t.equal((await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Sam', role: 'owner' })).status, 409, 'one owner per group');
  t.equal((await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Sam', role: 'boss' })).status, 400);

  const kid = await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Kim', role: 'child', caps: { dataMb: 2000, sms: 100, atCap: 'throttle' } });
  t.same(kid.body.caps, { dataMb: 2000, voiceMin: null, sms: 100, hotspotMb: null, atCap: 'throttle' });
  t.notOk('token' in (await call('GET', `/groups/${gid}/members/${kid.body.id}`, op.cred)).body, 'token never shown again');

  const caps = await call('PUT', `/groups/${gid}/members/${kid.body.id}/caps`, op.cred, { dataMb: 3000, voiceMin: 60, hotspotMb: 0, atCap: 'block' });
  t.equal(caps.status, 200);
  t.same(caps.body.caps, { dataMb: 3000, voiceMin: 60, sms: null, hotspotMb: 0, atCap: 'block' });

  const m = await call('PATCH', `/groups/${gid}/members/${kid.body.id}`, op.cred, { name: 'Kimberly' });
  t.equal(m.body.name, 'Kimberly');

  // Lines: numbers come from the plan; an own number belongs to one line.
  const base = `/groups/${gid}/members/${owner.body.id}/lines`;
  const phone = await call('POST', base, op.cred, { device: 'phone', numberMode: 'own', msisdn: '447700900001', name: 'Alex phone' });
  t.equal(phone.status, 201);
  t.match(phone.body, { device: 'phone', numberMode: 'own', msisdn: '447700900001', iccid: null, profile: null });
  t.equal((await call('POST', base, op.cred, { device: 'tablet', numberMode: 'own', msisdn: '447700900001' })).status, 409, 'own number taken');
  t.equal((await call('POST', base, op.cred, { device: 'watch', numberMode: 'shared', msisdn: '447700900001' })).status, 409, 'an own number is not shared');
  t.equal((await call('POST', base, op.cred, { device: 'watch', numberMode: 'own', msisdn: '447700900999' })).status, 400, 'not a group number');
  t.equal((await call('POST', base, op.cred, { device: 'toaster', numberMode: 'own' })).status, 400);
  const tablet = await call('POST', base, op.cred, { device: 'tablet', numberMode: 'shared', msisdn: '447700900002' });
  const watch = await call('POST', base, op.cred, { device: 'watch', numberMode: 'shared', msisdn: '447700900002' });
  t.equal(watch.status, 201, 'a shared number serves several lines');
  t.equal((await call('PUT', `/groups/${gid}/plan`, op.cred, { ...plan, msisdns: ['447700900001'] })).status, 409, 'numbers in use stay in the plan');

  const changed = await call('PATCH', `${base}/${tablet.body.id}`, op.cred, { device: 'watch', numberMode: 'own', msisdn: '447700900003' });
  t.equal(changed.status, 200);
  t.match(changed.body, { device: 'watch', numberMode: 'own', msisdn: '447700900003' });
  const read = await call('GET', `${base}/${phone.body.id}`, op.cred);
  t.equal(read.body.name, 'Alex phone');

  const del = await call('DELETE', `${base}/${watch.body.id}`, op.cred);
  t.same(del.body, { removed: watch.body.id, profile: null });
  t.equal((await call('GET', `${base}/${watch.body.id}`, op.cred)).status, 404);

  const group = await call('GET', `/groups/${gid}`, op.cred);
  t.same(group.body.members.map((x: any) => `${x.name}:${x.role}`), ['Alex:owner', 'Kimberly:child']);
  t.same((await call('GET', '/groups', op.cred)).body.groups.map((x: any) => x.id), [gid]);

  const events = await w.db.query<{ type: string }>('SELECT type FROM group_events WHERE group_id = $1 ORDER BY id', [gid]);
  t.same(events.map((e) => e.type).slice(0, 4), ['group-created', 'plan-set', 'group-renamed', 'member-added'], 'changes are logged');

  t.equal((await call('DELETE', `/groups/${gid}`, op.cred)).status, 200);
  t.equal((await call('GET', `/groups/${gid}`, op.cred)).status, 404);
  t.same(await w.db.query('SELECT id FROM family_lines WHERE group_id = $1', [gid]), [], 'lines went with the group');

  const doc = await w.app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(doc.statusCode, 200, 'openapi.json served');
  const api = doc.json();
  t.ok(api.paths['/family/groups/{gid}/members/{mid}/lines/{lid}/profile'], 'issue route in the OpenAPI document');
  t.ok(api.paths['/family/groups/{gid}/plan'].put.requestBody, 'plan body schema in the OpenAPI document');
});

async function setupGroup(t: { teardown(fn: () => unknown): void }, stock = 4) {
  const w = await startWorld(t);
  const op = await familyOperator(w, stock);
  const call = caller(w);
  const gid = (await call('POST', '/groups', op.cred, { name: 'Family' })).body.id as string;
  await call('PUT', `/groups/${gid}/plan`, op.cred, { profileType: PROFILE_TYPE, dataMb: 10_000, msisdns: ['447700900101', '447700900102'] });
  const owner = (await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Olga', role: 'owner' })).body;
  const child = (await call('POST', `/groups/${gid}/members`, op.cred, { name: 'Chris', role: 'child' })).body;
  const line = (await call('POST', `/groups/${gid}/members/${child.id}/lines`, op.cred, { device: 'watch', numberMode: 'shared', msisdn: '447700900101' })).body;
  return { w, op, call, gid, owner, child, line, linePath: `/groups/${gid}/members/${child.id}/lines/${line.id}` };
}

t.test('issue a profile, download it, follow its live state, move the line', async (t) => {
  const { w, op, call, gid, linePath } = await setupGroup(t);

  const issued = await call('POST', `${linePath}/profile`, op.cred, {});
  t.equal(issued.status, 201);
  const { iccid, matchingId, activationCode } = issued.body;
  t.equal(activationCode, `LPA:1$LOCALHOST:8443$${matchingId}`);
  t.same(issued.body.qr, { png: `/admin/activation-codes/${matchingId}.png`, svg: `/admin/activation-codes/${matchingId}.svg` });
  const prof = await w.profile(iccid);
  t.match(prof, { state: 'Released', matching_id: matchingId, profile_type: PROFILE_TYPE, eid: null });
  t.equal((prof as any).operator_id, op.id, "allocated from the group operator's stock");
  const qr = await w.app.inject({ method: 'GET', url: issued.body.qr.png });
  t.equal(qr.statusCode, 200);
  t.equal(qr.headers['content-type'], 'image/png');

  const events = (await w.db.query<{ event: string; detail: any }>('SELECT event, detail FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid]));
  t.same(events.map((e) => e.event), ['created', 'allocated', 'released'], 'the ES2+ transitions, recorded');
  t.match(events[1]!.detail, { via: 'family', group: gid });

  let view = await call('GET', `/groups/${gid}/view`, op.cred);
  const viewLine = () => view.body.members.find((m: any) => m.role === 'child').lines[0];
  t.match(viewLine().profile, { iccid, state: 'Released' });
  t.same(view.body.profileStates, { Released: 1 });

  t.equal((await call('POST', `${linePath}/profile`, op.cred, {})).status, 409, 'a line holds one live profile');

  const { card, lpa } = await newDevice(w);
  const r = await lpa.download(activationCode);
  t.equal(r.iccid, iccid);
  view = await call('GET', `/groups/${gid}/view`, op.cred);
  t.match(viewLine().profile, { state: 'Installed', eid: card.eid });

  for (const [fn, state] of [['enableProfile', 'Enabled'], ['disableProfile', 'Disabled']] as const) {
    await lpa[fn](iccid);
    await lpa.processNotifications();
    view = await call('GET', `/groups/${gid}/view`, op.cred);
    t.equal(viewLine().profile.state, state, `view shows ${state} from the verified notification`);
  }
  const familyEvents = await w.db.query<{ type: string }>('SELECT type FROM group_events WHERE group_id = $1 AND type LIKE $2 ORDER BY id', [gid, 'profile%']);
  t.ok(familyEvents.some((e) => e.type === 'profile-issued'), 'profileIssued logged');

  // Moving needs the old profile gone first: refused, nothing changes.
  const { card: card2, lpa: lpa2 } = await newDevice(w);
  const before = await w.db.query('SELECT * FROM family_lines ORDER BY id');
  const refused = await call('POST', `${linePath}/move`, op.cred, { eid: card2.eid });
  t.equal(refused.status, 409);
  t.match(refused.body.message, /still has profile .* \(Disabled on EID \d{32}\).*delete it on the old device.*cancel its order/);
  t.same(await w.db.query('SELECT * FROM family_lines ORDER BY id'), before, 'refused move changed nothing');

  await lpa.deleteProfile(iccid);
  await lpa.processNotifications();
  view = await call('GET', `/groups/${gid}/view`, op.cred);
  t.equal(viewLine().profile.state, 'Deleted');

  const moved = await call('POST', `${linePath}/move`, op.cred, { eid: card2.eid });
  t.equal(moved.status, 200);
  t.match(moved.body, { eid: card2.eid, iccid: null, previous: { iccid, state: 'Deleted' } });

  // A new profile for the new device: linked to its EID (the line's), with a confirmation code.
  const again = await call('POST', `${linePath}/profile`, op.cred, { confirmationCode: '4321' });
  t.equal(again.status, 201);
  t.equal(again.body.eid, card2.eid);
  t.match(again.body.activationCode, /\$\$1$/);
  t.not(again.body.iccid, iccid);
  const r2 = await lpa2.download(again.body.activationCode, { confirmationCode: '4321' });
  t.equal(r2.iccid, again.body.iccid);
  view = await call('GET', `/groups/${gid}/view`, op.cred);
  t.match(viewLine().profile, { iccid: again.body.iccid, state: 'Installed', eid: card2.eid });
  t.match(viewLine().history, [
    { iccid, eid: null, reason: 'moved', state: 'Deleted' },
    { iccid: again.body.iccid, eid: card2.eid, releasedAt: null, state: 'Installed' },
  ]);
});

t.test('the group owner issues; an exhausted stock is a clear 409', async (t) => {
  const { w, op, call, gid, owner, child, linePath } = await setupGroup(t, 1);
  const ownerCred = { token: owner.token };
  const issued = await call('POST', `${linePath}/profile`, ownerCred, {});
  t.equal(issued.status, 201, 'owner token issues for a member');
  const evt = await w.db.query<{ detail: any }>(`SELECT detail FROM group_events WHERE group_id = $1 AND type = 'profile-issued'`, [gid]);
  t.equal(evt[0]!.detail.by, `member:${owner.id}`);

  const line2 = (await call('POST', `/groups/${gid}/members/${child.id}/lines`, { apiKey: op.apiKey }, { device: 'phone', numberMode: 'own', msisdn: '447700900102' })).body;
  const before = await snapshot(w);
  const none = await call('POST', `/groups/${gid}/members/${child.id}/lines/${line2.id}/profile`, ownerCred, {});
  t.equal(none.status, 409);
  t.match(none.body.message, /no Available profile of type family-5g left \(8\.2\.5\/3\.7\)/);
  t.same(await snapshot(w), before, 'nothing changed');
});

t.test('removing a member cancels its orders; the old activation code stops working', async (t) => {
  const { w, op, call, gid, child, linePath } = await setupGroup(t);
  const issued = (await call('POST', `${linePath}/profile`, op.cred, {})).body;
  const line2 = (await call('POST', `/groups/${gid}/members/${child.id}/lines`, op.cred, { device: 'tablet', numberMode: 'own', msisdn: '447700900102' })).body;
  const issued2 = (await call('POST', `/groups/${gid}/members/${child.id}/lines/${line2.id}/profile`, op.cred, {})).body;

  const removed = await call('DELETE', `/groups/${gid}/members/${child.id}`, op.cred);
  t.equal(removed.status, 200);
  t.same(removed.body.profiles.map((p: any) => `${p.iccid}:${p.outcome}:${p.state}`).sort(),
    [`${issued.iccid}:cancelled:Available`, `${issued2.iccid}:cancelled:Available`].sort());
  for (const iccid of [issued.iccid, issued2.iccid]) {
    const p = await w.profile(iccid);
    t.match(p, { state: 'Available', matching_id: null, eid: null }, `${iccid} back in stock`);
  }
  const ev = await w.db.query<{ event: string; detail: any }>('SELECT event, detail FROM profile_events WHERE iccid = $1 ORDER BY id DESC LIMIT 1', [issued.iccid]);
  t.match(ev[0], { event: 'cancelled', detail: { via: 'family', reason: 'member-removed' } });
  t.equal((await call('GET', `/groups/${gid}/members/${child.id}`, op.cred)).status, 404);
  t.same(await w.db.query('SELECT id FROM family_lines WHERE member_id = $1', [child.id]), []);

  const { lpa } = await newDevice(w);
  const err = await lpa.download(issued.activationCode).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof LpaError, 'download of a cancelled order refused');
  t.equal((err as LpaError).subjectCode, '8.2.6', 'unknown MatchingID');
});
