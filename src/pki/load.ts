/**
 * Loads the SM-DP+ credentials and eUICC credentials from a folder in the SGP.26 layout
 * (layout.ts), checking every chain link (signature, issuer, role, key pairing) on load.
 * Certificates outside their validity period are reported in `warnings`, not refused: the
 * published SGP.26 DP TLS certificate, for one, expired on 2026-08-02.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { CURVES, type CurveName } from '../crypto/curves.js';
import { Certificate, checkIssued, RSP_ROLE } from '../crypto/x509.js';
import { issueCertificate, PkiError, type NameSpec } from './issue.js';
import { certPath, CURVE_NAMES, keyPath, type CredentialKind } from './layout.js';

export { PkiError, type PkiErrorCode } from './issue.js';

export interface KeyPair {
  cert: Certificate;
  key: KeyObject;
}

export interface DpCredentials {
  curve: CurveName;
  ci: Certificate;
  /** The CI's SKI: the euiccCiPKId this set answers to. */
  ciSki: Buffer;
  auth: KeyPair;
  pb: KeyPair;
  tls?: KeyPair;
}

export interface TlsCredentials {
  curve: CurveName;
  cert: Certificate;
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** The TLS certificate followed by its CI certificate. */
  chainPem: string;
  /**
   * Every CI certificate of the folder (PEM): the roots a TLS peer's certificate must chain to (ES12
   * client certificates on the server side, docs/smds.md#es12-authentication).
   */
  ciPems: string[];
}

export interface ServerPki {
  dir: string;
  credentials: DpCredentials[];
  /** Credentials by CI SKI in upper-case hex. */
  byCiSkiHex: Map<string, DpCredentials>;
  /** Every CI certificate of the folder (trust anchors for EUM certificates). */
  cis: Certificate[];
  /** The SM-DP+ OID (SAN registeredID of CERT.DPauth and CERT.DPpb). */
  smdpOid: string;
  tls?: TlsCredentials;
  /**
   * The built-in SM-DS's CERT.DS.TLS (docs/smds.md#its-certificates), of the curve of `tls` when the
   * folder has one: served for its host name (SNI) when that is not the SM-DP+'s.
   */
  dsTls?: TlsCredentials;
  /** Non-fatal findings, e.g. certificates outside their validity period. */
  warnings: string[];
  /**
   * The built-in SM-DS's CERT.DSauth and key per CI (docs/smds.md#its-certificates), when the folder
   * has them; without, the SM-DS's ES11 is off.
   */
  smds?: SmdsCredentials;
}

export interface SmdsCredentials {
  /** The SM-DS OID (SAN registeredID of CERT.DSauth). */
  smdsOid: string;
  /** CERT.DSauth and its key by CI SKI in upper-case hex. */
  byCiSkiHex: Map<string, KeyPair & { curve: CurveName; ci: Certificate; ciSki: Buffer }>;
}

export interface EuiccCredentials {
  eid: string;
  curve: CurveName;
  cert: Certificate;
  key: KeyObject;
  eum: Certificate;
  /** Every CI certificate available (the card's euiccCiPKId lists). */
  cis: Certificate[];
}

/** A private key from PEM: PKCS#8 ('PRIVATE KEY') or SEC1 ('EC PRIVATE KEY', EC PARAMETERS blocks ignored). */
export function privateKeyFromPem(pem: string): KeyObject {
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z ]+)-----([\s\S]*?)-----END \1-----/g)];
  for (const [, label, body] of blocks) {
    const der = Buffer.from(body!.replace(/\s+/g, ''), 'base64');
    try {
      if (label === 'PRIVATE KEY') return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      if (label === 'EC PRIVATE KEY') return createPrivateKey({ key: der, format: 'der', type: 'sec1' });
    } catch (err) {
      throw new PkiError('invalidKey', `unreadable ${label}: ${(err as Error).message}`, { cause: err });
    }
  }
  throw new PkiError('invalidKey', `no PRIVATE KEY or EC PRIVATE KEY block (found: ${blocks.map((b) => b[1]).join(', ') || 'none'})`);
}

/** SEC1 'EC PRIVATE KEY' PEM, the form SGP.26 uses. */
export function privateKeyToPem(key: KeyObject): string {
  return key.export({ format: 'pem', type: 'sec1' }).toString();
}

function readCert(dir: string, rel: string): Certificate {
  const file = join(dir, rel);
  let der: Buffer;
  try {
    der = readFileSync(file);
  } catch (err) {
    throw new PkiError('missingFile', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return der.subarray(0, 11).toString('latin1').startsWith('-----BEGIN') ? Certificate.fromPem(der.toString()) : Certificate.parse(der);
  } catch (err) {
    throw new PkiError('invalidCertificate', `${file}: ${(err as Error).message}`, { cause: err });
  }
}

function readKey(dir: string, rel: string, cert: Certificate): KeyObject {
  const file = join(dir, rel);
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PkiError('missingFile', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let key: KeyObject;
  try {
    key = privateKeyFromPem(pem);
  } catch (err) {
    throw new PkiError('invalidKey', `${file}: ${(err as Error).message}`, { cause: err });
  }
  assertKeyMatches(key, cert, file);
  return key;
}

function assertKeyMatches(key: KeyObject, cert: Certificate, what: string) {
  if (!createPublicKey(key).export({ format: 'der', type: 'spki' }).equals(cert.spkiRaw)) {
    throw new PkiError('keyMismatch', `${what}: private key does not belong to certificate "${cert.subject}"`);
  }
}

function loadPair(dir: string, kind: CredentialKind, curve: CurveName): KeyPair {
  const cert = readCert(dir, certPath(kind, curve));
  return { cert, key: readKey(dir, keyPath(kind, curve), cert) };
}

const present = (dir: string, rel: string) => existsSync(join(dir, rel));

/**
 * checkIssued at a moment inside the certificate's validity (so every other check runs), then
 * the real clock, whose failure only adds a warning.
 */
function verifyLink(cert: Certificate, issuer: Certificate, role: string, what: string, warnings?: string[], now = new Date()) {
  const mid = new Date((cert.notBefore.getTime() + cert.notAfter.getTime()) / 2);
  try {
    checkIssued(cert, issuer, { role, at: mid });
  } catch (err) {
    throw new PkiError('invalidChain', `${what}: ${(err as Error).message}`, { cause: err });
  }
  if (now < cert.notBefore) warnings?.push(`${what} is not valid before ${cert.notBefore.toISOString()}`);
  else if (now > cert.notAfter) warnings?.push(`${what} expired on ${cert.notAfter.toISOString()}`);
}

/** The CI certificates of the folder, each checked as a self-signed CI. */
export function loadCis(dir: string, warnings?: string[]): Map<CurveName, Certificate> {
  const cis = new Map<CurveName, Certificate>();
  for (const curve of CURVE_NAMES) {
    const rel = certPath('ci', curve);
    if (!present(dir, rel)) continue;
    const ci = readCert(dir, rel);
    if (ci.curve !== curve) throw new PkiError('invalidCertificate', `${rel} holds a ${ci.curve} key`);
    verifyLink(ci, ci, RSP_ROLE.ci, rel, warnings);
    if (!ci.ski) throw new PkiError('invalidCertificate', `${rel} has no subject key identifier`);
    cis.set(curve, ci);
  }
  return cis;
}

export interface LoadServerPkiOptions {
  /** Curve of the DP TLS certificate to serve (default P-256 when present, else the other). */
  tlsCurve?: CurveName;
  /** Clock for the validity warnings (default now). */
  now?: Date;
}

/**
 * For every curve with a CI, pairs CERT.DPauth and CERT.DPpb (and CERT.DP.TLS if present) with their
 * keys, checks each against the CI (signature, AKI/issuer, role policy) and that DPauth and DPpb
 * carry the same SM-DP+ OID, for all curves alike.
 */
export function loadServerPki(dir: string, opts: LoadServerPkiOptions = {}): ServerPki {
  const warnings: string[] = [];
  const now = opts.now ?? new Date();
  const cis = loadCis(dir, warnings);
  const credentials: DpCredentials[] = [];
  let smdpOid: string | undefined;
  for (const [curve, ci] of cis) {
    const authRel = certPath('dpAuth', curve);
    const pbRel = certPath('dpPb', curve);
    if (!present(dir, authRel) && !present(dir, pbRel)) {
      warnings.push(`${certPath('ci', curve)}: no DPauth/DPpb credentials for this CI`);
      continue;
    }
    const auth = loadPair(dir, 'dpAuth', curve);
    const pb = loadPair(dir, 'dpPb', curve);
    verifyLink(auth.cert, ci, RSP_ROLE.dpAuth, authRel, warnings, now);
    verifyLink(pb.cert, ci, RSP_ROLE.dpPb, pbRel, warnings, now);
    for (const [p, rel] of [[auth, authRel], [pb, pbRel]] as const) {
      if (p.cert.curve !== curve) throw new PkiError('invalidCertificate', `${rel} holds a ${p.cert.curve} key`);
    }
    const oid = auth.cert.sanRegisteredIds[0];
    if (!oid) throw new PkiError('smdpOidMismatch', `${authRel} has no SM-DP+ OID (SAN registeredID)`);
    if (!pb.cert.sanRegisteredIds.includes(oid)) {
      throw new PkiError('smdpOidMismatch', `${pbRel} does not carry the SM-DP+ OID ${oid} of ${authRel}`);
    }
    if (smdpOid !== undefined && smdpOid !== oid) {
      throw new PkiError('smdpOidMismatch', `${authRel} names SM-DP+ OID ${oid}, other credentials ${smdpOid}`);
    }
    smdpOid = oid;
    const cred: DpCredentials = { curve, ci, ciSki: ci.ski!, auth, pb };
    const tlsRel = certPath('dpTls', curve);
    if (present(dir, tlsRel)) {
      cred.tls = loadPair(dir, 'dpTls', curve);
      verifyLink(cred.tls.cert, ci, RSP_ROLE.dpTls, tlsRel, warnings, now);
    }
    credentials.push(cred);
  }
  if (!credentials.length || smdpOid === undefined) {
    throw new PkiError('noCredentials', `no CI with DPauth and DPpb credentials in ${dir}`);
  }
  const byCiSkiHex = new Map(credentials.map((c) => [c.ciSki.toString('hex').toUpperCase(), c]));
  const pki: ServerPki = { dir, credentials, byCiSkiHex, cis: [...cis.values()], smdpOid, warnings };
  const smds = loadSmdsCredentials(dir, cis, warnings, now);
  if (smds) pki.smds = smds;

  const preferred = opts.tlsCurve ?? 'P-256';
  const withTls = credentials.filter((c) => c.tls);
  const t = withTls.find((c) => c.curve === preferred) ?? (opts.tlsCurve ? undefined : withTls[0]);
  if (opts.tlsCurve && !t) warnings.push(`no ${CURVES[opts.tlsCurve].fileTag} DP TLS certificate in ${dir}`);
  const ciPems = pki.cis.map((c) => c.toPem());
  if (t?.tls) pki.tls = tlsCredentials(t.curve, t.tls, t.ci, ciPems);
  const dsCurve = pki.tls?.curve ?? preferred;
  const dsCi = cis.get(dsCurve);
  const dsRel = certPath('dsTls', dsCurve);
  if (dsCi && present(dir, dsRel)) {
    const pair = loadPair(dir, 'dsTls', dsCurve);
    verifyLink(pair.cert, dsCi, RSP_ROLE.dsTls, dsRel, warnings, now);
    pki.dsTls = tlsCredentials(dsCurve, pair, dsCi, ciPems);
  }
  return pki;
}

function tlsCredentials(curve: CurveName, pair: KeyPair, ci: Certificate, ciPems: string[]): TlsCredentials {
  const certPem = pair.cert.toPem();
  return { curve, cert: pair.cert, certPem, keyPem: pair.key.export({ format: 'pem', type: 'pkcs8' }).toString(), chainPem: certPem + ci.toPem(), ciPems };
}

/** CERT.DSauth of each CI that has one (role ds-auth, one SM-DS OID for all); none: undefined. */
function loadSmdsCredentials(dir: string, cis: Map<CurveName, Certificate>, warnings: string[], now: Date): SmdsCredentials | undefined {
  const byCiSkiHex: SmdsCredentials['byCiSkiHex'] = new Map();
  let smdsOid: string | undefined;
  for (const [curve, ci] of cis) {
    const rel = certPath('dsAuth', curve);
    if (!present(dir, rel)) continue;
    const pair = loadPair(dir, 'dsAuth', curve);
    verifyLink(pair.cert, ci, RSP_ROLE.dsAuth, rel, warnings, now);
    if (pair.cert.curve !== curve) throw new PkiError('invalidCertificate', `${rel} holds a ${pair.cert.curve} key`);
    const oid = pair.cert.sanRegisteredIds[0];
    if (!oid) throw new PkiError('invalidCertificate', `${rel} has no SM-DS OID (SAN registeredID)`);
    if (smdsOid !== undefined && oid !== smdsOid) throw new PkiError('invalidCertificate', `${rel} names SM-DS OID ${oid}, another CERT.DSauth ${smdsOid}`);
    smdsOid = oid;
    byCiSkiHex.set(ci.ski!.toString('hex').toUpperCase(), { ...pair, curve, ci, ciSki: ci.ski! });
  }
  return smdsOid === undefined ? undefined : { smdsOid, byCiSkiHex };
}

function checkEidFor(eid: string, eum: Certificate) {
  if (!/^\d{32}$/.test(eid)) throw new PkiError('invalidEid', `EID must be 32 digits: ${eid}`);
  if (eum.permittedEins.length && !eum.permittedEins.some((p) => eid.startsWith(p))) {
    throw new PkiError('invalidEid', `EID ${eid} is outside the EUM's permitted EINs ${eum.permittedEins.join(', ')}`);
  }
}

function verifiedEum(dir: string, curve: CurveName, cis: Map<CurveName, Certificate>): Certificate {
  const eum = readCert(dir, certPath('eum', curve));
  const ci = [...cis.values()].find((c) => eum.aki && c.ski?.equals(eum.aki));
  if (!ci) throw new PkiError('invalidChain', `${certPath('eum', curve)}: issued by no CI of ${dir}`);
  verifyLink(eum, ci, RSP_ROLE.eum, certPath('eum', curve));
  return eum;
}

/**
 * The eUICC credentials of a folder's eUICC/ (with EUM/ and CertificateIssuer/ certificates): the
 * requested curve, else the first present (P-256 before brainpool). The chain eUICC → EUM → CI is
 * checked (dates aside), the EID is the eUICC certificate's subject serialNumber.
 */
export function loadEuiccCredentials(dir: string, opts: { curve?: CurveName } = {}): EuiccCredentials {
  const curve = opts.curve ?? CURVE_NAMES.find((c) => present(dir, certPath('euicc', c)));
  if (!curve) throw new PkiError('missingFile', `no eUICC certificate in ${join(dir, 'eUICC')}`);
  const cis = loadCis(dir);
  const { cert, key } = loadPair(dir, 'euicc', curve);
  const eum = verifiedEum(dir, curve, cis);
  verifyLink(cert, eum, RSP_ROLE.euicc, certPath('euicc', curve));
  const eid = cert.subjectSerialNumber ?? '';
  checkEidFor(eid, eum);
  return { eid, curve, cert, key, eum, cis: [...cis.values()] };
}

export interface IssueEuiccOptions {
  /** Default 9999-12-31T23:59:59Z. */
  notAfter?: Date;
  /** Default CN 'mock-smdp Test eUICC'. */
  commonName?: string;
}

/**
 * A new eUICC key pair and certificate for `eid`, issued by the folder's EUM of that curve (needs
 * CERT_EUM_ECDSA_* and SK_EUM_ECDSA_*). Nothing is written; see writeEuiccCredentials.
 */
export function issueEuiccCredentials(dir: string, eid: string, curve: CurveName, opts: IssueEuiccOptions = {}): EuiccCredentials {
  const cis = loadCis(dir);
  const eum = verifiedEum(dir, curve, cis);
  const eumKey = readKey(dir, keyPath('eum', curve), eum);
  checkEidFor(eid, eum);
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName });
  const subject: NameSpec = [];
  const c = eum.subject.get('C');
  const o = eum.subject.get('O');
  if (c) subject.push(['C', c]);
  if (o) subject.push(['O', o]);
  subject.push(['serialNumber', eid], ['CN', opts.commonName ?? 'mock-smdp Test eUICC']);
  const cert = issueCertificate({
    subject,
    subjectKey: privateKey,
    issuer: { cert: eum, key: eumKey },
    notAfter: opts.notAfter ?? new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
    policies: [RSP_ROLE.euicc],
    keyUsage: ['digitalSignature'],
  });
  return { eid, curve, cert, key: privateKey, eum, cis: [...cis.values()] };
}

/**
 * Writes eUICC credentials in the layout under `dir`: eUICC/ certificate and key (replacing those of
 * the same curve), the EUM certificate and the CI certificates (which must be absent or identical), so that loadEuiccCredentials(dir)
 * reads them back.
 */
export function writeEuiccCredentials(dir: string, creds: EuiccCredentials): void {
  const shared: Array<[string, Buffer]> = [[certPath('eum', creds.curve), creds.eum.raw], ...creds.cis.map((ci) => [certPath('ci', ci.curve), ci.raw] as [string, Buffer])];
  const missing = shared.filter(([rel, data]) => {
    const file = join(dir, rel);
    if (!existsSync(file)) return true;
    if (!readFileSync(file).equals(data)) throw new PkiError('exists', `${file} exists with other contents`);
    return false;
  });
  const write = (rel: string, data: Buffer | string, mode = 0o644) => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), data, { mode });
  };
  for (const [rel, data] of missing) write(rel, data);
  write(certPath('euicc', creds.curve), creds.cert.raw);
  write(keyPath('euicc', creds.curve), privateKeyToPem(creds.key), 0o600);
}
