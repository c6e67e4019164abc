/** EUICCInfo1 (`BF20`) and EUICCInfo2 (`BF22`), SGP.22 §5.7.8 (docs/protocol.md, Mutual authentication). */
import { tlv, type Tlv } from '../der/tlv.js';
import { namedBits, readNamedBits, readUint, readUtf8, integer, utf8 } from '../der/types.js';
import { checkLength, guard, kids, listOf, malformed, need, opt, read, sized, top, type Bytes, type WithRaw } from '../der/read.js';

export const TAG_EUICC_INFO1 = 0xbf20;
export const TAG_EUICC_INFO2 = 0xbf22;

/** RspCapability bit numbers. */
export const RSP_CAPABILITY = {
  additionalProfile: 0,
  crlSupport: 1,
  rpmSupport: 2,
  testProfileSupport: 3,
  deviceInfoExtensibilitySupport: 4,
} as const;

export interface EuiccInfo1 {
  raw: Buffer;
  /** VersionType, 3 bytes: major, minor, revision. */
  svn: Buffer;
  /** Subject key identifiers of the CI keys (usually 20 bytes each). */
  ciPkIdsForVerification: Buffer[];
  ciPkIdsForSigning: Buffer[];
}

export interface EuiccInfo2 {
  raw: Buffer;
  profileVersion: Buffer;
  svn: Buffer;
  euiccFirmwareVer: Buffer;
  /** The OCTET STRING value (itself a list of TLVs: 81 installed apps, 82 free NVM, 83 free RAM). */
  extCardResource: Buffer;
  /** UICCCapability bit numbers. */
  uiccCapability: number[];
  ts102241Version?: Buffer;
  globalPlatformVersion?: Buffer;
  /** RspCapability bit numbers (see RSP_CAPABILITY). */
  rspCapability: number[];
  ciPkIdsForVerification: Buffer[];
  ciPkIdsForSigning: Buffer[];
  /** 0 other, 1 basic, 2 medium, 3 contactless. */
  euiccCategory?: number;
  /** PprIds bit numbers. */
  forbiddenProfilePolicyRules?: number[];
  ppVersion: Buffer;
  sasAccreditationNumber: string;
  certificationDataObject?: { platformLabel: string; discoveryBaseUrl: string };
}

function version(v: Buffer, name: string): Buffer {
  return checkLength(v, name, 3);
}

function keyIdList(tag: number, ids: Buffer[]): Buffer {
  return tlv(tag, ...ids.map((id) => tlv(0x04, checkLength(id, 'CI public key id', 1, 64))));
}

function readKeyIdList(t: Tlv, name: string): Buffer[] {
  return listOf(t, 0x04, name).map((k) => sized(k, name, 1, 64));
}

export function encodeEuiccInfo1(i: Omit<EuiccInfo1, 'raw'>): Buffer {
  return tlv(TAG_EUICC_INFO1, tlv(0x82, version(i.svn, 'svn')), keyIdList(0xa9, i.ciPkIdsForVerification), keyIdList(0xaa, i.ciPkIdsForSigning));
}

export function decodeEuiccInfo1(input: Bytes): EuiccInfo1 {
  const t = top(input, TAG_EUICC_INFO1, 'euiccInfo1');
  return {
    raw: t.raw,
    svn: sized(need(t, 0x82, 'svn'), 'svn', 3),
    ciPkIdsForVerification: readKeyIdList(need(t, 0xa9, 'euiccCiPKIdListForVerification'), 'euiccCiPKIdListForVerification'),
    ciPkIdsForSigning: readKeyIdList(need(t, 0xaa, 'euiccCiPKIdListForSigning'), 'euiccCiPKIdListForSigning'),
  };
}

export function encodeEuiccInfo2(i: Omit<EuiccInfo2, 'raw'>): Buffer {
  return tlv(
    TAG_EUICC_INFO2,
    tlv(0x81, version(i.profileVersion, 'profileVersion')),
    tlv(0x82, version(i.svn, 'svn')),
    tlv(0x83, version(i.euiccFirmwareVer, 'euiccFirmwareVer')),
    tlv(0x84, i.extCardResource),
    namedBits(i.uiccCapability, 0x85),
    i.ts102241Version && tlv(0x86, version(i.ts102241Version, 'ts102241Version')),
    i.globalPlatformVersion && tlv(0x87, version(i.globalPlatformVersion, 'globalPlatformVersion')),
    namedBits(i.rspCapability, 0x88),
    keyIdList(0xa9, i.ciPkIdsForVerification),
    keyIdList(0xaa, i.ciPkIdsForSigning),
    i.euiccCategory !== undefined && integer(i.euiccCategory, 0x8b),
    i.forbiddenProfilePolicyRules && namedBits(i.forbiddenProfilePolicyRules, 0x99),
    tlv(0x04, version(i.ppVersion, 'ppVersion')),
    utf8(i.sasAccreditationNumber, 0x0c),
    i.certificationDataObject &&
      tlv(0xac, utf8(i.certificationDataObject.platformLabel, 0x80), utf8(i.certificationDataObject.discoveryBaseUrl, 0x81)),
  );
}

export function decodeEuiccInfo2(input: Bytes): EuiccInfo2 {
  return decodeEuiccInfo2Tlv(top(input, TAG_EUICC_INFO2, 'euiccInfo2'));
}

/** Decodes an already located `BF22` element (e.g. inside EuiccSigned1); `raw` is its exact bytes. */
export function decodeEuiccInfo2Tlv(t: Tlv): EuiccInfo2 {
  if (t.tag !== TAG_EUICC_INFO2) malformed('euiccInfo2: expected tag BF22');
  return guard('euiccInfo2', () => {
    kids(t, 'euiccInfo2');
    const v = (tag: number, name: string) => sized(need(t, tag, name), name, 3);
    const ov = (tag: number, name: string) => {
      const c = opt(t, tag);
      return c ? sized(c, name, 3) : undefined;
    };
    const out: EuiccInfo2 = {
      raw: t.raw,
      profileVersion: v(0x81, 'profileVersion'),
      svn: v(0x82, 'svn'),
      euiccFirmwareVer: v(0x83, 'euiccFirmwareVer'),
      extCardResource: need(t, 0x84, 'extCardResource').value,
      uiccCapability: read(need(t, 0x85, 'uiccCapability'), 'uiccCapability', readNamedBits),
      rspCapability: read(need(t, 0x88, 'rspCapability'), 'rspCapability', readNamedBits),
      ciPkIdsForVerification: readKeyIdList(need(t, 0xa9, 'euiccCiPKIdListForVerification'), 'euiccCiPKIdListForVerification'),
      ciPkIdsForSigning: readKeyIdList(need(t, 0xaa, 'euiccCiPKIdListForSigning'), 'euiccCiPKIdListForSigning'),
      ppVersion: v(0x04, 'ppVersion'),
      sasAccreditationNumber: read(need(t, 0x0c, 'sasAcreditationNumber'), 'sasAcreditationNumber', readUtf8),
    };
    const ts = ov(0x86, 'ts102241Version');
    if (ts) out.ts102241Version = ts;
    const gp = ov(0x87, 'globalplatformVersion');
    if (gp) out.globalPlatformVersion = gp;
    const cat = opt(t, 0x8b);
    if (cat) out.euiccCategory = read(cat, 'euiccCategory', readUint);
    const fppr = opt(t, 0x99);
    if (fppr) out.forbiddenProfilePolicyRules = read(fppr, 'forbiddenProfilePolicyRules', readNamedBits);
    const cdo = opt(t, 0xac);
    if (cdo) {
      out.certificationDataObject = {
        platformLabel: readUtf8(need(cdo, 0x80, 'platformLabel')),
        discoveryBaseUrl: readUtf8(need(cdo, 0x81, 'discoveryBaseURL')),
      };
    }
    return out;
  });
}
