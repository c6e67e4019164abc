/**
 * Family usage: decisions against member caps, the hotspot allowance and the pool; throttle vs block;
 * summaries; concurrent events on a nearly empty pool; the clock and billing-cycle rollover.
 */
import t from 'tap';
import { cycleOf, cycleStart, isoDate, nextCycleStart } from '../../src/family/clock.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { startWorld } from '../helpers/world.js';

t.test('billing cycles start on the billing day at 00:00 UTC', async (t) => {
  const d = (s: string) => new Date(s);
  t.equal(isoDate(cycleStart(d('2026-03-10T12:00:00Z'), 15)), '2026-02-15');
  t.equal(isoDate(cycleStart(d('2026-03-15T00:00:00Z'), 15)), '2026-03-15');
  t.equal(isoDate(cycleStart(d('2026-01-05T00:00:00Z'), 15)), '2025-12-15', 'across a year boundary');
  t.equal(isoDate(nextCycleStart(d('2025-12-28T00:00:00Z'))), '2026-01-28');
  t.same(cycleOf(d('2026-02-27T12:00:00Z'), 1), { start: '2026-02-01', end: '2026-03-01', daysLeft: 2 });
});

t.test('decisions: member caps (block / throttle), hotspot, pool; counters and events', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  const fam = await createFamily(api, {
    plan: { dataMb: 1000, voiceMin: 100, sms: 3, hotspotMb: 300 },
    members: [
      { name: 'Olga', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'Adam', role: 'adult', caps: { dataMb: 100, atCap: 'throttle' }, lines: [{ device: 'phone' }] },
      { name: 'Kid', role: 'child', caps: { dataMb: 200, hotspotMb: 40, sms: 1 }, lines: [{ device: 'phone' }] },
    ],
  });
  const g = fam.groupId;
  const line = (name: string) => fam.byName[name]!.lines[0]!.id;
  const use = (name: string, body: Record<string, unknown>) => api.ok('POST', `/family/groups/${g}/lines/${line(name)}/usage`, body);
  const decide = async (name: string, body: Record<string, unknown>) => {
    const r = await use(name, body);
    return `${r.decision}:${r.reason}`;
  };

  let r = await use('Kid', { kind: 'data', amount: 150 });
  t.match(r, { decision: 'allowed', reason: 'withinPlan', remaining: { pool: 850, member: 50, hotspot: 300, memberHotspot: 40 } });
  t.equal(r.memberId, fam.byName.Kid!.id);
  t.equal(await decide('Kid', { kind: 'data', amount: 60 }), 'blocked:memberCap', "over the child's cap: blocked, whole event refused");
  r = await use('Kid', { kind: 'data', amount: 30, hotspot: true });
  t.match(r, { decision: 'allowed', remaining: { member: 20, memberHotspot: 10, hotspot: 270, pool: 820 } });
  t.equal(await decide('Kid', { kind: 'data', amount: 11, hotspot: true }), 'blocked:memberHotspotCap');
  t.equal(await decide('Kid', { kind: 'data', amount: 20 }), 'allowed:withinPlan', 'exactly up to the cap');
  t.equal(await decide('Kid', { kind: 'data', amount: 1 }), 'blocked:memberCap');

  t.equal(await decide('Adam', { kind: 'data', amount: 100 }), 'allowed:withinPlan');
  t.equal(await decide('Adam', { kind: 'data', amount: 5 }), 'throttled:memberCap', "a member with atCap 'throttle' is throttled, not blocked");

  t.equal(await decide('Olga', { kind: 'data', amount: 250, hotspot: true }), 'allowed:withinPlan');
  t.equal(await decide('Olga', { kind: 'data', amount: 21, hotspot: true }), 'blocked:hotspotAllowance', 'group hotspot allowance: 30 + 250 used of 300');
  t.equal(await decide('Olga', { kind: 'data', amount: 20, hotspot: true }), 'allowed:withinPlan');
  t.equal(await decide('Olga', { kind: 'data', amount: 300 }), 'allowed:withinPlan');
  // Pool: 200 (Kid) + 100 (Adam) + 270 (Olga hotspot) + 300 = 870 of 1000.
  t.equal(await decide('Olga', { kind: 'data', amount: 131 }), 'throttled:poolExhausted');
  t.equal(await decide('Olga', { kind: 'data', amount: 130 }), 'allowed:withinPlan');
  t.equal(await decide('Olga', { kind: 'data', amount: 1 }), 'throttled:poolExhausted', 'empty pool: throttled');
  t.equal(await decide('Kid', { kind: 'data', amount: 1 }), 'blocked:memberCap', 'the child stays blocked (its cap comes first)');

  t.equal(await decide('Olga', { kind: 'voice', amount: 90 }), 'allowed:withinPlan');
  t.equal(await decide('Adam', { kind: 'voice', amount: 11 }), 'blocked:poolExhausted', 'voice over the pool is blocked, not throttled');
  t.equal(await decide('Kid', { kind: 'sms', amount: 1 }), 'allowed:withinPlan');
  t.equal(await decide('Kid', { kind: 'sms', amount: 1 }), 'blocked:memberCap');
  t.equal(await decide('Olga', { kind: 'sms', amount: 2 }), 'allowed:withinPlan');
  t.equal(await decide('Olga', { kind: 'sms', amount: 1 }), 'blocked:poolExhausted');

  // Bad requests change nothing.
  const bad = async (body: Record<string, unknown>, lid = line('Olga')) => (await api.call('POST', `/family/groups/${g}/lines/${lid}/usage`, body)).status;
  t.equal(await bad({ kind: 'voice', amount: 1, hotspot: true }), 400, 'hotspot is for data');
  t.equal(await bad({ kind: 'data', amount: 0 }), 400);
  t.equal(await bad({ kind: 'fax', amount: 1 }), 400);
  t.equal(await bad({ kind: 'data', amount: 1 }, 'fl_nope'), 404);
  const kidToken = fam.byName.Kid!.token;
  t.equal((await api.call('POST', `/family/groups/${g}/lines/${line('Kid')}/usage`, { kind: 'data', amount: 1 }, kidToken)).status, 403, 'a member cannot report usage');
  t.equal((await api.call('GET', `/family/groups/${g}/usage`, undefined, kidToken)).status, 403, 'a child cannot read the whole group');

  const s = await api.ok('GET', `/family/groups/${g}/usage`);
  t.match(s.pool, {
    data: { limit: 1000, used: 1000, remaining: 0, throttledMb: 131 + 1 + 5 /* Adam's throttled 5 too */, exhausted: true },
    hotspot: { limit: 300, used: 300, remaining: 0 },
    voice: { limit: 100, used: 90, remaining: 10, exhausted: false },
    sms: { limit: 3, used: 3, remaining: 0, exhausted: true },
  });
  const m = (name: string) => s.members.find((x: any) => x.name === name);
  t.match(m('Kid'), { data: { limit: 200, used: 200, remaining: 0 }, hotspot: { limit: 40, used: 30 }, sms: { limit: 1, used: 1 }, throttledMb: 0, blocked: 5 });
  t.match(m('Adam'), { atCap: 'throttle', data: { limit: 100, used: 100 }, throttledMb: 5, voice: { used: 0 }, blocked: 1 });
  t.match(m('Olga'), { data: { limit: null, used: 700, remaining: null }, hotspot: { used: 270 }, voice: { used: 90 }, sms: { used: 2 } });
  t.same(m('Olga').lines.map((l: any) => [l.lineId, l.usage.dataMb]), [[line('Olga'), 700]]);
  t.equal(s.pool.blocked, 8, 'every blocked event counted once for the pool');

  const own = await api.ok('GET', `/family/groups/${g}/members/${fam.byName.Kid!.id}/usage`, undefined, 200, kidToken);
  t.same(own.members.map((x: any) => x.name), ['Kid'], 'a member reads its own usage');
  t.equal((await api.call('GET', `/family/groups/${g}/members/${fam.byName.Olga!.id}/usage`, undefined, kidToken)).status, 403);

  const log = await api.ok('GET', `/family/groups/${g}/usage/events?member=${fam.byName.Kid!.id}`);
  t.same(log.events.map((e: any) => `${e.kind}:${e.amount}:${e.decision}`),
    ['data:150:allowed', 'data:60:blocked', 'data:30:allowed', 'data:11:blocked', 'data:20:allowed', 'data:1:blocked', 'data:1:blocked', 'sms:1:allowed', 'sms:1:blocked']);

  // Limit events: each logged once per cycle, in the order they happened.
  const ev = await api.ok('GET', `/family/groups/${g}/events?type=cap-reached,pool-exhausted`);
  t.same(ev.events.map((e: any) => `${e.type}:${e.detail.scope ?? 'pool'}:${e.detail.kind}${e.detail.memberName ? `:${e.detail.memberName}` : ''}`), [
    'cap-reached:member:data:Kid', // refused 60 MB
    'cap-reached:member:hotspot:Kid', // refused 11 MB hotspot
    'cap-reached:member:data:Adam', // reached exactly
    'cap-reached:group:hotspot:Olga', // refused 21 MB hotspot
    'pool-exhausted:pool:data:Olga',
    'pool-exhausted:pool:voice:Adam',
    'cap-reached:member:sms:Kid',
    'pool-exhausted:pool:sms:Olga',
  ]);
});

t.test('concurrent events on a nearly empty pool never overspend it', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  const fam = await createFamily(api, {
    plan: { dataMb: 1000 },
    members: [
      { name: 'A', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'B', role: 'adult', lines: [{ device: 'phone' }, { device: 'watch' }] },
    ],
  });
  const g = fam.groupId;
  const lines = fam.members.flatMap((m) => m.lines.map((l) => l.id));
  t.equal((await api.ok('POST', `/family/groups/${g}/lines/${lines[0]}/usage`, { kind: 'data', amount: 750 })).decision, 'allowed');
  const N = 24;
  const results = await Promise.all(Array.from({ length: N }, (_, i) =>
    api.ok('POST', `/family/groups/${g}/lines/${lines[i % lines.length]}/usage`, { kind: 'data', amount: 100 })));
  const allowed = results.filter((r) => r.decision === 'allowed').length;
  t.equal(allowed, 2, 'exactly the two events that fit are allowed');
  t.equal(results.filter((r) => r.decision === 'throttled' && r.reason === 'poolExhausted').length, N - 2);
  const s = await api.ok('GET', `/family/groups/${g}/usage`);
  t.equal(s.pool.data.used, 950);
  t.ok(s.pool.data.used <= 1000 + 100, 'overspent by at most one event');
  t.equal(s.pool.data.throttledMb, (N - 2) * 100);
  const lineSum = s.members.flatMap((m: any) => m.lines).reduce((a: number, l: any) => a + l.usage.dataMb, 0);
  t.equal(lineSum, 950, 'line counters add up to the pool');
  const [{ n }] = await w.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM usage_events WHERE group_id = $1`, [g]);
  t.equal(n, N + 1, 'every event logged');
  const doc = await w.app.inject({ method: 'GET', url: '/openapi.json' });
  t.equal(doc.statusCode, 200);
  t.ok(doc.json().paths['/family/groups/{gid}/lines/{lid}/usage']?.post, 'usage route in the OpenAPI document');
});

t.test('the clock and billing-cycle rollover', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  const fam = await createFamily(api, {
    plan: { dataMb: 100, voiceMin: 10, billingCycleDay: 1 },
    members: [{ name: 'Solo', role: 'owner', caps: { dataMb: 60 }, lines: [{ device: 'phone' }] }],
  });
  const g = fam.groupId;
  const lid = fam.members[0]!.lines[0]!.id;
  const use = (amount: number) => api.ok('POST', `/family/groups/${g}/lines/${lid}/usage`, { kind: 'data', amount });
  t.equal((await use(60)).decision, 'allowed');
  t.equal((await use(1)).decision, 'blocked');
  const c0 = await api.ok('GET', `/family/groups/${g}/clock`);
  t.equal(c0.offsetSeconds, 0);
  t.equal(c0.cycle.start.slice(8), '01');

  t.equal((await api.call('POST', `/family/groups/${g}/clock/advance`, { days: 1 }, fam.members[0]!.token)).status, 403, 'only the operator moves the clock');
  const before = await api.ok('GET', `/family/groups/${g}/usage`);
  const r = await api.ok('POST', `/family/groups/${g}/rollover`);
  t.equal(r.rolledOver, true);
  t.equal(r.from, before.cycle.start);
  t.equal(r.cycle.start, before.cycle.end, 'the next cycle starts where the last ended');
  t.ok(r.offsetSeconds > 0);
  const after = await api.ok('GET', `/family/groups/${g}/usage`);
  t.equal(after.cycle.start, before.cycle.end);
  t.match(after.pool.data, { used: 0, remaining: 100 }, 'counters reset');
  t.match(after.members[0].data, { used: 0, remaining: 60 });
  t.equal((await use(60)).decision, 'allowed', 'the cap applies afresh');
  const old = await api.ok('GET', `/family/groups/${g}/usage?cycle=${before.cycle.start}`);
  t.match(old, { cycle: { start: before.cycle.start, current: false }, pool: { data: { used: 60 } } }, 'the past cycle is still readable');

  // Advancing within the cycle does not roll over; past its end it does, once, even across several cycles.
  const a1 = await api.ok('POST', `/family/groups/${g}/clock/advance`, { days: 1 });
  t.equal(a1.rolledOver, false);
  t.equal(a1.offsetSeconds, r.offsetSeconds + 86_400);
  const a2 = await api.ok('POST', `/family/groups/${g}/clock/advance`, { days: 70 });
  t.equal(a2.rolledOver, true);
  t.equal(a2.from, after.cycle.start);
  t.ok(a2.cycle.start > nextIso(after.cycle.start), 'skipped a whole cycle');
  const ev = await api.ok('GET', `/family/groups/${g}/events?type=cycle-rolled-over`);
  t.same(ev.events.map((e: any) => [e.detail.from, e.detail.to, e.detail.previousUsage.dataMb]), [
    [before.cycle.start, after.cycle.start, 60],
    [after.cycle.start, a2.cycle.start, 60],
  ]);
  t.equal(ev.events[1].at.slice(0, 10) >= a2.cycle.start, true, 'events carry the group clock time');
  t.equal((await api.call('POST', `/family/groups/${g}/clock/advance`, { days: 0 })).status, 400);
});

function nextIso(d: string): string {
  return isoDate(nextCycleStart(new Date(`${d}T00:00:00Z`)));
}
