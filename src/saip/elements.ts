/**
 * Building blocks of the TCA eUICC Profile Package (module PEDefinitions, AUTOMATIC TAGS): ProfileElement
 * CHOICE tags, PEHeader, File/Fcp, PIN/PUK configurations, AKA parameters, the security domain instance and
 * a few EF content codings. Everything is encoded with src/der; nothing here knows about a particular profile.
 */
import { DerError, Tlv, tlv } from '../der/tlv.js';
import { integer, readUint } from '../der/types.js';
import { SaipError } from './errors.js';

// ---------------------------------------------------------------- ProfileElement CHOICE

/** Alternatives of ProfileElement in definition order: alternative n has context tag [n], constructed. */
const PE_ORDER = [
  'header', 'genericFileManagement', 'pinCodes', 'pukCodes', 'akaParameter', 'cdmaParameter', 'securityDomain',
  'rfm', 'application', 'nonStandard', 'end', 'rfu1', 'rfu2', 'rfu3', 'rfu4', 'rfu5',
  'mf', 'cd', 'telecom', 'usim', 'opt-usim', 'isim', 'opt-isim', 'phonebook', 'gsm-access', 'csim', 'opt-csim',
  'eap', 'df-5gs', 'df-saip', 'df-snpn', 'df-5gprose', 'iot', 'opt-iot',
] as const;

export type PeType = (typeof PE_ORDER)[number];

/** Context-specific tag [n] as one number (`0x80|n`, `0xA0|n`, or `0x9F1F`/`0xBF1F`… from 31 on). */
export function ctxTag(n: number, constructed: boolean): number {
  const cls = constructed ? 0xa0 : 0x80;
  if (n < 31) return cls | n;
  if (n > 127) throw new DerError(`context tag [${n}] not supported`);
  return ((cls | 0x1f) << 8) | n;
}

export const PE_TAG = Object.fromEntries(PE_ORDER.map((name, i) => [name, ctxTag(i, true)])) as Record<PeType, number>;

const PE_BY_TAG = new Map<number, PeType>(PE_ORDER.map((name, i) => [ctxTag(i, true), name]));

/** The ProfileElement alternative name of a tag, or `unknown` (extensibility: later SAIP versions add PEs). */
export function peTypeOfTag(tag: number): PeType | 'unknown' {
  return PE_BY_TAG.get(tag) ?? 'unknown';
}

// ---------------------------------------------------------------- PEHeader

/** PEHeader ::= SEQUENCE { mandated NULL OPTIONAL, identification UInt15 }, as the [0] field of a PE. */
export function peHeader(identification: number, mandated = true): Buffer {
  if (!Number.isInteger(identification) || identification < 0 || identification > 32767) {
    throw new SaipError('invalidValue', `PE identification ${identification} is not a UInt15`);
  }
  return tlv(0xa0, mandated && tlv(0x80), integer(identification, 0x81));
}

export interface PeHeaderInfo {
  mandated: boolean;
  identification: number;
}

export function readPeHeader(pe: Tlv): PeHeaderInfo {
  const h = pe.children()[0];
  if (!h || h.tag !== 0xa0) throw new DerError(`PE ${peTypeOfTag(pe.tag)} does not start with a PEHeader`);
  return { mandated: !!h.find(0x80), identification: readUint(h.get(0x81)) };
}

// ---------------------------------------------------------------- File / Fcp

export interface FcpSpec {
  /** [2] fileDescriptor, 2..4 bytes (TS 102 222), e.g. `41 21` transparent EF. */
  fileDescriptor?: Buffer;
  /** [3] fileID, 2 bytes (temporary file ID for an ADF). */
  fileId?: Buffer;
  /** [4] dfName: the AID of an ADF. */
  dfName?: Buffer;
  /** [11] securityAttributesReferenced: ARR file ID + record, or record only. */
  securityAttributes?: Buffer;
  /** [0] efFileSize in bytes (encoded on the minimum number of octets). */
  efFileSize?: number;
  /** [PRIVATE 6] pinStatusTemplateDO: key references of the PINs used by a DF/ADF. */
  pinStatusTemplate?: Buffer;
  /** [8] shortEFID: SFI in bits b8..b4, or empty for "no SFI". */
  shortEfId?: Buffer;
}

function minimalUnsigned(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new SaipError('invalidValue', `bad size ${n}`);
  const out: number[] = [];
  do {
    out.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  return Buffer.from(out);
}

function readUnsigned(b: Buffer): number {
  let n = 0;
  for (const x of b) n = n * 256 + x;
  return n;
}

/** Fcp fields in SEQUENCE order; the Fcp itself is the [1] alternative of File's CHOICE. */
export function fcp(f: FcpSpec): Buffer {
  return tlv(
    0xa1,
    f.fileDescriptor && tlv(0x82, f.fileDescriptor),
    f.fileId && tlv(0x83, f.fileId),
    f.dfName && tlv(0x84, f.dfName),
    f.securityAttributes && tlv(0x8b, f.securityAttributes),
    f.efFileSize !== undefined && tlv(0x80, minimalUnsigned(f.efFileSize)),
    f.pinStatusTemplate && tlv(0xc6, f.pinStatusTemplate),
    f.shortEfId && tlv(0x88, f.shortEfId),
  );
}

export interface FileSpec {
  doNotCreate?: boolean;
  fcp?: FcpSpec;
  /** fillFileContent written from offset 0. */
  content?: Buffer;
}

/**
 * File ::= SEQUENCE OF CHOICE { doNotCreate [0], fileDescriptor [1] Fcp, fillFileOffset [2], fillFileContent [3] },
 * under the field tag of the PE (`tag`). An empty File means "as the template defines it".
 */
export function fileElement(tag: number, f: FileSpec = {}): Buffer {
  return tlv(tag, f.doNotCreate && tlv(0x80), f.fcp && fcp(f.fcp), f.content && tlv(0x83, f.content));
}

export interface FileInfo {
  doNotCreate: boolean;
  fcp?: FcpSpec;
  /** The bytes written by fillFileContent/fillFileOffset, relative to the start of the file (gaps as FF). */
  content?: Buffer;
}

export function readFcp(t: Tlv): FcpSpec {
  const out: FcpSpec = {};
  for (const c of t.children()) {
    switch (c.tag) {
      case 0x82: out.fileDescriptor = c.value; break;
      case 0x83: out.fileId = c.value; break;
      case 0x84: out.dfName = c.value; break;
      case 0x8b: out.securityAttributes = c.value; break;
      case 0x80: out.efFileSize = readUnsigned(c.value); break;
      case 0xc6: out.pinStatusTemplate = c.value; break;
      case 0x88: out.shortEfId = c.value; break;
      default: break; // lcsi, proprietaryEFInfo, linkPath, later additions
    }
  }
  return out;
}

/** Reads a File: its FCP and the content its fill commands produce (fillFileOffset skips bytes). */
export function readFile(t: Tlv): FileInfo {
  const info: FileInfo = { doNotCreate: false };
  const parts: { at: number; data: Buffer }[] = [];
  let pos = 0;
  for (const c of t.children()) {
    if (c.tag === 0x80) info.doNotCreate = true;
    else if (c.tag === 0xa1) info.fcp = readFcp(c);
    else if (c.tag === 0x82) pos += readUint(c);
    else if (c.tag === 0x83) {
      parts.push({ at: pos, data: c.value });
      pos += c.length;
    }
  }
  if (parts.length) {
    const content = Buffer.alloc(pos, 0xff);
    for (const p of parts) p.data.copy(content, p.at);
    info.content = content;
  }
  return info;
}

// ---------------------------------------------------------------- PINs and PUKs

/** PINKeyReferenceValue / PUKKeyReferenceValue numbers used here. */
export const KEY_REF = {
  pinAppl1: 1,
  adm1: 10,
  secondPinAppl1: 0x81,
  pukAppl1: 1,
  secondPukAppl1: 0x81,
} as const;

export interface PinConfig {
  keyReference: number;
  /** 8 bytes, TS 102 221 coding (see pinValue). */
  value: Buffer;
  unblockingReference?: number;
  /** pinAttributes, DEFAULT 7. */
  attributes?: number;
  /** maxNumOfAttemps-retryNumLeft (high nibble max, low nibble left), DEFAULT 0x33. */
  attempts?: number;
}

export interface PukConfig {
  keyReference: number;
  value: Buffer;
  /** DEFAULT 0xAA. */
  attempts?: number;
}

function eightBytes(v: Buffer, what: string): Buffer {
  if (!Buffer.isBuffer(v) || v.length !== 8) throw new SaipError('invalidValue', `${what} must be 8 bytes`);
  return v;
}

/** PINConfiguration (AUTOMATIC TAGS, DER: values equal to the DEFAULT are left out). */
export function pinConfiguration(p: PinConfig): Buffer {
  return tlv(
    0x30,
    integer(p.keyReference, 0x80),
    tlv(0x81, eightBytes(p.value, 'pinValue')),
    p.unblockingReference !== undefined && integer(p.unblockingReference, 0x82),
    p.attributes !== undefined && p.attributes !== 7 && integer(p.attributes, 0x83),
    p.attempts !== undefined && p.attempts !== 0x33 && integer(p.attempts, 0x84),
  );
}

export function pukConfiguration(p: PukConfig): Buffer {
  return tlv(
    0x30,
    integer(p.keyReference, 0x80),
    tlv(0x81, eightBytes(p.value, 'pukValue')),
    p.attempts !== undefined && p.attempts !== 0xaa && integer(p.attempts, 0x82),
  );
}

/** PE-PINCodes { pin-Header, pinCodes [1] CHOICE { pinconfig [0] SEQUENCE OF PINConfiguration, filePath [1] } }. */
export function pinCodesPe(identification: number, pins: PinConfig[]): Buffer {
  if (pins.length < 1 || pins.length > 26) throw new SaipError('invalidValue', 'a pinCodes PE holds 1 to 26 PINs');
  return tlv(PE_TAG.pinCodes, peHeader(identification), tlv(0xa1, tlv(0xa0, ...pins.map(pinConfiguration))));
}

/** PE-PUKCodes { puk-Header, pukCodes [1] SEQUENCE OF PUKConfiguration }. */
export function pukCodesPe(identification: number, puks: PukConfig[]): Buffer {
  if (puks.length < 1 || puks.length > 16) throw new SaipError('invalidValue', 'a pukCodes PE holds 1 to 16 PUKs');
  return tlv(PE_TAG.pukCodes, peHeader(identification), tlv(0xa1, ...puks.map(pukConfiguration)));
}

/**
 * PIN/PUK value coding (TS 102 221 §9.5.1): the digits as ASCII, padded with FF to 8 bytes.
 * `kind: 'adm'` also takes 16 hex digits as the 8 raw bytes of an ADM key.
 */
export function pinValue(value: string, kind: 'pin' | 'puk' | 'adm'): Buffer {
  if (kind === 'adm' && /^[0-9a-fA-F]{16}$/.test(value)) return Buffer.from(value, 'hex');
  const ok = kind === 'pin' ? /^\d{4,8}$/.test(value) : /^\d{8}$/.test(value);
  if (!ok) {
    const rule = kind === 'pin' ? '4 to 8 digits' : kind === 'puk' ? '8 digits' : '8 digits or 16 hex digits';
    throw new SaipError('invalidValue', `${kind.toUpperCase()} must be ${rule}`);
  }
  const out = Buffer.alloc(8, 0xff);
  out.write(value, 'ascii');
  return out;
}

// ---------------------------------------------------------------- AKA

export const ALGORITHM = { milenage: 1, tuak: 2, usimTestAlgorithm: 3 } as const;

export interface AkaSpec {
  algorithmId: number;
  /** algorithmOptions, 1 byte. */
  algorithmOptions?: number;
  key: Buffer;
  opc: Buffer;
}

/**
 * PE-AKAParameter { aka-header [0], algoConfiguration [1] CHOICE { mappingParameter [0], algoParameter [1] {
 *   algorithmID [0], algorithmOptions [1], key [2], opc [3], … } }, sqnOptions … (defaults, left out) }.
 * The tagged CHOICE is explicit, hence `A1 { A1 { … } }`.
 */
export function akaParameterPe(identification: number, a: AkaSpec): Buffer {
  return tlv(
    PE_TAG.akaParameter,
    peHeader(identification),
    tlv(
      0xa1,
      tlv(
        0xa1,
        integer(a.algorithmId, 0x80),
        tlv(0x81, Buffer.from([a.algorithmOptions ?? 0])),
        tlv(0x82, a.key),
        tlv(0x83, a.opc),
      ),
    ),
  );
}

export interface AkaInfo {
  algorithmId: number;
  algorithmOptions?: number;
  key: Buffer;
  opc: Buffer;
}

/** The algoParameter of an akaParameter PE, or undefined when it uses a mappingParameter. */
export function readAkaParameter(pe: Tlv): AkaInfo | undefined {
  const conf = pe.get(0xa1);
  const algo = conf.find(0xa1);
  if (!algo) return undefined;
  const opts = algo.find(0x81);
  return {
    algorithmId: readUint(algo.get(0x80)),
    algorithmOptions: opts?.value[0],
    key: algo.get(0x82).value,
    opc: algo.get(0x83).value,
  };
}

// ---------------------------------------------------------------- security domain, end

export interface SecurityDomainSpec {
  loadPackageAid: Buffer;
  classAid: Buffer;
  instanceAid: Buffer;
  privileges: Buffer;
  /** GP life cycle state, DEFAULT 07. */
  lifeCycleState?: number;
  /** Install parameters (C9 value), may be empty. */
  installParameters: Buffer;
  /** Optional SCP03 key set: AES keys ENC/MAC/DEK with one key version number. */
  scp03?: { kvn: number; enc: Buffer; mac: Buffer; dek: Buffer };
}

/**
 * Key usage qualifiers of the SCP03 ENC, MAC and DEK keys (key identifiers 1..3), as the GSMA TS.48 test
 * profiles give them: 18 C-ENC/R-ENC, 14 C-MAC/R-MAC, 48 C-DEK/R-DEK.
 */
const SCP03_KEYS = [
  { id: 1, usage: 0x18, name: 'enc' },
  { id: 2, usage: 0x14, name: 'mac' },
  { id: 3, usage: 0x48, name: 'dek' },
] as const;

/**
 * PE-SecurityDomain { sd-Header [0], instance [1] ApplicationInstance, keyList [2] SEQUENCE OF KeyObject OPTIONAL, … }.
 * ApplicationInstance carries its own tags: 4F ×3 (load package, class, instance AIDs), 82 privileges,
 * 83 life cycle state, C9 install parameters.
 */
export function securityDomainPe(identification: number, sd: SecurityDomainSpec): Buffer {
  const keyList =
    sd.scp03 &&
    tlv(
      0xa2,
      ...SCP03_KEYS.map((k) => {
        const key = sd.scp03![k.name];
        if (key.length !== 16 && key.length !== 24 && key.length !== 32) throw new SaipError('invalidValue', `SCP03 ${k.name} key length`);
        return tlv(
          0x30,
          tlv(0x95, Buffer.from([k.usage])),
          tlv(0x82, Buffer.from([k.id])),
          tlv(0x83, Buffer.from([sd.scp03!.kvn])),
          tlv(0x30, tlv(0x30, tlv(0x80, Buffer.from([0x88])), tlv(0x86, key))),
        );
      }),
    );
  return tlv(
    PE_TAG.securityDomain,
    peHeader(identification),
    tlv(
      0xa1,
      tlv(0x4f, sd.loadPackageAid),
      tlv(0x4f, sd.classAid),
      tlv(0x4f, sd.instanceAid),
      tlv(0x82, sd.privileges),
      sd.lifeCycleState !== undefined && sd.lifeCycleState !== 0x07 && tlv(0x83, Buffer.from([sd.lifeCycleState])),
      tlv(0xc9, sd.installParameters),
    ),
    keyList,
  );
}

export interface SecurityDomainKey {
  /** Key usage qualifier, key identifier and key version number (one byte each). */
  usage: number;
  id: number;
  kvn: number;
  /** Key type of the first component: 88 AES, 80 DES. */
  type: number;
  key: Buffer;
}

/** The keyList of a securityDomain PE (empty when it has none). */
export function readSecurityDomainKeys(pe: Tlv): SecurityDomainKey[] {
  const list = pe.find(0xa2);
  if (!list) return [];
  return list.children().map((k) => {
    const component = k.get(0x30).get(0x30);
    return {
      usage: k.get(0x95).value[0]!,
      id: k.get(0x82).value[0]!,
      kvn: k.get(0x83).value[0]!,
      type: component.get(0x80).value[0]!,
      key: component.get(0x86).value,
    };
  });
}

/** PE-End { end-header }. */
export function endPe(identification: number): Buffer {
  return tlv(PE_TAG.end, peHeader(identification));
}

// ---------------------------------------------------------------- EF content codings

/** EF.ACC (TS 31.102 §4.2.15): access class = last IMSI digit, as bit `1 << digit` of a 2-byte value. */
export function accForImsi(imsi: string): Buffer {
  const last = imsi.charCodeAt(imsi.length - 1) - 48;
  if (!(last >= 0 && last <= 9)) throw new SaipError('invalidValue', `IMSI must end in a digit: ${imsi}`);
  const v = 1 << last;
  return Buffer.from([v >> 8, v & 0xff]);
}

/** Characters whose GSM 7-bit default alphabet code (TS 23.038) differs from their ASCII code. */
const GSM_SPECIAL: Record<string, number> = { '@': 0x00, $: 0x02, _: 0x11 };
const GSM_SPECIAL_REV = new Map(Object.entries(GSM_SPECIAL).map(([c, v]) => [v, c]));

function gsmCode(ch: string): number | undefined {
  if (ch in GSM_SPECIAL) return GSM_SPECIAL[ch];
  const c = ch.charCodeAt(0);
  const same = (c >= 0x20 && c <= 0x23) || (c >= 0x25 && c <= 0x3f) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  return ch.length === 1 && same ? c : undefined;
}

/**
 * EF.SPN content (TS 31.102 §4.2.12, 17 bytes): display condition, then the name in the SMS default
 * alphabet (unpacked, bit 8 = 0), or `80` + UCS2 when it has other characters; padded with FF.
 */
export function encodeSpn(name: string, displayCondition = 0x01): Buffer {
  const out = Buffer.alloc(17, 0xff);
  out[0] = displayCondition;
  const chars = [...name];
  const codes = chars.map(gsmCode);
  if (codes.every((c) => c !== undefined)) {
    if (codes.length > 16) throw new SaipError('invalidValue', 'service provider name longer than 16 characters');
    Buffer.from(codes as number[]).copy(out, 1);
    return out;
  }
  const ucs2 = Buffer.from(name, 'utf16le').swap16();
  if (ucs2.length > 15 || chars.some((c) => c.length > 1)) throw new SaipError('invalidValue', 'service provider name too long for UCS2 coding');
  out[1] = 0x80;
  ucs2.copy(out, 2);
  return out;
}

export function decodeSpn(content: Buffer): string {
  const body = content.subarray(1);
  if (body[0] === 0x80) {
    let end = 1;
    while (end + 1 < body.length && !(body[end] === 0xff && body[end + 1] === 0xff)) end += 2;
    return Buffer.from(body.subarray(1, end)).swap16().toString('utf16le');
  }
  let s = '';
  for (const b of body) {
    if (b === 0xff) break;
    s += GSM_SPECIAL_REV.get(b) ?? String.fromCharCode(b);
  }
  return s;
}
