/**
 * A profile type with a template, registered through the admin API and through the CLI; an order of that
 * type downloads, installs and notifies through the simulator, and the package the card decrypted is the
 * template with only the order's ICCID, IMSI, Ki and OPc in it. Uses a GSMA TS.48 v7 profile from
 * ../shared/upp when that folder is there, and a template built by src/saip always.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { decodeStoreMetadataRequest } from '../../src/rsp/download.js';
import { buildProfile, decodeProfile } from '../../src/saip/profile.js';
import { personalise, readTemplate, securityDomainKeys } from '../../src/saip/template.js';
import { newDevice } from '../helpers/device.js';
import { needs, TS48 } from '../helpers/shared-data.js';
import { startWorld } from '../helpers/world.js';

const ts48File = join(TS48.dir, 'ts48-v7-saip2.3-nobertlv.der');
const own = buildProfile({
  iccid: '89000123456789012341', imsi: '001010123456789', ki: Buffer.alloc(16, 1), opc: Buffer.alloc(16, 2), spn: 'Own', profileType: 'own template',
});
const sources: Array<[string, Buffer]> = [['own', own], ...(TS48.present ? [['ts48', readFileSync(ts48File)] as [string, Buffer]] : [])];
if (!TS48.present) t.test('ts48: a GSMA TS.48 profile as the template', { skip: needs(TS48) }, async () => {});

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The CLI as a user runs it, against the test server. */
function cli(url: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', resolve(repo, 'src/cli.ts'), ...args], { cwd: repo, env: { ...process.env, MOCK_SMDP_URL: url, ADMIN_TOKEN: '' } })
    .then((r) => ({ code: 0, ...r }), (e: { code: number; stdout: string; stderr: string }) => e);
}

for (const [label, der] of sources) {
  t.test(`${label} template: admin API and CLI registration, download, install, notify`, async (t) => {
    const w = await startWorld(t);
    const api = (method: 'GET' | 'POST', url: string, payload?: object) => w.app.inject({ method, url, ...(payload ? { payload } : {}) });

    // Admin API: metadata from the template unless overridden.
    let r = await api('POST', '/admin/profile-types', { name: `${label}-api`, template: der.toString('base64') });
    t.equal(r.statusCode, 201, r.body);
    const tpl = readTemplate(der);
    t.same(r.json(), {
      name: `${label}-api`, ...tpl.metadata,
      template: {
        bytes: der.length, sha256: r.json().template.sha256, saipVersion: '2.3', profileElements: tpl.elements.length,
        profileType: tpl.profileType, iccid: tpl.iccid, imsi: tpl.imsi, algorithm: label === 'ts48' ? 'usim-test-algorithm' : 'milenage',
      },
    });
    r = await api('POST', '/admin/profile-types', { name: `${label}-api`, template: der.toString('base64'), profileName: 'Renamed', profileClass: 2, replace: true });
    t.equal(r.statusCode, 201);
    t.equal(r.json().profileName, 'Renamed', 'the type overrides the template');
    t.equal(r.json().profileClass, 2);
    t.equal(r.json().serviceProviderName, tpl.metadata.serviceProviderName, 'what it does not override still comes from the template');
    r = await api('GET', `/admin/profile-types/${label}-api/template`);
    t.equal(r.statusCode, 200);
    t.ok(r.rawPayload.equals(der), 'the stored template is the one given');

    // CLI: mock-smdp profile-type add NAME --template FILE.der
    const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-template-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 't.der'), der);
    const added = await cli(w.url, 'profile-type', 'add', `${label}-cli`, '--template', join(dir, 't.der'), '--json');
    t.equal(added.code, 0, added.stderr);
    t.equal(JSON.parse(added.stdout).template.bytes, der.length);
    const back = await cli(w.url, 'profile-type', 'template', `${label}-cli`, '--out', join(dir, 'back.der'));
    t.equal(back.code, 0, back.stderr);
    t.ok(readFileSync(join(dir, 'back.der')).equals(der));
    const missing = await cli(w.url, 'profile-type', 'add', 'x', '--template', join(dir, 'nope.der'));
    t.equal(missing.code, 1);
    t.match(missing.stderr, /cannot read the template .*nope\.der: ENOENT/);

    // An order of the CLI-registered type, downloaded by the simulator.
    const { card, lpa } = await newDevice(w);
    const order = await w.order({ profileType: `${label}-cli` });
    const result = await lpa.download(order.activationCode);
    t.equal(result.iccid, order.iccid);
    t.equal(result.notificationSent, true);
    const row = (await w.profile(order.iccid))!;
    t.equal(row.state, 'Installed');

    const installed = card.profiles.find((p) => p.iccid === order.iccid)!;
    const upp = Buffer.from(installed.package!, 'base64');
    const d = decodeProfile(upp);
    t.same([d.iccid, d.imsi, d.ki.toString('hex'), d.opc.toString('hex')], [row.iccid, row.imsi, row.ki.toString('hex'), row.opc.toString('hex')]);
    t.ok(upp.equals(personalise(tpl, { iccid: row.iccid, imsi: row.imsi, ki: row.ki, opc: row.opc })),
      'the card holds the template with only the personalised fields changed');
    let diff = 0;
    for (let i = 0; i < der.length; i++) if (der[i] !== upp[i]) diff++;
    t.ok(diff > 0 && diff <= 10 + 10 + 9 + 32 * tpl.slots.aka.length, `${diff} bytes differ, all in personalised fields`);
    const keys = (await api('GET', `/admin/profiles/${order.iccid}/keys`)).json();
    t.equal(keys.source, 'template');
    t.equal(keys.ki, row.ki.toString('hex').toUpperCase());
    t.same(keys.securityDomains.map((sd: { keys: unknown[] }) => sd.keys.length), label === 'ts48' ? [6] : [0], "the template's own MNO-SD keys");
    const md = decodeStoreMetadataRequest(Buffer.from(installed.metadata, 'hex'));
    t.same([md.serviceProviderName, md.profileName, md.profileClass], [tpl.metadata.serviceProviderName, tpl.metadata.profileName, tpl.metadata.profileClass],
      'metadata from the template');
  });
}

t.test('a broken template is refused with the element and offset, and nothing is stored', async (t) => {
  const w = await startWorld(t);
  const api = (method: 'GET' | 'POST', url: string, payload?: object) => w.app.inject({ method, url, ...(payload ? { payload } : {}) });
  const before = (await api('GET', '/admin/profile-types')).json();

  let r = await api('POST', '/admin/profile-types', { name: 'cut', template: own.subarray(0, own.length - 3).toString('base64') });
  t.equal(r.statusCode, 400);
  t.equal(r.json().error, 'invalidTemplate');
  // the element and offset are the error's details (the one ApiError body, docs/api.md)
  t.match(r.json().details.element, /^(end|ProfileElement \d+)/);
  t.type(r.json().details.offset, 'number');
  t.match(r.json().message, new RegExp(`at offset ${r.json().details.offset}`));

  r = await api('POST', '/admin/profile-types', { name: 'notb64', template: 'not base64!' });
  t.equal(r.statusCode, 400);
  t.match(r.json().message, /base64/);
  r = await api('POST', '/admin/profile-types', { name: 'nothing' });
  t.equal(r.statusCode, 400, 'no template and no metadata');
  t.match(r.json().message, /serviceProviderName is required/);

  t.same((await api('GET', '/admin/profile-types')).json(), before, 'no profile type was stored');
  t.equal((await api('GET', '/admin/profile-types/cut/template')).statusCode, 404);
});

t.test('a generated profile carries fresh SCP03 keys per profile, and the operator reads them from the admin API', async (t) => {
  const w = await startWorld(t);
  const { card, lpa } = await newDevice(w);
  const a = await w.order();
  const b = await w.order();
  await lpa.download(a.activationCode);
  const keysOf = async (iccid: string) => (await w.app.inject({ method: 'GET', url: `/admin/profiles/${iccid}/keys` })).json();
  const ka = await keysOf(a.iccid);
  const kb = await keysOf(b.iccid);
  t.equal(ka.source, 'generated');
  t.same(ka.securityDomains[0].keys.map((k: { usage: string; id: string; kvn: string; type: string }) => `${k.usage}/${k.id}/${k.kvn}/${k.type}`),
    ['18/01/30/aes', '14/02/30/aes', '48/03/30/aes']);
  const row = (await w.profile(a.iccid))!;
  t.equal(ka.securityDomains[0].keys.map((k: { key: string }) => k.key).join(''), row.scp03_keys!.toString('hex').toUpperCase(), 'the keys kept with the order');
  t.not(ka.securityDomains[0].keys[0].key, kb.securityDomains[0].keys[0].key, 'each profile has its own keys');
  const onCard = securityDomainKeys(Buffer.from(card.profiles.find((p) => p.iccid === a.iccid)!.package!, 'base64'));
  t.same(onCard[0]!.keys.map((k) => k.key.toString('hex').toUpperCase()), ka.securityDomains[0].keys.map((k: { key: string }) => k.key), 'the card got those keys');
  t.equal((await w.app.inject({ method: 'GET', url: '/admin/profiles/89000000000000000001/keys' })).statusCode, 404);
});
