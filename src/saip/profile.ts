/**
 * A minimal but well-formed TCA eUICC Profile Package (the UPP the SM-DP+ protects into a BPP):
 *   header, mf (EF.ICCID, EF.DIR), pukCodes, pinCodes, usim (EF.IMSI, EF.SPN, EF.ACC), pinCodes (ADF),
 *   akaParameter (Milenage Ki/OPc), securityDomain (MNO-SD), end
 * and the reverse: decoding a UPP (ours or a TS.48 test profile) into the personalisation values.
 */
import { DerError, Tlv, decodeAll, decodeAt, tlv } from '../der/tlv.js';
import { integer, oid, readUint, utf8 } from '../der/types.js';
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
import {
  ALGORITHM,
  KEY_REF,
  PE_TAG,
  type PeType,
  accForImsi,
  akaParameterPe,
  decodeSpn,
  encodeSpn,
  endPe,
  fileElement,
  peHeader,
  peTypeOfTag,
  pinCodesPe,
  pinValue,
  pukCodesPe,
  readAkaParameter,
  readFile,
  readPeHeader,
  securityDomainPe,
} from './elements.js';
import { SaipError } from './errors.js';

export { SaipError } from './errors.js';

/** SAIP version written into the ProfileHeader (the version GSMA TS.48 v2+ test profiles use). */
export const SAIP_VERSION = { major: 2, minor: 3 } as const;

/** Template OIDs (SAIP Annex A): MF and ADF.USIM. */
export const TEMPLATE_OID = { mf: '2.23.143.1.2.1', usim: '2.23.143.1.2.4' } as const;

export const USIM_AID = Buffer.from('A0000000871002FFFFFFFF8907090000', 'hex');

/** The MNO-SD instance every profile carries (GP ISD AIDs as in GSMA test profiles). */
const MNO_SD = {
  loadPackageAid: Buffer.from('A0000001515350', 'hex'),
  classAid: Buffer.from('A000000151535041', 'hex'),
  instanceAid: Buffer.from('A000000151000000', 'hex'),
  privileges: Buffer.from('82DC00', 'hex'),
  lifeCycleState: 0x0f,
  installParameters: Buffer.alloc(0),
};

/** EF.DIR: linear fixed, record length 38, two records; record 1 announces the USIM. */
const EF_DIR_RECORD = 0x26;

export interface ProfileParams {
  /** 19 or 20 digits (optional trailing F). */
  iccid: string;
  /** 6 to 15 digits. */
  imsi: string;
  /** Milenage K, 16 bytes (Buffer or hex). */
  ki: Buffer | string;
  /** Milenage OPc, 16 bytes (Buffer or hex). */
  opc: Buffer | string;
  /** ProfileHeader profileType (UTF-8, 1..100 characters). */
  profileType?: string;
  /** Service provider name for EF.SPN (≤16 GSM characters); EF.SPN keeps its template default when absent. */
  spn?: string;
  /** Global PIN1 (4..8 digits), default 0000. */
  pin1?: string;
  /** Local (second) PIN of the USIM (4..8 digits), default 9999. */
  pin2?: string;
  /** PUK1 and PUK2 (8 digits), defaults 11111111 / 22222222. */
  puk1?: string;
  puk2?: string;
  /** ADM1: 8 digits or 16 hex digits, default 55555555. */
  adm1?: string;
  /** Alias of adm1. */
  adm?: string;
  /** MNO-SD SCP03 key set (AES); the SD is created without keys when absent. */
  sdKeys?: { kvn: number; enc: Buffer; mac: Buffer; dek: Buffer };
}

function key16(v: Buffer | string, what: string): Buffer {
  const b = typeof v === 'string' ? (/^[0-9a-fA-F]{32}$/.test(v) ? Buffer.from(v, 'hex') : undefined) : v;
  if (!Buffer.isBuffer(b) || b.length !== 16) throw new SaipError('invalidValue', `${what} must be 16 bytes`);
  return Buffer.from(b);
}

function identifier<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof IdentifierError) throw new SaipError('invalidValue', e.message);
    throw e;
  }
}

/** Builds the UPP: the concatenated DER ProfileElements. */
export function buildProfile(p: ProfileParams): Buffer {
  const iccid = identifier(() => normaliseIccid(p.iccid));
  const imsi = identifier(() => normaliseImsi(p.imsi));
  const ki = key16(p.ki, 'Ki');
  const opc = key16(p.opc, 'OPc');
  if (p.profileType !== undefined && (p.profileType.length < 1 || p.profileType.length > 100)) {
    throw new SaipError('invalidValue', 'profileType must be 1 to 100 characters');
  }
  const pin1 = pinValue(p.pin1 ?? '0000', 'pin');
  const pin2 = pinValue(p.pin2 ?? '9999', 'pin');
  const puk1 = pinValue(p.puk1 ?? '11111111', 'puk');
  const puk2 = pinValue(p.puk2 ?? '22222222', 'puk');
  const adm1 = pinValue(p.adm1 ?? p.adm ?? '55555555', 'adm');

  let id = 0;
  const next = () => ++id;
  const pes: Buffer[] = [];

  // ProfileHeader: major 80, minor 81, profileType 82, iccid 83, eUICC-Mandatory-services A5, GFSTE list A6.
  pes.push(
    tlv(
      PE_TAG.header,
      integer(SAIP_VERSION.major, 0x80),
      integer(SAIP_VERSION.minor, 0x81),
      p.profileType !== undefined && utf8(p.profileType, 0x82),
      tlv(0x83, iccidToHeader(iccid)),
      tlv(0xa5, tlv(0x81) /* usim */, tlv(0x84) /* milenage */),
      tlv(0xa6, oid(TEMPLATE_OID.mf), oid(TEMPLATE_OID.usim)),
    ),
  );

  // PE-MF: header A0, templateID 81, mf A2, ef-pl A3 (omitted), ef-iccid A4, ef-dir A5, ef-arr A6.
  const dirRecord = Buffer.alloc(EF_DIR_RECORD, 0xff);
  tlv(0x61, tlv(0x4f, USIM_AID), tlv(0x50, Buffer.from('USIM', 'ascii'))).copy(dirRecord);
  pes.push(
    tlv(
      PE_TAG.mf,
      peHeader(next()),
      oid(TEMPLATE_OID.mf, 0x81),
      fileElement(0xa2, { fcp: { fileId: Buffer.from('3F00', 'hex'), pinStatusTemplate: Buffer.from([KEY_REF.pinAppl1, KEY_REF.adm1]) } }),
      fileElement(0xa4, {
        fcp: { fileDescriptor: Buffer.from('4121', 'hex'), fileId: Buffer.from('2FE2', 'hex'), efFileSize: 10 },
        content: iccidToEf(iccid),
      }),
      fileElement(0xa5, {
        fcp: { fileDescriptor: Buffer.from([0x42, 0x21, 0x00, EF_DIR_RECORD]), fileId: Buffer.from('2F00', 'hex'), efFileSize: 2 * EF_DIR_RECORD },
        content: dirRecord,
      }),
      fileElement(0xa6),
    ),
  );

  pes.push(
    pukCodesPe(next(), [
      { keyReference: KEY_REF.pukAppl1, value: puk1 },
      { keyReference: KEY_REF.secondPukAppl1, value: puk2 },
    ]),
  );
  pes.push(
    pinCodesPe(next(), [
      { keyReference: KEY_REF.pinAppl1, value: pin1, unblockingReference: KEY_REF.pukAppl1, attributes: 6 },
      { keyReference: KEY_REF.adm1, value: adm1, attributes: 3, attempts: 0xaa },
    ]),
  );

  // PE-USIM: header A0, templateID 81, adf-usim A2, ef-imsi A3, ef-arr A4, ef-ust A8, ef-spn AD, ef-est AE,
  // ef-acc B2, ef-ecc B6 (mandatory Files; empty = template default).
  pes.push(
    tlv(
      PE_TAG.usim,
      peHeader(next()),
      oid(TEMPLATE_OID.usim, 0x81),
      fileElement(0xa2, {
        fcp: {
          fileId: Buffer.from('7FD0', 'hex'),
          dfName: USIM_AID,
          pinStatusTemplate: Buffer.from([KEY_REF.secondPinAppl1, KEY_REF.pinAppl1, KEY_REF.adm1]),
        },
      }),
      fileElement(0xa3, {
        fcp: { fileDescriptor: Buffer.from('4121', 'hex'), fileId: Buffer.from('6F07', 'hex'), efFileSize: 9 },
        content: imsiToEf(imsi),
      }),
      fileElement(0xa4),
      fileElement(0xa8),
      p.spn === undefined
        ? fileElement(0xad)
        : fileElement(0xad, {
            fcp: { fileDescriptor: Buffer.from('4121', 'hex'), fileId: Buffer.from('6F46', 'hex'), efFileSize: 17 },
            content: encodeSpn(p.spn),
          }),
      fileElement(0xae),
      fileElement(0xb2, {
        fcp: { fileDescriptor: Buffer.from('4121', 'hex'), fileId: Buffer.from('6F78', 'hex'), efFileSize: 2 },
        content: accForImsi(imsi),
      }),
      fileElement(0xb6),
    ),
  );
  pes.push(
    pinCodesPe(next(), [
      { keyReference: KEY_REF.secondPinAppl1, value: pin2, unblockingReference: KEY_REF.secondPukAppl1, attributes: 3 },
    ]),
  );

  pes.push(akaParameterPe(next(), { algorithmId: ALGORITHM.milenage, algorithmOptions: 0, key: ki, opc }));
  pes.push(securityDomainPe(next(), { ...MNO_SD, scp03: p.sdKeys }));
  pes.push(endPe(next()));
  return Buffer.concat(pes);
}

// ---------------------------------------------------------------- decoding

export interface ProfileElementInfo {
  type: PeType | 'unknown';
  tag: number;
  /** PEHeader identification (absent for the ProfileHeader). */
  identification?: number;
}

export interface DecodedProfile {
  /** From the ProfileHeader (checked against EF.ICCID when the profile sets its content). */
  iccid: string;
  imsi: string;
  ki: Buffer;
  opc: Buffer;
  /** 1 Milenage, 2 TUAK, 3 usim-test-algorithm. */
  algorithmId: number;
  majorVersion: number;
  minorVersion: number;
  profileType?: string;
  spn?: string;
  elements: ProfileElementInfo[];
}

/** The raw bytes of each ProfileElement of a UPP (SaipError 'malformed' on bad DER). */
export function splitProfileElements(upp: Buffer): Buffer[] {
  return elementsOf(upp).map((t) => t.raw);
}

function elementsOf(upp: Buffer): Tlv[] {
  if (!Buffer.isBuffer(upp) || upp.length === 0) throw new SaipError('malformed', 'empty profile package');
  try {
    return decodeAll(upp);
  } catch (e) {
    if (e instanceof DerError) throw new SaipError('malformed', `profile package: ${e.message}`);
    throw e;
  }
}

/** Runs a field reader, turning DER and identifier failures into SaipError. */
function field<T>(what: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof DerError) throw new SaipError('malformed', `${what}: ${e.message}`);
    if (e instanceof IdentifierError) throw new SaipError('invalidValue', `${what}: ${e.message}`);
    throw e;
  }
}

/** ICCID digits of the ProfileHeader of `upp` (only the first PE is read). */
export function profileHeaderIccid(upp: Buffer): string {
  if (!Buffer.isBuffer(upp) || upp.length === 0) throw new SaipError('malformed', 'empty profile package');
  const header = field('ProfileHeader', () => decodeAt(upp, 0));
  if (header.tag !== PE_TAG.header) throw new SaipError('malformed', 'the first ProfileElement is not the ProfileHeader');
  return field('ProfileHeader iccid', () => iccidFromHeader(header.get(0x83).value));
}

/**
 * Decodes a UPP. Requires the ProfileHeader first and the End PE last; unknown PEs and fields are skipped.
 * ICCID, IMSI (EF.IMSI content of the first usim PE) and Ki/OPc (the first akaParameter with an algoParameter)
 * must be present.
 */
export function decodeProfile(upp: Buffer): DecodedProfile {
  const pes = elementsOf(upp);
  if (pes[0]!.tag !== PE_TAG.header) throw new SaipError('malformed', 'the first ProfileElement is not the ProfileHeader');
  if (pes[pes.length - 1]!.tag !== PE_TAG.end) throw new SaipError('malformed', 'the profile package does not end with the End PE');

  const header = pes[0]!;
  const out: Partial<DecodedProfile> & { elements: ProfileElementInfo[] } = { elements: [] };
  field('ProfileHeader', () => {
    out.majorVersion = readUint(header.get(0x80));
    out.minorVersion = readUint(header.get(0x81));
    const pt = header.find(0x82);
    if (pt) out.profileType = pt.value.toString('utf8');
    const ic = header.find(0x83);
    if (!ic) throw new SaipError('missingElement', 'ProfileHeader has no iccid');
    out.iccid = iccidFromHeader(ic.value);
  });
  out.elements.push({ type: 'header', tag: header.tag });

  let efIccid: string | undefined;
  for (const pe of pes.slice(1)) {
    const type = peTypeOfTag(pe.tag);
    const info: ProfileElementInfo = { type, tag: pe.tag };
    field(`${type} PE`, () => {
      if (type !== 'unknown') info.identification = readPeHeader(pe).identification;
      if (type === 'mf') {
        const f = pe.find(0xa4);
        const content = f && readFile(f).content;
        if (content) efIccid = iccidFromEf(content.subarray(0, 10));
      } else if (type === 'usim' && out.imsi === undefined) {
        const content = readFile(pe.get(0xa3)).content;
        if (!content) throw new SaipError('missingElement', 'usim PE sets no EF.IMSI content');
        out.imsi = imsiFromEf(content);
        const spn = pe.find(0xad);
        const spnContent = spn && readFile(spn).content;
        if (spnContent && spnContent.length > 1 && spnContent[1] !== 0xff) out.spn = decodeSpn(spnContent);
      } else if (type === 'akaParameter' && out.ki === undefined) {
        const aka = readAkaParameter(pe);
        if (aka) {
          out.algorithmId = aka.algorithmId;
          out.ki = aka.key;
          out.opc = aka.opc;
        }
      }
    });
    out.elements.push(info);
  }

  if (efIccid !== undefined && efIccid !== out.iccid) {
    throw new SaipError('iccidMismatch', `ProfileHeader ICCID ${out.iccid} differs from EF.ICCID ${efIccid}`);
  }
  if (out.imsi === undefined) throw new SaipError('missingElement', 'no usim PE with EF.IMSI');
  if (out.ki === undefined || out.opc === undefined || out.algorithmId === undefined) {
    throw new SaipError('missingElement', 'no akaParameter PE with an algoParameter');
  }
  return out as DecodedProfile;
}

/**
 * Whether the profile's ICCID (ProfileHeader) equals the ICCID of the profile metadata (StoreMetadataRequest
 * `5A`, EF coding, or digits). The eUICC refuses a mismatch with errorReason 13 (iccidMismatch).
 * A malformed profile header throws SaipError; a malformed metadata ICCID counts as a mismatch.
 */
export function profileIccidMatchesMetadata(upp: Buffer, metadataIccid: Buffer | string): boolean {
  const profileIccid = profileHeaderIccid(upp);
  let meta: string;
  try {
    meta = Buffer.isBuffer(metadataIccid) ? iccidFromEf(metadataIccid) : normaliseIccid(metadataIccid);
  } catch (e) {
    if (e instanceof IdentifierError) return false;
    throw e;
  }
  return meta === profileIccid;
}

/** Throws SaipError('iccidMismatch') unless profileIccidMatchesMetadata. */
export function assertProfileIccidMatchesMetadata(upp: Buffer, metadataIccid: Buffer | string): void {
  if (!profileIccidMatchesMetadata(upp, metadataIccid)) {
    const got = Buffer.isBuffer(metadataIccid) ? metadataIccid.toString('hex') : metadataIccid;
    throw new SaipError('iccidMismatch', `metadata ICCID ${got} differs from profile ICCID ${profileHeaderIccid(upp)}`);
  }
}
