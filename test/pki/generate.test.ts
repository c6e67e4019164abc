import t from 'tap';
import https from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomInt, X509Certificate } from 'node:crypto';
import { Certificate, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { generatePki, sampleEid } from '../../src/pki/generate.js';
import { eidCheckDigits, eidChecksumOk as eidChecksumValid, eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { certPath, CREDENTIAL_KINDS, keyPath } from '../../src/pki/layout.js';
import { loadEuiccCredentials, loadServerPki } from '../../src/pki/load.js';

const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-gen-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('EID check digits', async (t) => {
  t.equal(eidCheckDigits('890490321234512345123456789012'), '35', 'SGP.26 test EID');
  t.equal(eidWithCheckDigits('890490321234512345123456789012'), '89049032123451234512345678901235');
  t.equal(eidChecksumValid('89049032123451234512345678901235'), true);
  t.equal(eidChecksumValid('89049032123451234512345678901236'), false);
  t.equal(eidChecksumValid('89049032123451234512345678901253'), false, 'swapped check digits');
  t.equal(eidChecksumValid('8904903212345123451234567890123'), false, '31 digits');
  for (let i = 0; i < 50; i++) {
    const body = Array.from({ length: 30 }, () => randomInt(10)).join('');
    const eid = eidWithCheckDigits(body);
    t.equal(BigInt(eid) % 97n, 1n, eid);
  }
  t.equal(sampleEid('89049032'), '89049032000000000000000000000163');
  t.equal(eidChecksumValid(sampleEid('8904')), true);
  t.throws(() => eidCheckDigits('123'), { code: 'invalidEid' });
  t.throws(() => sampleEid('89x'), { code: 'invalidEid' });
});

t.test('generatePki writes the SGP.26 layout and it loads', async (t) => {
  const dir = join(tmp, 'default');
  const g = await generatePki(dir);
  t.equal(g.files.length, 32, "every kind incl. the SM-DS's DSauth and DS TLS, per curve");
  for (const k of CREDENTIAL_KINDS) {
    for (const c of ['P-256', 'brainpoolP256r1'] as const) {
      t.ok(existsSync(join(dir, certPath(k, c))), certPath(k, c));
      t.equal(statSync(join(dir, keyPath(k, c))).mode & 0o077, 0, `${keyPath(k, c)} private to the owner`);
      t.match(readFileSync(join(dir, keyPath(k, c)), 'utf8'), /^-----BEGIN EC PRIVATE KEY-----/);
    }
  }
  t.equal(g.smdpOid, '2.999.10');
  t.equal(g.eid, '89049032000000000000000000000163');

  const pki = loadServerPki(dir);
  t.same(pki.warnings, []);
  t.equal(pki.smdpOid, '2.999.10');
  t.same([...pki.byCiSkiHex.keys()].sort(), [g.ciSkis['P-256'], g.ciSkis.brainpoolP256r1].sort());
  t.equal(pki.credentials.length, 2);
  t.equal(pki.cis.length, 2);
  for (const cred of pki.credentials) {
    t.equal(cred.ci.curve, cred.curve);
    t.equal(cred.auth.cert.curve, cred.curve);
    t.same(cred.ci.sanRegisteredIds, ['2.999.1']);
    t.same(cred.auth.cert.aki, cred.ciSki);
    checkIssued(cred.auth.cert, cred.ci, { role: RSP_ROLE.dpAuth });
    checkIssued(cred.pb.cert, cred.ci, { role: RSP_ROLE.dpPb });
    t.same(cred.tls?.cert.sanDnsNames, ['localhost']);
    t.same(cred.tls?.cert.extKeyUsage, ['serverAuth', 'clientAuth']);
    t.equal(cred.tls?.cert.policiesCritical, false);
  }
  t.equal(pki.tls?.curve, 'P-256');

  for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
    const e = loadEuiccCredentials(dir, { curve });
    t.equal(e.eid, g.eid);
    t.equal(e.curve, curve);
    t.same(e.eum.permittedEins, ['89049032']);
    t.equal(e.eum.pathLen, 0);
    t.same(e.eum.sanRegisteredIds, ['2.999.5']);
    t.equal(e.cert.notAfter.toISOString(), '9999-12-31T23:59:59.000Z');
    const ci = pki.cis.find((c) => c.curve === curve)!;
    checkIssued(e.eum, ci, { role: RSP_ROLE.eum });
    checkIssued(e.cert, e.eum, { role: RSP_ROLE.euicc });
  }

  // The DP TLS credentials serve HTTPS that a client trusting only the CI accepts.
  const server = https.createServer({ key: pki.tls!.keyPem, cert: pki.tls!.chainPem }, (_q, r) => r.end('hello'));
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const get = (ca: string[]) =>
    new Promise<string>((res, rej) =>
      https
        .get({ host: '127.0.0.1', port, servername: 'localhost', ca, agent: false }, (r) => {
          let d = '';
          r.on('data', (c) => (d += c));
          r.on('end', () => res(d));
        })
        .on('error', rej),
    );
  t.equal(await get(pki.cis.map((c) => c.toPem())), 'hello', 'TLS handshake verified against the CI');
  await t.rejects(get([Certificate.parse(readFileSync(join(tmp, 'default', certPath('eum', 'P-256')))).toPem()]), 'untrusted without the CI');
});

t.test('options', async (t) => {
  const dir = join(tmp, 'opts');
  const g = await generatePki(dir, {
    hostname: '127.0.0.1',
    smdpOid: '1.3.6.1.4.1.99999.7',
    ciOid: '1.3.6.1.4.1.99999.1',
    einPrefix: '89033023',
    curves: ['brainpoolP256r1'],
  });
  t.equal(g.files.length, 16);
  t.notOk(existsSync(join(dir, certPath('ci', 'P-256'))));
  t.ok(g.eid.startsWith('89033023') && eidChecksumValid(g.eid));
  const pki = loadServerPki(dir);
  t.equal(pki.smdpOid, '1.3.6.1.4.1.99999.7');
  t.equal(pki.tls?.curve, 'brainpoolP256r1', 'only TLS certificate there');
  t.same(pki.tls?.cert.sanDnsNames, []);
  t.equal(new X509Certificate(pki.tls!.cert.raw).checkIP('127.0.0.1'), '127.0.0.1', 'SAN iPAddress for an IP host');
  t.same(pki.cis[0]!.sanRegisteredIds, ['1.3.6.1.4.1.99999.1']);
  t.ok(pki.tls?.cert.sanRegisteredIds.includes('1.3.6.1.4.1.99999.7'));
  const euicc = loadEuiccCredentials(dir);
  t.same(euicc.eum.permittedEins, ['89033023']);
  t.equal(euicc.curve, 'brainpoolP256r1');

  const p2 = loadServerPki(dir, { tlsCurve: 'P-256' });
  t.equal(p2.tls, undefined, 'no NIST TLS certificate');
  t.match(p2.warnings.join('\n'), /no NIST DP TLS/);

  await t.rejects(generatePki(dir, { curves: ['brainpoolP256r1'] }), { name: 'PkiError', code: 'exists' }, 'refuses to overwrite');
  const again = await generatePki(dir, { curves: ['brainpoolP256r1'], force: true });
  t.not(again.ciSkis.brainpoolP256r1, g.ciSkis.brainpoolP256r1, 'new CI');
  t.equal(loadServerPki(dir).smdpOid, '2.999.10');

  await t.rejects(generatePki(join(tmp, 'x1'), { smdpOid: 'not.an.oid' }), { code: 'invalidSpec' });
  await t.rejects(generatePki(join(tmp, 'x2'), { einPrefix: '89AB' }), { code: 'invalidEid' });
  await t.rejects(generatePki(join(tmp, 'x3'), { eid: '89049031000000000000000000000000' }), { code: 'invalidEid' });
  await t.rejects(generatePki(join(tmp, 'x4'), { hostname: 'bad host' }), { code: 'invalidSpec' });
  t.notOk(existsSync(join(tmp, 'x1')), 'nothing written on bad options');
});
