/**
 * Issues RSP certificates (SGP.22 §4.5 profile; docs/protocol.md, Curves and certificates): the
 * TBSCertificate is built with the project's DER encoder and signed ecdsa-with-SHA256 (DER signature)
 * with node:crypto, so brainpoolP256r1 issuers work like P-256 ones.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { decode, tlv } from '../der/tlv.js';
import { bitStringBytes, bool, integer, namedBits, octets, oid, readBitStringBytes, seq, TAG, time, utf8 } from '../der/types.js';
import { curveOfKey } from '../crypto/curves.js';
import { Certificate, EXT_KEY_USAGE, KEY_USAGE_BITS, NAME_ATTR, OID, type KeyUsageName, type NameAttrShort } from '../crypto/x509.js';

export type PkiErrorCode =
  | 'invalidSpec'
  | 'keyMismatch'
  | 'missingFile'
  | 'invalidKey'
  | 'invalidCertificate'
  | 'invalidChain'
  | 'smdpOidMismatch'
  | 'noCredentials'
  | 'invalidEid'
  | 'exists';

/** Errors of the PKI layer (issuing, generating and loading credentials). */
export class PkiError extends Error {
  override name = 'PkiError';
  constructor(readonly code: PkiErrorCode, message: string = code, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A DN in order, e.g. [['CN', 'Test CI'], ['O', 'mock-smdp'], ['C', 'XX']]; attribute by short name or dotted OID. */
export type NameSpec = Array<[NameAttrShort | string, string]>;

export interface IssueSpec {
  subject: NameSpec;
  /** The subject's key: public, or private (then its public half is certified). */
  subjectKey: KeyObject;
  /** Issuer certificate and private key; omitted for a self-signed certificate (subjectKey must then be private). */
  issuer?: { cert: Certificate; key: KeyObject };
  /** Positive serial number bytes; default 16 random bytes. */
  serialNumber?: Buffer;
  /** Default: now minus one day (whole seconds). */
  notBefore?: Date;
  notAfter: Date;
  /** Certificate policy OIDs (the RSP role). */
  policies: string[];
  /** Mark certificatePolicies critical (default true; SGP.26 TLS certificates have it non-critical). */
  policiesCritical?: boolean;
  /** Key usage, always marked critical. */
  keyUsage: KeyUsageName[];
  /** basicConstraints CA:TRUE (critical), with an optional pathLenConstraint. */
  ca?: { pathLen?: number };
  sanRegisteredIds?: string[];
  sanDnsNames?: string[];
  /** IPv4/IPv6 addresses as SAN iPAddress entries. */
  sanIpAddresses?: string[];
  /** 'serverAuth' | 'clientAuth' | dotted OID; marked critical as in SGP.26. */
  extKeyUsage?: string[];
  /** Critical nameConstraints with one permitted directoryName per entry (EUM: [['O', eum], ['serialNumber', ein]]). */
  permittedDirectoryNames?: NameSpec[];
  /** The SGP.22 v3 permittedEins extension (non-critical). */
  permittedEins?: string[];
  /** Subject key identifier; default SHA-1 of the subjectPublicKey bits. */
  ski?: Buffer;
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** DER Name: C and serialNumber as PrintableString (X.520), others as UTF8String (as SGP.26 does). */
export function encodeName(name: NameSpec): Buffer {
  return seq(
    ...name.map(([attr, value]) => {
      const o = (NAME_ATTR as Record<string, string>)[attr] ?? attr;
      const printable = (o === NAME_ATTR.C || o === NAME_ATTR.serialNumber) && PRINTABLE.test(value);
      return tlv(TAG.SET, seq(oid(o), printable ? utf8(value, TAG.PRINTABLE_STRING) : utf8(value)));
    }),
  );
}

function extension(o: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(o), critical && bool(true), octets(value));
}

/** 16 random bytes with the top bit clear and the next one set: positive, always 16 bytes. */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b;
}

/** The public half of a private key; a public key as is. */
export function publicOf(key: KeyObject): KeyObject {
  return key.type === 'private' ? createPublicKey(key) : key;
}

/** SHA-1 of the subjectPublicKey bit string contents (RFC 5280 §4.2.1.2 method 1). */
export function keyIdentifier(key: KeyObject): Buffer {
  const spki = decode(publicOf(key).export({ format: 'der', type: 'spki' }));
  const bits = readBitStringBytes(spki.children()[1]!);
  return createHash('sha1').update(bits).digest();
}

function ipBytes(a: string): Buffer {
  if (isIPv4(a)) return Buffer.from(a.split('.').map(Number));
  if (!isIPv6(a)) throw new PkiError('invalidSpec', `not an IP address: ${a}`);
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const words = (s: string | undefined) => (s ? s.split(':') : []);
  const h = words(head);
  const t = words(tail);
  const v4 = (t.length ? t : h).at(-1)?.includes('.') ? (t.length ? t : h).pop()! : undefined;
  const groups = [...h, ...Array(8 - h.length - t.length - (v4 ? 2 : 0)).fill('0'), ...t].map((g) => parseInt(g, 16));
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (v4) Buffer.from(v4.split('.').map(Number)).copy(out, 12);
  return out;
}

const ALG_ECDSA_SHA256 = seq(oid(OID.ecdsaWithSha256));

export function issueCertificate(spec: IssueSpec): Certificate {
  const publicKey = publicOf(spec.subjectKey);
  curveOfKey(publicKey); // only RSP curves
  let signingKey: KeyObject;
  let issuerName: Buffer;
  let aki: Buffer | undefined;
  if (spec.issuer) {
    signingKey = spec.issuer.key;
    issuerName = spec.issuer.cert.subject.raw;
    aki = spec.issuer.cert.ski;
    if (!publicOf(signingKey).export({ format: 'der', type: 'spki' }).equals(spec.issuer.cert.spkiRaw)) {
      throw new PkiError('keyMismatch', `issuer key does not belong to "${spec.issuer.cert.subject}"`);
    }
  } else {
    if (spec.subjectKey.type !== 'private') throw new PkiError('invalidSpec', 'a self-signed certificate needs the private subjectKey');
    signingKey = spec.subjectKey;
    issuerName = encodeName(spec.subject);
  }
  const serial = spec.serialNumber ?? randomSerial();
  if (serial.length === 0 || serial[0]! & 0x80 || serial.every((b) => b === 0)) throw new PkiError('invalidSpec', 'serial number must be positive');
  const notBefore = spec.notBefore ?? new Date(Math.floor(Date.now() / 1000) * 1000 - 86_400_000);
  const ski = spec.ski ?? keyIdentifier(publicKey);

  const exts: Buffer[] = [];
  if (aki) exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, aki))));
  exts.push(extension(OID.subjectKeyIdentifier, false, octets(ski)));
  exts.push(extension(OID.keyUsage, true, namedBits(spec.keyUsage.map((u) => KEY_USAGE_BITS.indexOf(u)))));
  exts.push(extension(OID.certificatePolicies, spec.policiesCritical ?? true, seq(...spec.policies.map((p) => seq(oid(p))))));
  const san = [
    ...(spec.sanDnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(spec.sanIpAddresses ?? []).map((a) => tlv(0x87, ipBytes(a))),
    ...(spec.sanRegisteredIds ?? []).map((r) => oid(r, 0x88)),
  ];
  if (san.length) exts.push(extension(OID.subjectAltName, false, seq(...san)));
  if (spec.ca) {
    exts.push(extension(OID.basicConstraints, true, seq(bool(true), spec.ca.pathLen !== undefined && integer(spec.ca.pathLen))));
  }
  if (spec.extKeyUsage?.length) {
    exts.push(extension(OID.extKeyUsage, true, seq(...spec.extKeyUsage.map((u) => oid(EXT_KEY_USAGE[u] ?? u)))));
  }
  if (spec.permittedDirectoryNames?.length) {
    const subtrees = spec.permittedDirectoryNames.map((n) => seq(tlv(0xa4, encodeName(n))));
    exts.push(extension(OID.nameConstraints, true, seq(tlv(0xa0, ...subtrees))));
  }
  if (spec.permittedEins?.length) {
    exts.push(extension(OID.permittedEins, false, seq(...spec.permittedEins.map((e) => utf8(e, TAG.PRINTABLE_STRING)))));
  }

  const tbs = seq(
    tlv(0xa0, integer(2)),
    integer(serial),
    ALG_ECDSA_SHA256,
    issuerName,
    seq(time(notBefore), time(spec.notAfter)),
    encodeName(spec.subject),
    publicKey.export({ format: 'der', type: 'spki' }),
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, signingKey);
  return Certificate.parse(seq(tbs, ALG_ECDSA_SHA256, bitStringBytes(signature)));
}
