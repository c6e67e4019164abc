/**
 * ES10b LoadBoundProfilePackage of the virtual eUICC (SGP.22 §5.7.6, §2.5.5): the BPP as one BF36
 * or in lpac's pieces, InitialiseSecureChannel with ECKA and the session keys, every SCP03t segment
 * opened, the StoreMetadataRequest checked, the profile package decoded and installed, and the
 * signed ProfileInstallationResult (es10b-notifications.ts) as the answer, success or errorResult.
 */
import { verifyRaw } from '../crypto/ecdsa.js';
import { deriveSessionKeys } from '../crypto/kdf.js';
import { Scp03tError, Scp03tReader } from '../crypto/scp03t.js';
import { decode, decodeAll, DerError, type Tlv } from '../der/tlv.js';
import { decodeInitialiseSecureChannel, smdpSignVerifyInput, splitBppForLoading } from '../rsp/bpp.js';
import { decodeStoreMetadataRequest, type StoreMetadataRequest } from '../rsp/download.js';
import { iccidFromEf, iccidToEf } from '../rsp/identifiers.js';
import { BPP_COMMAND_ID as BPP_COMMAND, INSTALL_ERROR_REASON as BPP_ERROR } from '../rsp/notification.js';
import { decodeProfile } from '../saip/profile.js';
import { SaipError } from '../saip/errors.js';
import { hexU, reject, type BppLoad, type EuiccCore } from './card.js';
import { findProfile } from './es10c.js';
import { endSession } from './es10b-session.js';
import { signedPir } from './es10b-notifications.js';
import type { ProfileRecord } from './state.js';

/** ISD-P AIDs: A0000005591010FFFFFFFF89 followed by 00001000, 00001100, … */
const ISDP_AID_PREFIX = Buffer.from('A0000005591010FFFFFFFF89', 'hex');

class BppFailure extends Error {
  constructor(
    readonly bppCommandId: number,
    readonly errorReason: number,
    message: string,
  ) {
    super(message);
  }
}


/** Tag and length of a TLV whose value may not be (fully) present: lpac's header-only pieces. */
function readHeader(buf: Buffer): { tag: number; length: number; headerLength: number } | undefined {
  if (buf.length < 2) return undefined;
  let p = 0;
  let tag = buf[p++]!;
  if ((tag & 0x1f) === 0x1f) {
    let b: number;
    do {
      if (p >= buf.length || p > 3) return undefined;
      b = buf[p++]!;
      tag = tag * 256 + b;
    } while (b & 0x80);
  }
  if (p >= buf.length) return undefined;
  let length = buf[p++]!;
  if (length === 0x80 || length > 0x84) return undefined;
  if (length > 0x80) {
    const n = length & 0x7f;
    if (p + n > buf.length) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[p++]!;
  }
  return { tag, length, headerLength: p };
}

/** A BF36 command: either a whole BPP (all pieces at once) or lpac's first piece. */
export function bppCommand(card: EuiccCore, command: Buffer): Buffer {
  const h = readHeader(command);
  if (h && h.headerLength + h.length === command.length) {
    let pieces: Buffer[];
    try {
      pieces = splitBppForLoading(command);
    } catch (err) {
      return startLoad(card, command, `malformed BoundProfilePackage: ${(err as Error).message}`);
    }
    for (const p of pieces) {
      const r = p === pieces[0] ? startLoad(card, p) : bppPiece(card, p);
      if (r.length) return r;
    }
    return card.lastPir ?? reject(card, 'BoundProfilePackage ended before its last segment');
  }
  return startLoad(card, command);
}

function startLoad(card: EuiccCore, piece: Buffer, malformedWhy?: string): Buffer {
  card.load = undefined;
  card.lastPir = undefined;
  const s = card.session;
  if (!s || s.stage !== 'prepared' || !s.transactionId || !s.creds || !s.dpPb || !s.otKey) {
    // Nothing to bind the package to: a PIR is still the answer (with the package's transactionId),
    // addressed to nobody and not queued.
    let tid = Buffer.from([0]);
    try {
      const h = readHeader(piece);
      const t = h && decodeAll(piece.subarray(h.headerLength))[0]?.find(0x80);
      if (t && t.length >= 1 && t.length <= 16) tid = Buffer.from(t.value);
    } catch {
      /* keep the placeholder */
    }
    endSession(card);
    card.lastError = 'LoadBoundProfilePackage: no prepared download session';
    const pir = signedPir(card, { transactionId: tid }, { bppCommandId: BPP_COMMAND.initialiseSecureChannel, errorReason: BPP_ERROR.invalidTransactionId });
    card.lastPir = pir;
    return pir;
  }
  const load: BppLoad = {
    session: s as BppLoad['session'],
    phase: 'A0',
    remaining: 0,
    metadataParts: [],
    uppParts: [],
  };
  card.load = load;
  try {
    if (malformedWhy) throw new BppFailure(BPP_COMMAND.initialiseSecureChannel, BPP_ERROR.incorrectInputValues, malformedWhy);
    const h = readHeader(piece);
    if (!h) throw new BppFailure(BPP_COMMAND.initialiseSecureChannel, BPP_ERROR.incorrectInputValues, 'BF36 header unreadable');
    initialiseSecureChannel(card, load, piece.subarray(h.headerLength));
    return Buffer.alloc(0);
  } catch (err) {
    return abort(card, load, err);
  }
}

function initialiseSecureChannel(card: EuiccCore, load: BppLoad, rest: Buffer): void {
  const F = (reason: number, why: string) => new BppFailure(BPP_COMMAND.initialiseSecureChannel, reason, why);
  let t: Tlv;
  try {
    t = decode(rest);
    t.children();
  } catch (err) {
    throw F(BPP_ERROR.incorrectInputValues, `InitialiseSecureChannel: ${(err as Error).message}`);
  }
  if (t.tag !== 0xbf23) throw F(BPP_ERROR.incorrectInputValues, `expected BF23, found ${t.tag.toString(16)}`);
  const op = t.find(0x82);
  if (!op || op.length !== 1 || op.value[0] !== 1) throw F(BPP_ERROR.unsupportedRemoteOperationType, 'remoteOpId is not installBoundProfilePackage');
  try {
    const crt = t.find(0xa6);
    const kt = crt?.find(0x80);
    const kl = crt?.find(0x81);
    if (!kt || !kl || !kt.value.equals(Buffer.from([0x88])) || !kl.value.equals(Buffer.from([0x10]))) {
      throw F(BPP_ERROR.unsupportedCrtValues, 'controlRefTemplate is not keyType 88 / keyLen 10');
    }
  } catch (err) {
    if (err instanceof BppFailure) throw err;
    throw F(BPP_ERROR.unsupportedCrtValues, `controlRefTemplate: ${(err as Error).message}`);
  }
  let isc: ReturnType<typeof decodeInitialiseSecureChannel>;
  try {
    isc = decodeInitialiseSecureChannel(t.raw);
  } catch (err) {
    throw F(BPP_ERROR.incorrectInputValues, `InitialiseSecureChannel: ${(err as Error).message}`);
  }
  const s = load.session;
  if (!isc.transactionId.equals(s.transactionId)) throw F(BPP_ERROR.invalidTransactionId, 'transactionId differs from the session');
  if (!verifyRaw(s.dpPb.publicKey, smdpSignVerifyInput(isc, s.otKey.publicPoint), isc.smdpSign)) {
    throw F(BPP_ERROR.invalidSignature, 'smdpSign does not verify with CERT.DPpb');
  }
  let keys;
  try {
    keys = deriveSessionKeys(s.otKey.pair.agree(isc.smdpOtpk), isc.hostId, card.state.eid);
  } catch (err) {
    throw F(BPP_ERROR.incorrectInputValues, `key agreement: ${(err as Error).message}`);
  }
  load.reader = new Scp03tReader(keys);
}

/** Opens one protected segment, mapping SCP03t failures to PIR error reasons of `step`. */
function open(card: EuiccCore, load: BppLoad, step: number, segment: Buffer): Buffer {
  try {
    return load.reader!.open(segment);
  } catch (err) {
    if (err instanceof Scp03tError) {
      const reason = err.code === 'security' ? BPP_ERROR.scp03tSecurityError : BPP_ERROR.scp03tStructureError;
      throw new BppFailure(step, reason, `segment ${segment[0]?.toString(16)}: ${err.message}`);
    }
    throw err;
  }
}

export function bppPiece(card: EuiccCore, piece: Buffer): Buffer {
  const load = card.load;
  if (!load) return card.lastPir ?? reject(card, `BPP piece ${piece[0]?.toString(16)} outside a LoadBoundProfilePackage`);
  try {
    return loadPiece(card, load, piece);
  } catch (err) {
    return abort(card, load, err);
  }
}

function loadPiece(card: EuiccCore, load: BppLoad, piece: Buffer): Buffer {
  const h = readHeader(piece);
  const stepOf: Record<number, number> = {
    0xa0: BPP_COMMAND.configureISDP,
    0xa1: BPP_COMMAND.storeMetadata,
    0x88: BPP_COMMAND.storeMetadata,
    0xa2: BPP_COMMAND.replaceSessionKeys,
    0xa3: BPP_COMMAND.loadProfileElements,
    0x86: BPP_COMMAND.loadProfileElements,
  };
  const step = stepOf[piece[0]!] ?? BPP_COMMAND.loadProfileElements;
  const structure = (why: string) => new BppFailure(step, BPP_ERROR.scp03tStructureError, why);
  if (!h) throw structure('unreadable TLV header');
  const whole = h.headerLength + h.length === piece.length;
  const headerOnly = h.headerLength === piece.length;
  if (!whole && !headerOnly) throw structure(`piece ${h.tag.toString(16)} is neither a header nor a whole TLV`);
  const children = (): Tlv[] => {
    try {
      return decodeAll(piece.subarray(h.headerLength));
    } catch (err) {
      throw structure(`${h.tag.toString(16)}: ${(err as DerError).message}`);
    }
  };

  switch (h.tag) {
    case 0xa0: {
      const plain = openOne87(card, load, 'firstSequenceOf87', 'A0', whole, children, step, structure);
      try {
        const c = decode(plain);
        if (c.tag !== 0xbf24) throw new Error(`expected ConfigureISDPRequest BF24, found ${c.tag.toString(16)}`);
      } catch (err) {
        throw new BppFailure(step, BPP_ERROR.incorrectInputValues, `ConfigureISDP: ${(err as Error).message}`);
      }
      load.phase = 'A1';
      return Buffer.alloc(0);
    }
    case 0xa1:
    case 0xa3:
      return startSequence(card, load, SEQUENCES[h.tag]!, h.length, whole, children, structure);
    case 0x88:
    case 0x86:
      return loadSegment(card, load, SEQUENCES[h.tag === 0x88 ? 0xa1 : 0xa3]!, piece, whole, step, structure);
    case 0xa2: {
      const plain = openOne87(card, load, 'secondSequenceOf87', 'afterMetadata', whole, children, step, structure);
      let ppk;
      try {
        const rsk = decode(plain).expect(0xbf26);
        ppk = { mcv: rsk.get(0x80).value, sEnc: rsk.get(0x81).value, sMac: rsk.get(0x82).value };
        if (ppk.mcv.length !== 16 || ppk.sEnc.length !== 16 || ppk.sMac.length !== 16) throw new Error('keys must be 16 bytes');
      } catch (err) {
        throw new BppFailure(step, BPP_ERROR.incorrectInputValues, `ReplaceSessionKeys: ${(err as Error).message}`);
      }
      load.reader!.usePpk({ mcv: Buffer.from(ppk.mcv), sEnc: Buffer.from(ppk.sEnc), sMac: Buffer.from(ppk.sMac) });
      return Buffer.alloc(0);
    }
    default:
      throw structure(`unexpected BPP element ${h.tag.toString(16)}`);
  }
}

/** firstSequenceOf87 (A0, ConfigureISDP) / secondSequenceOf87 (A2, ReplaceSessionKeys): sent whole, one 87 segment, opened. */
function openOne87(card: EuiccCore, load: BppLoad, name: string, phase: BppLoad['phase'], whole: boolean, children: () => Tlv[], step: number, structure: (why: string) => Error): Buffer {
  if (load.phase !== phase) throw structure(`${name} out of order`);
  if (!whole) throw structure(`${name} must be sent whole`);
  const segs = children();
  if (segs.length !== 1 || segs[0]!.tag !== 0x87) throw structure(`${name} must hold one 87 segment`);
  return open(card, load, step, segs[0]!.raw);
}

/** The two sequences of segments a BPP carries: the metadata (A1 { 88 … }) and the profile package (A3 { 86 … }). */
interface Sequence {
  name: string;
  segment: string;
  /** The phase it may start in, and the one while its segments come. */
  after: BppLoad['phase'];
  phase: BppLoad['phase'];
  parts: (load: BppLoad) => Buffer[];
  /** Called when the last segment is in. */
  done: (card: EuiccCore, load: BppLoad) => Buffer;
}

const SEQUENCES: Record<number, Sequence> = {
  0xa1: { name: 'sequenceOf88', segment: '88', after: 'A1', phase: '88', parts: (l) => l.metadataParts, done: (c, l) => metadataDone(c, l) },
  0xa3: { name: 'sequenceOf86', segment: '86', after: 'afterMetadata', phase: '86', parts: (l) => l.uppParts, done: (c, l) => install(c, l) },
};

/** A1 / A3: its length counts the segment bytes that follow (none: done at once). */
function startSequence(card: EuiccCore, load: BppLoad, q: Sequence, length: number, whole: boolean, children: () => Tlv[], structure: (why: string) => Error): Buffer {
  if (load.phase !== q.after) throw structure(`${q.name} out of order`);
  load.phase = q.phase;
  load.remaining = length;
  return length === 0 ? q.done(card, load) : loadEach(card, load, whole, children);
}

/** One 88 / 86 segment, opened and kept; the last one completes its sequence. */
function loadSegment(card: EuiccCore, load: BppLoad, q: Sequence, piece: Buffer, whole: boolean, step: number, structure: (why: string) => Error): Buffer {
  if (load.phase !== q.phase || !whole) throw structure(`${q.segment} segment out of order`);
  load.remaining -= piece.length;
  if (load.remaining < 0) throw structure(`${q.segment} segments exceed the ${q.name} length`);
  q.parts(load).push(Buffer.from(open(card, load, step, piece)));
  return load.remaining === 0 ? q.done(card, load) : Buffer.alloc(0);
}

/** A sequenceOf88 / sequenceOf86 sent whole: its segments loaded one by one, the last answer returned; a header alone answers nothing. */
function loadEach(card: EuiccCore, load: BppLoad, whole: boolean, children: () => Tlv[]): Buffer {
  let r: Buffer = Buffer.alloc(0);
  if (whole) for (const c of children()) r = loadPiece(card, load, c.raw);
  return r;
}

/** The StoreMetadataRequest is complete: parse it and check the ICCID is new. */
function metadataDone(card: EuiccCore, load: BppLoad): Buffer {
  const step = BPP_COMMAND.storeMetadata;
  let md: StoreMetadataRequest & { raw: Buffer };
  try {
    md = decodeStoreMetadataRequest(Buffer.concat(load.metadataParts));
  } catch (err) {
    throw new BppFailure(step, BPP_ERROR.incorrectInputValues, `StoreMetadataRequest: ${(err as Error).message}`);
  }
  load.metadata = md;
  try {
    iccidFromEf(md.iccid);
  } catch (err) {
    throw new BppFailure(step, BPP_ERROR.incorrectInputValues, `metadata ICCID: ${(err as Error).message}`);
  }
  if (md.profileClass !== undefined && ![0, 1, 2].includes(md.profileClass)) {
    throw new BppFailure(step, BPP_ERROR.unsupportedProfileClass, `profileClass ${md.profileClass}`);
  }
  if (findProfile(card.state, { iccidEf: md.iccid })) {
    throw new BppFailure(step, BPP_ERROR.iccidAlreadyExistsOnEuicc, `ICCID ${iccidFromEf(md.iccid)} is already on the card`);
  }
  load.phase = 'afterMetadata';
  return Buffer.alloc(0);
}

/** All 86 segments are in: decode the profile package, install, answer the success PIR. */
function install(card: EuiccCore, load: BppLoad): Buffer {
  const step = BPP_COMMAND.loadProfileElements;
  const md = load.metadata!;
  const upp = Buffer.concat(load.uppParts);
  let profile: ReturnType<typeof decodeProfile>;
  try {
    profile = decodeProfile(upp);
  } catch (err) {
    const reason = err instanceof SaipError && err.code === 'iccidMismatch' ? BPP_ERROR.dataMismatch : BPP_ERROR.peProcessingError;
    throw new BppFailure(step, reason, `profile package: ${(err as Error).message}`);
  }
  let sameIccid: boolean;
  try {
    sameIccid = iccidToEf(profile.iccid).equals(md.iccid);
  } catch {
    sameIccid = false;
  }
  if (!sameIccid) throw new BppFailure(step, BPP_ERROR.dataMismatch, `profile ICCID ${profile.iccid} differs from the metadata ICCID ${iccidFromEf(md.iccid)}`);

  const s = load.session;
  const idx = card.state.nextIsdpIndex++;
  const suffix = Buffer.alloc(4);
  suffix.writeUInt32BE(0x1000 + idx * 0x100);
  const aid = Buffer.concat([ISDP_AID_PREFIX, suffix]);
  const record: ProfileRecord = {
    iccid: iccidFromEf(md.iccid),
    iccidEf: hexU(md.iccid),
    isdpAid: hexU(aid),
    state: 'disabled',
    serviceProviderName: md.serviceProviderName,
    profileName: md.profileName,
    profileClass: md.profileClass ?? 2,
    notificationConfigurationInfo: (md.notificationConfigurationInfo ?? []).map((n) => ({ operations: [...n.operations], address: n.address })),
    metadata: hexU(md.raw),
    imsi: profile.imsi,
    ki: hexU(profile.ki),
    opc: hexU(profile.opc),
    elements: profile.elements.map((e) => e.type),
    package: upp.toString('base64'),
    installedAt: new Date().toISOString(),
    ...(md.iconType !== undefined ? { iconType: md.iconType } : {}),
    ...(md.icon ? { icon: md.icon.toString('base64') } : {}),
    ...(md.profileOwner
      ? {
          profileOwner: {
            mccMnc: hexU(md.profileOwner.mccMnc),
            ...(md.profileOwner.gid1 ? { gid1: hexU(md.profileOwner.gid1) } : {}),
            ...(md.profileOwner.gid2 ? { gid2: hexU(md.profileOwner.gid2) } : {}),
          },
        }
      : {}),
    ...(md.profilePolicyRules?.length ? { profilePolicyRules: [...md.profilePolicyRules] } : {}),
    ...(s.smdpOid ? { smdpOid: s.smdpOid } : {}),
    ...(s.serverAddress ? { smdpAddress: s.serverAddress } : {}),
    ciPkId: hexU(s.creds.eum.aki!),
  };
  if (profile.profileType) record.profileType = profile.profileType;
  card.state.profiles.push(record);
  const pir = signedPir(card, s, { aid }, md.iccid);
  card.retainedOtKey = undefined;
  endSession(card);
  card.lastPir = pir;
  card.changed();
  return pir;
}

/** Ends a load with an errorResult PIR (queued as a notification). */
function abort(card: EuiccCore, load: BppLoad, err: unknown): Buffer {
  if (!(err instanceof BppFailure)) {
    // Not a protocol failure: a bug. Still end the load with a PIR rather than hang the LPA.
    err = new BppFailure(BPP_COMMAND.loadProfileElements, BPP_ERROR.unknownError, `internal error: ${(err as Error)?.stack ?? String(err)}`);
  }
  const f = err as BppFailure;
  if (f.message) card.lastError = `LoadBoundProfilePackage: ${f.message}`;
  const pir = signedPir(card, load.session, { bppCommandId: f.bppCommandId, errorReason: f.errorReason }, load.metadata?.iccid);
  endSession(card);
  card.lastPir = pir;
  card.changed();
  return pir;
}
