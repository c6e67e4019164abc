/**
 * Generates a complete RSP test PKI in the SGP.26 folder layout: per curve a CI, an EUM (with the
 * EIN prefix as nameConstraints), CERT.DPauth, CERT.DPpb, CERT.DP.TLS for the server's host name,
 * the built-in SM-DS's CERT.DSauth and CERT.DS.TLS (docs/smds.md#its-certificates) and a sample eUICC, with the CI and EUM private keys kept so more eUICCs can be issued later.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CURVES, type CurveName } from '../crypto/curves.js';
import { RSP_ROLE, type Certificate } from '../crypto/x509.js';
import { encodeOidValue } from '../der/types.js';
import { eidWithCheckDigits } from '../rsp/identifiers.js';
import { issueCertificate, PkiError, type NameSpec } from './issue.js';
import { certPath, CREDENTIAL_KINDS, CURVE_NAMES, keyPath, type CredentialKind } from './layout.js';
import { issueEuiccCredentials, privateKeyToPem } from './load.js';

/** Defaults follow the SGP.26 test set's conventions (2.999 is the ITU/ISO example arc). */
export const PKI_DEFAULTS = {
  hostname: 'localhost',
  smdpOid: '2.999.10',
  smdsOid: '2.999.20',
  ciOid: '2.999.1',
  eumOid: '2.999.5',
  einPrefix: '89049032',
} as const;

export interface GeneratePkiOptions {
  /** SM-DP+ host name for CERT.DP.TLS (SAN dNSName, or iPAddress for an IP). Default 'localhost'. */
  hostname?: string;
  /** SM-DS host name for CERT.DS.TLS (the host of SMDS_ADDRESS). Default: `hostname`. */
  smdsHostname?: string;
  /** SM-DP+ OID (SAN registeredID of DPauth, DPpb, DP TLS). Default 2.999.10. */
  smdpOid?: string;
  /** SM-DS OID (SAN registeredID of CERT.DSauth and CERT.DS.TLS, the built-in SM-DS's). Default 2.999.20. */
  smdsOid?: string;
  /** CI OID (SAN registeredID of CERT.CI). Default 2.999.1. */
  ciOid?: string;
  /** EUM OID (SAN registeredID of CERT.EUM). Default 2.999.5. */
  eumOid?: string;
  /** EIN prefix the EUM may issue EIDs under. Default 89049032. */
  einPrefix?: string;
  /** EID of the sample eUICCs; default sampleEid(einPrefix). */
  eid?: string;
  /** Default both. */
  curves?: CurveName[];
  /** Overwrite existing files (default: refuse with PkiError 'exists'). */
  force?: boolean;
}

export interface GeneratedPki {
  dir: string;
  smdpOid: string;
  smdsOid: string;
  eid: string;
  /** CI SKI (upper hex) per generated curve. */
  ciSkis: Partial<Record<CurveName, string>>;
  /** Written files, relative to dir. */
  files: string[];
}


/** A valid EID under the EIN prefix: prefix, zeros, a 1, check digits. */
export function sampleEid(einPrefix: string = PKI_DEFAULTS.einPrefix): string {
  if (!/^\d{1,29}$/.test(einPrefix)) throw new PkiError('invalidEid', `EIN prefix must be 1–29 digits: ${einPrefix}`);
  return eidWithCheckDigits(einPrefix.padEnd(29, '0') + '1');
}

function yearsFrom(from: Date, years: number): Date {
  const d = new Date(Math.floor(from.getTime() / 1000) * 1000);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

function checkOid(name: string, oid: string) {
  try {
    encodeOidValue(oid);
  } catch {
    throw new PkiError('invalidSpec', `${name} is not an OID: ${oid}`);
  }
}

export async function generatePki(dir: string, opts: GeneratePkiOptions = {}): Promise<GeneratedPki> {
  const hostname = opts.hostname ?? PKI_DEFAULTS.hostname;
  const smdsHostname = opts.smdsHostname ?? hostname;
  const smdpOid = opts.smdpOid ?? PKI_DEFAULTS.smdpOid;
  const smdsOid = opts.smdsOid ?? PKI_DEFAULTS.smdsOid;
  const ciOid = opts.ciOid ?? PKI_DEFAULTS.ciOid;
  const eumOid = opts.eumOid ?? PKI_DEFAULTS.eumOid;
  const einPrefix = opts.einPrefix ?? PKI_DEFAULTS.einPrefix;
  const curves = opts.curves ?? [...CURVE_NAMES];
  checkOid('smdpOid', smdpOid);
  checkOid('smdsOid', smdsOid);
  checkOid('ciOid', ciOid);
  checkOid('eumOid', eumOid);
  if (!/^\d{1,29}$/.test(einPrefix)) throw new PkiError('invalidEid', `EIN prefix must be 1–29 digits: ${einPrefix}`);
  const eid = opts.eid ?? sampleEid(einPrefix);
  if (!/^\d{32}$/.test(eid) || !eid.startsWith(einPrefix)) throw new PkiError('invalidEid', `EID ${eid} must be 32 digits under ${einPrefix}`);
  if (!hostname || /[\s/]/.test(hostname)) throw new PkiError('invalidSpec', `invalid host name: ${hostname}`);
  if (!smdsHostname || /[\s/]/.test(smdsHostname)) throw new PkiError('invalidSpec', `invalid SM-DS host name: ${smdsHostname}`);
  if (!curves.length) throw new PkiError('invalidSpec', 'no curves');

  const planned = curves.flatMap((c) => CREDENTIAL_KINDS.flatMap((k: CredentialKind) => [certPath(k, c), keyPath(k, c)]));
  if (!opts.force) {
    const existing = planned.filter((f) => existsSync(join(dir, f)));
    if (existing.length) throw new PkiError('exists', `${join(dir, existing[0]!)} exists (use force to overwrite)`);
  }

  const now = new Date();
  const files: string[] = [];
  const write = async (rel: string, data: Buffer | string, mode: number) => {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), data, { mode });
    files.push(rel);
  };
  const save = async (kind: CredentialKind, curve: CurveName, cert: Certificate, key: KeyObject) => {
    await write(certPath(kind, curve), cert.raw, 0o644);
    await write(keyPath(kind, curve), privateKeyToPem(key), 0o600);
  };
  const ciSkis: Partial<Record<CurveName, string>> = {};
  const eumOrg = 'mock-smdp EUM';

  for (const curve of curves) {
    const tag = CURVES[curve].fileTag;
    const newKey = () => generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName }).privateKey;

    const ciKey = newKey();
    const ci = issueCertificate({
      subject: [['C', 'XX'], ['O', 'mock-smdp'], ['OU', 'TESTCERT'], ['CN', `mock-smdp Test CI ${tag}`]],
      subjectKey: ciKey,
      notAfter: yearsFrom(now, 35),
      policies: [RSP_ROLE.ci],
      keyUsage: ['keyCertSign', 'cRLSign'],
      ca: {},
      sanRegisteredIds: [ciOid],
    });
    const issuer = { cert: ci, key: ciKey };
    ciSkis[curve] = ci.ski!.toString('hex').toUpperCase();
    await save('ci', curve, ci, ciKey);

    const eumKey = newKey();
    const eum = issueCertificate({
      subject: [['C', 'XX'], ['O', eumOrg], ['CN', `mock-smdp Test EUM ${tag}`]],
      subjectKey: eumKey,
      issuer,
      notAfter: yearsFrom(now, 30),
      policies: [RSP_ROLE.eum],
      keyUsage: ['keyCertSign'],
      ca: { pathLen: 0 },
      sanRegisteredIds: [eumOid],
      permittedDirectoryNames: [[['O', eumOrg], ['serialNumber', einPrefix]]],
    });
    await save('eum', curve, eum, eumKey);

    const dpSubject: NameSpec = [['C', 'XX'], ['O', 'mock-smdp'], ['CN', 'mock-smdp SM-DP+']];
    for (const [kind, role] of [['dpAuth', RSP_ROLE.dpAuth], ['dpPb', RSP_ROLE.dpPb]] as const) {
      const key = newKey();
      const cert = issueCertificate({
        subject: dpSubject,
        subjectKey: key,
        issuer,
        notAfter: yearsFrom(now, 10),
        policies: [role],
        keyUsage: ['digitalSignature'],
        sanRegisteredIds: [smdpOid],
      });
      await save(kind, curve, cert, key);
    }

    // CERT.DSauth of the built-in SM-DS (SGP.22 §4.5: role id-rspRole-ds-auth), its own OID.
    const dsKey = newKey();
    const ds = issueCertificate({
      subject: [['C', 'XX'], ['O', 'mock-smdp'], ['CN', 'mock-smdp SM-DS']],
      subjectKey: dsKey,
      issuer,
      notAfter: yearsFrom(now, 10),
      policies: [RSP_ROLE.dsAuth],
      keyUsage: ['digitalSignature'],
      sanRegisteredIds: [smdsOid],
    });
    await save('dsAuth', curve, ds, dsKey);

    // TLS certificates (SGP.22 §2.6, §4.5): CERT.DP.TLS is the SM-DP+'s server certificate on ES9+
    // and its client certificate on ES12 (hence clientAuth); CERT.DS.TLS the SM-DS's on ES11/ES12.
    const tlsCert = async (kind: 'dpTls' | 'dsTls', host: string, role: string, oid: string) => {
      const key = newKey();
      const ip = isIP(host) !== 0;
      const cert = issueCertificate({
        subject: [['C', 'XX'], ['O', 'mock-smdp'], ...(host.length <= 64 ? [['CN', host] as [string, string]] : [])],
        subjectKey: key,
        issuer,
        notAfter: yearsFrom(now, 10),
        policies: [role],
        policiesCritical: false,
        keyUsage: ['digitalSignature'],
        extKeyUsage: ['serverAuth', 'clientAuth'],
        ...(ip ? { sanIpAddresses: [host] } : { sanDnsNames: [host] }),
        sanRegisteredIds: [oid],
      });
      await save(kind, curve, cert, key);
    };
    await tlsCert('dpTls', hostname, RSP_ROLE.dpTls, smdpOid);
    await tlsCert('dsTls', smdsHostname, RSP_ROLE.dsTls, smdsOid);

    const euicc = issueEuiccCredentials(dir, eid, curve);
    await save('euicc', curve, euicc.cert, euicc.key);
  }
  return { dir, smdpOid, smdsOid, eid, ciSkis, files };
}
