import t from 'tap';
import { createHash, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { CURVES, type CurveName } from '../../src/crypto/curves.js';
import { checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { decode } from '../../src/der/tlv.js';
import { encodeName, issueCertificate, keyIdentifier, PkiError, randomSerial } from '../../src/pki/issue.js';

const keyOn = (curve: CurveName): KeyObject => generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName }).privateKey;

for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
  t.test(`${curve}: CI → EUM → eUICC and CI → DP certificates`, async (t) => {
    const ciKey = keyOn(curve);
    const ci = issueCertificate({
      subject: [['C', 'XX'], ['O', 'unit'], ['CN', 'unit CI']],
      subjectKey: ciKey,
      notAfter: new Date('2060-01-01T00:00:00Z'),
      policies: [RSP_ROLE.ci],
      keyUsage: ['keyCertSign', 'cRLSign'],
      ca: {},
      sanRegisteredIds: ['2.999.1'],
    });
    t.equal(ci.curve, curve);
    t.equal(ci.selfIssued, true);
    t.equal(ci.aki, undefined, 'self-signed: no AKI');
    t.same(ci.ski, createHash('sha1').update(ci.publicKeyPoint).digest(), 'SKI = SHA-1 of the key bits');
    t.same(ci.ski, keyIdentifier(ciKey));
    t.equal(ci.extension('2.5.29.19')?.critical, true, 'basicConstraints critical');
    t.equal(ci.extension('2.5.29.15')?.critical, true, 'keyUsage critical');
    t.equal(ci.policiesCritical, true);
    t.same(ci.keyUsage, ['keyCertSign', 'cRLSign']);
    t.equal(ci.isCa, true);
    t.equal(ci.pathLen, undefined);
    t.equal(ci.serialNumber.length, 16);
    t.equal(ci.serialNumber[0]! & 0x80, 0, 'positive serial');
    checkIssued(ci, ci, { role: RSP_ROLE.ci });

    // independent check with OpenSSL through node
    const x = new X509Certificate(ci.raw);
    t.ok(x.verify(ci.publicKey), 'OpenSSL verifies the self-signature');
    t.equal(x.ca, true);
    t.equal(x.subject, 'C=XX\nO=unit\nCN=unit CI');
    t.equal(x.subjectAltName, 'Registered ID:2.999.1');

    const issuer = { cert: ci, key: ciKey };
    const eumKey = keyOn(curve);
    const eum = issueCertificate({
      subject: [['C', 'XX'], ['O', 'unit EUM'], ['CN', 'unit EUM']],
      subjectKey: eumKey,
      issuer,
      notAfter: new Date('2055-01-01T00:00:00Z'),
      policies: [RSP_ROLE.eum],
      keyUsage: ['keyCertSign'],
      ca: { pathLen: 0 },
      permittedDirectoryNames: [[['O', 'unit EUM'], ['serialNumber', '89049032']]],
      permittedEins: ['89044011'],
    });
    t.same(eum.aki, ci.ski, 'AKI = issuer SKI');
    t.ok(eum.issuer.raw.equals(ci.subject.raw), 'issuer DN bytes');
    t.equal(eum.pathLen, 0);
    t.same(eum.permittedEins, ['89049032', '89044011'], 'nameConstraints serialNumber and permittedEins extension');
    t.equal(eum.extension('2.5.29.30')?.critical, true, 'nameConstraints critical');
    checkIssued(eum, ci, { role: RSP_ROLE.eum });
    t.ok(new X509Certificate(eum.raw).verify(ci.publicKey));
    t.ok(new X509Certificate(eum.raw).checkIssued(new X509Certificate(ci.raw)), 'OpenSSL: issued by CI');

    const eid = '89049032123451234512345678901235';
    const euicc = issueCertificate({
      subject: [['C', 'XX'], ['O', 'unit EUM'], ['serialNumber', eid], ['CN', 'unit eUICC']],
      subjectKey: keyOn(curve),
      issuer: { cert: eum, key: eumKey },
      notAfter: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
      policies: [RSP_ROLE.euicc],
      keyUsage: ['digitalSignature'],
    });
    t.equal(euicc.subjectSerialNumber, eid);
    t.equal(euicc.notAfter.toISOString(), '9999-12-31T23:59:59.000Z');
    // validity notAfter is a GeneralizedTime
    const tbs = decode(euicc.tbsRaw);
    t.equal(tbs.children()[4]!.children()[1]!.tag, 0x18);
    t.equal(tbs.children()[4]!.children()[0]!.tag, 0x17, 'notBefore in UTCTime');
    // C and serialNumber as PrintableString, others UTF8String
    const subjectTypes = decode(euicc.subject.raw).children().map((rdn) => rdn.children()[0]!.children()[1]!.tag);
    t.same(subjectTypes, [0x13, 0x0c, 0x13, 0x0c]);
    checkIssued(euicc, eum, { role: RSP_ROLE.euicc });
    t.ok(new X509Certificate(euicc.raw).verify(eum.publicKey));

    const auth = issueCertificate({
      subject: [['O', 'unit'], ['CN', 'unit SM-DP+']],
      subjectKey: keyOn(curve),
      issuer,
      notAfter: new Date('2040-01-01T00:00:00Z'),
      policies: [RSP_ROLE.dpAuth],
      keyUsage: ['digitalSignature'],
      sanRegisteredIds: ['2.999.10'],
    });
    t.same(auth.sanRegisteredIds, ['2.999.10']);
    t.equal(auth.isCa, false);
    t.equal(auth.extension('2.5.29.19'), undefined, 'no basicConstraints on a leaf');
    checkIssued(auth, ci, { role: RSP_ROLE.dpAuth });

    const tls = issueCertificate({
      subject: [['O', 'unit'], ['CN', 'smdp.example.org']],
      subjectKey: keyOn(curve),
      issuer,
      notAfter: new Date('2040-01-01T00:00:00Z'),
      policies: [RSP_ROLE.dpTls],
      policiesCritical: false,
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
      sanDnsNames: ['smdp.example.org'],
      sanIpAddresses: ['127.0.0.1', '::1', 'fe80::1:2'],
      sanRegisteredIds: ['2.999.10'],
    });
    t.same(tls.sanDnsNames, ['smdp.example.org']);
    t.same(tls.extKeyUsage, ['serverAuth', 'clientAuth']);
    t.equal(tls.policiesCritical, false);
    const xt = new X509Certificate(tls.raw);
    t.equal(xt.subjectAltName, 'DNS:smdp.example.org, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FE80:0:0:0:0:0:1:2, Registered ID:2.999.10');
    t.same(xt.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'OpenSSL sees the EKU');
    t.ok(xt.checkHost('smdp.example.org'));
    t.ok(xt.checkIP('127.0.0.1'));
    checkIssued(tls, ci, { role: RSP_ROLE.dpTls });
  });
}

t.test('issuer key must belong to the issuer certificate', async (t) => {
  const ciKey = keyOn('P-256');
  const ci = issueCertificate({ subject: [['CN', 'ci']], subjectKey: ciKey, notAfter: new Date('2060-01-01Z'), policies: [RSP_ROLE.ci], keyUsage: ['keyCertSign'], ca: {} });
  const spec = { subject: [['CN', 'x']] as Array<[string, string]>, subjectKey: keyOn('P-256'), notAfter: new Date('2050-01-01Z'), policies: [RSP_ROLE.dpAuth], keyUsage: ['digitalSignature' as const] };
  t.throws(() => issueCertificate({ ...spec, issuer: { cert: ci, key: keyOn('P-256') } }), { name: 'PkiError', code: 'keyMismatch' });
  t.throws(() => issueCertificate({ ...spec, subjectKey: ci.publicKey }), { code: 'invalidSpec' }, 'self-signed needs a private key');
  t.throws(() => issueCertificate({ ...spec, issuer: { cert: ci, key: ciKey }, serialNumber: Buffer.from([0x80]) }), { code: 'invalidSpec' });
  t.throws(() => issueCertificate({ ...spec, issuer: { cert: ci, key: ciKey }, subjectKey: generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey }), { code: 'unsupportedCurve' });
  t.ok(new PkiError('exists') instanceof Error);
});

t.test('randomSerial and encodeName', async (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = randomSerial();
    t.equal(s.length, 16);
    t.equal(s[0]! & 0xc0, 0x40);
    seen.add(s.toString('hex'));
  }
  t.equal(seen.size, 50);
  // The SGP.26 CI DN, byte for byte (UTF8String except C).
  const sgp26CiDn = '30443110300e06035504030c07546573742043493111300f060355040b0c0854455354434552543110300e060355040a0c0752535054455354310b3009060355040613024954';
  t.equal(encodeName([['CN', 'Test CI'], ['OU', 'TESTCERT'], ['O', 'RSPTEST'], ['C', 'IT']]).toString('hex'), sgp26CiDn);
  // non-printable characters fall back to UTF8String even for serialNumber
  t.equal(encodeName([['serialNumber', 'a_b']]).toString('hex'), '300e310c300a060355040' + '50c03615f62');
});
