/**
 * Family controls (docs/family.md): time windows in the group's time zone (midnight-crossing ones
 * too) with emergency and trusted numbers exempt, configurable emergency numbers, the rule each
 * decision names, the controls API's permissions and its refusals of bad input; roaming against the
 * pooled and the member's allowance (never the home pool), a roaming pass, block and throttle.
 */
import t from 'tap';
import { activeWindow, checkWindows, localTime, type TimeWindow } from '../../src/family/controls.js';
import { addDays, clockTo, instantAt, nextWeekday } from '../helpers/family-clock.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { startWorld } from '../helpers/world.js';

t.test('time windows: local time, days, midnight crossing, the end excluded', async (t) => {
  const school: TimeWindow = { name: 'school', blocks: ['data', 'voice'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '15:00' };
  const night: TimeWindow = { name: 'night', blocks: ['data'], days: ['sun', 'mon', 'tue', 'wed', 'thu'], from: '21:00', to: '07:00' };
  const ws = [school, night];
  const at = (day: number, hhmm: string, kind: 'data' | 'voice' | 'sms' = 'data') => activeWindow(ws, kind, day, Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3)))?.name ?? null;
  t.equal(at(0, '08:00'), 'school', 'Monday 08:00: the start is in');
  t.equal(at(0, '14:59'), 'school');
  t.equal(at(0, '15:00'), null, 'the end is out');
  t.equal(at(0, '06:59'), 'night', "Monday 06:59: Sunday night's window");
  t.equal(at(0, '07:00'), null, 'its end is out');
  t.equal(at(0, '10:00', 'sms'), null, 'school does not block SMS');
  t.equal(at(5, '10:00'), null, 'Saturday: no school');
  t.equal(at(4, '23:00'), null, 'Friday night: not a window day');
  t.equal(at(5, '03:00'), null, "Saturday 03:00 would be Friday's night");
  t.equal(at(6, '22:00'), 'night', 'Sunday 22:00');
  t.equal(at(3, '06:59'), 'night', "Thursday 06:59: Wednesday's night");
  t.equal(at(4, '06:59'), 'night', "Friday 06:59: Thursday's night");
  t.equal(activeWindow([{ name: 'all', blocks: ['sms'], days: ['sat'], from: '00:00', to: '24:00' }], 'sms', 5, 1439)?.name, 'all', '00:00-24:00 is the whole day');

  t.throws(() => checkWindows([school, { ...school }]), /two time windows are named/);
  t.throws(() => checkWindows([{ ...school, to: '08:00' }]), /same time/);
  t.throws(() => checkWindows([{ ...school, from: '24:00' }]), /from must be/);

  const winter = new Date('2026-12-07T14:30:00Z'); // a Monday
  t.same(localTime(winter, 'America/New_York'), { weekday: 0, minute: 9 * 60 + 30, text: 'mon 09:30' });
  t.same(localTime(winter, 'Asia/Tokyo'), { weekday: 0, minute: 23 * 60 + 30, text: 'mon 23:30' });
  t.same(localTime(winter, 'Pacific/Kiritimati'), { weekday: 1, minute: 4 * 60 + 30, text: 'tue 04:30' }, 'UTC+14: already Tuesday');
  t.equal(localTime(new Date('2026-07-06T13:30:00Z'), 'America/New_York').text, 'mon 09:30', 'summer time');
});

t.test('windows in the group time zone, with emergency and trusted numbers exempt', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  const fam = await createFamily(api, {
    plan: { dataMb: 10_000, voiceMin: 1000, sms: 1000 },
    members: [
      { name: 'Olga', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'Adam', role: 'adult', lines: [{ device: 'phone' }] },
      { name: 'Kid', role: 'child', caps: { sms: 0 }, lines: [{ device: 'phone' }, { device: 'watch' }] },
    ],
  });
  const g = fam.groupId;
  const kid = fam.byName.Kid!;
  const [kidPhone, kidWatch] = kid.lines.map((l) => l.id) as [string, string];
  const owner = fam.byName.Olga!.token;

  // Settings and their permissions.
  t.equal((await api.call('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'Mars/Olympus' })).status, 400, 'an unknown zone');
  t.equal((await api.call('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'America/New_York' }, kid.token)).status, 403, 'a child cannot set the zone');
  let c = await api.ok('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'America/New_York' }, 200, owner);
  t.match(c, { timeZone: 'America/New_York', emergencyNumbers: ['112', '911', '999', '000', '110', '119'] }, 'the owner sets it; the default emergency numbers');

  const controls = {
    timeWindows: [
      { name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '15:00' },
      { name: 'night', blocks: ['data'], days: ['sun', 'mon', 'tue', 'wed', 'thu'], from: '21:00', to: '07:00' },
    ],
    trustedNumbers: ['+1 (555) 010-0200'],
  };
  const mc = `/family/groups/${g}/members/${kid.id}/controls`;
  t.equal((await api.call('PUT', mc, controls, kid.token)).status, 403, 'a child cannot change its controls');
  t.equal((await api.call('PUT', `/family/groups/${g}/members/${fam.byName.Adam!.id}/controls`, controls, owner)).status, 403, "the owner does not set an adult's");
  const set = await api.ok('PUT', mc, controls, 200, owner);
  t.same(set.controls.trustedNumbers, ['15550100200'], 'numbers kept as digits');
  t.same(set.controls.timeWindows.map((x: any) => x.name), ['school', 'night']);
  t.same((await api.ok('GET', mc, undefined, 200, kid.token)).controls, set.controls, 'the child reads its controls');
  t.equal((await api.call('GET', `/family/groups/${g}/members/${fam.byName.Adam!.id}/controls`, undefined, kid.token)).status, 403, "not another member's");

  for (const [body, why] of [
    [{}, 'nothing to set'],
    [{ timeWindows: [{ ...controls.timeWindows[0], from: '25:00' }] }, 'a time out of range'],
    [{ timeWindows: [controls.timeWindows[0], controls.timeWindows[0]] }, 'two windows of one name'],
    [{ timeWindows: [{ ...controls.timeWindows[0], to: '08:00' }] }, 'from = to'],
    [{ timeWindows: [{ ...controls.timeWindows[0], days: ['someday'] }] }, 'no such day'],
    [{ timeWindows: [{ ...controls.timeWindows[0], blocks: [] }] }, 'blocks nothing'],
    [{ trustedNumbers: ['call me'] }, 'not a number'],
    [{ spendLimit: -1 }, 'a negative limit'],
    [{ colour: 'red' }, 'an unknown field'],
  ] as const) {
    const r = await api.call('PUT', mc, body);
    t.equal(r.status, 400, `400: ${why}`);
    t.equal(r.body.error, 'invalid', `${why}: the ApiError body`);
  }
  t.equal((await api.call('PUT', `/family/groups/${g}/members/fm_nope/controls`, controls)).status, 404);
  t.equal((await api.call('PUT', `/family/groups/fg_nope/members/${kid.id}/controls`, controls)).status, 404);

  const use = async (lid: string, body: Record<string, unknown>) => {
    const r = await api.ok('POST', `/family/groups/${g}/lines/${lid}/usage`, body);
    return r;
  };
  const decide = async (lid: string, body: Record<string, unknown>) => {
    const r = await use(lid, body);
    return `${r.decision}:${r.rule}`;
  };
  for (const [body, why] of [
    [{ kind: 'data', amount: 1, otherParty: '112' }, 'data has no other party'],
    [{ kind: 'voice', amount: 1, otherParty: 'mum' }, 'not a number'],
    [{ kind: 'voice', amount: 1, visitedCountry: 'fr' }, 'a country code in capitals'],
    [{ kind: 'voice', amount: 1, visitedCountry: 'FRA' }, 'alpha-2'],
  ] as const) {
    t.equal((await api.call('POST', `/family/groups/${g}/lines/${kidPhone}/usage`, body)).status, 400, `usage 400: ${why}`);
  }

  // Monday 09:30 in New York: school.
  const now = new Date(Date.parse((await api.ok('GET', `/family/groups/${g}/clock`)).now));
  const monday = nextWeekday(now, 1, 3);
  await clockTo(api, g, instantAt('America/New_York', monday, '09:30'));
  let r = await use(kidWatch, { kind: 'data', amount: 10 });
  t.match(r, { decision: 'blocked', reason: 'timeWindow', rule: 'time-window:school', localTime: { zone: 'America/New_York' } }, "the watch's data is blocked at school");
  t.match(r.localTime.at, /^mon 09:3/);
  t.equal(await decide(kidWatch, { kind: 'voice', amount: 2, otherParty: '911' }), 'allowed:emergency-number', 'a call to 911 goes through');
  t.equal(await decide(kidPhone, { kind: 'sms', amount: 1, otherParty: '+112' }), 'allowed:emergency-number', 'so does a text to 112, over the SMS cap of 0');
  t.equal(await decide(kidWatch, { kind: 'voice', amount: 3, otherParty: '+15550100200' }), 'allowed:trusted-number', 'a trusted number goes through');
  t.equal(await decide(kidPhone, { kind: 'voice', amount: 3, otherParty: '15550100999' }), 'blocked:time-window:school', 'any other number is blocked');
  t.equal(await decide(kidPhone, { kind: 'voice', amount: 3 }), 'blocked:time-window:school', 'a call with no number given is blocked');
  t.equal(await decide(kidPhone, { kind: 'sms', amount: 1, otherParty: '15550100200' }), 'blocked:member-cap', 'a trusted number passes the window, not the SMS cap');
  t.equal(await decide(fam.byName.Adam!.lines[0]!.id, { kind: 'data', amount: 10 }), 'allowed:pool', 'an adult without windows: the pool');
  const kidUsage = (await api.ok('GET', `/family/groups/${g}/members/${kid.id}/usage`, undefined, 200, owner)).members[0];
  t.equal(kidUsage.voice.used, 3, 'emergency calls are free, refused ones count nothing: only the trusted call');
  t.equal(kidUsage.sms.used, 0);
  t.equal(kidUsage.blocked, 4, 'blocked: the data, two calls and the text over the cap');

  // The same instant in Tokyo is Monday about 23:30: no school, but the night window.
  c = await api.ok('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'Asia/Tokyo' });
  t.match(c.localTime, /^mon 2[23]:/);
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'blocked:time-window:night', 'Tokyo: the night window');
  t.equal(await decide(kidWatch, { kind: 'voice', amount: 1, otherParty: '15550100999' }), 'allowed:pool', 'night blocks data only');

  // Midnight crossing: Tuesday 03:00 is Monday's night; Saturday 03:00 is Friday's (no window); Monday 02:00 is Sunday's.
  await clockTo(api, g, instantAt('Asia/Tokyo', addDays(monday, 1), '03:00'));
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'blocked:time-window:night', 'Tuesday 03:00');
  await clockTo(api, g, instantAt('Asia/Tokyo', addDays(monday, 1), '07:30'));
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'allowed:pool', 'Tuesday 07:30: the night is over, school not begun');
  await clockTo(api, g, instantAt('Asia/Tokyo', addDays(monday, 5), '03:00'));
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'allowed:pool', 'Saturday 03:00: Friday has no night window');
  await clockTo(api, g, instantAt('Asia/Tokyo', addDays(monday, 7), '02:00'));
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'blocked:time-window:night', "Monday 02:00: Sunday's night");

  // Emergency numbers per group.
  await clockTo(api, g, instantAt('Asia/Tokyo', addDays(monday, 7), '10:00'));
  t.equal((await api.call('PUT', `/family/groups/${g}/emergency-numbers`, { numbers: ['110', '119'] }, owner)).status, 403, 'emergency numbers are the operator\'s');
  t.equal((await api.call('PUT', `/family/groups/${g}/emergency-numbers`, { numbers: ['1x'] })).status, 400);
  c = await api.ok('PUT', `/family/groups/${g}/emergency-numbers`, { numbers: ['110', '119', '+81 3 1234'] });
  t.same(c.emergencyNumbers, ['110', '119', '8131234']);
  t.equal(await decide(kidPhone, { kind: 'voice', amount: 1, otherParty: '911' }), 'blocked:time-window:school', '911 is not an emergency number here any more');
  t.equal(await decide(kidPhone, { kind: 'voice', amount: 1, otherParty: '110' }), 'allowed:emergency-number');
  c = await api.ok('PUT', `/family/groups/${g}/emergency-numbers`, { numbers: null });
  t.same(c.emergencyNumbers, ['112', '911', '999', '000', '110', '119'], 'null: the default set again');

  // The owner lifts the windows; the rule is then the plan's.
  await api.ok('PUT', mc, { timeWindows: [] }, 200, owner);
  t.equal(await decide(kidWatch, { kind: 'data', amount: 10 }), 'allowed:pool');

  // The log keeps every decision with its rule and other party; the events record who changed what.
  const log = await api.ok('GET', `/family/groups/${g}/usage/events?member=${kid.id}`);
  const first = log.events.slice(0, 6).map((e: any) => `${e.kind}:${e.decision}:${e.rule}:${e.otherParty ?? '-'}`);
  t.same(first, [
    'data:blocked:time-window:school:-',
    'voice:allowed:emergency-number:911',
    'sms:allowed:emergency-number:112',
    'voice:allowed:trusted-number:15550100200',
    'voice:blocked:time-window:school:15550100999',
    'voice:blocked:time-window:school:-',
  ]);
  const ev = await api.ok('GET', `/family/groups/${g}/events?type=time-zone-set,controls-set,emergency-numbers-set`);
  t.same(ev.events.map((e: any) => `${e.type}:${e.detail.by.split(':')[0]}`), [
    'time-zone-set:member', 'controls-set:member', 'time-zone-set:operator', 'emergency-numbers-set:operator', 'emergency-numbers-set:operator', 'controls-set:member',
  ]);
  t.same(ev.events[1].detail.changed, ['timeWindows', 'trustedNumbers']);
  const all = await api.ok('GET', `/family/groups/${g}/controls`, undefined, 200, owner);
  t.same(all.members.map((m: any) => m.name), ['Olga', 'Adam', 'Kid']);
  t.equal((await api.call('GET', `/family/groups/${g}/controls`, undefined, kid.token)).status, 403, 'a child does not read the whole group');
});

t.test('roaming: the allowance (pooled, per member) never draws from home; a pass; block and throttle', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  // A cycle that does not end during the test (the pass's validity moves the clock a day).
  const fam = await createFamily(api, {
    plan: { dataMb: 1000, voiceMin: 100, sms: 100, billingCycleDay: Math.min(new Date().getUTCDate(), 28) },
    members: [
      { name: 'Olga', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'Adam', role: 'adult', lines: [{ device: 'phone' }] },
      { name: 'Kid', role: 'child', lines: [{ device: 'phone' }] },
    ],
  });
  const g = fam.groupId;
  const line = (n: string) => fam.byName[n]!.lines[0]!.id;
  const decide = async (n: string, body: Record<string, unknown>) => {
    const r = await api.ok('POST', `/family/groups/${g}/lines/${line(n)}/usage`, body);
    return `${r.decision}:${r.rule}`;
  };

  t.equal(await decide('Adam', { kind: 'data', amount: 10, visitedCountry: 'FR' }), 'blocked:roaming-allowance', 'no roaming allowance yet: blocked abroad');
  t.equal((await api.call('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'gb' })).status, 400);
  t.equal((await api.call('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'GB', dataMb: 100 }, fam.byName.Olga!.token)).status, 403, "the roaming plan is the operator's");
  await api.ok('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'GB', dataMb: 100, voiceMin: 10, sms: 5, atAllowance: 'block' });
  await api.ok('PUT', `/family/groups/${g}/members/${fam.byName.Kid!.id}/controls`, { roaming: { dataMb: 60 } });
  await api.ok('PUT', `/family/groups/${g}/passes`, { currency: 'GBP', passes: [{ id: 'roam-day', name: 'Day pass', kind: 'roaming', dataMb: 200, voiceMin: 20, validityHours: 24, price: 500 }] });

  let r = await api.ok('POST', `/family/groups/${g}/lines/${line('Kid')}/usage`, { kind: 'data', amount: 50, visitedCountry: 'FR' });
  t.match(r, { decision: 'allowed', reason: 'roamingAllowance', rule: 'roaming-allowance', roaming: true, visitedCountry: 'FR', remaining: { pool: 1000, roaming: { pool: 50, member: 10 } } }, 'abroad: the roaming allowance, the home pool untouched');
  t.equal(await decide('Kid', { kind: 'data', amount: 20, visitedCountry: 'FR' }), 'blocked:roaming-member-allowance', "the child's own roaming allowance");
  t.equal(await decide('Kid', { kind: 'data', amount: 20, visitedCountry: 'GB' }), 'allowed:pool', 'the home country is home');
  t.equal(await decide('Adam', { kind: 'data', amount: 50, visitedCountry: 'US' }), 'allowed:roaming-allowance');
  t.equal(await decide('Adam', { kind: 'data', amount: 1, visitedCountry: 'US' }), 'blocked:roaming-allowance', 'the pooled roaming allowance is used up');
  t.equal(await decide('Adam', { kind: 'voice', amount: 10, visitedCountry: 'US' }), 'allowed:roaming-allowance', 'voice has its own roaming allowance');
  t.equal(await decide('Adam', { kind: 'data', amount: 100 }), 'allowed:pool', 'at home the pool is still there');

  // A pass: bought by the operator for Adam; used abroad first, until used up or expired.
  const bought = await api.ok('POST', `/family/groups/${g}/members/${fam.byName.Adam!.id}/purchases`, { pass: 'roam-day' }, 201);
  t.match(bought, { purchase: { status: 'active', state: 'active', kind: 'roaming', currency: 'GBP', price: 500 }, overLimit: false });
  r = await api.ok('POST', `/family/groups/${g}/lines/${line('Adam')}/usage`, { kind: 'data', amount: 150, visitedCountry: 'US' });
  t.match(r, { decision: 'allowed', rule: 'roaming-pass', purchaseId: bought.purchase.id, remaining: { pass: 50 } }, 'the pass carries it');
  t.equal(await decide('Adam', { kind: 'data', amount: 60, visitedCountry: 'US' }), 'blocked:roaming-allowance', 'too little left on the pass: the allowance decides');
  t.equal(await decide('Adam', { kind: 'data', amount: 50, visitedCountry: 'US' }), 'allowed:roaming-pass');
  t.equal(await decide('Kid', { kind: 'data', amount: 5, visitedCountry: 'FR' }), 'blocked:roaming-allowance', "Adam's pass is Adam's: the child meets the used-up pool");
  const pass2 = await api.ok('POST', `/family/groups/${g}/members/${fam.byName.Adam!.id}/purchases`, { pass: 'roam-day' }, 201);
  await api.ok('POST', `/family/groups/${g}/clock/advance`, { seconds: 24 * 3600 + 60 });
  t.equal(await decide('Adam', { kind: 'voice', amount: 1, visitedCountry: 'US' }), 'blocked:roaming-allowance', 'an expired pass carries nothing');
  const mine = await api.ok('GET', `/family/groups/${g}/members/${fam.byName.Adam!.id}/purchases`);
  t.same(mine.purchases.map((p: any) => `${p.id === pass2.purchase.id ? 'second' : 'first'}:${p.state}:${p.used.dataMb}`), ['first:expired:200', 'second:expired:0']);

  // Throttle at the allowance: data is throttled, voice and SMS blocked.
  await api.ok('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'GB', dataMb: 100, voiceMin: 10, sms: 5, atAllowance: 'throttle' });
  t.equal(await decide('Olga', { kind: 'data', amount: 30, visitedCountry: 'ES' }), 'throttled:roaming-allowance', 'throttled');
  t.equal(await decide('Olga', { kind: 'voice', amount: 1, visitedCountry: 'ES' }), 'blocked:roaming-allowance', 'voice is blocked, never throttled');

  const s = await api.ok('GET', `/family/groups/${g}/usage`);
  t.match(s.pool.roaming, { data: { limit: 100, used: 100, remaining: 0 }, voice: { limit: 10, used: 10 }, throttledMb: 30, homeCountry: 'GB', atAllowance: 'throttle' });
  t.match(s.pool.data, { used: 120 }, 'the home pool has only the home usage');
  const kidS = s.members.find((m: any) => m.name === 'Kid');
  t.match(kidS.roaming, { data: { limit: 60, used: 50, remaining: 10 } });
  const ev = await api.ok('GET', `/family/groups/${g}/events?type=roaming-allowance-reached`);
  t.same(ev.events.map((e: any) => `${e.detail.scope}:${e.detail.kind}:${e.detail.memberName}`), [
    'group:data:Adam', // refused before any allowance was set
    'member:data:Kid',
    'group:voice:Adam',
  ], 'each allowance reached is logged once in the cycle');
  const events = await api.ok('GET', `/family/groups/${g}/usage/events?member=${fam.byName.Adam!.id}`);
  t.ok(events.events.every((e: any) => e.roaming === (e.visitedCountry !== null && e.visitedCountry !== 'GB')), 'each event says whether it roamed');
});
