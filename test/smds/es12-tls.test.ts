/**
 * ES12 over mutual TLS (docs/smds.md#es12-authentication): on the HTTPS listener the built-in SM-DS
 * knows its caller by the verified client certificate. Refused: no certificate, a key alone, a
 * certificate of an unknown CA, one that is not a CERT.DP.TLS, one whose SM-DP+ is not on the
 * allow-list, a requester the certificate does not name; accepted: this SM-DP+'s CERT.DP.TLS and
 * an allow-listed SM-DP+'s. The same listener still serves LPAs with no client certificate: the
 * full flow (confirmOrder with smdsAddress, discovery, download) over TLS on both curves, and
 * `mock-smdp sim discover --download`. An external SM-DS that trusts a partner CA
 * (SMDS_ES12_CLIENT_CA) and an SM-DP+ presenting ES12_CLIENT_CERT/KEY. The listener's CERT.DS.TLS
 * for the SM-DS's own host name (SNI). The ES12 TLS settings' start-up errors.
 */
import t from 'tap';
import https from 'node:https';
import tls from 'node:tls';
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, defaultConfig } from '../../src/config.js';
import { CURVES, type CurveName } from '../../src/crypto/curves.js';
import { RSP_ROLE, type Certificate } from '../../src/crypto/x509.js';
import { issueCertificate } from '../../src/pki/issue.js';
import { CURVE_NAMES, keyPath } from '../../src/pki/layout.js';
import { loadServerPki, privateKeyFromPem } from '../../src/pki/load.js';
import { Lpa } from '../../src/sim/lpa.js';
import { addSmdsClient, ownEs12Key } from '../../src/smds/es12-auth.js';
import { es12ClientTls, smdsEs12ClientCas } from '../../src/smds/es12-tls.js';
import { listEvents } from '../../src/smds/store.js';
import { httpsServerOptions } from '../../src/tls-profile.js';
import { addEs2Operator, statusOf } from '../helpers/es2plus.js';
import { newDevice, until } from '../helpers/operator.js';
import { needs, SGP26 } from '../helpers/shared-data.js';
import { runSim } from '../helpers/sim-cli.js';
import { startWorld, testPkiDir, type World } from '../helpers/world.js';

const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-es12-tls-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

let world: Promise<World> | undefined;
// The SM-DS with a name of its own, so that discovery on lpac's ES9+ paths reaches it (docs/smds.md#es11-on-the-es9-paths).
const SMDS = 'smds.localhost:8443';
const getWorld = () => (world ??= startWorld(t, { tls: true, config: { smdsAddress: SMDS } }));

interface ClientCert { cert: string; key: string }

/** One ES12 call over TLS to the world's listener, with or without a client certificate. */
function es12(w: World, fn: string, body: Record<string, unknown>, requester: string, client?: ClientCert, headers: Record<string, string> = {}) {
  const payload = Buffer.from(JSON.stringify({ header: { functionRequesterIdentifier: requester, functionCallIdentifier: randomUUID() }, ...body }));
  return new Promise<{ status: string; message?: string }>((resolve, reject) => {
    const req = https.request(`${w.url}/gsma/rsp2/es12/${fn}`, {
      method: 'POST',
      ca: w.pki.cis.map((c) => c.toPem()),
      servername: 'localhost',
      agent: false,
      ...(client ?? {}),
      headers: { 'content-type': 'application/json', 'content-length': String(payload.length), 'x-admin-protocol': 'gsma/rsp/v2.5.0', ...headers },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
          else resolve({ status: statusOf(json), message: json.header?.functionExecutionStatus?.statusCodeData?.message });
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const newKey = (curve: CurveName) => generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName }).privateKey;
const pem = (cert: Certificate, key: KeyObject, chain: Certificate[] = []): ClientCert => ({
  cert: [cert, ...chain].map((c) => c.toPem()).join(''),
  key: key.export({ format: 'pem', type: 'pkcs8' }).toString(),
});

/** A TLS client certificate for an SM-DP+ of OID `oid`, issued by the world's CI (or a stranger's). */
function clientCert(w: World, opts: { oid: string; role?: string; stranger?: boolean; curve?: CurveName }): ClientCert {
  const curve = opts.curve ?? 'P-256';
  const key = newKey(curve);
  let issuer: { cert: Certificate; key: KeyObject };
  if (opts.stranger) {
    const k = newKey(curve);
    const ci = issueCertificate({
      subject: [['CN', 'Stranger CI']], subjectKey: k, notAfter: new Date(Date.now() + 86_400_000),
      policies: [RSP_ROLE.ci], keyUsage: ['keyCertSign', 'cRLSign'], ca: {},
    });
    issuer = { cert: ci, key: k };
  } else {
    const ci = w.pki.credentials.find((c) => c.curve === curve)!.ci;
    issuer = { cert: ci, key: privateKeyFromPem(readFileSync(join(w.pkiDir, keyPath('ci', curve)), 'utf8')) };
  }
  const cert = issueCertificate({
    subject: [['O', 'another SM-DP+'], ['CN', 'smdp.other.example']], subjectKey: key, issuer,
    notAfter: new Date(Date.now() + 86_400_000), policies: [opts.role ?? RSP_ROLE.dpTls], policiesCritical: false,
    keyUsage: ['digitalSignature'], extKeyUsage: ['serverAuth', 'clientAuth'],
    sanDnsNames: ['smdp.other.example'], sanRegisteredIds: [opts.oid],
  });
  return pem(cert, key, [issuer.cert]);
}

t.test('ES12 over TLS: the caller is its verified client certificate', async (t) => {
  const w = await getWorld();
  const me = w.pki.smdpOid;
  const own: ClientCert = { cert: w.pki.tls!.chainPem, key: w.pki.tls!.keyPem };
  const eid = '89049032000000000000000000000019';
  const ev = (id: string) => ({ eid, eventId: id, rspServerAddress: 'smdp.other.example' });

  t.match(await es12(w, 'registerEvent', ev('TLS-0'), me), { status: 'Failed 1.1/1.1', message: /mutual TLS/ }, 'no client certificate');
  t.equal((await es12(w, 'registerEvent', ev('TLS-0'), me, undefined, { 'x-api-key': ownEs12Key(w.pki) })).status, 'Failed 1.1/1.1', 'the key alone is not enough over TLS');
  t.match(await es12(w, 'registerEvent', ev('TLS-0'), '2.999.70', clientCert(w, { oid: '2.999.70', stranger: true })),
    { status: 'Failed 1.1/1.1', message: /not trusted/ }, 'a certificate of an unknown CA');
  t.match(await es12(w, 'registerEvent', ev('TLS-0'), '2.999.71', clientCert(w, { oid: '2.999.71', role: RSP_ROLE.dpAuth })),
    { status: 'Failed 1.1/1.1', message: /not an SM-DP\+ TLS certificate/ }, 'a CERT.DPauth is not a TLS client certificate');

  const other = clientCert(w, { oid: '2.999.72' });
  t.match(await es12(w, 'registerEvent', ev('TLS-1'), '2.999.72', other), { status: 'Failed 1.1/1.2', message: /not allowed/ }, 'trusted, but not on the allow-list');
  await addSmdsClient(w.db, '2.999.72');
  t.match(await es12(w, 'registerEvent', ev('TLS-1'), me, other), { status: 'Failed 1.1/1.2', message: /client certificate names/ }, 'a requester the certificate does not name');
  t.equal((await es12(w, 'registerEvent', ev('TLS-1'), '2.999.72', other)).status, 'Executed-Success', 'allow-listed: accepted');
  t.same((await listEvents(w.db, { eid })).map((e) => [e.eventId, e.registeredBy]), [['TLS-1', '2.999.72']]);
  t.equal((await es12(w, 'deleteEvent', { eid, eventId: 'TLS-1' }, me, own)).status, 'Failed 1.1/1.2', 'not this SM-DP+\'s event');
  t.equal((await es12(w, 'deleteEvent', { eid, eventId: 'TLS-1' }, '2.999.72', other)).status, 'Executed-Success');

  t.equal((await es12(w, 'registerEvent', { ...ev('TLS-2'), rspServerAddress: w.config.smdpAddress }, me, own)).status, 'Executed-Success', "this SM-DP+'s CERT.DP.TLS");
  t.equal((await es12(w, 'deleteEvent', { eid, eventId: 'TLS-2' }, me, own)).status, 'Executed-Success');
  t.same(await listEvents(w.db, { eid }), []);
});

for (const curve of CURVE_NAMES) {
  t.test(`over TLS: confirmOrder with smdsAddress, discovered and installed by an LPA with no client certificate (${curve})`, async (t) => {
    const w = await getWorld();
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card } = await newDevice(w, curve);
    const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
    const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
    t.equal(c.status, 'Executed-Success', 'RegisterEvent with the SM-DP+\'s client certificate');
    const lpa = new Lpa(card, { http: w.http });
    const found = await lpa.discover(SMDS);
    t.same(found, [{ eventId: c.body.matchingId, rspServerAddress: w.config.smdpAddress }], 'discovered on the same TLS port');
    const r = await lpa.download(`1$${found[0]!.rspServerAddress}$${found[0]!.eventId}`);
    t.equal(r.iccid, d.iccid);
    await until(async () => (await listEvents(w.db, { eid: card.eid })).length === 0);
    t.pass('DeleteEvent over mutual TLS after the install');
  });
}

t.test('over TLS: mock-smdp sim discover --download (no client certificate) installs the event registered over mutual TLS', async (t) => {
  const w = await getWorld();
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-discover-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // --insecure as lpac: the test listener has no CERT.DS.TLS of the SM-DS's own name.
  const base = ['--state', join(dir, 'card.json'), '--certs', w.pkiDir, '--url', w.url, '--insecure'];
  const run = (...args: string[]) => runSim(args, base);
  const eid = JSON.parse((await run('eid', '--json')).out).eid as string;
  const op = await addEs2Operator(w);
  await op.stock(1);
  const d = (await op.call('downloadOrder', { profileType: 'default', eid })).body;
  t.equal((await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true })).status, 'Executed-Success');
  const installed = await run('discover', '--smds', SMDS, '--download', '--json');
  t.equal(installed.code, 0, installed.out);
  t.match(JSON.parse(installed.out), { installed: [{ iccid: d.iccid }] });
  t.equal((await w.profile(d.iccid))!.state, 'Installed');
  await until(async () => (await listEvents(w.db, { eid })).length === 0);
  t.pass('the event is gone');
});

t.test('an external SM-DS: ES12_CLIENT_CERT/KEY presented, accepted there under SMDS_ES12_CLIENT_CA, refused under an unknown CA', async (t) => {
  const { buildApp } = await import('../../src/app.js');
  const { openTestDb } = await import('../helpers/db.js');
  const dir = await testPkiDir();
  const pki = loadServerPki(dir);
  // Two CAs of other parties; the external SM-DS trusts the first for ES12 client certificates.
  const party = (cn: string) => {
    const k = newKey('P-256');
    return { key: k, cert: issueCertificate({ subject: [['CN', cn]], subjectKey: k, notAfter: new Date(Date.now() + 86_400_000), policies: [RSP_ROLE.ci], keyUsage: ['keyCertSign', 'cRLSign'], ca: {} }) };
  };
  const trusted = party('Partner CA');
  const unknown = party('Unknown CA');
  const smdsDb = await openTestDb(t);
  const smdsConfig = { ...defaultConfig({}), smdpAddress: 'localhost:8443', certsDir: dir, tls: true, logLevel: 'silent' };
  const smds = await buildApp({ config: smdsConfig, db: smdsDb, pki },
    { logger: false, https: httpsServerOptions('sgp22', pki.tls!, { extraClientCas: [trusted.cert.toPem()] }) } as object);
  await smds.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => smds.close());
  const smdsAddress = `localhost:${(smds.server.address() as { port: number }).port}`;

  const clientFiles = (issuer: { cert: Certificate; key: KeyObject }, name: string) => {
    const key = newKey('P-256');
    const cert = issueCertificate({
      subject: [['CN', 'smdp.partner.example']], subjectKey: key, issuer, notAfter: new Date(Date.now() + 86_400_000),
      policies: [RSP_ROLE.dpTls], policiesCritical: false, keyUsage: ['digitalSignature'], extKeyUsage: ['clientAuth'],
      sanDnsNames: ['smdp.partner.example'], sanRegisteredIds: [pki.smdpOid],
    });
    writeFileSync(join(tmp, `${name}.pem`), cert.toPem() + issuer.cert.toPem());
    writeFileSync(join(tmp, `${name}.key`), key.export({ format: 'pem', type: 'pkcs8' }));
    return { es12ClientCert: join(tmp, `${name}.pem`), es12ClientKey: join(tmp, `${name}.key`) };
  };
  for (const [name, issuer, ok] of [['partner', trusted, true], ['stranger', unknown, false]] as const) {
    const w = await startWorld(t, { config: clientFiles(issuer, name) });
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card } = await newDevice(w);
    const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
    const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress, releaseFlag: true });
    if (ok) {
      t.equal(c.status, 'Executed-Success', 'a client certificate under SMDS_ES12_CLIENT_CA: registered');
      t.same((await listEvents(smdsDb, { eid: card.eid })).map((e) => e.eventId), [c.body.matchingId]);
    } else {
      t.equal(c.status, 'Failed 8.9/4.2', 'under an unknown CA: the SM-DS refuses');
      t.match(c.message, /1\.1\/1\.1 .*not trusted/);
      t.same(await listEvents(smdsDb, { eid: card.eid }), []);
    }
  }
});

t.test('the SGP.26 folder over TLS: its expired CERT.DP.TLS still carries the server\'s own ES12 calls, both ways', { skip: needs(SGP26) }, async (t) => {
  const w = await startWorld(t, { pkiDir: SGP26.dir, smdpAddress: 'testsmdpplus1.example.com', tls: true });
  t.equal(w.pki.dsTls, undefined, 'no CERT.DS.TLS in the SGP.26 set');
  t.ok(w.pki.tls!.cert.notAfter < new Date(), 'its CERT.DP.TLS has expired');
  const op = await addEs2Operator(w);
  await op.stock(1);
  // ES2+ by inject: the test's own HTTPS client refuses the expired certificate; the server's ES12 calls go over its socket.
  const call = async (fn: string, body: Record<string, unknown>) => {
    const r = await w.app.inject({
      method: 'POST', url: `/gsma/rsp2/es2plus/${fn}`,
      headers: { 'x-api-key': op.apiKey, 'x-admin-protocol': 'gsma/rsp/v2.5.0' },
      payload: { header: { functionRequesterIdentifier: op.id, functionCallIdentifier: randomUUID() }, ...body },
    });
    return { status: statusOf(r.json()), body: r.json(), message: r.json().header?.functionExecutionStatus?.statusCodeData?.message as string | undefined };
  };
  const eid = '89049032123451234512345678901235';
  const d = (await call('downloadOrder', { profileType: 'default', eid })).body;
  const c = await call('confirmOrder', { iccid: d.iccid, smdsAddress: w.config.smdpAddress, releaseFlag: true });
  t.equal(c.status, 'Executed-Success', c.message ?? 'RegisterEvent on the own socket');
  t.same((await listEvents(w.db, { eid })).map((e) => e.eventId), [c.body.matchingId]);
  t.equal((await call('cancelOrder', { iccid: d.iccid, finalProfileStatusIndicator: 'Available' })).status, 'Executed-Success');
  await until(async () => (await listEvents(w.db, { eid })).length === 0);
  t.pass('DeleteEvent too');
});

t.test('CERT.DS.TLS is served for the SM-DS host name (SNI), CERT.DP.TLS otherwise', async (t) => {
  const dir = await testPkiDir();
  const pki = loadServerPki(dir);
  t.ok(pki.dsTls, 'the generated PKI has a CERT.DS.TLS');
  t.ok(pki.dsTls!.cert.policies.includes(RSP_ROLE.dsTls), 'role ds-tls');
  // The shared test PKI names both TLS certificates localhost: SNI cannot tell them apart, so a copy named smds.localhost.
  const ciKey = privateKeyFromPem(readFileSync(join(dir, keyPath('ci', pki.dsTls!.curve)), 'utf8'));
  const ci = pki.credentials.find((c) => c.curve === pki.dsTls!.curve)!.ci;
  const key = newKey(pki.dsTls!.curve);
  const ds = issueCertificate({
    subject: [['CN', 'smds.localhost']], subjectKey: key, issuer: { cert: ci, key: ciKey }, notAfter: new Date(Date.now() + 86_400_000),
    policies: [RSP_ROLE.dsTls], policiesCritical: false, keyUsage: ['digitalSignature'], extKeyUsage: ['serverAuth', 'clientAuth'],
    sanDnsNames: ['smds.localhost'], sanRegisteredIds: ['2.999.20'],
  });
  const dsTls = { cert: ds, keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(), chainPem: ds.toPem() + ci.toPem() };
  const server = https.createServer(httpsServerOptions('sgp22', pki.tls!, { dsTls }), (_q, r) => r.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => server.close(r)));
  const port = (server.address() as { port: number }).port;
  const subjectOf = (servername: string) => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, ca: pki.cis.map((c) => c.toPem()) }, () => {
      const cn = s.getPeerCertificate().subject.CN;
      s.end();
      resolve(String(cn));
    });
    s.on('error', reject);
  });
  t.equal(await subjectOf('smds.localhost'), 'smds.localhost', 'the SM-DS name: CERT.DS.TLS, verified against the CI');
  t.equal(await subjectOf('localhost'), 'localhost', 'the SM-DP+ name: CERT.DP.TLS');
});

t.test('ES12 TLS settings: one line naming the variable', async (t) => {
  const dir = await testPkiDir();
  const pki = loadServerPki(dir);
  t.throws(() => defaultConfig({ ES12_CLIENT_CERT: '/x.pem' }), { name: 'ConfigError', message: /ES12_CLIENT_CERT and ES12_CLIENT_KEY go together/ });
  t.throws(() => es12ClientTls({ es12ClientCert: join(tmp, 'none.pem'), es12ClientKey: join(tmp, 'none.key') }, pki), { name: 'ConfigError', message: /^ES12_CLIENT_CERT: cannot read .*ENOENT$/ });
  writeFileSync(join(tmp, 'cert.pem'), pki.tls!.chainPem);
  writeFileSync(join(tmp, 'other.key'), newKey('P-256').export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(join(tmp, 'own.key'), pki.tls!.keyPem);
  writeFileSync(join(tmp, 'junk.pem'), 'not a certificate');
  t.throws(() => es12ClientTls({ es12ClientCert: join(tmp, 'cert.pem'), es12ClientKey: join(tmp, 'other.key') }, pki), { message: /^ES12_CLIENT_KEY: .* is not the key of the first certificate/ });
  t.throws(() => es12ClientTls({ es12ClientCert: join(tmp, 'junk.pem'), es12ClientKey: join(tmp, 'own.key') }, pki), { message: /^ES12_CLIENT_CERT: .* holds no PEM certificate/ });
  t.throws(() => es12ClientTls({ es12ClientCert: join(tmp, 'cert.pem'), es12ClientKey: join(tmp, 'junk.pem') }, pki), { message: /^ES12_CLIENT_KEY: .* holds no readable PEM private key/ });
  t.equal(es12ClientTls({ es12ClientCert: join(tmp, 'cert.pem'), es12ClientKey: join(tmp, 'own.key') }, pki)!.source, join(tmp, 'cert.pem'));
  t.equal(es12ClientTls({}, pki)!.certPem, pki.tls!.chainPem, 'default: CERT.DP.TLS');
  t.throws(() => smdsEs12ClientCas({ smdsEs12ClientCa: join(tmp, 'junk.pem') }), ConfigError);
  t.equal(smdsEs12ClientCas({ smdsEs12ClientCa: join(tmp, 'cert.pem') }).length, 2);
  for (const [name, v] of Object.entries({ ES12_SMDS_CA: 'a\0b', SMDS_ES12_CLIENT_CA: 'a\0b' })) {
    t.throws(() => defaultConfig({ [name]: v }), { message: new RegExp(`^${name} must be a file path`) });
  }
  t.equal(defaultConfig({ ES12_CLIENT_CERT: 'c.pem', ES12_CLIENT_KEY: 'k.pem', ES12_SMDS_CA: 'ca.pem', SMDS_ES12_CLIENT_CA: 'cl.pem' }).es12SmdsCa, 'ca.pem');
});
