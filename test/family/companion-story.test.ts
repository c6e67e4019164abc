/**
 * The story of issue 12, end to end on one server (both engines): a child's watch is activated from
 * the child's phone through the TS.43 entitlement endpoint on the child's number and installed by
 * a second virtual eUICC; in school hours (the group's time zone) the watch's data and calls are
 * blocked while an emergency number and a trusted number get through; an adult abroad uses the
 * roaming allowance until blocked, buys a pass and goes on, the home pool untouched; the child's
 * pass over its spend limit waits until the owner approves it; and the operator's callback gets
 * the group's events in the order they happened.
 */
import t from 'tap';
import { parseAnswer, XML_TYPE } from '../../src/entitlement/ts43.js';
import { FAMILY_EVENT_PATH } from '../../src/family/events.js';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { clockTo, instantAt, nextWeekday } from '../helpers/family-clock.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice, receiver, until } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

t.test("a child's watch, school hours, a trip abroad and a purchase approved", async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t);
  const api = await familyOperator(w, { callbackUrl: rx.url, stock: 4 });
  const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20, baseDelayMs: 100 });
  t.teardown(() => outbox.stop());

  const fam = await createFamily(api, {
    plan: { dataMb: 10_000, voiceMin: 500, sms: 100, msisdns: ['447700900001', '447700900002', '447700900003'] },
    members: [{ name: 'Olga', role: 'owner', lines: [] }, { name: 'Adam', role: 'adult', lines: [] }, { name: 'Kim', role: 'child', lines: [] }],
  });
  const g = fam.groupId;
  const [olga, adam, kim] = [fam.byName.Olga!, fam.byName.Adam!, fam.byName.Kim!];
  const phone = async (m: { id: string }, msisdn: string) =>
    (await api.ok('POST', `/family/groups/${g}/members/${m.id}/lines`, { device: 'phone', numberMode: 'shared', msisdn }, 201)).id as string;
  await phone(olga, '447700900001');
  const adamPhone = await phone(adam, '447700900002');
  await phone(kim, '447700900003');

  // The operator's settings and the owner's controls for the child.
  await api.ok('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'Europe/London' });
  await api.ok('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'GB', dataMb: 100, voiceMin: 30, sms: 10, atAllowance: 'block' });
  await api.ok('PUT', `/family/groups/${g}/passes`, {
    currency: 'GBP',
    passes: [
      { id: 'roam-day', name: 'Roaming day', kind: 'roaming', dataMb: 200, validityHours: 24, price: 500 },
      { id: 'roam-week', name: 'Roaming week', kind: 'roaming', dataMb: 1000, validityHours: 168, price: 1500 },
    ],
  });
  await api.ok('PUT', `/family/groups/${g}/members/${kim.id}/controls`, {
    timeWindows: [{ name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:30', to: '15:30' }],
    trustedNumbers: ['+44 7700 900001'],
    spendLimit: 1000,
  }, 200, olga.token);

  // 1. Kim's phone asks the entitlement server for a watch on Kim's number, and the watch installs it.
  const watch = await newDevice(w);
  const ts43 = async (params: Record<string, string>) => {
    const r = await w.http.get(`/ts43?${new URLSearchParams({ app: 'ap2006', vers: '0', terminal_id: '356938035643809', token: kim.token, ...params })}`, { accept: XML_TYPE });
    t.equal(r.status, 200);
    return parseAnswer(r.text, false);
  };
  const eligible = (await ts43({ operation: 'CheckEligibility', companion_terminal_id: 'kim-watch' })).get('APPLICATION')!;
  t.match(eligible, { OperationResult: '1', CompanionAppEligibility: '1', CompanionDeviceServices: /SharedNumber/ }, 'Kim may add a watch on her number');
  const sub = await ts43({
    operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-watch',
    companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber', companion_terminal_model: 'Watch 3',
  });
  t.match(sub.get('APPLICATION'), { OperationResult: '1', SubscriptionResult: '2' }, 'subscribed: download the profile');
  const info = sub.get('APPLICATION|DownloadInfo')!;
  const installed = await watch.lpa.download(Buffer.from(info.ProfileActivationCode!, 'base64').toString('utf8'));
  t.equal(installed.iccid, info.ProfileIccid, 'the watch installed the profile the answer named');
  t.equal((await w.profile(installed.iccid))!.state, 'Installed');
  const watchLine = (await api.ok('GET', `/family/groups/${g}/members/${kim.id}`)).lines.find((l: any) => l.device === 'watch');
  t.match(watchLine, { msisdn: '447700900003', numberMode: 'shared', eid: watch.card.eid }, "the watch shares Kim's number");

  // 2. A school day, 10:00 in London: the watch's data and calls are blocked, 112 and Olga get through.
  await clockTo(api, g, instantAt('Europe/London', nextWeekday(new Date(Date.now() + 86_400_000), 3, 1), '10:00'));
  const use = (line: string, body: Record<string, unknown>) => api.ok('POST', `/family/groups/${g}/lines/${line}/usage`, body);
  t.match(await use(watchLine.id, { kind: 'data', amount: 5 }), { decision: 'blocked', rule: 'time-window:school' }, "the watch's data is blocked in school hours");
  t.match(await use(watchLine.id, { kind: 'voice', amount: 1, otherParty: '+44 7700 900777' }), { decision: 'blocked', rule: 'time-window:school' }, 'a call to a friend is blocked');
  t.match(await use(watchLine.id, { kind: 'voice', amount: 2, otherParty: '112' }), { decision: 'allowed', rule: 'emergency-number' }, 'an emergency call goes through');
  t.match(await use(watchLine.id, { kind: 'voice', amount: 3, otherParty: '447700900001' }), { decision: 'allowed', rule: 'trusted-number' }, 'a call to her mother goes through');

  // 3. Adam in France: the roaming allowance until blocked, a day pass, and on; the home pool untouched.
  const poolBefore = (await api.ok('GET', `/family/groups/${g}/usage`)).pool;
  t.match(await use(adamPhone, { kind: 'data', amount: 80, visitedCountry: 'FR' }), { decision: 'allowed', rule: 'roaming-allowance', roaming: true });
  t.match(await use(adamPhone, { kind: 'data', amount: 30, visitedCountry: 'FR' }), { decision: 'blocked', rule: 'roaming-allowance' }, 'the allowance is used up: blocked');
  const day = await api.ok('POST', `/family/groups/${g}/members/${adam.id}/purchases`, { pass: 'roam-day' }, 201, adam.token);
  t.match(day, { purchase: { status: 'active', passId: 'roam-day' } }, 'Adam buys a day pass');
  t.match(await use(adamPhone, { kind: 'data', amount: 30, visitedCountry: 'FR' }), { decision: 'allowed', rule: 'roaming-pass', purchaseId: day.purchase.id }, 'and goes on');
  t.same((await api.ok('GET', `/family/groups/${g}/usage`)).pool.data, poolBefore.data, 'roaming never drew from the home pool');

  // 4. Kim's week pass is over her limit: it waits until Olga approves it.
  const asked = await api.ok('POST', `/family/groups/${g}/members/${kim.id}/purchases`, { pass: 'roam-week' }, 201, kim.token);
  t.match(asked, { purchase: { status: 'pending' }, overLimit: true }, "over Kim's limit: pending");
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${asked.purchase.id}/approve`, {}, kim.token)).status, 403, 'Kim cannot approve it');
  const approved = await api.ok('POST', `/family/groups/${g}/purchases/${asked.purchase.id}/approve`, {}, 200, olga.token);
  t.match(approved, { purchase: { status: 'active' } }, 'Olga approves it: active');

  // 5. The operator heard the group's events in the order they happened.
  const log = (await api.ok('GET', `/family/groups/${g}/events`)).events as Array<{ id: string; type: string }>;
  const queued = (await w.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'familyEvent'`))[0]!.n;
  t.ok(queued >= log.length, 'every event of the log is queued for the operator');
  await until(() => rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).length >= queued, 20_000);
  const heard = rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).map((c) => c.body as { eventId: string | number; type: string; groupId: string });
  const ours = heard.filter((b) => b.groupId === g);
  t.same(ours.map((b) => String(b.eventId)), log.map((e) => String(e.id)).sort((a, b) => Number(a) - Number(b)), 'the same events as the log, in order');
  const types = ours.map((b) => b.type);
  t.same(types.slice(types.indexOf('controls-set') + 1), [
    'line-added', 'profile-issued', 'companion-subscribed', 'profile-downloaded', 'profile-installed', // the watch
    'roaming-allowance-reached', 'purchase-requested', 'purchase-activated', // Adam abroad
    'purchase-requested', 'purchase-approved', 'purchase-activated', // Kim's pass
  ], 'after the settings: the watch, the trip, the purchase, in order');
});
