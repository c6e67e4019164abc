/**
 * The SM-DS's CERT.DSauth (docs/smds.md#its-certificates): generated with the test PKI for both
 * curves, role ds-auth, its own OID, loaded into pki.smds; a folder without it (such as the SGP.26
 * set) still loads, with the SM-DS's ES11 off; a DSauth with the wrong role is refused.
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { generatePki } from '../../src/pki/generate.js';
import { issueCertificate } from '../../src/pki/issue.js';
import { certPath, CURVE_NAMES, keyPath } from '../../src/pki/layout.js';
import { loadServerPki, privateKeyFromPem, PkiError } from '../../src/pki/load.js';

const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-smds-pki-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

t.test('generated: one CERT.DSauth per curve, role ds-auth, the SM-DS OID', async (t) => {
  const dir = join(tmp, 'gen');
  const g = await generatePki(dir, { smdsOid: '2.999.21' });
  t.equal(g.smdsOid, '2.999.21');
  for (const c of CURVE_NAMES) t.ok(g.files.includes(certPath('dsAuth', c)) && g.files.includes(keyPath('dsAuth', c)), `DSauth files for ${c}`);
  const pki = loadServerPki(dir);
  t.ok(pki.smds, 'SM-DS credentials loaded');
  t.equal(pki.smds!.smdsOid, '2.999.21');
  t.equal(pki.smds!.byCiSkiHex.size, 2);
  for (const [ski, cred] of pki.smds!.byCiSkiHex) {
    t.equal(ski, cred.ci.ski!.toString('hex').toUpperCase());
    t.doesNotThrow(() => checkIssued(cred.cert, cred.ci, { role: RSP_ROLE.dsAuth }), 'issued by the CI with role ds-auth');
    t.throws(() => checkIssued(cred.cert, cred.ci, { role: RSP_ROLE.dpAuth }), 'not a CERT.DPauth');
  }
});

t.test('a folder without DSauth loads; the SM-DS is off', async (t) => {
  const dir = join(tmp, 'nods');
  await generatePki(dir);
  for (const c of CURVE_NAMES) {
    unlinkSync(join(dir, certPath('dsAuth', c)));
    unlinkSync(join(dir, keyPath('dsAuth', c)));
  }
  const pki = loadServerPki(dir);
  t.equal(pki.smds, undefined);
  t.ok(pki.credentials.length === 2, 'the SM-DP+ credentials as before');
});

t.test('a DSauth without the ds-auth role is refused', async (t) => {
  const dir = join(tmp, 'badrole');
  await generatePki(dir);
  const ciKey = privateKeyFromPem(readFileSync(join(dir, keyPath('ci', 'P-256')), 'utf8'));
  const pki0 = loadServerPki(dir);
  const ci = pki0.credentials.find((c) => c.curve === 'P-256')!.ci;
  const key = privateKeyFromPem(readFileSync(join(dir, keyPath('dsAuth', 'P-256')), 'utf8'));
  const wrong = issueCertificate({
    subject: [['CN', 'not an SM-DS']], subjectKey: key, issuer: { cert: ci, key: ciKey },
    notAfter: new Date(Date.now() + 86_400_000), policies: [RSP_ROLE.dpAuth], keyUsage: ['digitalSignature'], sanRegisteredIds: ['2.999.20'],
  });
  writeFileSync(join(dir, certPath('dsAuth', 'P-256')), wrong.raw);
  const err = (() => { try { loadServerPki(dir); } catch (e) { return e; } return undefined; })();
  t.ok(err instanceof PkiError && err.code === 'invalidChain', `refused: ${(err as Error)?.message}`);
});
