/**
 * A companion activated through /ts43 is a family line like any other: the member's controls apply
 * to it. A child's watch, subscribed on the child's phone number (SharedNumber) and installed by a
 * second virtual eUICC, has its data and calls blocked by the child's time window while a call to an emergency
 * number and to a trusted number go through; its usage is the child's. Both engines.
 */
import t from 'tap';
import { parseAnswer, XML_TYPE } from '../../src/entitlement/ts43.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

t.test("a child's watch from the entitlement endpoint follows the child's controls", async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w, { stock: 3 });
  const fam = await createFamily(api, { plan: { dataMb: 5000, voiceMin: 500, sms: 100, msisdns: ['447700900041'] }, members: [{ name: 'Ada', role: 'owner', lines: [] }, { name: 'Kim', role: 'child', lines: [] }] });
  const g = fam.groupId;
  const kim = fam.byName.Kim!;
  await api.ok('POST', `/family/groups/${g}/members/${kim.id}/lines`, { device: 'phone', numberMode: 'shared', msisdn: '447700900041' }, 201);

  const watch = await newDevice(w);
  const r = await w.http.get(`/ts43?${new URLSearchParams({
    app: 'ap2006', vers: '0', terminal_id: '356938035643809', token: kim.token, operation: 'ManageSubscription', operation_type: '0',
    companion_terminal_id: 'kim-watch', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber',
  })}`, { accept: XML_TYPE });
  const info = parseAnswer(r.text, false).get('APPLICATION|DownloadInfo')!;
  const installed = await watch.lpa.download(Buffer.from(info.ProfileActivationCode!, 'base64').toString('utf8'));
  t.equal((await w.profile(installed.iccid))!.state, 'Installed');
  const [{ line_id: watchLine }] = await w.db.query<{ line_id: string }>("SELECT line_id FROM companion_devices WHERE terminal_id = 'kim-watch'") as [{ line_id: string }];

  await api.ok('PUT', `/family/groups/${g}/members/${kim.id}/controls`, {
    timeWindows: [{ name: 'always', blocks: ['data', 'voice'], days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '24:00' }],
    trustedNumbers: ['+447700900099'],
  });
  const use = (body: Record<string, unknown>) => api.ok('POST', `/family/groups/${g}/lines/${watchLine}/usage`, body);
  t.match(await use({ kind: 'data', amount: 5 }), { decision: 'blocked', rule: 'time-window:always' }, "the watch's data is blocked");
  t.match(await use({ kind: 'voice', amount: 1, otherParty: '+447700900077' }), { decision: 'blocked', rule: 'time-window:always' }, 'a call to anyone else is blocked');
  t.match(await use({ kind: 'voice', amount: 2, otherParty: '112' }), { decision: 'allowed', rule: 'emergency-number' }, 'an emergency call goes through');
  t.match(await use({ kind: 'voice', amount: 3, otherParty: '+447700900099' }), { decision: 'allowed', rule: 'trusted-number' }, 'a trusted number goes through');
  const { events } = await api.ok('GET', `/family/groups/${g}/usage/events?line=${watchLine}`);
  t.same(events.map((e: { memberId: string; kind: string; decision: string }) => `${e.memberId === kim.id ? 'Kim' : e.memberId}:${e.kind}:${e.decision}`).sort(),
    ['Kim:data:blocked', 'Kim:voice:allowed', 'Kim:voice:allowed', 'Kim:voice:blocked'], "the watch's usage is the child's");
});
