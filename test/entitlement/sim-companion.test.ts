/**
 * `mock-smdp sim companion` through the sim command line (src/sim/cli.ts → src/sim/companion.ts): the
 * phone's entitlement client runs CheckEligibility and ManageSubscription at /ts43 with the member's
 * token, then the watch — a second virtual eUICC in its own state file — downloads and installs the
 * profile; SharedNumber and DiffNumber, a transfer to a new watch, an unsubscribe, and refusals.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runSim } from '../helpers/sim-cli.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { startWorld } from '../helpers/world.js';

t.test('sim companion: subscribe (SharedNumber, DiffNumber), install on the watch, transfer, unsubscribe', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w, { stock: 8 });
  const fam = await createFamily(api, { plan: { dataMb: 5000, msisdns: ['447700900011', '447700900012'] }, members: [{ name: 'Ada', role: 'owner', lines: [] }, { name: 'Kim', role: 'child', lines: [] }] });
  const kim = fam.byName.Kim!;
  await api.ok('POST', `/family/groups/${fam.groupId}/members/${kim.id}/lines`, { device: 'phone', numberMode: 'shared', msisdn: '447700900011' }, 201);

  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-companion-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => runSim(args);
  const net = ['--url', w.url, '--certs', w.pkiDir];
  const watch1 = join(dir, 'watch1.json');

  // Eligibility only.
  const check = await run('companion', '--check-only', '--token', kim.token, '--watch-state', watch1, ...net, '--json');
  t.equal(check.code, 0, check.err);
  t.match(JSON.parse(check.out), { ok: true, companionAppEligibility: '1', companionDeviceServices: ['SharedNumber', 'DiffNumber'] });

  // Subscribe SharedNumber: the watch installs the profile.
  const sub = await run('companion', '--token', kim.token, '--watch-state', watch1, '--companion-id', 'kim-watch', ...net, '--json');
  t.equal(sub.code, 0, sub.err);
  const s = JSON.parse(sub.out);
  t.match(s, { ok: true, companionTerminalId: 'kim-watch', service: 'SharedNumber', downloadInfo: { activationCode: /^LPA:1\$/, iccid: /^\d{19,20}$/, smdpAddress: w.config.smdpAddress }, installed: { iccid: s.downloadInfo.iccid } });
  t.equal((await w.profile(s.downloadInfo.iccid))!.state, 'Installed');
  t.equal((await w.profile(s.downloadInfo.iccid))!.eid, s.eid, 'on the watch');
  const profiles = await run('profiles', '--state', watch1, '--json');
  t.match(JSON.parse(profiles.out), [{ iccid: s.downloadInfo.iccid }], 'the watch card holds the profile');
  const [line] = await w.db.query<{ msisdn: string; number_mode: string }>('SELECT msisdn, number_mode FROM family_lines WHERE iccid = $1', [s.downloadInfo.iccid]);
  t.match(line, { msisdn: '447700900011', number_mode: 'shared' });

  // Transfer to a new watch.
  const watch2 = join(dir, 'watch2.json');
  const tr = await run('companion', '--token', kim.token, '--watch-state', watch2, '--companion-id', 'kim-watch-2', '--transfer-from', 'kim-watch', ...net, '--json');
  t.equal(tr.code, 0, tr.err);
  const tj = JSON.parse(tr.out);
  t.match(tj, { ok: true, transferredFrom: 'kim-watch', installed: { iccid: tj.downloadInfo.iccid } });
  t.not(tj.eid, s.eid, 'another card');
  t.equal((await w.profile(tj.downloadInfo.iccid))!.state, 'Installed');
  t.match(await w.db.query('SELECT terminal_id, state FROM companion_devices ORDER BY created_at'), [{ terminal_id: 'kim-watch', state: 'transferred' }, { terminal_id: 'kim-watch-2', state: 'active' }]);

  // DiffNumber on a third watch, without the download (text output).
  const watch3 = join(dir, 'watch3.json');
  const diff = await run('companion', '--token', kim.token, '--service', 'DiffNumber', '--watch-state', watch3, '--companion-id', 'kim-tab', '--no-download', ...net);
  t.equal(diff.code, 0, diff.err);
  t.match(diff.out, /companion kim-tab \(EID \d{32}\) subscribed, DiffNumber\n {2}activation code LPA:1\$/);
  t.notMatch(diff.out, /Installed/, 'not downloaded');
  t.match(await w.db.query("SELECT msisdn, service FROM companion_devices WHERE terminal_id = 'kim-tab'"), [{ msisdn: '447700900012', service: 'DiffNumber' }]);

  // Unsubscribe by companion id.
  const un = await run('companion', '--unsubscribe', '--token', kim.token, '--companion-id', 'kim-watch-2', ...net, '--json');
  t.equal(un.code, 0, un.err);
  t.match(JSON.parse(un.out), { ok: true, unsubscribed: 'kim-watch-2' });
  t.match(await w.db.query("SELECT state FROM companion_devices WHERE terminal_id = 'kim-watch-2'"), [{ state: 'unsubscribed' }]);

  // Refusals: an unknown token (HTTP 401), a second unsubscribe (OperationResult 102), no number left (not offered), usage errors.
  const unknown = await run('companion', '--token', 'fam_nobody', '--watch-state', watch1, ...net, '--json');
  t.equal(unknown.code, 1);
  t.match(JSON.parse(unknown.out), { ok: false, error: { httpStatus: 401, message: /unknown member token/ } });
  const again = await run('companion', '--unsubscribe', '--token', kim.token, '--companion-id', 'kim-watch-2', ...net, '--json');
  t.equal(again.code, 1);
  t.match(JSON.parse(again.out), { ok: false, error: { operationResult: '102' } });
  const none = await run('companion', '--token', kim.token, '--service', 'DiffNumber', '--watch-state', join(dir, 'watch4.json'), ...net);
  t.equal(none.code, 1);
  t.match(none.err, /DiffNumber is not offered/);
  t.equal((await run('companion', '--watch-state', watch1, ...net)).code, 2, 'no token: usage error');
  t.equal((await run('companion', '--token', kim.token, '--service', 'Both', ...net)).code, 2, 'bad --service');
  t.equal((await run('companion', '--bogus')).code, 2, 'unknown option');
  t.match((await run('companion', '--help')).out, /sim companion --token/);
});
