/**
 * The TS.43 entitlement endpoint for companion devices (docs/entitlement.md), on whichever engine
 * the suite runs on: CheckEligibility for members with and without a way to add a companion;
 * ManageSubscription subscribe with SharedNumber and DiffNumber (a family line, a profile issued
 * through the ES2+ pipeline and linked to the watch's EID, downloaded by a second virtual eUICC with
 * the answer's activation code: Installed); unsubscribe; transfer to a new watch; AcquireConfiguration;
 * refusals in TS.43's form (OperationResult 101/102/103) or as 4xx JSON, with nothing changed; a
 * companion whose line or member is gone cannot be transferred.
 */
import t from 'tap';
import { parseAnswer, XML_TYPE } from '../../src/entitlement/ts43.js';
import { createFamily, familyOperator, type FamilyApi } from '../helpers/family-usage.js';
import { newDevice } from '../helpers/operator.js';
import { startWorld, type World } from '../helpers/world.js';

/**
 * The EID with check digits that fail the mod-97 check. Its own + 1 (mod 97): 00 and 01 are not
 * always wrong (they pass when the right ones are 97 and 98).
 */
function wrongCheckDigits(eid: string): string {
  return `${eid.slice(0, 30)}${String((Number(eid.slice(30)) % 97) + 1).padStart(2, '0')}`;
}

const NUMBERS = ['447700900001', '447700900002', '447700900003'];

interface Call {
  status: number;
  type: string;
  text: string;
  app: Record<string, string>;
  sections: Map<string, Record<string, string>>;
}

function ts43(w: World) {
  return async (params: Record<string, string | undefined>, opts: { json?: boolean; post?: boolean; headers?: Record<string, string> } = {}): Promise<Call> => {
    const p = Object.fromEntries(Object.entries({ app: 'ap2006', vers: '0', terminal_id: '356938035643809', entitlement_version: '2.0', ...params }).filter(([, v]) => v !== undefined)) as Record<string, string>;
    const headers = { accept: opts.json ? 'application/json' : XML_TYPE, ...opts.headers };
    const r = opts.post ? await w.http.post('/ts43', p, headers) : await w.http.get(`/ts43?${new URLSearchParams(p)}`, headers);
    const type = String(r.headers['content-type'] ?? '');
    const sections = r.status === 200 ? parseAnswer(r.text, /json/.test(type)) : new Map();
    return { status: r.status, type, text: r.text, app: sections.get('APPLICATION') ?? {}, sections };
  };
}

async function family(w: World, api: FamilyApi, opts: { msisdns?: string[]; plan?: boolean } = {}) {
  const fam = await createFamily(api, {
    name: 'The Okafors',
    plan: { dataMb: 10000, msisdns: opts.msisdns ?? NUMBERS },
    members: [
      { name: 'Ada', role: 'owner', lines: [] },
      { name: 'Kim', role: 'child', lines: [] },
      { name: 'Bo', role: 'adult', lines: [] },
    ],
  });
  const g = fam.groupId;
  const kim = fam.byName.Kim!;
  const phone = await api.ok('POST', `/family/groups/${g}/members/${kim.id}/lines`, { device: 'phone', numberMode: 'shared', msisdn: NUMBERS[0], name: "Kim's phone" }, 201);
  return { fam, g, kim, ada: fam.byName.Ada!, bo: fam.byName.Bo!, phone };
}

const decodeAc = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

let world: Promise<{ w: World; api: FamilyApi }> | undefined;
const getWorld = () => (world ??= (async () => {
  const w = await startWorld(t);
  const api = await familyOperator(w, { stock: 12 });
  return { w, api };
})());

t.test('CheckEligibility: enabled with the services the member can have; disabled without; unknown token 401', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, bo, g } = await family(w, api);

  const yes = await call({ token: kim.token, operation: 'CheckEligibility', companion_terminal_id: 'watch-1' });
  t.equal(yes.status, 200);
  t.match(yes.type, XML_TYPE, 'XML by default');
  t.match(yes.text, /<wap-provisioningdoc version="1.1">/);
  t.same(yes.sections.get('VERS'), { version: '1', validity: '0' });
  t.same(yes.sections.get('TOKEN'), { token: kim.token }, 'the token to keep: the one it authenticated with');
  t.match(yes.app, { AppID: 'ap2006', OperationResult: '1', CompanionAppEligibility: '1', CompanionDeviceServices: 'SharedNumber,DiffNumber' });

  const json = await call({ token: kim.token, operation: 'CheckEligibility' }, { json: true });
  t.match(json.type, /application\/json/);
  t.match(JSON.parse(json.text), { Vers: { version: '1' }, Token: { token: kim.token }, ap2006: { OperationResult: '1', CompanionAppEligibility: '1' } }, 'JSON when asked for');

  const post = await call({ token: kim.token, operation: 'CheckEligibility' }, { post: true });
  t.match(post.app, { CompanionAppEligibility: '1' }, 'POST with a JSON body of the same parameters');
  const numeric = await w.http.post('/ts43', { app: 'ap2006', vers: 0, terminal_id: '356938035643809', token: kim.token, operation: 'ManageSubscription', operation_type: 7 }, { accept: XML_TYPE });
  t.match(parseAnswer(numeric.text, false).get('APPLICATION'), { OperationResult: '102', GeneralErrorText: /operation_type 7/ }, 'numbers in a POST body are read as their text');

  const head = await w.app.inject({ method: 'HEAD', url: `/ts43?${new URLSearchParams({ app: 'ap2006', vers: '0', terminal_id: '1', token: kim.token, operation: 'CheckEligibility' })}` });
  t.equal(head.statusCode, 200, 'HEAD reads the query as GET does');
  const bearer = await call({ operation: 'CheckEligibility' }, { headers: { authorization: `Bearer ${kim.token}` } });
  t.match(bearer.app, { CompanionAppEligibility: '1' }, 'the token as Authorization: Bearer');

  // Bo has no line with a number: only DiffNumber.
  t.match((await call({ token: bo.token, operation: 'CheckEligibility' })).app, { CompanionAppEligibility: '1', CompanionDeviceServices: 'DiffNumber' });

  // A group whose numbers are all used and whose member has no line: disabled, saying why.
  const full = await family(w, api, { msisdns: [NUMBERS[0]!] });
  const no = await call({ token: full.bo.token, operation: 'CheckEligibility' });
  t.match(no.app, { OperationResult: '1', CompanionAppEligibility: '0', NotEnabledUserData: /no line with a number.*no free number/ });

  // A group without a plan: disabled.
  const bare = await api.ok('POST', '/family/groups', { name: 'No plan' }, 201);
  const lone = await api.ok('POST', `/family/groups/${bare.id}/members`, { name: 'Lone', role: 'owner' }, 201);
  t.match((await call({ token: lone.token, operation: 'CheckEligibility' })).app, { CompanionAppEligibility: '0', NotEnabledUserData: /no plan/ });

  for (const token of ['fam_nobody', 'not-a-family-token', undefined]) {
    const r = await call({ token, operation: 'CheckEligibility' });
    t.equal(r.status, 401, `token ${token}: 401`);
    t.match(JSON.parse(r.text), { error: 'unauthorised' });
  }
  t.ok(g);
});

t.test('subscribe SharedNumber: line on the phone number, profile linked to the watch EID, installed by the watch; then unsubscribe', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, g } = await family(w, api);
  const watch = await newDevice(w);

  const r = await call({
    token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-watch',
    companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber', companion_terminal_model: 'Watch 3', companion_terminal_friendly_name: "Kim's watch",
  });
  t.equal(r.status, 200);
  t.match(r.app, { OperationResult: '1', SubscriptionResult: '2' });
  const info = r.sections.get('APPLICATION|DownloadInfo')!;
  t.ok(info, 'DownloadInfo');
  const ac = decodeAc(info.ProfileActivationCode!);
  t.match(ac, /^LPA:1\$localhost:8443\$[A-Z0-9-]+$/i);
  t.equal(info.ProfileSmdpAddress, w.config.smdpAddress);
  const iccid = info.ProfileIccid!;

  const p = (await w.profile(iccid))!;
  t.equal(p.state, 'Released', 'released through the ES2+ pipeline');
  t.equal(p.eid, watch.card.eid, 'linked to the watch');
  const hist = await w.db.query<{ action: string }>('SELECT detail->>\'via\' AS via, event AS action FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid]);
  t.ok(hist.length >= 2, 'downloadOrder and confirmOrder in the history');

  const lines = await w.db.query<{ id: string; member_id: string; msisdn: string; number_mode: string; device: string; eid: string; iccid: string; name: string }>('SELECT * FROM family_lines WHERE iccid = $1', [iccid]);
  t.match(lines, [{ member_id: kim.id, msisdn: NUMBERS[0], number_mode: 'shared', device: 'watch', eid: watch.card.eid, name: "Kim's watch" }]);
  const [rec] = await w.db.query<Record<string, unknown>>('SELECT * FROM companion_devices WHERE terminal_id = $1', ['kim-watch']);
  t.match(rec, { group_id: g, member_id: kim.id, eid: watch.card.eid, service: 'SharedNumber', line_id: lines[0]!.id, iccid, msisdn: NUMBERS[0], state: 'active', model: 'Watch 3' });

  // A retry gives the same download information; another EID for the same companion is refused.
  const again = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-watch', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber' });
  t.equal(decodeAc(again.sections.get('APPLICATION|DownloadInfo')!.ProfileActivationCode!), ac, 'a retry: the same activation code');
  const other = await newDevice(w);
  const dup = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-watch', companion_terminal_eid: other.card.eid, companion_terminal_service: 'SharedNumber' });
  t.match(dup.app, { OperationResult: '100', GeneralErrorText: /already subscribed/ });

  // The watch downloads with the activation code.
  const dl = await watch.lpa.download(ac);
  t.equal(dl.iccid, iccid);
  t.equal((await w.profile(iccid))!.state, 'Installed');

  const conf = await call({ token: kim.token, operation: 'AcquireConfiguration' });
  t.match(conf.sections.get('APPLICATION|CompanionConfigurations|CompanionConfiguration'), { CompanionTerminalId: 'kim-watch', ICCID: iccid, ServiceStatus: '1', CompanionTerminalService: 'SharedNumber' });

  // Unsubscribe: the line goes, the installed profile's binding ends, the record says so.
  const un = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'kim-watch' });
  t.match(un.app, { OperationResult: '1', SubscriptionResult: '3' });
  t.same(await w.db.query('SELECT id FROM family_lines WHERE id = $1', [lines[0]!.id]), [], 'line removed');
  t.match((await w.db.query('SELECT state, ended_at FROM companion_devices WHERE terminal_id = $1', ['kim-watch']))[0], { state: 'unsubscribed', ended_at: Date });
  t.match(await w.db.query('SELECT released_at, reason FROM family_line_profiles WHERE iccid = $1', [iccid]), [{ released_at: Date, reason: 'line-removed' }]);
  const companionEvents = async (gid: string) => (await w.db.query<{ type: string; detail: Record<string, unknown> }>(
    `SELECT type, detail FROM group_events WHERE group_id = $1 AND type LIKE 'companion-%' ORDER BY id`, [gid]));
  t.match(await companionEvents(g), [
    { type: 'companion-subscribed', detail: { member: kim.id, companion: 'kim-watch', eid: watch.card.eid, service: 'SharedNumber', iccid } },
    { type: 'companion-unsubscribed', detail: { companion: 'kim-watch', eid: watch.card.eid } },
  ], "the group's events (and the operator's callback) name the companion");
  const twice = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'kim-watch' });
  t.match(twice.app, { OperationResult: '102', GeneralErrorText: /not an active companion/ });
  t.match((await call({ token: kim.token, operation: 'AcquireConfiguration' })).sections.get('APPLICATION|CompanionConfigurations'), undefined, 'no configuration left');
});

t.test('subscribe DiffNumber: a free number of the group as the line\'s own; unsubscribe before download cancels the order', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, ada } = await family(w, api);
  const watch = await newDevice(w);
  const r = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-tablet', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'DiffNumber', companion_terminal_model: 'Tab S tablet' }, { json: true });
  t.match(r.app, { OperationResult: '1', SubscriptionResult: '2' });
  const info = r.sections.get('APPLICATION|DownloadInfo')!;
  const iccid = info.ProfileIccid!;
  const [line] = await w.db.query<{ msisdn: string; number_mode: string; device: string }>('SELECT msisdn, number_mode, device FROM family_lines WHERE iccid = $1', [iccid]);
  t.match(line, { msisdn: NUMBERS[1], number_mode: 'own', device: 'tablet' }, 'the first free number, its own');
  t.equal((await w.profile(iccid))!.state, 'Released');

  // The owner unsubscribes it for Kim: the pending order is cancelled through the state machine.
  const un = await call({ token: ada.token, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'kim-tablet' });
  t.match(un.app, { OperationResult: '1', SubscriptionResult: '3' });
  const p = (await w.profile(iccid))!;
  t.equal(p.state, 'Available', 'order cancelled');
  t.equal(p.eid, null);
  const err = await watch.lpa.download(decodeAc(info.ProfileActivationCode!)).catch((e) => e);
  t.match(err, { code: 'es9Failed' }, 'the old activation code no longer downloads');
});

t.test('transfer: the subscription moves to a new watch (same number), the old order is cancelled, the new watch installs', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim } = await family(w, api);
  const oldWatch = await newDevice(w);
  const newWatch = await newDevice(w);
  const sub = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'old-watch', companion_terminal_eid: oldWatch.card.eid, companion_terminal_service: 'SharedNumber' });
  const oldIccid = sub.sections.get('APPLICATION|DownloadInfo')!.ProfileIccid!;

  const bad = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: 'no-such-watch', companion_terminal_id: 'new-watch', companion_terminal_eid: newWatch.card.eid });
  t.match(bad.app, { OperationResult: '102', GeneralErrorText: /old_terminal_id no-such-watch/ });
  const svc = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: 'old-watch', companion_terminal_id: 'new-watch', companion_terminal_eid: newWatch.card.eid, companion_terminal_service: 'DiffNumber' });
  t.match(svc.app, { OperationResult: '102', GeneralErrorText: /keeps the service/ });

  const tr = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: 'old-watch', companion_terminal_id: 'new-watch', companion_terminal_eid: newWatch.card.eid });
  t.match(tr.app, { OperationResult: '1', SubscriptionResult: '2' });
  const info = tr.sections.get('APPLICATION|DownloadInfo')!;
  const oldAc = decodeAc(sub.sections.get('APPLICATION|DownloadInfo')!.ProfileActivationCode!);
  t.not(decodeAc(info.ProfileActivationCode!), oldAc, 'a new order (MatchingID)');
  t.match(await w.db.query('SELECT event FROM profile_events WHERE iccid = $1 AND detail->>\'via\' = \'family\' ORDER BY id', [oldIccid]), [{}, {}, { event: /cancel/i }], "the old watch's pending order cancelled");
  const err = await oldWatch.lpa.download(oldAc).catch((e) => e);
  t.match(err, { code: 'es9Failed' }, "the old watch's activation code no longer downloads");
  const recs = await w.db.query<{ id: string; terminal_id: string; state: string; transferred_to: string | null; msisdn: string; eid: string }>('SELECT * FROM companion_devices WHERE member_id = $1 ORDER BY created_at', [kim.id]);
  t.match(recs, [{ terminal_id: 'old-watch', state: 'transferred', transferred_to: recs[1]!.id }, { terminal_id: 'new-watch', state: 'active', msisdn: NUMBERS[0], eid: newWatch.card.eid }]);
  const moved = await w.db.query<{ type: string; detail: Record<string, unknown> }>(`SELECT type, detail FROM group_events WHERE type LIKE 'companion-%' AND detail->>'companion' = 'new-watch'`);
  t.match(moved, [{ type: 'companion-transferred', detail: { companion: 'new-watch', eid: newWatch.card.eid, from: 'old-watch', fromEid: oldWatch.card.eid } }], 'a transfer is its own event');

  const dl = await newWatch.lpa.download(decodeAc(info.ProfileActivationCode!));
  t.equal((await w.profile(dl.iccid))!.state, 'Installed');
  t.equal((await w.profile(dl.iccid))!.eid, newWatch.card.eid);

  // operation_type 2 (change) with old_terminal_id is a transfer too.
  const third = await newDevice(w);
  const ch = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '2', old_terminal_id: 'new-watch', companion_terminal_id: 'third-watch', companion_terminal_eid: third.card.eid });
  t.match(ch.app, { OperationResult: '1', SubscriptionResult: '2' });
  t.equal((await w.profile(dl.iccid))!.state, 'Installed', 'an installed profile stays installed (its binding ends; the watch deletes it)');
  t.match(await w.db.query('SELECT reason FROM family_line_profiles WHERE iccid = $1', [dl.iccid]), [{ reason: 'line-removed' }]);
});

t.test('bad parameters: TS.43 OperationResult 101/102/103, protocol errors 400 JSON; nothing changed', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, ada, bo } = await family(w, api);
  const watch = await newDevice(w);
  const count = async () => (await w.db.query<{ n: number }>('SELECT (SELECT count(*) FROM companion_devices)::int + (SELECT count(*) FROM family_lines)::int AS n'))[0]!.n;
  const before = await count();
  const sub = (extra: Record<string, string | undefined>) => call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'w-bad', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber', ...extra });

  const cases: Array<[string, Promise<Call>, Record<string, unknown>]> = [
    ['no operation', call({ token: kim.token }), { OperationResult: '102', GeneralErrorText: /operation is required/ }],
    ['unknown operation', call({ token: kim.token, operation: 'MakeCoffee' }), { OperationResult: '101' }],
    ['ManageService', call({ token: kim.token, operation: 'ManageService', operation_type: '10' }), { OperationResult: '103' }],
    ['no operation_type', sub({ operation_type: undefined }), { OperationResult: '102', GeneralErrorText: /operation_type is required/ }],
    ['operation_type 7', sub({ operation_type: '7' }), { OperationResult: '102' }],
    ['operation_type 4', sub({ operation_type: '4' }), { OperationResult: '103' }],
    ['operation_type x', sub({ operation_type: 'x' }), { OperationResult: '102', GeneralErrorText: /operation_type/ }],
    ['EID not 32 digits', sub({ companion_terminal_eid: '1234' }), { OperationResult: '102', GeneralErrorText: /companion_terminal_eid/ }],
    ['EID with bad check digits', sub({ companion_terminal_eid: wrongCheckDigits(watch.card.eid) }), { OperationResult: '102', GeneralErrorText: /EID/ }],
    ['no EID', sub({ companion_terminal_eid: undefined }), { OperationResult: '102', GeneralErrorText: /companion_terminal_eid is required/ }],
    ['no companion id', sub({ companion_terminal_id: undefined }), { OperationResult: '102', GeneralErrorText: /companion_terminal_id is required/ }],
    ['bad service', sub({ companion_terminal_service: 'TripleNumber' }), { OperationResult: '102', GeneralErrorText: /companion_terminal_service/ }],
    ['no service', sub({ companion_terminal_service: undefined }), { OperationResult: '102', GeneralErrorText: /companion_terminal_service is required/ }],
    ["another member's line", call({ token: bo.token, operation: 'CheckEligibility', terminal_iccid: '8900000000000000001' }), { OperationResult: '102' }],
    ['SharedNumber without a numbered line', call({ token: bo.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'w-bo', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber' }), { OperationResult: '100', GeneralErrorText: /SharedNumber is not available/ }],
    ['unsubscribe, unknown companion', call({ token: ada.token, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'nope' }), { OperationResult: '102' }],
  ];
  for (const [name, p, want] of cases) {
    const r = await p;
    t.equal(r.status, 200, `${name}: HTTP 200`);
    t.match(r.app, { AppID: 'ap2006', ...want }, `${name}: ${JSON.stringify(want)}`);
  }

  const protocol: Array<[string, Record<string, string | undefined>]> = [
    ['app ap2003', { app: 'ap2003' }],
    ['app missing', { app: undefined }],
    ['app malformed', { app: 'watch' }],
    ['vers missing', { vers: undefined }],
    ['vers not a number', { vers: 'one' }],
    ['terminal_id missing', { terminal_id: undefined }],
  ];
  for (const [name, extra] of protocol) {
    const r = await call({ token: kim.token, operation: 'CheckEligibility', ...extra });
    t.equal(r.status, 400, `${name}: 400`);
    t.match(JSON.parse(r.text), { error: 'invalid', message: String }, `${name}: the JSON error`);
  }
  const notObject = await w.http.request('POST', '/ts43', [1, 2], { accept: XML_TYPE });
  t.equal(notObject.status, 401, 'a body that is no object and has no token: 401 first');
  const arr = await w.http.request('POST', '/ts43', ['x'], { authorization: `Bearer ${kim.token}` });
  t.equal(arr.status, 400, 'a JSON array body with a token: 400');
  const nul = await call({ token: kim.token, operation: 'CheckEligibility', companion_terminal_id: 'a\u0000b' });
  t.match({ status: nul.status, ...nul.app }, { status: 200, OperationResult: '102', GeneralErrorText: /companion_terminal_id/ }, 'NUL in a parameter: 102');
  t.equal(await count(), before, 'nothing created by any refusal');
});

t.test('the admin list of companions', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, g } = await family(w, api);
  const watch = await newDevice(w);
  await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'listed-watch', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber' });
  const r = await w.http.get<{ companions: Array<Record<string, unknown>> }>(`/admin/entitlement/companions?group=${g}`);
  t.equal(r.status, 200);
  t.match(r.json!.companions, [{ groupId: g, memberId: kim.id, memberName: 'Kim', terminalId: 'listed-watch', eid: watch.card.eid, service: 'SharedNumber', msisdn: NUMBERS[0], profileState: 'Released', state: 'active' }]);
  t.equal((await w.http.get('/admin/entitlement/companions?limit=0')).status, 400);
  t.equal((await w.http.get('/admin/entitlement/companions?group=../x')).status, 400);
});

t.test("the owner subscribes a watch for a child's phone (terminal_iccid); an adult may not", async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, ada, bo, g, phone } = await family(w, api);
  const issued = await api.ok('POST', `/family/groups/${g}/members/${kim.id}/lines/${phone.id}/profile`, {}, 201, ada.token);
  const watch = await newDevice(w);
  const args = { operation: 'ManageSubscription', operation_type: '0', terminal_iccid: issued.iccid, companion_terminal_id: 'kims-watch-by-ada', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber' };
  const refused = await call({ token: bo.token, ...args });
  t.match(refused.app, { OperationResult: '102', GeneralErrorText: /only the group owner/ });
  const r = await call({ token: ada.token, ...args });
  t.match(r.app, { OperationResult: '1', SubscriptionResult: '2' });
  t.match(await w.db.query("SELECT member_id, msisdn, primary_line_id FROM companion_devices WHERE terminal_id = 'kims-watch-by-ada'"), [{ member_id: kim.id, msisdn: NUMBERS[0], primary_line_id: phone.id }], "Kim's companion, on Kim's number");
  const conf = await call({ token: kim.token, operation: 'AcquireConfiguration' });
  t.match(conf.sections.get('APPLICATION|CompanionConfigurations|CompanionConfiguration'), { CompanionTerminalId: 'kims-watch-by-ada', ServiceStatus: '2' }, 'Kim sees it, activating');
  t.ok(conf.sections.get('APPLICATION|CompanionConfigurations|CompanionConfiguration|DownloadInfo')?.ProfileActivationCode, 'with its download information while activating');
});

t.test('the same companion subscribed at once from two families: one succeeds, the other is OperationResult 100, no 500', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const a = await family(w, api);
  const b = await family(w, api);
  for (let round = 0; round < 3; round++) {
    const [wa, wb] = [await newDevice(w), await newDevice(w)];
    const id = `contested-${round}`;
    const rs = await Promise.all([
      call({ token: a.kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: id, companion_terminal_eid: wa.card.eid, companion_terminal_service: 'SharedNumber' }),
      call({ token: b.kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: id, companion_terminal_eid: wb.card.eid, companion_terminal_service: 'SharedNumber' }),
    ]);
    t.same(rs.map((r) => r.status), [200, 200]);
    t.same(rs.map((r) => r.app.OperationResult).sort(), ['1', '100'], `round ${round}: one subscription`);
    t.equal((await w.db.query('SELECT 1 FROM companion_devices WHERE terminal_id = $1', [id])).length, 1);
    const loser = rs.find((r) => r.app.OperationResult === '100')!;
    t.match(loser.app.GeneralErrorText, /already subscribed|meanwhile/);
  }
});

t.test('a companion line removed through the family API ends the subscription: the companion can subscribe again', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, g } = await family(w, api);
  const watch = await newDevice(w);
  const args = { token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'removed-watch', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber' };
  t.match((await call(args)).app, { OperationResult: '1' });
  const [rec] = await w.db.query<{ id: string; line_id: string }>("SELECT id, line_id FROM companion_devices WHERE terminal_id = 'removed-watch'");
  await api.ok('DELETE', `/family/groups/${g}/members/${kim.id}/lines/${rec!.line_id}`);
  t.match((await call({ token: kim.token, operation: 'AcquireConfiguration', companion_terminal_id: 'removed-watch' })).sections.get('APPLICATION|CompanionConfigurations|CompanionConfiguration'), { ServiceStatus: '3' }, 'no service without its line');
  const again = await call(args);
  t.match(again.app, { OperationResult: '1', SubscriptionResult: '2' }, 'subscribed again');
  t.match(await w.db.query("SELECT id, state FROM companion_devices WHERE terminal_id = 'removed-watch' ORDER BY created_at"), [{ id: rec!.id, state: 'unsubscribed' }, { state: 'active' }]);
});

t.test('a companion whose line or member is gone cannot be transferred: OperationResult 102, no 500, nothing created', async (t) => {
  const { w, api } = await getWorld();
  const call = ts43(w);
  const { kim, ada, g } = await family(w, api);
  const [watch, next, next2, other] = [await newDevice(w), await newDevice(w), await newDevice(w), await newDevice(w)];
  const sub = (id: string, eid: string, service = 'DiffNumber') => call({ token: kim.token, operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: id, companion_terminal_eid: eid, companion_terminal_service: service });
  const count = async () => (await w.db.query<{ n: number }>('SELECT (SELECT count(*) FROM companion_devices)::int + (SELECT count(*) FROM family_lines)::int AS n'))[0]!.n;

  // The line removed through the family API: the subscription has ended, a transfer has nothing to move.
  t.match((await sub('gone-line-watch', other.card.eid)).app, { OperationResult: '1' });
  const [rec] = await w.db.query<{ id: string; line_id: string; msisdn: string }>("SELECT id, line_id, msisdn FROM companion_devices WHERE terminal_id = 'gone-line-watch'");
  await api.ok('DELETE', `/family/groups/${g}/members/${kim.id}/lines/${rec!.line_id}`);
  let before = await count();
  const moved = await call({ token: kim.token, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: 'gone-line-watch', companion_terminal_id: 'gone-line-next', companion_terminal_eid: next.card.eid });
  t.match({ status: moved.status, ...moved.app }, { status: 200, OperationResult: '102', GeneralErrorText: /old_terminal_id gone-line-watch is not an active companion/ }, 'a transfer of an ended subscription: 102');
  t.equal(await count(), before, 'no line or record created');
  t.match(await w.db.query('SELECT state, transferred_to FROM companion_devices WHERE id = $1', [rec!.id]), [{ state: 'active', transferred_to: null }], 'the refusal rolled back: the record is as it was (closed when the companion subscribes again)');
  t.match((await sub('gone-line-next', next.card.eid)).app, { OperationResult: '1', SubscriptionResult: '2' }, 'the new watch subscribes instead');

  // The member removed (its lines go with it): the owner may not move the companion either.
  t.match((await sub('gone-member-watch', watch.card.eid, 'SharedNumber')).app, { OperationResult: '1' });
  await api.ok('DELETE', `/family/groups/${g}/members/${kim.id}`);
  before = await count();
  const r = await call({ token: ada.token, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: 'gone-member-watch', companion_terminal_id: 'gone-member-next', companion_terminal_eid: next2.card.eid });
  t.match({ status: r.status, ...r.app }, { status: 200, OperationResult: '102', GeneralErrorText: /old_terminal_id gone-member-watch is not an active companion/ }, "a transfer of a removed member's companion: 102");
  t.equal(await count(), before, 'no line or record created');
  const conf = await call({ token: ada.token, operation: 'AcquireConfiguration', companion_terminal_id: 'gone-member-watch' });
  t.match(conf.sections.get('APPLICATION|CompanionConfigurations|CompanionConfiguration'), { CompanionTerminalId: 'gone-member-watch', ServiceStatus: '3' }, 'AcquireConfiguration: deactivated');
  const un = await call({ token: ada.token, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'gone-member-watch' });
  t.match({ status: un.status, ...un.app }, { status: 200, OperationResult: '1', SubscriptionResult: '3' }, 'the owner may unsubscribe it: the record is closed');
  t.match(await w.db.query("SELECT state FROM companion_devices WHERE terminal_id = 'gone-member-watch'"), [{ state: 'unsubscribed' }]);
});
