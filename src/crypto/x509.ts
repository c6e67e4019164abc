/**
 * X.509 certificates of the RSP PKI (SGP.22 §4.5; docs/protocol.md#curves-and-certificates), parsed
 * with the project's own DER codec so that brainpoolP256r1 works as well as P-256. Every part that is
 * signed or compared keeps its exact received bytes (`raw`, `tbsRaw`, `Name.raw`); signatures are checked with node:crypto.
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { decode, DerError, type Tlv } from '../der/tlv.js';
import { decodeOidValue, readBitStringBytes, readBool, readNamedBits, readTime, readUint, TAG } from '../der/types.js';
import { curveOfKey, type CurveName } from './curves.js';

/** Certificate policy OIDs of the RSP roles (id-rspRole, SGP.22 §4.5). */
export const RSP_ROLE = {
  ci: '2.23.146.1.2.1.0',
  euicc: '2.23.146.1.2.1.1',
  eum: '2.23.146.1.2.1.2',
  dpTls: '2.23.146.1.2.1.3',
  dpAuth: '2.23.146.1.2.1.4',
  dpPb: '2.23.146.1.2.1.5',
  dsTls: '2.23.146.1.2.1.6',
  dsAuth: '2.23.146.1.2.1.7',
} as const;

/** OIDs this module reads or writes. */
export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  /** SGP.22 v3 permittedEins extension (SEQUENCE OF PrintableString); its OID is unverified (docs/protocol.md#not-verified). */
  permittedEins: '2.23.146.1.2.2.0',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** Short names of the DN attributes used in RSP certificates. */
export const NAME_ATTR = {
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  C: '2.5.4.6',
  L: '2.5.4.7',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
} as const;
export type NameAttrShort = keyof typeof NAME_ATTR;
const SHORT_NAME = new Map<string, string>(Object.entries(NAME_ATTR).map(([k, v]) => [v, k]));

/** keyUsage bit names in bit order (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGE_BITS)[number];

/** extKeyUsage purposes reported by name; others are reported as dotted OIDs. */
export const EXT_KEY_USAGE: Record<string, string> = { serverAuth: OID.serverAuth, clientAuth: OID.clientAuth };

export type CertificateErrorCode = 'malformed' | 'signature' | 'expired' | 'notYetValid' | 'role' | 'issuerMismatch';

export class CertificateError extends Error {
  override name = 'CertificateError';
  constructor(readonly code: CertificateErrorCode, message: string = code) {
    super(message);
  }
}

export interface NameAttribute {
  oid: string;
  value: string;
}

/** A distinguished name with its exact DER bytes. */
export class Name {
  constructor(
    readonly raw: Buffer,
    readonly attrs: NameAttribute[],
  ) {}

  /** First value of an attribute by short name (CN, O, C, serialNumber, …) or dotted OID. */
  get(attr: NameAttrShort | string): string | undefined {
    const oid = (NAME_ATTR as Record<string, string>)[attr] ?? attr;
    return this.attrs.find((a) => a.oid === oid)?.value;
  }

  toString(): string {
    return this.attrs.map((a) => `${SHORT_NAME.get(a.oid) ?? a.oid}=${a.value}`).join(', ');
  }

  static parse(t: Tlv): Name {
    t.expect(TAG.SEQUENCE);
    const attrs: NameAttribute[] = [];
    for (const rdn of t.children()) {
      rdn.expect(TAG.SET);
      for (const atv of rdn.children()) {
        atv.expect(TAG.SEQUENCE);
        const [type, value] = atv.children();
        if (!type || !value) throw new DerError('AttributeTypeAndValue needs type and value');
        attrs.push({ oid: decodeOidValue(type.expect(TAG.OID).value), value: readDirectoryString(value) });
      }
    }
    return new Name(t.raw, attrs);
  }
}

function readDirectoryString(t: Tlv): string {
  switch (t.tag) {
    case TAG.UTF8_STRING:
      return t.value.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case 0x12: // NumericString
      return t.value.toString('ascii');
    case 0x14: // TeletexString: treated as Latin-1
      return t.value.toString('latin1');
    case 0x1e: // BMPString
      return Buffer.from(t.value).swap16().toString('utf16le');
    default:
      throw new DerError(`unsupported string type ${t.tag.toString(16)} in a name`);
  }
}

export interface Extension {
  oid: string;
  critical: boolean;
  /** Contents of the extnValue OCTET STRING. */
  value: Buffer;
}

export class Certificate {
  /** The whole certificate as received. */
  readonly raw!: Buffer;
  /** The TBSCertificate as received: the signed bytes. */
  readonly tbsRaw!: Buffer;
  readonly version!: number;
  readonly serialNumber!: Buffer;
  readonly signatureAlgorithm!: string;
  /** DER ECDSA-Sig-Value. */
  readonly signature!: Buffer;
  readonly issuer!: Name;
  readonly subject!: Name;
  readonly notBefore!: Date;
  readonly notAfter!: Date;
  /** SubjectPublicKeyInfo DER as received. */
  readonly spkiRaw!: Buffer;
  /** The subjectPublicKey bits: the uncompressed point 04‖X‖Y. */
  readonly publicKeyPoint!: Buffer;
  readonly publicKey!: KeyObject;
  readonly curve!: CurveName;
  readonly extensions: Extension[] = [];
  readonly ski?: Buffer;
  readonly aki?: Buffer;
  readonly policies: string[] = [];
  readonly policiesCritical: boolean = false;
  readonly keyUsage: KeyUsageName[] = [];
  readonly isCa: boolean = false;
  readonly pathLen?: number;
  readonly sanRegisteredIds: string[] = [];
  readonly sanDnsNames: string[] = [];
  /** 'serverAuth', 'clientAuth', or the dotted OID of any other purpose. */
  readonly extKeyUsage: string[] = [];
  /** EIN prefixes: serialNumber of nameConstraints permitted directoryNames, plus the permittedEins extension. */
  readonly permittedEins: string[] = [];
  /** Subject serialNumber: the EID in an eUICC certificate. */
  readonly subjectSerialNumber?: string;

  private constructor() {}

  /** Parses a DER certificate; CertificateError 'malformed' on any structural problem or an unsupported key. */
  static parse(der: Buffer | Uint8Array): Certificate {
    try {
      return parseCertificate(Buffer.isBuffer(der) ? der : Buffer.from(der));
    } catch (err) {
      if (err instanceof CertificateError) throw err;
      throw new CertificateError('malformed', `malformed certificate: ${(err as Error).message}`);
    }
  }

  /** Parses the first CERTIFICATE block of a PEM text. */
  static fromPem(pem: string): Certificate {
    const m = pem.match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/);
    if (!m) throw new CertificateError('malformed', 'no CERTIFICATE block in PEM');
    return Certificate.parse(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
  }

  /** The extension with this OID, if present. */
  extension(oid: string): Extension | undefined {
    return this.extensions.find((e) => e.oid === oid);
  }

  /** True when the signature over tbsRaw verifies with the issuer's public key (never throws). */
  verifySignature(issuerKey: KeyObject): boolean {
    if (this.signatureAlgorithm !== OID.ecdsaWithSha256) return false;
    try {
      return verify('sha256', this.tbsRaw, issuerKey, this.signature);
    } catch {
      return false;
    }
  }

  /** Subject and issuer DN bytes are equal. */
  get selfIssued(): boolean {
    return this.subject.raw.equals(this.issuer.raw);
  }

  toPem(): string {
    const b64 = this.raw.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
    return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
  }
}

/** Mutable view used only while parsing. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

function parseCertificate(der: Buffer): Certificate {
  const c = Object.create(Certificate.prototype) as Writable<Certificate>;
  c.extensions = [];
  c.policies = [];
  c.policiesCritical = false;
  c.keyUsage = [];
  c.isCa = false;
  c.sanRegisteredIds = [];
  c.sanDnsNames = [];
  c.extKeyUsage = [];
  c.permittedEins = [];

  const top = decode(der).expect(TAG.SEQUENCE);
  const parts = top.children();
  if (parts.length !== 3) throw new DerError('Certificate must have 3 elements');
  const [tbs, sigAlg, sigValue] = parts as [Tlv, Tlv, Tlv];
  tbs.expect(TAG.SEQUENCE);
  c.raw = top.raw;
  c.tbsRaw = tbs.raw;
  c.signatureAlgorithm = algorithmOid(sigAlg);
  c.signature = readBitStringBytes(sigValue.expect(TAG.BIT_STRING));

  const f = tbs.children();
  let i = 0;
  c.version = 1;
  if (f[i]?.tag === 0xa0) {
    const v = f[i++]!.children();
    if (v.length !== 1) throw new DerError('bad version');
    c.version = readUint(v[0]!.expect(TAG.INTEGER)) + 1;
  }
  const next = (what: string) => {
    const t = f[i++];
    if (!t) throw new DerError(`TBSCertificate: missing ${what}`);
    return t;
  };
  const serial = next('serialNumber').expect(TAG.INTEGER);
  if (serial.length === 0) throw new DerError('empty serialNumber');
  c.serialNumber = serial.value;
  const innerAlg = next('signature').expect(TAG.SEQUENCE);
  if (!innerAlg.raw.equals(sigAlg.raw)) throw new DerError('signature algorithm differs between TBSCertificate and Certificate');
  c.issuer = Name.parse(next('issuer'));
  const validity = next('validity').expect(TAG.SEQUENCE).children();
  if (validity.length !== 2) throw new DerError('Validity must have 2 times');
  c.notBefore = readTime(validity[0]!);
  c.notAfter = readTime(validity[1]!);
  c.subject = Name.parse(next('subject'));
  const spki = next('subjectPublicKeyInfo').expect(TAG.SEQUENCE);
  parseSpki(c, spki);
  while (i < f.length) {
    const t = f[i++]!;
    if (t.tag === 0x81 || t.tag === 0x82) continue; // issuer/subject unique IDs
    if (t.tag !== 0xa3) throw new DerError(`unexpected element ${t.tag.toString(16)} in TBSCertificate`);
    if (c.version !== 3) throw new DerError('extensions in a certificate that is not v3');
    const exts = t.children();
    if (exts.length !== 1) throw new DerError('bad extensions wrapper');
    for (const e of exts[0]!.expect(TAG.SEQUENCE).children()) parseExtension(c, e);
  }
  c.subjectSerialNumber = c.subject.get('serialNumber');
  return c as Certificate;
}

function algorithmOid(t: Tlv): string {
  const ch = t.expect(TAG.SEQUENCE).children();
  if (!ch[0]) throw new DerError('empty AlgorithmIdentifier');
  return decodeOidValue(ch[0].expect(TAG.OID).value);
}

function parseSpki(c: Writable<Certificate>, spki: Tlv) {
  const [alg, bits] = spki.children();
  if (!alg || !bits) throw new DerError('SubjectPublicKeyInfo needs algorithm and key');
  const algParts = alg.expect(TAG.SEQUENCE).children();
  if (decodeOidValue(algParts[0]!.expect(TAG.OID).value) !== OID.ecPublicKey) {
    throw new CertificateError('malformed', 'public key is not an EC key');
  }
  c.spkiRaw = spki.raw;
  c.publicKeyPoint = readBitStringBytes(bits.expect(TAG.BIT_STRING));
  try {
    c.publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
    c.curve = curveOfKey(c.publicKey);
  } catch (err) {
    throw new CertificateError('malformed', `public key: ${(err as Error).message}`);
  }
}

const GN = { rfc822Name: 0x81, dNSName: 0x82, directoryName: 0xa4, uri: 0x86, iPAddress: 0x87, registeredID: 0x88 } as const;

function parseExtension(c: Writable<Certificate>, e: Tlv) {
  const ch = e.expect(TAG.SEQUENCE).children();
  const oidT = ch[0];
  if (!oidT) throw new DerError('empty Extension');
  const oid = decodeOidValue(oidT.expect(TAG.OID).value);
  let critical = false;
  let k = 1;
  if (ch[k]?.tag === TAG.BOOLEAN) critical = readBool(ch[k++]!);
  const valueT = ch[k];
  if (!valueT || ch.length !== k + 1) throw new DerError(`bad Extension ${oid}`);
  const value = valueT.expect(TAG.OCTET_STRING).value;
  if (c.extensions.some((x) => x.oid === oid)) throw new DerError(`duplicate extension ${oid}`);
  c.extensions.push({ oid, critical, value });
  const v = () => decode(value);

  switch (oid) {
    case OID.subjectKeyIdentifier:
      c.ski = v().expect(TAG.OCTET_STRING).value;
      break;
    case OID.authorityKeyIdentifier: {
      const kid = v().expect(TAG.SEQUENCE).find(0x80);
      if (kid) c.aki = kid.value;
      break;
    }
    case OID.keyUsage:
      c.keyUsage = readNamedBits(v().expect(TAG.BIT_STRING))
        .filter((b) => b < KEY_USAGE_BITS.length)
        .map((b) => KEY_USAGE_BITS[b]!);
      break;
    case OID.basicConstraints: {
      const bc = v().expect(TAG.SEQUENCE).children();
      let j = 0;
      if (bc[j]?.tag === TAG.BOOLEAN) c.isCa = readBool(bc[j++]!);
      if (bc[j]?.tag === TAG.INTEGER) c.pathLen = readUint(bc[j++]!);
      if (j !== bc.length) throw new DerError('bad basicConstraints');
      break;
    }
    case OID.certificatePolicies:
      c.policiesCritical = critical;
      for (const pi of v().expect(TAG.SEQUENCE).children()) {
        const first = pi.expect(TAG.SEQUENCE).children()[0];
        if (!first) throw new DerError('empty PolicyInformation');
        c.policies.push(decodeOidValue(first.expect(TAG.OID).value));
      }
      break;
    case OID.subjectAltName:
      for (const gn of v().expect(TAG.SEQUENCE).children()) {
        if (gn.tag === GN.registeredID) c.sanRegisteredIds.push(decodeOidValue(gn.value));
        else if (gn.tag === GN.dNSName) c.sanDnsNames.push(gn.value.toString('ascii'));
      }
      break;
    case OID.extKeyUsage:
      for (const p of v().expect(TAG.SEQUENCE).children()) {
        const o = decodeOidValue(p.expect(TAG.OID).value);
        c.extKeyUsage.push(Object.keys(EXT_KEY_USAGE).find((n) => EXT_KEY_USAGE[n] === o) ?? o);
      }
      break;
    case OID.nameConstraints: {
      const permitted = v().expect(TAG.SEQUENCE).find(0xa0);
      for (const subtree of permitted?.children() ?? []) {
        const base = subtree.expect(TAG.SEQUENCE).children()[0];
        if (base?.tag !== GN.directoryName) continue;
        const name = base.children()[0];
        if (!name) throw new DerError('empty directoryName');
        const ein = Name.parse(name).get('serialNumber');
        if (ein !== undefined) c.permittedEins.push(ein);
      }
      break;
    }
    case OID.permittedEins:
      for (const s of v().expect(TAG.SEQUENCE).children()) c.permittedEins.push(readDirectoryString(s));
      break;
    default:
      break;
  }
}

export interface CheckIssuedOptions {
  /** Time for the validity check (default: now). */
  at?: Date;
  /** Required certificate policy (an RSP_ROLE value). */
  role?: string;
}

/**
 * Checks that `issuer` issued `cert`: issuer DN bytes equal the issuer's subject DN bytes, AKI equals
 * the issuer's SKI (a self-signed certificate may omit its AKI), the issuer is a CA with keyCertSign
 * (and a pathLen of 0 forbids issuing CA certificates), the signature verifies, `at` lies within the
 * validity window, and `role` (if given) is among the certificate policies, which must be marked
 * critical except for DP/DS TLS certificates (the SGP.26 TLS certificates carry them non-critical).
 */
export function checkIssued(cert: Certificate, issuer: Certificate, opts: CheckIssuedOptions = {}): void {
  if (!cert.issuer.raw.equals(issuer.subject.raw)) {
    throw new CertificateError('issuerMismatch', `issuer "${cert.issuer}" is not "${issuer.subject}"`);
  }
  const selfSigned = cert.raw.equals(issuer.raw);
  if (cert.aki || !selfSigned) {
    if (!cert.aki) throw new CertificateError('issuerMismatch', 'certificate has no authority key identifier');
    if (!issuer.ski || !cert.aki.equals(issuer.ski)) {
      throw new CertificateError(
        'issuerMismatch',
        `authority key identifier ${hex(cert.aki)} is not the issuer's subject key identifier ${issuer.ski ? hex(issuer.ski) : '(none)'}`,
      );
    }
  }
  if (!issuer.isCa || !issuer.keyUsage.includes('keyCertSign')) {
    throw new CertificateError('issuerMismatch', `"${issuer.subject}" is not a CA certificate with keyCertSign`);
  }
  if (!selfSigned && issuer.pathLen === 0 && cert.isCa) {
    throw new CertificateError('issuerMismatch', `"${issuer.subject}" (pathLen 0) cannot issue CA certificates`);
  }
  if (!cert.verifySignature(issuer.publicKey)) {
    throw new CertificateError('signature', `signature of "${cert.subject}" does not verify with the key of "${issuer.subject}"`);
  }
  const at = opts.at ?? new Date();
  if (at < cert.notBefore) throw new CertificateError('notYetValid', `"${cert.subject}" not valid before ${cert.notBefore.toISOString()}`);
  if (at > cert.notAfter) throw new CertificateError('expired', `"${cert.subject}" expired ${cert.notAfter.toISOString()}`);
  if (opts.role !== undefined) {
    if (!cert.policies.includes(opts.role)) {
      throw new CertificateError('role', `"${cert.subject}" lacks certificate policy ${opts.role} (has ${cert.policies.join(', ') || 'none'})`);
    }
    const tls = opts.role === RSP_ROLE.dpTls || opts.role === RSP_ROLE.dsTls;
    if (!tls && !cert.policiesCritical) {
      throw new CertificateError('role', `"${cert.subject}": certificatePolicies must be critical`);
    }
  }
}

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

const parsedCache = new Map<string, Certificate>();
const PARSED_CACHE_MAX = 20_000;

/**
 * A certificate parsed once per process, looked up by its exact bytes (parsing and building the
 * public key object are most of the cost of a chain check). Certificates are immutable values,
 * so sharing the parsed object is safe; the oldest entries go first past the bound.
 */
export function parseCertificateCached(der: Buffer): Certificate {
  const k = der.toString('base64');
  let c = parsedCache.get(k);
  if (!c) {
    c = Certificate.parse(der);
    if (parsedCache.size >= PARSED_CACHE_MAX) parsedCache.delete(parsedCache.keys().next().value!);
    parsedCache.set(k, c);
  }
  return c;
}
