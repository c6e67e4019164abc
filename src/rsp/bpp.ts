/**
 * Bound Profile Package (`BF36`, SGP.22 §2.5.5, §5.7.6; docs/protocol.md, Bound Profile Package):
 * InitialiseSecureChannelRequest (`BF23`), the exact input of smdpSign (docs/protocol.md, What is
 * signed), assembly, decoding and lpac's loading pieces (docs/protocol.md, ES10 and the simulator).
 */
import { tagHex, tlv, type Tlv } from '../der/tlv.js';
import { checkLength, guard, kids, malformed, need, sized, top, type Bytes, type WithRaw } from '../der/read.js';
import { encodeSignatureDo, signatureOf, TAG_OTPK, TAG_SIGNATURE, transactionIdOf } from './data-objects.js';
import { RspError } from './errors.js';

export const TAG_BPP = 0xbf36;
export const TAG_INITIALISE_SECURE_CHANNEL = 0xbf23;

/** remoteOpId installBoundProfilePackage. */
const REMOTE_OP_INSTALL_BPP = 1;
/** CRT keyType AES and keyLen 16 bytes (the only values SGP.22 v2 defines). */
const KEY_TYPE_AES = 0x88;
const KEY_LEN_16 = 0x10;

export interface InitialiseSecureChannel {
  raw?: Buffer;
  transactionId: Buffer;
  /** 1..16 bytes chosen by the SM-DP+. */
  hostId: Buffer;
  /** 65 bytes, 04‖X‖Y. */
  smdpOtpk: Buffer;
  /** 64 bytes r‖s. */
  smdpSign: Buffer;
}

export interface DecodedInitialiseSecureChannel extends WithRaw<InitialiseSecureChannel> {
  /**
   * The signed data objects as received: `82 01 01` ‖ `80 tid` ‖ `A6 CRT` ‖ `5F49 smdpOtpk`.
   * smdpSign verifies over `signedData ‖ 5F49 41 euiccOtpk` (see smdpSignVerifyInput).
   */
  signedData: Buffer;
}

export interface BoundProfilePackageParts {
  /** The whole `BF23` TLV. */
  initialiseSecureChannel: Buffer;
  /** Whole `87` TLVs (the protected ConfigureISDPRequest). */
  firstSequenceOf87: Buffer[];
  /** Whole `88` TLVs (the MAC-only StoreMetadataRequest segments). */
  sequenceOf88: Buffer[];
  /** Whole `87` TLVs (the protected ReplaceSessionKeysRequest), PPK mode only. */
  secondSequenceOf87?: Buffer[];
  /** Whole `86` TLVs (the protected profile segments). */
  sequenceOf86: Buffer[];
}

export interface DecodedBoundProfilePackage {
  raw: Buffer;
  initialiseSecureChannel: DecodedInitialiseSecureChannel;
  firstSequenceOf87: Buffer[];
  sequenceOf88: Buffer[];
  /** Empty when the package has no `A2`. */
  secondSequenceOf87: Buffer[];
  sequenceOf86: Buffer[];
}

function crt(hostId: Buffer): Buffer {
  return tlv(0xa6, tlv(0x80, Buffer.from([KEY_TYPE_AES])), tlv(0x81, Buffer.from([KEY_LEN_16])), tlv(0x84, hostId));
}

/**
 * The bytes smdpSign covers (docs/protocol.md, What is signed): `82 01 01` ‖ `80 L tid` ‖ `A6 L {80 01 88 81 01 10 84 L hostId}`
 * ‖ `5F49 41 smdpOtpk` ‖ `5F49 41 euiccOtpk`.
 */
export function smdpSignInput(transactionId: Buffer, hostId: Buffer, smdpOtpk: Buffer, euiccOtpk: Buffer): Buffer {
  return Buffer.concat([
    tlv(0x82, Buffer.from([REMOTE_OP_INSTALL_BPP])),
    tlv(0x80, checkLength(transactionId, 'transactionId', 1, 16)),
    crt(checkLength(hostId, 'hostId', 1, 16)),
    tlv(TAG_OTPK, checkLength(smdpOtpk, 'smdpOtpk', 65)),
    tlv(TAG_OTPK, checkLength(euiccOtpk, 'euiccOtpk', 65)),
  ]);
}

/** What the eUICC verifies smdpSign over: the received data objects plus its own one-time key. */
export function smdpSignVerifyInput(isc: DecodedInitialiseSecureChannel, euiccOtpk: Buffer): Buffer {
  return Buffer.concat([isc.signedData, tlv(TAG_OTPK, checkLength(euiccOtpk, 'euiccOtpk', 65))]);
}

export function encodeInitialiseSecureChannel(i: InitialiseSecureChannel): Buffer {
  return tlv(
    TAG_INITIALISE_SECURE_CHANNEL,
    tlv(0x82, Buffer.from([REMOTE_OP_INSTALL_BPP])),
    tlv(0x80, checkLength(i.transactionId, 'transactionId', 1, 16)),
    crt(checkLength(i.hostId, 'hostId', 1, 16)),
    tlv(TAG_OTPK, checkLength(i.smdpOtpk, 'smdpOtpk', 65)),
    encodeSignatureDo(i.smdpSign),
  );
}

export function decodeInitialiseSecureChannel(input: Bytes): DecodedInitialiseSecureChannel {
  return initialiseSecureChannelOf(top(input, TAG_INITIALISE_SECURE_CHANNEL, 'initialiseSecureChannelRequest'));
}

function initialiseSecureChannelOf(t: Tlv): DecodedInitialiseSecureChannel {
  return guard('initialiseSecureChannelRequest', () => {
    kids(t, 'initialiseSecureChannelRequest');
    const op = need(t, 0x82, 'remoteOpId');
    const tid = need(t, 0x80, 'transactionId');
    const crtT = need(t, 0xa6, 'controlRefTemplate');
    const otpk = need(t, TAG_OTPK, 'smdpOtpk');
    const sig = need(t, TAG_SIGNATURE, 'smdpSign');
    if (op.length !== 1 || op.value[0] !== REMOTE_OP_INSTALL_BPP) {
      throw new RspError('unsupported', `initialiseSecureChannelRequest: remoteOpId ${op.value.toString('hex')} is not installBoundProfilePackage (1)`);
    }
    kids(crtT, 'controlRefTemplate');
    const keyType = sized(need(crtT, 0x80, 'keyType'), 'keyType', 1);
    const keyLen = sized(need(crtT, 0x81, 'keyLen'), 'keyLen', 1);
    if (keyType[0] !== KEY_TYPE_AES || keyLen[0] !== KEY_LEN_16) {
      throw new RspError('unsupported', `controlRefTemplate: keyType ${keyType.toString('hex')} keyLen ${keyLen.toString('hex')} (only 88/10 supported)`);
    }
    return {
      raw: t.raw,
      transactionId: transactionIdOf(tid),
      hostId: sized(need(crtT, 0x84, 'hostId'), 'hostId', 1, 16),
      smdpOtpk: sized(otpk, 'smdpOtpk', 65),
      smdpSign: signatureOf(sig, 'smdpSign'),
      signedData: Buffer.concat([op.raw, tid.raw, crtT.raw, otpk.raw]),
    };
  });
}

function checkAll(items: Buffer[], tag: number, name: string): Buffer[] {
  return items.map((b, i) => top(b, tag, `${name}[${i}]`).raw);
}

export function buildBoundProfilePackage(p: BoundProfilePackageParts): Buffer {
  const isc = top(p.initialiseSecureChannel, TAG_INITIALISE_SECURE_CHANNEL, 'initialiseSecureChannelRequest').raw;
  return tlv(
    TAG_BPP,
    isc,
    tlv(0xa0, ...checkAll(p.firstSequenceOf87, 0x87, 'firstSequenceOf87')),
    tlv(0xa1, ...checkAll(p.sequenceOf88, 0x88, 'sequenceOf88')),
    p.secondSequenceOf87 && p.secondSequenceOf87.length > 0 && tlv(0xa2, ...checkAll(p.secondSequenceOf87, 0x87, 'secondSequenceOf87')),
    tlv(0xa3, ...checkAll(p.sequenceOf86, 0x86, 'sequenceOf86')),
  );
}

interface Located {
  bpp: Tlv;
  isc: Tlv;
  a0: Tlv;
  a1: Tlv;
  a2?: Tlv;
  a3: Tlv;
}

/** The BPP's parts in SEQUENCE order (unknown extra elements skipped; known ones once, in order). */
function locate(input: Bytes): Located {
  const bpp = top(input, TAG_BPP, 'boundProfilePackage');
  const order = [TAG_INITIALISE_SECURE_CHANNEL, 0xa0, 0xa1, 0xa2, 0xa3];
  const found = new Map<number, Tlv>();
  let last = -1;
  for (const c of kids(bpp, 'boundProfilePackage')) {
    const i = order.indexOf(c.tag);
    if (i < 0) continue;
    if (i <= last) malformed(`boundProfilePackage: ${tagHex(c.tag)} out of order or repeated`);
    last = i;
    found.set(c.tag, c);
  }
  const get = (tag: number, name: string) => {
    const t = found.get(tag);
    if (!t) malformed(`missing ${name} (${tagHex(tag)}) in BF36`);
    return t;
  };
  const out: Located = {
    bpp,
    isc: get(TAG_INITIALISE_SECURE_CHANNEL, 'initialiseSecureChannelRequest'),
    a0: get(0xa0, 'firstSequenceOf87'),
    a1: get(0xa1, 'sequenceOf88'),
    a3: get(0xa3, 'sequenceOf86'),
  };
  const a2 = found.get(0xa2);
  if (a2) out.a2 = a2;
  return out;
}

function items(t: Tlv, tag: number, name: string): Buffer[] {
  return kids(t, name).map((c) => {
    if (c.tag !== tag) malformed(`${name}: unexpected element ${tagHex(c.tag)}, expected ${tagHex(tag)}`);
    return c.raw;
  });
}

export function decodeBoundProfilePackage(input: Bytes): DecodedBoundProfilePackage {
  const l = locate(input);
  return {
    raw: l.bpp.raw,
    initialiseSecureChannel: initialiseSecureChannelOf(l.isc),
    firstSequenceOf87: items(l.a0, 0x87, 'firstSequenceOf87'),
    sequenceOf88: items(l.a1, 0x88, 'sequenceOf88'),
    secondSequenceOf87: l.a2 ? items(l.a2, 0x87, 'secondSequenceOf87') : [],
    sequenceOf86: items(l.a3, 0x86, 'sequenceOf86'),
  };
}

/**
 * The ES10b LoadBoundProfilePackage commands lpac sends (docs/protocol.md, ES10 and the simulator): `BF36` header with the whole
 * `BF23`; the whole `A0`; the `A1` header; each `88`; the whole `A2` if present; the `A3` header;
 * each `86`. For a package without unknown extra elements the pieces concatenate to the package.
 */
export function splitBppForLoading(bpp: Bytes): Buffer[] {
  const l = locate(bpp);
  const header = (t: Tlv) => t.raw.subarray(0, t.headerLength);
  items(l.a0, 0x87, 'firstSequenceOf87');
  if (l.a2) items(l.a2, 0x87, 'secondSequenceOf87');
  return [
    Buffer.concat([header(l.bpp), l.isc.raw]),
    l.a0.raw,
    header(l.a1),
    ...items(l.a1, 0x88, 'sequenceOf88'),
    ...(l.a2 ? [l.a2.raw] : []),
    header(l.a3),
    ...items(l.a3, 0x86, 'sequenceOf86'),
  ];
}
