import t from 'tap';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { certPath, CREDENTIAL_KINDS, CURVE_NAMES, folderOf, keyPath, layoutFiles } from '../../src/pki/layout.js';
import { needs, SGP26 } from '../helpers/shared-data.js';

const sgp26 = SGP26.dir;

t.test('file names', async (t) => {
  t.equal(certPath('ci', 'P-256'), 'CertificateIssuer/CERT_CI_ECDSA_NIST.der');
  t.equal(keyPath('ci', 'brainpoolP256r1'), 'CertificateIssuer/SK_CI_ECDSA_BRP.pem');
  t.equal(certPath('dpAuth', 'brainpoolP256r1'), 'DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der');
  t.equal(keyPath('dpAuth', 'P-256'), 'DPauth/SK_S_SM_DPauth_ECDSA_NIST.pem');
  t.equal(certPath('dpPb', 'P-256'), 'DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der');
  t.equal(certPath('dpTls', 'P-256'), 'DPtls/CERT_S_SM_DP_TLS_NIST.der');
  t.equal(keyPath('dpTls', 'brainpoolP256r1'), 'DPtls/SK_S_SM_DP_TLS_BRP.pem');
  t.equal(certPath('eum', 'brainpoolP256r1'), 'EUM/CERT_EUM_ECDSA_BRP.der');
  t.equal(certPath('euicc', 'P-256'), 'eUICC/CERT_EUICC_ECDSA_NIST.der');
  t.equal(folderOf('euicc'), 'eUICC');
  t.same(Object.values(layoutFiles.ci), ['CertificateIssuer/CERT_CI_ECDSA_NIST.der', 'CertificateIssuer/CERT_CI_ECDSA_BRP.der']);
  t.equal(layoutFiles.eumKey['P-256'], 'EUM/SK_EUM_ECDSA_NIST.pem');
  const all = CREDENTIAL_KINDS.flatMap((k) => CURVE_NAMES.flatMap((c) => [certPath(k, c), keyPath(k, c)]));
  t.equal(certPath('dsTls', 'P-256'), 'DStls/CERT_S_SM_DS_TLS_NIST.der');
  t.equal(new Set(all).size, 32, 'all distinct');
});

t.test('every file of the published SGP.26 set has its name in the layout', { skip: needs(SGP26) }, async (t) => {
  const known = new Set(CREDENTIAL_KINDS.flatMap((k) => CURVE_NAMES.flatMap((c) => [certPath(k, c), keyPath(k, c)])));
  const files = readdirSync(sgp26, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => readdirSync(join(sgp26, d.name)).map((f) => `${d.name}/${f}`));
  t.ok(files.length >= 18, `${files.length} files`);
  for (const f of files) t.ok(known.has(f), f);
});
