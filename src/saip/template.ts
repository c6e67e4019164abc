/**
 * Profile templates: an Unprotected Profile Package given by the user (for example one of the GSMA
 * TS.48 Generic eUICC Test Profiles), checked element by element on import and personalised per
 * order (docs/profiles.md).
 *
 * Personalisation writes only the bytes of the values that belong to one subscription: the ICCID
 * (ProfileHeader and EF.ICCID), the IMSI (EF.IMSI of the USIM) and Ki/OPc (every akaParameter PE that
 * carries an algoParameter). Each of those has a fixed size, so no length changes and every other byte
 * of the package goes out exactly as the template has it.
 */
import { randomBytes } from 'node:crypto';
import { DerError, decodeAll, decodeAt, tagHex, type Tlv } from '../der/tlv.js';
import { readUint } from '../der/types.js';
import {
  IdentifierError,
  iccidFromEf,
  iccidFromHeader,
  iccidToEf,
  iccidToHeader,
  imsiFromEf,
  imsiToEf,
  normaliseIccid,
  normaliseImsi,
} from '../rsp/identifiers.js';
import { buildProfile } from './profile.js';
import {
  ALGORITHM, PE_TAG, accForImsi, decodeSpn, peTypeOfTag, readAkaParameter, readSecurityDomainKeys, type PeType, type SecurityDomainKey,
} from './elements.js';
import { SaipError } from './errors.js';

/** PE alternatives a template may not use: reserved CHOICE slots (SAIP's rfu1..rfu5). */
const RESERVED = new Set<string>(['rfu1', 'rfu2', 'rfu3', 'rfu4', 'rfu5']);

/** PEs made of a PE header, a templateID and File fields (SAIP's file-system templates). */
const FILE_SYSTEM_PES = new Set<PeType>([
  'mf', 'cd', 'telecom', 'usim', 'opt-usim', 'isim', 'opt-isim', 'phonebook', 'gsm-access', 'csim', 'opt-csim',
  'eap', 'df-5gs', 'df-saip', 'df-snpn', 'df-5gprose', 'iot', 'opt-iot',
]);

/** File ::= SEQUENCE OF CHOICE { doNotCreate [0], fileDescriptor [1], fillFileOffset [2], fillFileContent [3] }. */
const FILE_CHOICES = new Set([0x80, 0xa1, 0x82, 0x83]);

/** Where a personalised value sits in the template: absolute offset of its value bytes. */
interface Slot {
  offset: number;
  length: number;
}

export interface TemplateElement {
  type: PeType;
  /** Offset of the element in the package. */
  offset: number;
  length: number;
  identification?: number;
}

export interface ProfileTemplate {
  der: Buffer;
  elements: TemplateElement[];
  majorVersion: number;
  minorVersion: number;
  /** ProfileHeader profileType, when the template names one. */
  profileType?: string;
  /** The template's own ICCID and IMSI (replaced per order). */
  iccid: string;
  imsi: string;
  /** Algorithm of the first akaParameter: 1 Milenage, 2 TUAK, 3 the 3GPP test algorithm. */
  algorithmId: number;
  /** EF.SPN of the USIM, when the template sets it. */
  serviceProviderName?: string;
  /** Metadata a profile type takes from the template unless it overrides it (docs/profiles.md). */
  metadata: { serviceProviderName: string; profileName: string; profileClass: 0 | 1 | 2 };
  slots: { headerIccid: Slot; efIccid?: Slot; efImsi: Slot; aka: Array<{ key: Slot; opc: Slot }> };
}

/** A template refused on import, naming the element and where it is. */
export class TemplateError extends SaipError {
  constructor(
    code: 'malformed' | 'missingElement' | 'invalidValue',
    message: string,
    readonly element?: string,
    readonly offset?: number,
  ) {
    super(code, message);
  }
}

function where(element: string, offset: number): string {
  return `${element} at offset ${offset}`;
}

/** Absolute offset of `t` inside `root` (every Tlv is a view into the bytes it was decoded from). */
function offsetIn(root: Buffer, t: Tlv): number {
  return t.raw.byteOffset - root.byteOffset;
}

/**
 * Decodes every constructed element under `t` (definite lengths that fit, no trailing bytes),
 * so a truncated or overlong element anywhere in a PE is found on import, with its offset.
 */
function walk(root: Buffer, t: Tlv, path: string): void {
  if (!t.constructed) return;
  const start = offsetIn(root, t) + t.headerLength;
  let p = 0;
  const value = t.value;
  while (p < value.length) {
    let c: Tlv;
    try {
      c = decodeAt(value, p);
    } catch (e) {
      if (e instanceof DerError) throw new TemplateError('malformed', `${path}: ${e.message.replace(/ at offset \d+$/, '')} (${where(path, start + (e.offset ?? p))})`, path, start + (e.offset ?? p));
      throw e;
    }
    walk(root, c, `${path}/${tagHex(c.tag)}`);
    p += c.raw.length;
  }
}

function fixed(root: Buffer, t: Tlv, length: number, what: string, path: string): Slot {
  if (t.length !== length) {
    throw new TemplateError('invalidValue', `${what} is ${t.length} bytes, not ${length} (${where(path, offsetIn(root, t))})`, path, offsetIn(root, t));
  }
  return { offset: offsetIn(root, t) + t.headerLength, length };
}

/** The fillFileContent written at file offset 0 of a File field, if the template sets one. */
function firstContent(file: Tlv): Tlv | undefined {
  for (const c of file.children()) {
    if (c.tag === 0x82) return undefined; // content starts after an offset: not at the start of the file
    if (c.tag === 0x83) return c;
  }
  return undefined;
}

/**
 * The fill pattern of a File's FCP (proprietaryEFInfo A5, fillPattern C1 or repeatPattern C2): what an EF
 * without fillFileContent holds when created.
 */
function fillPattern(file: Tlv): Buffer | undefined {
  const info = file.find(0xa1)?.find(0xa5);
  return (info?.find(0xc1) ?? info?.find(0xc2))?.value;
}

function checkFileFields(root: Buffer, pe: Tlv, path: string): void {
  for (const field of pe.children().slice(2)) {
    if (field.tag === 0x81 || !field.constructed) continue;
    for (const c of field.children()) {
      if (!FILE_CHOICES.has(c.tag)) {
        const at = offsetIn(root, c);
        throw new TemplateError('malformed', `unknown element ${tagHex(c.tag)} in File ${tagHex(field.tag)} (${where(path, at)})`, `${path}/${tagHex(field.tag)}/${tagHex(c.tag)}`, at);
      }
    }
  }
}

/**
 * Decodes and checks a template completely: every element well-formed, every PE a known alternative with
 * a PEHeader, the ProfileHeader first and the End PE last, File fields made of File choices only, and the
 * values personalisation replaces present with their fixed sizes. Any problem is a TemplateError naming
 * the element and its offset. `verify: false` skips the element-by-element walk, for a template that was
 * checked when it was imported.
 */
export function readTemplate(der: Buffer, opts: { verify?: boolean } = {}): ProfileTemplate {
  const verify = opts.verify ?? true;
  if (!Buffer.isBuffer(der) || der.length === 0) throw new TemplateError('malformed', 'the template is empty', 'package', 0);
  const pes: Array<{ t: Tlv; type: PeType; offset: number }> = [];
  for (let p = 0; p < der.length;) {
    let t: Tlv;
    try {
      t = decodeAt(der, p);
    } catch (e) {
      if (e instanceof DerError) {
        const at = e.offset ?? p;
        throw new TemplateError('malformed', `ProfileElement ${pes.length + 1}: ${e.message.replace(/ at offset \d+$/, '')} (${where(`ProfileElement ${pes.length + 1}`, at)})`, `ProfileElement ${pes.length + 1}`, at);
      }
      throw e;
    }
    const type = peTypeOfTag(t.tag);
    if (type === 'unknown' || RESERVED.has(type)) {
      throw new TemplateError('malformed', `unknown ProfileElement ${tagHex(t.tag)} (${where(`ProfileElement ${pes.length + 1}`, p)})`, `ProfileElement ${pes.length + 1}`, p);
    }
    const name = `${type} (ProfileElement ${pes.length + 1})`;
    if (!t.constructed) throw new TemplateError('malformed', `${name} is not constructed (${where(name, p)})`, name, p);
    if (verify) walk(der, t, name);
    pes.push({ t, type, offset: p });
    p += t.raw.length;
  }

  const first = pes[0]!;
  if (first.type !== 'header') throw new TemplateError('malformed', `the first ProfileElement is ${first.type}, not the ProfileHeader`, first.type, 0);
  const last = pes[pes.length - 1]!;
  if (last.type !== 'end') throw new TemplateError('malformed', `the last ProfileElement is ${last.type}, not the End PE`, last.type, last.offset);

  const elements: TemplateElement[] = [];
  const ids = new Set<number>();
  for (const [i, { t, type, offset }] of pes.entries()) {
    const name = `${type} (ProfileElement ${i + 1})`;
    const el: TemplateElement = { type, offset, length: t.raw.length };
    if (i > 0) {
      const h = t.children()[0];
      if (!h || h.tag !== 0xa0) throw new TemplateError('missingElement', `${name} has no PEHeader (${where(name, offset)})`, name, offset);
      const idTlv = h.find(0x81);
      if (!idTlv) throw new TemplateError('missingElement', `${name}: PEHeader has no identification (${where(name, offsetIn(der, h))})`, name, offsetIn(der, h));
      const id = readUint(idTlv);
      if (ids.has(id)) throw new TemplateError('invalidValue', `${name}: PEHeader identification ${id} is used twice (${where(name, offsetIn(der, idTlv))})`, name, offsetIn(der, idTlv));
      ids.add(id);
      el.identification = id;
      if (type === 'header') throw new TemplateError('malformed', `a second ProfileHeader (${where(name, offset)})`, name, offset);
      if (type === 'end' && i !== pes.length - 1) throw new TemplateError('malformed', `an End PE before the last element (${where(name, offset)})`, name, offset);
      if (verify && FILE_SYSTEM_PES.has(type)) checkFileFields(der, t, name);
    }
    elements.push(el);
  }

  // The values personalisation replaces.
  const header = first.t;
  const hName = 'header (ProfileElement 1)';
  const need = (t: Tlv | undefined, what: string, path: string, at: number): Tlv => {
    if (!t) throw new TemplateError('missingElement', `the template has no ${what} (${where(path, at)})`, path, at);
    return t;
  };
  const version = (tag: number) => {
    const v = header.find(tag);
    return v ? readUint(v) : 0;
  };
  const iccidTlv = need(header.find(0x83), 'ProfileHeader iccid', hName, 0);
  const headerIccid = fixed(der, iccidTlv, 10, 'ProfileHeader iccid', hName);
  const iccid = decodeValue(() => iccidFromHeader(iccidTlv.value), 'ProfileHeader iccid', hName, headerIccid.offset);
  const profileTypeTlv = header.find(0x82);

  let efIccid: Slot | undefined;
  const mf = pes.find((p) => p.type === 'mf');
  const efIccidFile = mf?.t.find(0xa4);
  const efIccidContent = efIccidFile && firstContent(efIccidFile);
  if (efIccidContent) {
    const path = `mf/ef-iccid`;
    efIccid = fixed(der, efIccidContent, 10, 'EF.ICCID content', path);
    const fromEf = decodeValue(() => iccidFromEf(efIccidContent.value), 'EF.ICCID', path, efIccid.offset);
    if (fromEf !== iccid) throw new TemplateError('invalidValue', `EF.ICCID ${fromEf} differs from the ProfileHeader ICCID ${iccid} (${where(path, efIccid.offset)})`, path, efIccid.offset);
  }

  const usim = pes.find((p) => p.type === 'usim');
  const usimName = 'usim';
  if (!usim) throw new TemplateError('missingElement', 'the template has no usim ProfileElement, so no EF.IMSI to personalise', usimName, 0);
  const imsiFile = need(usim.t.find(0xa3), 'EF.IMSI in the usim PE', usimName, usim.offset);
  const imsiContent = need(firstContent(imsiFile), 'EF.IMSI content', 'usim/ef-imsi', offsetIn(der, imsiFile));
  const efImsi = fixed(der, imsiContent, 9, 'EF.IMSI content', 'usim/ef-imsi');
  const imsi = decodeValue(() => imsiFromEf(imsiContent.value), 'EF.IMSI', 'usim/ef-imsi', efImsi.offset);

  const spnFile = usim.t.find(0xad);
  const spn = spnFile && (firstContent(spnFile)?.value ?? fillPattern(spnFile));
  const serviceProviderName = spn && spn.length > 1 && spn[1] !== 0xff ? decodeSpn(spn) : undefined;

  const aka: Array<{ key: Slot; opc: Slot }> = [];
  let algorithmId: number | undefined;
  for (const p of pes.filter((x) => x.type === 'akaParameter')) {
    const path = `akaParameter (offset ${p.offset})`;
    let info;
    try {
      info = readAkaParameter(p.t);
    } catch (e) {
      if (e instanceof DerError) throw new TemplateError('missingElement', `${path}: ${e.message}`, path, p.offset);
      throw e;
    }
    if (!info) continue; // a mappingParameter reuses another application's keys
    const algo = p.t.get(0xa1).get(0xa1);
    aka.push({ key: fixed(der, algo.get(0x82), 16, 'AKA key', path), opc: fixed(der, algo.get(0x83), 16, 'AKA OPc', path) });
    algorithmId ??= info.algorithmId;
  }
  if (!aka.length || algorithmId === undefined) throw new TemplateError('missingElement', 'the template has no akaParameter PE with an algoParameter (Ki/OPc)', 'akaParameter', 0);

  const profileType = profileTypeTlv?.value.toString('utf8');
  return {
    der,
    elements,
    majorVersion: version(0x80),
    minorVersion: version(0x81),
    profileType,
    iccid,
    imsi,
    algorithmId,
    serviceProviderName,
    metadata: {
      serviceProviderName: truncateUtf8(serviceProviderName ?? profileType ?? 'mock-smdp', 32),
      profileName: truncateUtf8(profileType ?? 'mock-smdp profile', 64),
      // A profile that authenticates with the 3GPP test algorithm only works on test networks: SGP.22's test class.
      profileClass: algorithmId === ALGORITHM.usimTestAlgorithm ? 0 : 2,
    },
    slots: { headerIccid, efIccid, efImsi, aka },
  };
}

function decodeValue<T>(f: () => T, what: string, path: string, at: number): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof IdentifierError) throw new TemplateError('invalidValue', `${what}: ${e.message} (${where(path, at)})`, path, at);
    throw e;
  }
}

function truncateUtf8(s: string, max: number): string {
  let out = s;
  while (Buffer.byteLength(out) > max) out = out.slice(0, -1);
  return out;
}

export interface Personalisation {
  iccid: string;
  imsi: string;
  ki: Buffer;
  opc: Buffer;
}

/** The template with this subscription's ICCID, IMSI, Ki and OPc written into their places; nothing else changes. */
export function personalise(t: ProfileTemplate, p: Personalisation): Buffer {
  const iccid = normaliseIccid(p.iccid);
  const imsi = normaliseImsi(p.imsi);
  if (p.ki.length !== 16 || p.opc.length !== 16) throw new SaipError('invalidValue', 'Ki and OPc must be 16 bytes');
  const out = Buffer.from(t.der);
  const put = (slot: Slot, value: Buffer) => {
    if (value.length !== slot.length) throw new SaipError('invalidValue', `value of ${value.length} bytes for a ${slot.length}-byte field`);
    value.copy(out, slot.offset);
  };
  put(t.slots.headerIccid, iccidToHeader(iccid));
  if (t.slots.efIccid) put(t.slots.efIccid, iccidToEf(iccid));
  put(t.slots.efImsi, imsiToEf(imsi));
  for (const a of t.slots.aka) {
    put(a.key, p.ki);
    put(a.opc, p.opc);
  }
  return out;
}

/** GlobalPlatform's key version number for an SCP03 key set of a generated profile. */
export const SCP03_KVN = 0x30;

export interface Subscription extends Personalisation {
  /** SCP03 ENC ‖ MAC ‖ DEK (48 bytes) for a generated profile's MNO security domain. */
  scp03Keys: Buffer | null;
}

/** A placeholder subscription for the generated profile's skeleton (every value is overwritten). */
const SKELETON = {
  iccid: '89000000000000000000', imsi: '001010000000000', ki: Buffer.alloc(16), opc: Buffer.alloc(16),
  sdKeys: { kvn: SCP03_KVN, enc: Buffer.alloc(16), mac: Buffer.alloc(16), dek: Buffer.alloc(16) },
};

interface Skeleton {
  template: ProfileTemplate;
  /** EF.ACC of the USIM (2 bytes, from the IMSI's last digit) and the MNO-SD's ENC, MAC, DEK key data. */
  efAcc: Slot;
  sdKeys: [Slot, Slot, Slot];
}

let skeleton: Skeleton | undefined;

/**
 * The server's generated profile, built once per process with placeholder values (it is derived from
 * this code only) and read like a template, so each order costs a copy and a few writes.
 */
function generatedSkeleton(): Skeleton {
  if (skeleton) return skeleton;
  const der = buildProfile(SKELETON);
  const template = readTemplate(der, { verify: false });
  const pes = decodeAll(der);
  const at = (t: Tlv): Slot => ({ offset: t.raw.byteOffset - der.byteOffset + t.headerLength, length: t.length });
  const acc = pes.find((p) => p.tag === PE_TAG.usim)!.get(0xb2).get(0x83);
  const keys = pes.find((p) => p.tag === PE_TAG.securityDomain)!.get(0xa2).children().map((k) => at(k.get(0x30).get(0x30).get(0x86)));
  skeleton = { template, efAcc: at(acc), sdKeys: keys as [Slot, Slot, Slot] };
  return skeleton;
}

/**
 * The Unprotected Profile Package of one order: its type's template personalised, or, for a type
 * without a template, the server's own profile with an MNO-SD SCP03 key set (docs/profiles.md).
 */
export function orderProfilePackage(s: Subscription, template: Buffer | null): Buffer {
  if (template) return personalise(readTemplate(template, { verify: false }), s);
  const keys = s.scp03Keys?.length === 48 ? s.scp03Keys : randomBytes(48);
  const g = generatedSkeleton();
  const out = personalise(g.template, s);
  accForImsi(normaliseImsi(s.imsi)).copy(out, g.efAcc.offset);
  g.sdKeys.forEach((slot, i) => keys.copy(out, slot.offset, 16 * i, 16 * i + 16));
  return out;
}

/** The key lists of every securityDomain PE of a package, with each domain's instance AID. */
export function securityDomainKeys(upp: Buffer): Array<{ instanceAid: Buffer; keys: SecurityDomainKey[] }> {
  return decodeAll(upp)
    .filter((pe) => pe.tag === PE_TAG.securityDomain)
    .map((pe) => ({ instanceAid: pe.get(0xa1).all(0x4f)[2]?.value ?? Buffer.alloc(0), keys: readSecurityDomainKeys(pe) }));
}
