import t from 'tap';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, sign, verify } from 'node:crypto';
import { Certificate, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { generatePki } from '../../src/pki/generate.js';
import { issueCertificate } from '../../src/pki/issue.js';
import { certPath, keyPath } from '../../src/pki/layout.js';
import { needs, SGP26 } from '../helpers/shared-data.js';
import {
  issueEuiccCredentials,
  loadEuiccCredentials,
  loadServerPki,
  PkiError,
  privateKeyFromPem,
  privateKeyToPem,
  writeEuiccCredentials,
} from '../../src/pki/load.js';

const sgp26 = SGP26.dir;
const skip = needs(SGP26);

const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-load-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

function failure(fn: () => unknown): { code?: string; cause?: string } {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PkiError)) throw err;
    return { code: err.code, cause: (err.cause as { code?: string } | undefined)?.code };
  }
  return {};
}

t.test('SGP.26: loadServerPki', { skip }, async (t) => {
  const pki = loadServerPki(sgp26, { now: new Date('2026-01-01T00:00:00Z') });
  t.same(pki.warnings, [], 'all valid at the start of 2026');
  t.equal(pki.smdpOid, '2.999.10');
  t.same([...pki.byCiSkiHex.keys()], ['F54172BDF98A95D65CBEB88A38A1C11D800A85C3', 'C0BC70BA36929D43B467FF57570530E57AB8FCD8']);
  const nist = pki.byCiSkiHex.get('F54172BDF98A95D65CBEB88A38A1C11D800A85C3')!;
  t.equal(nist.curve, 'P-256');
  t.same(nist.auth.cert.policies, [RSP_ROLE.dpAuth]);
  t.same(nist.pb.cert.policies, [RSP_ROLE.dpPb]);
  t.equal(pki.byCiSkiHex.get('C0BC70BA36929D43B467FF57570530E57AB8FCD8')!.curve, 'brainpoolP256r1');
  t.equal(pki.cis.length, 2);
  // keys pair with their certificates (EC PARAMETERS + EC PRIVATE KEY PEM)
  const data = Buffer.from('signed by DPauth');
  t.ok(verify('sha256', data, nist.auth.cert.publicKey, sign('sha256', data, nist.auth.key)));

  t.equal(pki.tls?.curve, 'P-256');
  t.same(pki.tls?.cert.sanDnsNames, ['testsmdpplus1.example.com']);
  t.match(pki.tls?.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  t.equal(pki.tls?.chainPem.match(/BEGIN CERTIFICATE/g)?.length, 2);
  t.equal(Certificate.fromPem(pki.tls!.chainPem).raw.toString('hex'), readFileSync(join(sgp26, 'DPtls/CERT_S_SM_DP_TLS_NIST.der')).toString('hex'));
  t.ok(createPublicKey(pki.tls!.keyPem).equals(pki.tls!.cert.publicKey));

  const later = loadServerPki(sgp26, { now: new Date('2026-09-01T00:00:00Z'), tlsCurve: 'brainpoolP256r1' });
  t.equal(later.warnings.length, 2, 'both TLS certificates expired: warnings, not errors');
  t.match(later.warnings[0], /DPtls\/CERT_S_SM_DP_TLS_NIST\.der expired on 2026-08-02/);
  t.equal(later.tls?.curve, 'brainpoolP256r1');
  t.ok(later.tls, 'expired TLS certificate is still served');
});

t.test('SGP.26: eUICC credentials', { skip }, async (t) => {
  const e = loadEuiccCredentials(sgp26);
  t.equal(e.eid, '89049032123451234512345678901235');
  t.equal(e.curve, 'P-256');
  t.equal(e.eum.subject.get('CN'), 'EUM Test');
  t.equal(e.cis.length, 2);
  const data = Buffer.from('euiccSigned1');
  t.ok(verify('sha256', data, e.cert.publicKey, sign('sha256', data, e.key)));
  t.same(failure(() => loadEuiccCredentials(sgp26, { curve: 'brainpoolP256r1' })), { code: 'missingFile', cause: 'ENOENT' });

  // The SGP.26 EUM key is published too: more eUICCs under the real test CI.
  const eid = '89049032000000000000000000000163';
  const mine = issueEuiccCredentials(sgp26, eid, 'P-256');
  t.equal(mine.eid, eid);
  t.equal(mine.cert.subjectSerialNumber, eid);
  t.equal(mine.cert.subject.get('O'), 'RSP Test EUM');
  checkIssued(mine.cert, e.eum, { role: RSP_ROLE.euicc });
  const out = join(tmp, 'card');
  writeEuiccCredentials(out, mine);
  const back = loadEuiccCredentials(out);
  t.equal(back.eid, eid);
  t.ok(back.cert.raw.equals(mine.cert.raw));
  t.ok(createPublicKey(back.key).equals(mine.cert.publicKey));
  t.equal(back.cis.length, 2);
  t.notOk(existsSync(join(out, keyPath('eum', 'P-256'))), 'no EUM key in a card folder');

  t.same(failure(() => issueEuiccCredentials(sgp26, '89049033000000000000000000000000', 'P-256')), { code: 'invalidEid', cause: undefined }, 'outside the EIN');
  t.same(failure(() => issueEuiccCredentials(sgp26, '8904903200', 'P-256')), { code: 'invalidEid', cause: undefined }, 'not 32 digits');
});

t.test('generated PKI: tampering and mistakes are refused', async (t) => {
  const base = join(tmp, 'base');
  const other = join(tmp, 'other');
  await generatePki(base, { curves: ['P-256'] });
  await generatePki(other, { curves: ['P-256'] });
  let n = 0;
  const copy = () => {
    const d = join(tmp, `case${n++}`);
    cpSync(base, d, { recursive: true });
    return d;
  };
  const ciOf = (d: string) => ({
    cert: Certificate.parse(readFileSync(join(d, certPath('ci', 'P-256')))),
    key: privateKeyFromPem(readFileSync(join(d, keyPath('ci', 'P-256')), 'utf8')),
  });
  const dpSpec = (role: string, oid = '2.999.10') => ({
    subject: [['CN', 'x']] as Array<[string, string]>,
    notAfter: new Date('2040-01-01Z'),
    policies: [role],
    keyUsage: ['digitalSignature' as const],
    sanRegisteredIds: [oid],
  });
  const replace = (d: string, kind: 'dpAuth' | 'dpPb', cert: Certificate, key: ReturnType<typeof privateKeyFromPem>) => {
    writeFileSync(join(d, certPath(kind, 'P-256')), cert.raw);
    writeFileSync(join(d, keyPath(kind, 'P-256')), privateKeyToPem(key));
  };

  t.same(loadServerPki(base).warnings, []);

  let d = copy();
  const der = readFileSync(join(d, certPath('dpAuth', 'P-256')));
  der[der.length - 1]! ^= 0x01;
  writeFileSync(join(d, certPath('dpAuth', 'P-256')), der);
  t.same(failure(() => loadServerPki(d)), { code: 'invalidChain', cause: 'signature' }, 'tampered DPauth signature');

  d = copy();
  cpSync(join(other, certPath('dpPb', 'P-256')), join(d, certPath('dpPb', 'P-256')));
  cpSync(join(other, keyPath('dpPb', 'P-256')), join(d, keyPath('dpPb', 'P-256')));
  t.same(failure(() => loadServerPki(d)), { code: 'invalidChain', cause: 'issuerMismatch' }, 'DPpb of another CI');

  d = copy();
  cpSync(join(d, keyPath('dpPb', 'P-256')), join(d, keyPath('dpAuth', 'P-256')));
  t.same(failure(() => loadServerPki(d)), { code: 'keyMismatch', cause: undefined }, 'DPauth key swapped');

  d = copy();
  let key = privateKeyFromPem(readFileSync(join(d, keyPath('dpAuth', 'P-256')), 'utf8'));
  replace(d, 'dpAuth', issueCertificate({ ...dpSpec(RSP_ROLE.dpPb), subjectKey: key, issuer: ciOf(d) }), key);
  t.same(failure(() => loadServerPki(d)), { code: 'invalidChain', cause: 'role' }, 'DPauth with the DPpb role');

  d = copy();
  key = privateKeyFromPem(readFileSync(join(d, keyPath('dpPb', 'P-256')), 'utf8'));
  replace(d, 'dpPb', issueCertificate({ ...dpSpec(RSP_ROLE.dpPb, '2.999.11'), subjectKey: key, issuer: ciOf(d) }), key);
  t.same(failure(() => loadServerPki(d)), { code: 'smdpOidMismatch', cause: undefined }, 'DPpb with another SM-DP+ OID');

  d = copy();
  key = privateKeyFromPem(readFileSync(join(d, keyPath('dpAuth', 'P-256')), 'utf8'));
  replace(d, 'dpAuth', issueCertificate({ ...dpSpec(RSP_ROLE.dpAuth), subjectKey: key, issuer: ciOf(d), notBefore: new Date('2020-01-01Z'), notAfter: new Date('2021-01-01Z') }), key);
  const expired = loadServerPki(d);
  t.equal(expired.warnings.length, 1, 'expired DPauth: a warning');
  t.match(expired.warnings[0], /DPauth.*expired on 2021-01-01/);

  d = copy();
  unlinkSync(join(d, keyPath('dpPb', 'P-256')));
  t.same(failure(() => loadServerPki(d)), { code: 'missingFile', cause: 'ENOENT' }, 'DPpb key missing');

  d = copy();
  writeFileSync(join(d, keyPath('dpPb', 'P-256')), 'not a key');
  t.equal(failure(() => loadServerPki(d)).code, 'invalidKey');

  d = copy();
  writeFileSync(join(d, certPath('dpPb', 'P-256')), Buffer.from('3000', 'hex'));
  t.same(failure(() => loadServerPki(d)), { code: 'invalidCertificate', cause: 'malformed' });

  d = copy();
  const pem = privateKeyFromPem(readFileSync(join(d, keyPath('dpAuth', 'P-256')), 'utf8')).export({ format: 'pem', type: 'pkcs8' });
  writeFileSync(join(d, keyPath('dpAuth', 'P-256')), pem);
  t.equal(loadServerPki(d).smdpOid, '2.999.10', 'PKCS#8 keys load');

  d = copy();
  writeFileSync(join(d, certPath('dpAuth', 'P-256')), Certificate.parse(readFileSync(join(d, certPath('dpAuth', 'P-256')))).toPem());
  t.equal(loadServerPki(d).credentials.length, 1, 'PEM certificates load');

  t.same(failure(() => loadServerPki(join(tmp, 'nothing-here'))), { code: 'noCredentials', cause: undefined });

  // eUICC: an EID outside the EUM's EIN prefix, and a folder whose CI differs
  d = copy();
  const eumKey = privateKeyFromPem(readFileSync(join(d, keyPath('eum', 'P-256')), 'utf8'));
  const eum = Certificate.parse(readFileSync(join(d, certPath('eum', 'P-256'))));
  const euiccKey = privateKeyFromPem(readFileSync(join(d, keyPath('euicc', 'P-256')), 'utf8'));
  const bad = issueCertificate({
    subject: [['serialNumber', '89999999000000000000000000000000']], subjectKey: euiccKey, issuer: { cert: eum, key: eumKey },
    notAfter: new Date('2099-01-01Z'), policies: [RSP_ROLE.euicc], keyUsage: ['digitalSignature'],
  });
  writeFileSync(join(d, certPath('euicc', 'P-256')), bad.raw);
  t.same(failure(() => loadEuiccCredentials(d)), { code: 'invalidEid', cause: undefined });
  const creds = loadEuiccCredentials(base);
  t.same(failure(() => writeEuiccCredentials(other, creds)), { code: 'exists', cause: undefined }, 'CI files differ');
});
