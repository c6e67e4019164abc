/**
 * The family-plan story end to end, on whichever database engine the suite runs on (PGlite, or
 * PostgreSQL with DATABASE_URL): a group with a 20 GB pool, a child capped at 2 GB and a 5 GB hotspot
 * allowance; three members with phones and a watch; four profiles issued and downloaded by four
 * simulated devices (one virtual eUICC each); one enabled and disabled; the group view showing each
 * state; usage hitting the child's cap, the hotspot allowance, then the pool; a rollover resetting
 * the counters; and the operator's callback receiving the group's events in order.
 */
import t from 'tap';
import { FAMILY_EVENT_PATH } from '../../src/family/events.js';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice, receiver, until } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

const GB = 1024;

t.test('a family plan, from issuing to rollover', async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t);
  const api = await familyOperator(w, { callbackUrl: rx.url, stock: 6 });
  const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20, baseDelayMs: 100 });
  t.teardown(() => outbox.stop());

  // The group, its plan and members: Alex (owner: phone + watch), Sam (adult: phone), Kim (child, 2 GB: phone).
  const fam = await createFamily(api, {
    name: 'The Lindqvists',
    plan: { dataMb: 20 * GB, voiceMin: 3000, sms: 1000, hotspotMb: 5 * GB },
    members: [
      { name: 'Alex', role: 'owner', lines: [{ device: 'phone', name: "Alex's phone" }, { device: 'watch', name: "Alex's watch" }] },
      { name: 'Sam', role: 'adult', lines: [{ device: 'phone' }] },
      { name: 'Kim', role: 'child', caps: { dataMb: 2 * GB }, lines: [{ device: 'phone' }] },
    ],
  });
  const g = fam.groupId;
  const lines = fam.members.flatMap((m) => m.lines.map((l) => ({ member: m, line: l })));
  t.equal(lines.length, 4);
  const [alexPhone, alexWatch, samPhone, kimPhone] = lines.map((x) => x.line.id) as [string, string, string, string];

  // Four profiles issued (the owner issues Kim's with its own token).
  const issued: Record<string, { iccid: string; activationCode: string }> = {};
  for (const { member, line } of lines) {
    const token = member.name === 'Kim' ? fam.byName.Alex!.token : undefined;
    const r = await api.ok('POST', `/family/groups/${g}/members/${member.id}/lines/${line.id}/profile`, {}, 201, token);
    t.match(r.activationCode, /^LPA:1\$localhost:8443\$/i);
    issued[line.id] = { iccid: r.iccid, activationCode: r.activationCode };
  }
  t.equal(new Set(Object.values(issued).map((i) => i.iccid)).size, 4, 'four distinct profiles');

  const view = async () => {
    const v = await api.ok('GET', `/family/groups/${g}/view`);
    const states: Record<string, string> = {};
    for (const m of v.members) for (const l of m.lines) states[l.id] = l.profile?.state;
    return { states, counts: v.profileStates };
  };
  t.same((await view()).counts, { Released: 4 }, 'issued: four released orders');

  // Four devices, one virtual eUICC each, download their profile.
  const devices: Record<string, Awaited<ReturnType<typeof newDevice>>> = {};
  for (const id of [alexPhone, alexWatch, samPhone, kimPhone]) {
    devices[id] = await newDevice(w);
    const r = await devices[id]!.lpa.download(issued[id]!.activationCode);
    t.equal(r.iccid, issued[id]!.iccid);
    t.equal(r.notificationSent, true, 'install result sent');
  }
  t.equal(new Set(Object.values(devices).map((d) => d.card.eid)).size, 4, 'four eUICCs');
  t.same((await view()).counts, { Installed: 4 }, 'downloaded and installed: four profiles');

  // The watch enables its profile, then disables it; the phones enable theirs.
  const op = async (id: string, what: 'enableProfile' | 'disableProfile') => {
    await devices[id]!.lpa[what](issued[id]!.iccid);
    const sent = await devices[id]!.lpa.processNotifications();
    t.ok(sent.length >= 1 && sent.every((n) => n.sent), `${what} notification delivered`);
  };
  await op(alexWatch, 'enableProfile');
  let v = await view();
  t.equal(v.states[alexWatch], 'Enabled');
  t.same(v.counts, { Enabled: 1, Installed: 3 });
  await op(alexWatch, 'disableProfile');
  for (const id of [alexPhone, samPhone, kimPhone]) await op(id, 'enableProfile');
  v = await view();
  t.same(v.states, { [alexPhone]: 'Enabled', [alexWatch]: 'Disabled', [samPhone]: 'Enabled', [kimPhone]: 'Enabled' }, 'the group view shows each line\'s state');

  // Usage: Kim reaches the child cap (blocked), Sam the hotspot allowance, Alex the pool (throttled for all).
  const use = async (lid: string, kind: string, amount: number, hotspot = false) => {
    const r = await api.ok('POST', `/family/groups/${g}/lines/${lid}/usage`, { kind, amount, ...(hotspot ? { hotspot } : {}) });
    return `${r.decision}:${r.reason}`;
  };
  t.equal(await use(kimPhone, 'data', 1500), 'allowed:withinPlan');
  t.equal(await use(kimPhone, 'data', 600), 'blocked:memberCap', 'over 2 GB: the child is blocked');
  t.equal(await use(kimPhone, 'data', 548), 'allowed:withinPlan', 'exactly up to 2 GB');
  t.equal(await use(samPhone, 'data', 5 * GB, true), 'allowed:withinPlan');
  t.equal(await use(samPhone, 'data', 1, true), 'blocked:hotspotAllowance', '5 GB hotspot allowance used up');
  t.equal(await use(samPhone, 'data', 1), 'allowed:withinPlan', 'ordinary data still flows');
  t.equal(await use(alexPhone, 'data', 20 * GB - 2 * GB - 5 * GB - 1), 'allowed:withinPlan', 'the last MB of the pool');
  for (const id of [alexPhone, alexWatch, samPhone]) t.equal(await use(id, 'data', 10), 'throttled:poolExhausted', 'pool empty: throttled');
  t.equal(await use(kimPhone, 'data', 10), 'blocked:memberCap', 'the child stays blocked');
  t.equal(await use(alexPhone, 'voice', 30), 'allowed:withinPlan', 'voice has its own pool');

  const before = await api.ok('GET', `/family/groups/${g}/usage`);
  t.match(before.pool, { data: { limit: 20 * GB, used: 20 * GB, remaining: 0, throttledMb: 30, exhausted: true }, hotspot: { used: 5 * GB, remaining: 0 }, voice: { used: 30 } });
  const member = (s: any, name: string) => s.members.find((m: any) => m.name === name);
  t.match(member(before, 'Kim'), { data: { limit: 2 * GB, used: 2 * GB, remaining: 0 }, blocked: 2 });
  t.match(member(before, 'Sam'), { data: { used: 5 * GB + 1 }, hotspot: { used: 5 * GB }, throttledMb: 10, blocked: 1 });
  t.same(member(before, 'Alex').lines.map((l: any) => [l.lineId, l.usage.dataMb, l.usage.throttledMb]), [[alexPhone, 13 * GB - 1, 10], [alexWatch, 0, 10]]);

  // Rollover: a new cycle, counters from zero, the child may use data again.
  const r = await api.ok('POST', `/family/groups/${g}/rollover`);
  t.equal(r.rolledOver, true);
  const after = await api.ok('GET', `/family/groups/${g}/usage`);
  t.equal(after.cycle.start, before.cycle.end);
  t.match(after.pool, { data: { used: 0, remaining: 20 * GB, throttledMb: 0, exhausted: false }, hotspot: { used: 0, remaining: 5 * GB }, voice: { used: 0 } });
  for (const m of after.members) t.equal(m.data.used, 0, `${m.name}'s counters reset`);
  t.equal(await use(kimPhone, 'data', 100), 'allowed:withinPlan', 'the child is allowed again');
  t.equal(await use(samPhone, 'data', 100, true), 'allowed:withinPlan', 'hotspot again');

  // The operator's callback saw the group's events, in order, exactly as the log has them.
  const log = (await api.ok('GET', `/family/groups/${g}/events`)).events as Array<{ id: string; type: string; at: string; detail: any }>;
  const queued = await w.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'familyEvent'`);
  await until(async () => rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).length >= queued[0]!.n, 20_000);
  const seen = rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).map((c) => c.body);
  t.equal(seen.length, queued[0]!.n, 'every queued family event delivered once');
  t.same(seen.map((b) => Number(b.eventId)), [...seen.map((b) => Number(b.eventId))].sort((a, b) => a - b), 'delivered in event order');
  for (const b of seen) {
    const e = log.find((x) => x.id === b.eventId);
    t.same(b, { eventId: e?.id, groupId: g, type: e?.type, detail: e?.detail, at: e?.at }, `callback ${b.type} matches the log`);
  }
  const iccidLine = Object.fromEntries(Object.entries(issued).map(([lid, i]) => [i.iccid, lid]));
  const story = seen
    .filter((b) => /^(profile-|cap-reached|pool-exhausted|cycle-rolled-over)/.test(b.type))
    .map((b) => {
      if (b.type.startsWith('profile-')) return `${b.type} ${nameOf(iccidLine[b.detail.iccid])}`;
      if (b.type === 'cap-reached') return `${b.type} ${b.detail.scope}:${b.detail.kind}${b.detail.scope === 'member' ? `:${b.detail.memberName}` : ''}`;
      if (b.type === 'pool-exhausted') return `${b.type} ${b.detail.kind}`;
      return `${b.type} ${b.detail.from}->${b.detail.to}`;
    });
  function nameOf(lid: string | undefined) {
    return { [alexPhone]: 'alex-phone', [alexWatch]: 'alex-watch', [samPhone]: 'sam-phone', [kimPhone]: 'kim-phone' }[lid ?? ''] ?? `? ${lid}`;
  }
  const names = ['alex-phone', 'alex-watch', 'sam-phone', 'kim-phone'];
  t.same(story, [
    ...names.map((n) => `profile-issued ${n}`),
    ...names.flatMap((n) => [`profile-downloaded ${n}`, `profile-installed ${n}`]),
    'profile-enabled alex-watch',
    'profile-disabled alex-watch',
    'profile-enabled alex-phone',
    'profile-enabled sam-phone',
    'profile-enabled kim-phone',
    'cap-reached member:data:Kim',
    'cap-reached group:hotspot',
    'pool-exhausted data',
    `cycle-rolled-over ${before.cycle.start}->${after.cycle.start}`,
  ], 'the story, as the operator heard it');
  const download = seen.find((b) => b.type === 'profile-installed' && b.detail.iccid === issued[kimPhone]!.iccid);
  t.equal(download?.detail.eid, devices[kimPhone]!.card.eid, 'lifecycle events name the device');
  t.equal(download?.detail.lineId, kimPhone);
});
