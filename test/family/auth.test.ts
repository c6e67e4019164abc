/**
 * Who may do what in the family API: operators only on their own groups, the owner token reads the
 * group, changes children's caps and issues profiles; member tokens read only their own lines, may
 * lower but never raise their own caps. Every refusal is a 403 with a message and changes nothing.
 */
import t from 'tap';
import { caller, familyOperator, PROFILE_TYPE, snapshot, type Cred } from '../helpers/family.js';
import { startWorld } from '../helpers/world.js';

t.test('permissions', async (t) => {
  const w = await startWorld(t);
  const opA = await familyOperator(w, 3);
  const opB = await familyOperator(w, 0);
  const call = caller(w);

  const gid = (await call('POST', '/groups', opA.cred, { name: 'A family' })).body.id as string;
  await call('PUT', `/groups/${gid}/plan`, opA.cred, { profileType: PROFILE_TYPE, dataMb: 20_000 });
  const add = async (name: string, role: string, caps?: object) => (await call('POST', `/groups/${gid}/members`, opA.cred, { name, role, ...(caps ? { caps } : {}) })).body;
  const owner = await add('Olivia', 'owner');
  const adult = await add('Adam', 'adult');
  const child = await add('Cleo', 'child', { dataMb: 1000, voiceMin: 100 });
  const sibling = await add('Seb', 'child', { dataMb: 500 });
  const lineOf = async (mid: string) => (await call('POST', `/groups/${gid}/members/${mid}/lines`, opA.cred, { device: 'phone', numberMode: 'shared' })).body.id as string;
  const childLine = await lineOf(child.id);
  const siblingLine = await lineOf(sibling.id);
  const otherGid = (await call('POST', '/groups', opB.cred, { name: 'B family' })).body.id as string;
  const stranger = (await call('POST', `/groups/${otherGid}/members`, opB.cred, { name: 'Zed', role: 'owner' })).body;

  const O: Cred = { token: owner.token };
  const A: Cred = { token: adult.token };
  const C: Cred = { token: child.token };
  const Z: Cred = { token: stranger.token };
  const m = (mid: string) => `/groups/${gid}/members/${mid}`;

  /** A refused call: 403 with an explanation, and the database exactly as before. */
  async function refused(what: string, method: string, path: string, cred: Cred, body?: unknown, message?: RegExp) {
    const before = await snapshot(w);
    const r = await call(method, path, cred, body);
    t.equal(r.status, 403, `${what}: 403`);
    t.equal(r.body.error, 'forbidden', `${what}: error`);
    if (message) t.match(r.body.message, message, `${what}: message`);
    t.same(await snapshot(w), before, `${what}: nothing changed`);
  }

  // Credentials
  t.equal((await call('GET', `/groups/${gid}`, null)).status, 401, 'no credentials');
  t.equal((await call('GET', `/groups/${gid}`, { token: 'fam_nope' })).status, 401, 'unknown member token');
  t.equal((await call('GET', `/groups/${gid}`, { apiKey: 'msk_nope' })).status, 401, 'unknown API key');

  // Another operator touches nothing of this group.
  await refused('other operator reads', 'GET', `/groups/${gid}`, opB.cred, undefined, /belongs to another operator/);
  await refused('other operator views', 'GET', `/groups/${gid}/view`, opB.cred);
  await refused('other operator renames', 'PATCH', `/groups/${gid}`, opB.cred, { name: 'mine' });
  await refused('other operator sets the plan', 'PUT', `/groups/${gid}/plan`, opB.cred, { profileType: PROFILE_TYPE });
  await refused('other operator adds a member', 'POST', `/groups/${gid}/members`, opB.cred, { name: 'X', role: 'adult' });
  await refused('other operator sets caps', 'PUT', `${m(child.id)}/caps`, opB.cred, { dataMb: 1 });
  await refused('other operator issues', 'POST', `${m(child.id)}/lines/${childLine}/profile`, opB.cred, {});
  await refused('other operator removes a member', 'DELETE', m(child.id), opB.cred);
  await refused('other operator deletes the group', 'DELETE', `/groups/${gid}`, opB.cred);
  t.same((await call('GET', '/groups', opB.cred)).body.groups.map((g: any) => g.id), [otherGid], 'lists only its own groups');

  // A member token of another group.
  await refused('stranger owner reads', 'GET', `/groups/${gid}`, Z, undefined, /another group/);
  await refused('stranger owner issues', 'POST', `${m(child.id)}/lines/${childLine}/profile`, Z, {});

  // The group owner: reads, changes children's caps, issues; nothing structural.
  t.equal((await call('GET', `/groups/${gid}`, O)).status, 200, 'owner reads the group');
  t.equal((await call('GET', `/groups/${gid}/view`, O)).status, 200, 'owner views the group');
  t.equal((await call('GET', m(adult.id), O)).status, 200, "owner reads a member's lines");
  const kidCaps = await call('PUT', `${m(child.id)}/caps`, O, { dataMb: 1500, voiceMin: 120 });
  t.equal(kidCaps.status, 200, "owner raises a child's caps");
  t.same(kidCaps.body.caps, { dataMb: 1500, voiceMin: 120, sms: null, hotspotMb: null, atCap: 'block' });
  await refused("owner sets an adult's caps", 'PUT', `${m(adult.id)}/caps`, O, { dataMb: 10 }, /children's caps only/);
  t.equal((await call('PUT', `${m(owner.id)}/caps`, opA.cred, { dataMb: 3000 })).status, 200, 'operator caps the owner');
  await refused('owner raises its own caps', 'PUT', `${m(owner.id)}/caps`, O, { dataMb: 4000 }, /owner cannot raise its own caps/);
  t.equal((await call('PUT', `${m(owner.id)}/caps`, O, { dataMb: 2000 })).status, 200, 'owner lowers its own caps');
  await refused('owner adds a member', 'POST', `/groups/${gid}/members`, O, { name: 'X', role: 'child' }, /only the group's operator/);
  await refused('owner removes a member', 'DELETE', m(child.id), O);
  await refused('owner sets the plan', 'PUT', `/groups/${gid}/plan`, O, { profileType: PROFILE_TYPE, dataMb: 999_999 });
  await refused('owner adds a line', 'POST', `${m(child.id)}/lines`, O, { device: 'tablet', numberMode: 'shared' });
  await refused('owner moves a line', 'POST', `${m(child.id)}/lines/${childLine}/move`, O, {});
  await refused('owner deletes the group', 'DELETE', `/groups/${gid}`, O);
  await refused('owner lists groups', 'GET', '/groups', O);
  const issued = await call('POST', `${m(child.id)}/lines/${childLine}/profile`, O, {});
  t.equal(issued.status, 201, 'owner issues a profile for a child');

  // A child: its own things only; caps down but never up.
  const me = await call('GET', '/me', C);
  t.equal(me.status, 200);
  t.equal(me.body.member.id, child.id);
  t.match(me.body.member.lines[0].profile, { iccid: issued.body.iccid, state: 'Released' }, 'child sees its own profile');
  t.equal((await call('GET', m(child.id), C)).status, 200, 'child reads itself');
  t.equal((await call('GET', `${m(child.id)}/lines/${childLine}`, C)).status, 200, 'child reads its own line');
  await refused("child reads a sibling's lines", 'GET', m(sibling.id), C, undefined, /cannot read another member/);
  await refused("child reads a sibling's line", 'GET', `${m(sibling.id)}/lines/${siblingLine}`, C);
  await refused('child reads the group', 'GET', `/groups/${gid}`, C, undefined, /reads only its own/);
  await refused('child views the group', 'GET', `/groups/${gid}/view`, C);
  await refused('child raises its own data cap', 'PUT', `${m(child.id)}/caps`, C, { dataMb: 5000, voiceMin: 120 }, /cannot raise its own caps \(dataMb\)/);
  await refused('child drops its own voice cap', 'PUT', `${m(child.id)}/caps`, C, { dataMb: 1500 }, /cannot raise its own caps \(voiceMin\)/);
  await refused('child switches block to throttle', 'PUT', `${m(child.id)}/caps`, C, { dataMb: 1500, voiceMin: 120, atCap: 'throttle' }, /atCap/);
  await refused("child changes a sibling's caps", 'PUT', `${m(sibling.id)}/caps`, C, { dataMb: 1 });
  await refused('child issues a profile', 'POST', `${m(sibling.id)}/lines/${siblingLine}/profile`, C, {}, /only the group owner or the operator/);
  await refused('child renames itself', 'PATCH', m(child.id), C, { name: 'Boss' });
  const lower = await call('PUT', `${m(child.id)}/caps`, C, { dataMb: 800, voiceMin: 120, sms: 50 });
  t.equal(lower.status, 200, 'child may lower its own caps');
  t.same(lower.body.caps, { dataMb: 800, voiceMin: 120, sms: 50, hotspotMb: null, atCap: 'block' });

  // An adult: not the owner.
  await refused("adult reads a child's lines", 'GET', m(child.id), A);
  await refused("adult changes a child's caps", 'PUT', `${m(child.id)}/caps`, A, { dataMb: 9999 }, /cannot change another member's caps/);
  await refused('adult issues', 'POST', `${m(sibling.id)}/lines/${siblingLine}/profile`, A, {});

  // Operators have no /me.
  await refused('operator on /me', 'GET', '/me', opA.cred);

  // The operator itself does all of it.
  t.equal((await call('PUT', `${m(adult.id)}/caps`, opA.cred, { dataMb: 5000 })).status, 200);
  t.equal((await call('POST', `${m(sibling.id)}/lines/${siblingLine}/profile`, opA.cred, {})).status, 201);
  t.equal((await call('DELETE', m(sibling.id), opA.cred)).status, 200);
});
