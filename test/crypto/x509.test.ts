import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { Certificate, CertificateError, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { seq, integer, oid, bitStringBytes, time } from '../../src/der/types.js';
import { tlv } from '../../src/der/tlv.js';
import { encodeName, issueCertificate } from '../../src/pki/issue.js';
import { needs, SGP26 } from '../helpers/shared-data.js';

const sgp26 = SGP26.dir;
const skip = needs(SGP26);
const load = (rel: string) => Certificate.parse(readFileSync(join(sgp26, rel)));

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof CertificateError) return err.code;
    throw err;
  }
  return undefined;
}

const IN_2025 = new Date('2025-12-01T00:00:00Z');

t.test('SGP.26 certificates: fields', { skip }, async (t) => {
  const ciN = load('CertificateIssuer/CERT_CI_ECDSA_NIST.der');
  const ciB = load('CertificateIssuer/CERT_CI_ECDSA_BRP.der');
  t.equal(ciN.curve, 'P-256');
  t.equal(ciB.curve, 'brainpoolP256r1');
  t.equal(ciN.ski!.toString('hex').toUpperCase(), 'F54172BDF98A95D65CBEB88A38A1C11D800A85C3');
  t.equal(ciB.ski!.toString('hex').toUpperCase(), 'C0BC70BA36929D43B467FF57570530E57AB8FCD8');
  t.equal(ciN.aki, undefined);
  t.same(ciN.policies, [RSP_ROLE.ci]);
  t.equal(ciN.policiesCritical, true);
  t.same(ciN.keyUsage, ['keyCertSign', 'cRLSign']);
  t.equal(ciN.isCa, true);
  t.equal(ciN.pathLen, undefined);
  t.same(ciN.sanRegisteredIds, ['2.999.1']);
  t.equal(ciN.subject.get('CN'), 'Test CI');
  t.equal(ciN.subject.get('O'), 'RSPTEST');
  t.equal(ciN.subject.toString(), 'CN=Test CI, OU=TESTCERT, O=RSPTEST, C=IT');
  t.equal(ciN.selfIssued, true);
  t.equal(ciN.notAfter.toISOString(), '2055-04-01T08:27:51.000Z');
  t.equal(ciN.version, 3);

  for (const tag of ['NIST', 'BRP']) {
    const auth = load(`DPauth/CERT_S_SM_DPauth_ECDSA_${tag}.der`);
    const pb = load(`DPpb/CERT_S_SM_DPpb_ECDSA_${tag}.der`);
    const tls = load(`DPtls/CERT_S_SM_DP_TLS_${tag}.der`);
    t.same(auth.sanRegisteredIds, ['2.999.10'], `${tag} DPauth SM-DP+ OID`);
    t.same(pb.sanRegisteredIds, ['2.999.10'], `${tag} DPpb SM-DP+ OID`);
    t.same(auth.policies, [RSP_ROLE.dpAuth]);
    t.same(pb.policies, [RSP_ROLE.dpPb]);
    t.same(auth.keyUsage, ['digitalSignature']);
    t.equal(auth.isCa, false);
    t.equal(auth.serialNumber.toString('hex'), '0100');
    t.equal(auth.subject.get('CN'), 'TEST SM-DP+');
    t.same(tls.sanDnsNames, ['testsmdpplus1.example.com']);
    t.same(tls.sanRegisteredIds, ['2.999.10']);
    t.same(tls.extKeyUsage, ['serverAuth', 'clientAuth']);
    t.same(tls.policies, [RSP_ROLE.dpTls]);
    t.equal(tls.policiesCritical, false, 'SGP.26 TLS policies are not critical');
    t.equal(tls.notAfter.toISOString(), '2026-08-02T13:14:38.000Z');
  }

  const eum = load('EUM/CERT_EUM_ECDSA_NIST.der');
  t.same(eum.permittedEins, ['89049032']);
  t.equal(eum.isCa, true);
  t.equal(eum.pathLen, 0);
  t.same(eum.keyUsage, ['keyCertSign']);
  t.same(eum.policies, [RSP_ROLE.eum]);
  t.equal(eum.ski!.toString('hex').toUpperCase(), 'DD3DA24D350C1CC5D0AF0965F40EC34C5EE409F1');
  t.equal(eum.extension('2.5.29.30')?.critical, true, 'nameConstraints critical');

  const euicc = load('eUICC/CERT_EUICC_ECDSA_NIST.der');
  t.equal(euicc.subjectSerialNumber, '89049032123451234512345678901235');
  t.equal(euicc.subject.get('serialNumber'), '89049032123451234512345678901235');
  t.same(euicc.policies, [RSP_ROLE.euicc]);
  t.equal(euicc.notAfter.getUTCFullYear(), 7496, 'GeneralizedTime far in the future');
  t.same(euicc.aki, eum.ski);
  t.equal(euicc.publicKeyPoint.length, 65);
  t.equal(euicc.publicKeyPoint[0], 0x04);
});

t.test('SGP.26 certificates: parse agrees with node X509Certificate', { skip }, async (t) => {
  for (const rel of [
    'CertificateIssuer/CERT_CI_ECDSA_NIST.der', 'CertificateIssuer/CERT_CI_ECDSA_BRP.der', 'DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der',
    'DPauth/CERT_S_SM_DPauth_ECDSA_BRP.der', 'DPpb/CERT_S_SM_DPpb_ECDSA_NIST.der', 'DPpb/CERT_S_SM_DPpb_ECDSA_BRP.der',
    'DPtls/CERT_S_SM_DP_TLS_NIST.der', 'DPtls/CERT_S_SM_DP_TLS_BRP.der', 'EUM/CERT_EUM_ECDSA_NIST.der', 'eUICC/CERT_EUICC_ECDSA_NIST.der',
  ]) {
    const der = readFileSync(join(sgp26, rel));
    const c = Certificate.parse(der);
    const x = new X509Certificate(der);
    t.equal(c.serialNumber.toString('hex').toUpperCase().replace(/^0+/, ''), x.serialNumber.replace(/^0+/, ''), `${rel} serial`);
    t.equal(c.notAfter.getTime(), new Date(x.validTo).getTime(), `${rel} notAfter`);
    t.ok(c.publicKey.equals(x.publicKey), `${rel} public key`);
    t.equal(c.isCa, x.ca, `${rel} CA`);
    t.ok(c.raw.equals(der));
    t.equal(Certificate.fromPem(c.toPem()).raw.toString('hex'), der.toString('hex'), `${rel} PEM round trip`);
    t.equal(c.toPem(), x.toString(), `${rel} PEM text`);
  }
});

t.test('SGP.26 chains verify', { skip }, async (t) => {
  for (const tag of ['NIST', 'BRP']) {
    const ci = load(`CertificateIssuer/CERT_CI_ECDSA_${tag}.der`);
    checkIssued(ci, ci, { role: RSP_ROLE.ci });
    checkIssued(load(`DPauth/CERT_S_SM_DPauth_ECDSA_${tag}.der`), ci, { role: RSP_ROLE.dpAuth, at: IN_2025 });
    checkIssued(load(`DPpb/CERT_S_SM_DPpb_ECDSA_${tag}.der`), ci, { role: RSP_ROLE.dpPb, at: IN_2025 });
    checkIssued(load(`DPtls/CERT_S_SM_DP_TLS_${tag}.der`), ci, { role: RSP_ROLE.dpTls, at: IN_2025 });
    t.pass(`${tag} CI, DPauth, DPpb, DP TLS`);
  }
  const ciN = load('CertificateIssuer/CERT_CI_ECDSA_NIST.der');
  const eum = load('EUM/CERT_EUM_ECDSA_NIST.der');
  const euicc = load('eUICC/CERT_EUICC_ECDSA_NIST.der');
  checkIssued(eum, ciN, { role: RSP_ROLE.eum, at: IN_2025 });
  checkIssued(euicc, eum, { role: RSP_ROLE.euicc, at: IN_2025 });
  t.pass('EUM and eUICC');
});

t.test('SGP.26 chain failures', { skip }, async (t) => {
  const ciN = load('CertificateIssuer/CERT_CI_ECDSA_NIST.der');
  const ciB = load('CertificateIssuer/CERT_CI_ECDSA_BRP.der');
  const authN = load('DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der');
  const tlsN = load('DPtls/CERT_S_SM_DP_TLS_NIST.der');
  const eum = load('EUM/CERT_EUM_ECDSA_NIST.der');
  const euicc = load('eUICC/CERT_EUICC_ECDSA_NIST.der');
  // Both CIs have the same DN: only AKI/SKI tells them apart.
  t.equal(codeOf(() => checkIssued(authN, ciB, { at: IN_2025 })), 'issuerMismatch', 'wrong CI (same DN, other SKI)');
  t.equal(codeOf(() => checkIssued(authN, ciN, { role: RSP_ROLE.dpPb, at: IN_2025 })), 'role', 'DPauth used as DPpb');
  t.equal(codeOf(() => checkIssued(eum, ciN, { role: RSP_ROLE.euicc, at: IN_2025 })), 'role');
  t.equal(codeOf(() => checkIssued(tlsN, ciN, { role: RSP_ROLE.dpTls, at: new Date('2026-08-03T00:00:00Z') })), 'expired', 'TLS expired 2026-08-02');
  t.equal(codeOf(() => checkIssued(tlsN, ciN, { at: new Date('2025-06-01T00:00:00Z') })), 'notYetValid');
  t.equal(codeOf(() => checkIssued(euicc, ciN, { at: IN_2025 })), 'issuerMismatch', 'eUICC is not issued by the CI');
  t.equal(codeOf(() => checkIssued(authN, eum, { at: IN_2025 })), 'issuerMismatch');

  // Tampered: one byte of the signed part (inside the serial number) and one byte of the signature.
  const tbsFlip = Buffer.from(authN.raw);
  const serialAt = tbsFlip.indexOf(Buffer.from('020201000', 'hex').subarray(0, 4));
  t.ok(serialAt > 0);
  tbsFlip[serialAt + 3]! ^= 0x01;
  const c1 = Certificate.parse(tbsFlip);
  t.equal(c1.serialNumber.toString('hex'), '0101');
  t.equal(codeOf(() => checkIssued(c1, ciN, { at: IN_2025 })), 'signature', 'tampered TBS');
  const sigFlip = Buffer.from(authN.raw);
  sigFlip[sigFlip.length - 1]! ^= 0x01;
  t.equal(codeOf(() => checkIssued(Certificate.parse(sigFlip), ciN, { at: IN_2025 })), 'signature', 'tampered signature');
  t.equal(authN.verifySignature(ciB.publicKey), false, 'other key: false, no throw');
  t.equal(authN.verifySignature(ciN.publicKey), true);
});

t.test('checkIssued rules on issued certificates', async (t) => {
  const ciKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const ci = issueCertificate({
    subject: [['CN', 'unit CI']], subjectKey: ciKey, notAfter: new Date('2060-01-01Z'), policies: [RSP_ROLE.ci],
    keyUsage: ['keyCertSign'], ca: {},
  });
  const issuer = { cert: ci, key: ciKey };
  const key = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const base = { subject: [['CN', 'x']] as Array<[string, string]>, notAfter: new Date('2050-01-01Z'), keyUsage: ['digitalSignature' as const] };

  const nonCritical = issueCertificate({ ...base, subjectKey: key(), issuer, policies: [RSP_ROLE.dpAuth], policiesCritical: false });
  t.equal(codeOf(() => checkIssued(nonCritical, ci, { role: RSP_ROLE.dpAuth })), 'role', 'non-critical policy');
  checkIssued(nonCritical, ci, {});
  t.pass('without role the policy is not checked');

  const expired = issueCertificate({ ...base, subjectKey: key(), issuer, policies: [RSP_ROLE.dpAuth], notBefore: new Date('2020-01-01Z'), notAfter: new Date('2021-01-01Z') });
  t.equal(codeOf(() => checkIssued(expired, ci, { role: RSP_ROLE.dpAuth })), 'expired');
  checkIssued(expired, ci, { role: RSP_ROLE.dpAuth, at: new Date('2020-06-01Z') });

  // A leaf cannot issue.
  const leafKey = key();
  const leaf = issueCertificate({ ...base, subjectKey: leafKey, issuer, policies: [RSP_ROLE.dpAuth] });
  const grandchild = issueCertificate({ ...base, subjectKey: key(), issuer: { cert: leaf, key: leafKey }, policies: [RSP_ROLE.dpAuth] });
  t.equal(codeOf(() => checkIssued(grandchild, leaf)), 'issuerMismatch', 'issuer is no CA');

  // An impostor CI with the same DN and SKI but another key: only the signature check catches it.
  const fakeKey = key();
  const fake = issueCertificate({
    subject: [['CN', 'unit CI']], subjectKey: fakeKey, notAfter: new Date('2060-01-01Z'), policies: [RSP_ROLE.ci],
    keyUsage: ['keyCertSign'], ca: {}, ski: ci.ski,
  });
  const forged = issueCertificate({ ...base, subjectKey: key(), issuer: { cert: fake, key: fakeKey }, policies: [RSP_ROLE.dpAuth] });
  t.same(forged.aki, ci.ski);
  t.equal(codeOf(() => checkIssued(forged, ci)), 'signature');
  checkIssued(forged, fake);

  // pathLen 0: the EUM may issue end-entity certificates only.
  const eumKey = key();
  const eum = issueCertificate({ subject: [['CN', 'eum']], subjectKey: eumKey, issuer, notAfter: new Date('2050-01-01Z'), policies: [RSP_ROLE.eum], keyUsage: ['keyCertSign'], ca: { pathLen: 0 } });
  const subCa = issueCertificate({ subject: [['CN', 'sub']], subjectKey: key(), issuer: { cert: eum, key: eumKey }, notAfter: new Date('2050-01-01Z'), policies: [RSP_ROLE.eum], keyUsage: ['keyCertSign'], ca: {} });
  t.equal(codeOf(() => checkIssued(subCa, eum)), 'issuerMismatch', 'pathLen 0');
});

t.test('malformed input', async (t) => {
  const bad: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['garbage', Buffer.from('hello world')],
    ['empty sequence', Buffer.from('3000', 'hex')],
    ['truncated', Buffer.from('30820100', 'hex')],
  ];
  if (SGP26.present) {
    const der = readFileSync(join(sgp26, 'DPauth/CERT_S_SM_DPauth_ECDSA_NIST.der'));
    bad.push(['trailing byte', Buffer.concat([der, Buffer.from([0])])], ['cut short', der.subarray(0, der.length - 1)]);
    // outer signature algorithm differs from the inner one
    const x = Buffer.from(der);
    const algAt = x.lastIndexOf(Buffer.from('06082a8648ce3d040302', 'hex'));
    x[algAt + 9] = 0x03;
    bad.push(['algorithm mismatch', x]);
  }
  // A P-384 key: not an RSP curve.
  const p384 = generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey.export({ format: 'der', type: 'spki' });
  const alg = seq(oid('1.2.840.10045.4.3.2'));
  const tbs = seq(tlv(0xa0, integer(2)), integer(1), alg, encodeName([['CN', 'p384']]), seq(time(new Date()), time(new Date())),
    encodeName([['CN', 'p384']]), p384);
  bad.push(['P-384 key', seq(tbs, alg, bitStringBytes(Buffer.from('3006020101020101', 'hex')))]);
  for (const [name, der] of bad) {
    t.equal(codeOf(() => Certificate.parse(der)), 'malformed', name);
  }
  t.equal(codeOf(() => Certificate.fromPem('nothing here')), 'malformed');
});

t.test('SKI of the SGP.26 CI is SHA-1 of its key bits', { skip }, async (t) => {
  const ci = load('CertificateIssuer/CERT_CI_ECDSA_NIST.der');
  t.same(createHash('sha1').update(ci.publicKeyPoint).digest(), ci.ski);
});
