/**
 * The LPA's discovery (Lpa.discover, docs/smds.md#es11) against the built-in SM-DS on lpac's ES9+
 * paths, then the download of the discovered event with no activation code from the operator: an
 * order confirmed with smdsAddress is found, installed, and its event is gone afterwards. The
 * virtual eUICC authenticates the SM-DS by its CERT.DSauth (SGP.22 §5.7.13) as it does an SM-DP+
 * by its CERT.DPauth. Also `mock-smdp sim discover [--download]`, the same through the CLI.
 */
import t from 'tap';
import { Lpa } from '../../src/sim/lpa.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { issueEuiccCredentials } from '../../src/pki/load.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { listEvents } from '../../src/smds/store.js';
import { CURVE_NAMES } from '../../src/pki/layout.js';
import { runSim } from '../helpers/sim-cli.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { until } from '../helpers/operator.js';

let n = 0;
async function device(w: World, curve?: (typeof CURVE_NAMES)[number]) {
  const eid = eidWithCheckDigits(`8904903200000000${process.pid.toString().padStart(7, '0').slice(-7)}${String(7000 + n++).padStart(7, '0')}`);
  const creds = (curve ? [curve] : [...CURVE_NAMES]).map((c) => issueEuiccCredentials(w.pkiDir, eid, c));
  const card = await VirtualEuicc.create({ credentials: creds });
  return { card, creds };
}

const SMDS = 'smds.localhost:8443';
let world: Promise<World> | undefined;
const getWorld = () => (world ??= startWorld(t, { config: { smdsAddress: SMDS } }));

for (const curve of CURVE_NAMES) {
  t.test(`discovered through the SM-DS and installed with no activation code (${curve})`, async (t) => {
    const w = await getWorld();
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card } = await device(w, curve);
    const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
    const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
    t.equal(c.status, 'Executed-Success');

    const lpa = new Lpa(card, { http: w.http });
    const steps: string[] = [];
    const found = await new Lpa(card, { http: w.http, progress: (s) => steps.push(s) }).discover(SMDS);
    t.same(found, [{ eventId: c.body.matchingId, rspServerAddress: w.config.smdpAddress }]);
    t.same(steps, ['es10b_get_euicc_challenge_and_info', 'es9p_initiate_authentication', 'es10b_authenticate_server', 'es11_authenticate_client'], "lpac's steps");
    t.same(await new Lpa(card, { http: w.http }).discover(SMDS, { es9Paths: true }), found, "the same on the ES9+ paths, as lpac posts them");

    const r = await lpa.download(`1$${found[0]!.rspServerAddress}$${found[0]!.eventId}`);
    t.equal(r.iccid, d.iccid);
    t.equal((await w.profile(d.iccid))!.state, 'Installed');
    await until(async () => (await listEvents(w.db, { eid: card.eid })).length === 0);
    t.same(await lpa.discover(SMDS), [], 'the event is gone after the install');
  });
}

t.test('one address for the SM-DP+ and the SM-DS (the default): discovery on the ES11 paths, the order untouched until the download', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  await op.stock(1);
  const { card } = await device(w);
  const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
  t.equal((await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, releaseFlag: true })).status, 'Executed-Success');
  const lpa = new Lpa(card, { http: w.http });
  const found = await lpa.discover(w.config.smdpAddress);
  t.same(found.map((e) => e.rspServerAddress), [w.config.smdpAddress]);
  const p = (await w.profile(d.iccid))!;
  t.equal(p.download_attempts, 0, 'discovery is not a download attempt at the SM-DP+');
  t.equal((await w.db.query(`SELECT 1 FROM profile_events WHERE iccid = $1 AND event = 'authenticated'`, [d.iccid])).length, 0);
  t.equal((await lpa.download(`1$${found[0]!.rspServerAddress}$${found[0]!.eventId}`)).iccid, d.iccid);
});

t.test('discover: an SM-DS refusal is an es9Failed LpaError', async (t) => {
  const w = await getWorld();
  const { card } = await device(w);
  const err = await new Lpa(card, { http: w.http }).discover('elsewhere.example').catch((e) => e);
  t.match(err, { code: 'es9Failed', subjectCode: '8.8.1', reasonCode: '3.8' });
});

t.test('mock-smdp sim discover, then sim discover --download: the event listed, installed, gone', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const w = await getWorld();
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-discover-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const base = ['--state', join(dir, 'card.json'), '--certs', w.pkiDir, '--url', w.url];
  const run = (...args: string[]) => runSim(args, base);
  const eid = JSON.parse((await run('eid', '--json')).out).eid as string;
  t.match(eid, /^\d{32}$/, 'a new card');
  const op = await addEs2Operator(w);
  await op.stock(1);
  const d = (await op.call('downloadOrder', { profileType: 'default', eid })).body;
  const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
  t.equal(c.status, 'Executed-Success');

  const listed = await run('discover', '--smds', SMDS, '--json');
  t.equal(listed.code, 0);
  t.match(JSON.parse(listed.out), { ok: true, eid, smdsAddress: SMDS, events: [{ eventId: c.body.matchingId, rspServerAddress: w.config.smdpAddress }] });
  t.equal((await w.profile(d.iccid))!.state, 'Released', 'listing installs nothing');

  const installed = await run('discover', '--smds', SMDS, '--download', '--json');
  t.equal(installed.code, 0);
  t.match(JSON.parse(installed.out), { installed: [{ iccid: d.iccid }] });
  t.equal((await w.profile(d.iccid))!.state, 'Installed');
  await until(async () => (await listEvents(w.db, { eid })).length === 0);
  t.match(JSON.parse((await run('discover', '--smds', SMDS, '--json')).out), { events: [] }, 'the event is gone');
});
