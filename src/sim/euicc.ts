/**
 * A virtual eUICC (SGP.22 ISD-R behind ES10): it holds an EID, eUICC + EUM certificates and key,
 * trusted CI certificates, installed profiles and pending notifications, and answers ES10 commands
 * the way a consumer eUICC does — verifying the SM-DP+ certificates and signatures, running ECKA,
 * opening every SCP03t segment of a Bound Profile Package, parsing the profile package, and
 * signing what it returns. Bad input never throws out of `transmit`: it gets the function's error
 * answer (AuthenticateServer / PrepareDownload error codes, a PIR errorResult, result codes).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { CurveName } from '../crypto/curves.js';
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import { ecka, generateOtKeyPair } from '../crypto/ecka.js';
import { deriveSessionKeys } from '../crypto/kdf.js';
import { Scp03tError, Scp03tReader } from '../crypto/scp03t.js';
import { Certificate, checkIssued, parseCertificateCached, RSP_ROLE } from '../crypto/x509.js';
import { decode, decodeAll, DerError, tlv, type Tlv } from '../der/tlv.js';
import { encodeOidValue, integer, namedBits, readNamedBits, readUint, utf8 } from '../der/types.js';
import { issueEuiccCredentials, type EuiccCredentials } from '../pki/load.js';
import { CURVE_NAMES, certPath, keyPath } from '../pki/layout.js';
import { AUTHENTICATE_ERROR, decodeAuthenticateServerRequest, encodeAuthenticateServerResponse, encodeEuiccSigned1 } from '../rsp/authentication.js';
import { decodeInitialiseSecureChannel, smdpSignVerifyInput, splitBppForLoading } from '../rsp/bpp.js';
import { decodePrepareDownloadRequest, decodeStoreMetadataRequest, DOWNLOAD_ERROR, type StoreMetadataRequest } from '../rsp/download.js';
import { encodeEuiccInfo1, encodeEuiccInfo2 } from '../rsp/euiccinfo.js';
import { iccidFromEf, iccidToEf } from '../rsp/identifiers.js';
import { decodeProfile } from '../saip/profile.js';
import { SaipError } from '../saip/errors.js';
import { ES10, NOTIFICATION_EVENT, type Es10Card } from './es10.js';
import * as es10c from './es10c.js';
import {
  embedCredentials,
  loadCardState,
  loadCredentialsReference,
  loadStateCredentials,
  newCardState,
  saveCardState,
  validateCardState,
  type CardState,
  type CredentialsReference,
  type NotificationRecord,
  type ProfileRecord,
} from './state.js';

/** bppCommandId values of a PIR errorResult. */
import { BPP_COMMAND_ID as BPP_COMMAND, INSTALL_ERROR_REASON as BPP_ERROR } from '../rsp/notification.js';
import { CANCEL_SESSION_ERROR as CANCEL_ERROR } from '../rsp/cancel.js';
export { BPP_COMMAND, BPP_ERROR, CANCEL_ERROR };

/** ISD-P AIDs: A0000005591010FFFFFFFF89 followed by 00001000, 00001100, … */
const ISDP_AID_PREFIX = Buffer.from('A0000005591010FFFFFFFF89', 'hex');

/** EUICCResponse "all profile elements OK": 30 { A0 { 30 { 80 00 } } }. */
const SIMA_RESPONSE_OK = tlv(0x30, tlv(0xa0, tlv(0x30, tlv(0x80, Buffer.from([0])))));

/** UICCCapability bits advertised by default (USIM, ISIM, Milenage, TUAK, GBA, EAP, Java Card, multiple USIM/ISIM). */
const DEFAULT_UICC_CAPABILITY = [1, 2, 4, 6, 7, 10, 11, 13, 14, 16, 17];

export interface VirtualEuiccOptions {
  /** Save the state to this file after every change. */
  persistTo?: string;
  /** Called after every state change (after persistTo was written). */
  onChange?: (state: CardState) => void;
  /** SGP.22 version in EUICCInfo1/2 (default '2.2.2'). */
  svn?: string;
  /** SAIP version in EUICCInfo2 (default '2.3.1'). */
  profileVersion?: string;
  /** Firmware version in EUICCInfo2 (default '1.0.0'). */
  firmwareVersion?: string;
  /** SAS accreditation number in EUICCInfo2 (default 'MOCK-SMDP-SIM'). */
  sasAccreditationNumber?: string;
  /** Random source (tests). */
  random?: (n: number) => Buffer;
  /** Clock for certificate validity checks; by default validity dates are not checked (an eUICC has no trusted clock). */
  now?: () => Date;
}

export interface CreateVirtualEuiccOptions extends VirtualEuiccOptions {
  /** Credentials to use (embedded into the state). */
  credentials?: EuiccCredentials | EuiccCredentials[];
  /** A PKI folder in the SGP.26 layout. */
  pkiDir?: string;
  /**
   * With pkiDir: issue new eUICC certificates for this EID from the folder's EUM(s) (needs the EUM
   * private keys) and embed them. Without it the folder's eUICC/ credentials are referenced.
   */
  eid?: string;
  /** Curves to use from pkiDir (default: all available). */
  curves?: CurveName[];
  /** Embed credentials loaded from pkiDir instead of referencing the folder. */
  embed?: boolean;
  /** Initial default SM-DP+ address. */
  defaultDpAddress?: string;
  rootDsAddress?: string;
}

interface OtKey {
  curve: CurveName;
  privateKey: KeyObject;
  publicPoint: Buffer;
}

/** The RSP session between GetEuiccChallenge and the end of the download (never persisted). */
interface RspSession {
  euiccChallenge: Buffer;
  stage: 'challenge' | 'authenticated' | 'prepared';
  transactionId?: Buffer;
  serverAddress?: string;
  serverChallenge?: Buffer;
  smdpOid?: string;
  creds?: EuiccCredentials;
  euiccSignature1Do?: Buffer;
  dpPb?: Certificate;
  otKey?: OtKey;
}

type LoadPhase = 'A0' | 'A1' | '88' | 'afterMetadata' | '86';

/** A LoadBoundProfilePackage in progress (pieces as lpac sends them). */
interface BppLoad {
  session: RspSession & { transactionId: Buffer; creds: EuiccCredentials; dpPb: Certificate; otKey: OtKey };
  reader?: Scp03tReader;
  phase: LoadPhase;
  remaining88: number;
  remaining86: number;
  metadataParts: Buffer[];
  metadata?: StoreMetadataRequest & { raw: Buffer };
  uppParts: Buffer[];
}

class BppFailure extends Error {
  constructor(
    readonly bppCommandId: number,
    readonly errorReason: number,
    message: string,
  ) {
    super(message);
  }
}

const hexU = (b: Buffer) => b.toString('hex').toUpperCase();

function versionBytes(v: string, what: string): Buffer {
  const m = v.match(/^(\d+)\.(\d+)\.(\d+)$/);
  if (!m) throw new TypeError(`${what} must be major.minor.revision: ${v}`);
  return Buffer.from([Number(m[1]), Number(m[2]), Number(m[3])]);
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

export class VirtualEuicc implements Es10Card {
  readonly #state: CardState;
  readonly #creds: EuiccCredentials[];
  /** Trusted CI certificates (EUICCInfo ForVerification), by SKI hex. */
  readonly #trusted = new Map<string, Certificate>();
  readonly #opts: VirtualEuiccOptions;
  readonly #random: (n: number) => Buffer;
  #session?: RspSession;
  #load?: BppLoad;
  /** The PIR of the last finished or aborted load, answered again to stray pieces of it. */
  #lastPir?: Buffer;
  /** One-time key kept for a possible retry with bppEuiccOtpk (SGP.22 v2 PPK rebinding). */
  #retainedOtKey?: OtKey;
  readonly #ctx: es10c.CardContext;
  /** Diagnostic of the last rejected command (not part of any ES10 answer). */
  lastError?: string;

  constructor(state: CardState, credentials: EuiccCredentials | EuiccCredentials[], opts: VirtualEuiccOptions = {}) {
    this.#state = validateCardState(state);
    this.#creds = Array.isArray(credentials) ? [...credentials] : [credentials];
    if (!this.#creds.length) throw new TypeError('VirtualEuicc needs eUICC credentials');
    for (const c of this.#creds) {
      if (c.eid !== state.eid) throw new TypeError(`eUICC certificate (${c.curve}) is for EID ${c.eid}, card state has ${state.eid}`);
      if (!c.eum.aki) throw new TypeError(`EUM certificate (${c.curve}) has no authority key identifier`);
      for (const ci of c.cis) if (ci.ski) this.#trusted.set(hexU(ci.ski), ci);
    }
    for (const b64 of state.extraTrustedCis ?? []) {
      const ci = Certificate.parse(Buffer.from(b64, 'base64'));
      if (ci.ski) this.#trusted.set(hexU(ci.ski), ci);
    }
    this.#opts = opts;
    this.#random = opts.random ?? randomBytes;
    this.#ctx = {
      state: this.#state,
      notifyProfileEvent: (p, op) => this.#notifyProfileEvent(p, op),
      changed: () => this.#changed(),
    };
  }

  /**
   * A new card. Credentials come from `credentials`, or from `pkiDir` (issued for `eid` when given,
   * else the folder's eUICC/ certificates). With `persistTo`, the state file is written at once.
   */
  static async create(opts: CreateVirtualEuiccOptions): Promise<VirtualEuicc> {
    let creds: EuiccCredentials[];
    let ref: CredentialsReference;
    if (opts.credentials) {
      creds = Array.isArray(opts.credentials) ? opts.credentials : [opts.credentials];
      ref = { embedded: creds.map(embedCredentials) };
    } else if (opts.pkiDir) {
      const dir = opts.pkiDir;
      if (opts.eid) {
        const eid = opts.eid;
        const curves = opts.curves ?? CURVE_NAMES.filter((c) => existsSync(join(dir, certPath('eum', c))) && existsSync(join(dir, keyPath('eum', c))));
        if (!curves.length) throw new TypeError(`no EUM certificate and key in ${dir} to issue eUICC certificates with`);
        creds = curves.map((c) => issueEuiccCredentials(dir, eid, c));
        ref = { embedded: creds.map(embedCredentials) };
      } else {
        const abs = resolve(dir);
        const base = opts.persistTo ? dirname(resolve(opts.persistTo)) : process.cwd();
        creds = loadCredentialsReference({ dir: abs, ...(opts.curves ? { curves: opts.curves } : {}) });
        ref = opts.embed
          ? { embedded: creds.map(embedCredentials) }
          : { dir: opts.persistTo ? relative(base, abs) || '.' : abs, ...(opts.curves ? { curves: opts.curves } : {}) };
      }
    } else {
      throw new TypeError('VirtualEuicc.create needs credentials or pkiDir');
    }
    const eid = creds[0]!.eid;
    const state = newCardState(eid, ref, {
      ...(opts.rootDsAddress ? { rootDsAddress: opts.rootDsAddress } : {}),
      ...(opts.defaultDpAddress ? { defaultDpAddress: opts.defaultDpAddress } : {}),
    });
    const card = new VirtualEuicc(state, creds, opts);
    if (opts.persistTo) saveCardState(opts.persistTo, state);
    return card;
  }

  /** The card of a state file; changes are saved back to it. */
  static open(stateFile: string, opts: VirtualEuiccOptions = {}): VirtualEuicc {
    const state = loadCardState(stateFile);
    const creds = loadStateCredentials(state, dirname(resolve(stateFile)));
    return new VirtualEuicc(state, creds, { persistTo: stateFile, ...opts });
  }

  /** A card from `toJSON()` output; credentials from the state unless given. */
  static fromJSON(json: CardState | string, opts: VirtualEuiccOptions & { baseDir?: string; credentials?: EuiccCredentials[] } = {}): VirtualEuicc {
    const state = validateCardState(typeof json === 'string' ? JSON.parse(json) : structuredClone(json));
    const creds = opts.credentials ?? loadStateCredentials(state, opts.baseDir);
    return new VirtualEuicc(state, creds, opts);
  }

  /** A deep copy of the persistent state. */
  toJSON(): CardState {
    return structuredClone(this.#state);
  }

  get eid(): string {
    return this.#state.eid;
  }

  get profiles(): readonly ProfileRecord[] {
    return this.#state.profiles;
  }

  get notifications(): readonly NotificationRecord[] {
    return this.#state.notifications;
  }

  get credentials(): readonly EuiccCredentials[] {
    return this.#creds;
  }

  /** Writes the state to a file now. */
  save(file: string): void {
    saveCardState(file, this.#state);
  }

  // ------------------------------------------------------------------------------------------
  // ES10 dispatch

  async transmit(command: Buffer): Promise<Buffer> {
    return this.process(command);
  }

  /** Synchronous form of transmit. */
  process(command: Buffer): Buffer {
    this.lastError = undefined;
    if (!Buffer.isBuffer(command)) throw new TypeError('ES10 command must be a Buffer');
    const first = command[0];
    // BoundProfilePackage pieces: BF36 header (+BF23), A0..A3, 86, 88 (87 only inside A0/A2).
    if (command.length >= 2 && first === 0xbf && command[1] === 0x36) return this.#bppCommand(command);
    if (first !== undefined && [0xa0, 0xa1, 0xa2, 0xa3, 0x86, 0x88].includes(first)) return this.#bppPiece(command);
    let cmd: Tlv;
    try {
      cmd = decode(command);
      cmd.children();
    } catch (err) {
      return this.#reject(`undecodable command: ${(err as Error).message}`);
    }
    switch (cmd.tag) {
      case ES10.GetEuiccChallenge:
        return this.#getEuiccChallenge();
      case ES10.GetEuiccInfo1:
        return this.#euiccInfo1();
      case ES10.GetEuiccInfo2:
        return this.#euiccInfo2();
      case ES10.AuthenticateServer:
        return this.#authenticateServer(command);
      case ES10.PrepareDownload:
        return this.#prepareDownload(command);
      case ES10.CancelSession:
        return this.#cancelSession(cmd);
      case ES10.ListNotification:
        return this.#listNotification(cmd);
      case ES10.RetrieveNotificationsList:
        return this.#retrieveNotifications(cmd);
      case ES10.RemoveNotificationFromList:
        return this.#removeNotification(cmd);
      case ES10.GetProfilesInfo:
        return es10c.getProfilesInfo(this.#ctx, cmd);
      case ES10.EnableProfile:
        return es10c.enableProfile(this.#ctx, cmd);
      case ES10.DisableProfile:
        return es10c.disableProfile(this.#ctx, cmd);
      case ES10.DeleteProfile:
        return es10c.deleteProfile(this.#ctx, cmd);
      case ES10.SetNickname:
        return es10c.setNickname(this.#ctx, cmd);
      case ES10.GetEid:
        return es10c.getEid(this.#ctx);
      case ES10.GetEuiccConfiguredAddresses:
        return es10c.getConfiguredAddresses(this.#ctx);
      case ES10.SetDefaultDpAddress:
        return es10c.setDefaultDpAddress(this.#ctx, cmd);
      case ES10.EuiccMemoryReset:
        return es10c.memoryReset(this.#ctx, cmd);
      case ES10.GetRat:
        return es10c.getRat();
      default:
        return this.#reject(`unsupported ES10 command ${cmd.tag.toString(16).toUpperCase()}`);
    }
  }

  /** No ES10-level error answer exists: an empty answer, with the reason in lastError. */
  #reject(why: string): Buffer {
    this.lastError = why;
    return Buffer.alloc(0);
  }


  // ------------------------------------------------------------------------------------------
  // EUICCInfo

  /** CI SKIs the card trusts (ForVerification). */
  get ciPkIdsForVerification(): Buffer[] {
    return [...this.#trusted.values()].map((c) => c.ski!);
  }

  /** CI SKIs under which the card holds an eUICC certificate (ForSigning). */
  get ciPkIdsForSigning(): Buffer[] {
    const out: Buffer[] = [];
    for (const c of this.#creds) if (!out.some((x) => x.equals(c.eum.aki!))) out.push(c.eum.aki!);
    return out;
  }

  #svn(): Buffer {
    return versionBytes(this.#opts.svn ?? '2.2.2', 'svn');
  }

  #euiccInfo1(): Buffer {
    return encodeEuiccInfo1({ svn: this.#svn(), ciPkIdsForVerification: this.ciPkIdsForVerification, ciPkIdsForSigning: this.ciPkIdsForSigning });
  }

  #euiccInfo2(): Buffer {
    const apps = Math.min(255, this.#state.profiles.length);
    return encodeEuiccInfo2({
      profileVersion: versionBytes(this.#opts.profileVersion ?? '2.3.1', 'profileVersion'),
      svn: this.#svn(),
      euiccFirmwareVer: versionBytes(this.#opts.firmwareVersion ?? '1.0.0', 'firmwareVersion'),
      // 81 installed applications, 82 free non-volatile memory, 83 free volatile memory
      extCardResource: Buffer.concat([tlv(0x81, Buffer.from([apps])), tlv(0x82, Buffer.from('000F4240', 'hex')), tlv(0x83, Buffer.from('1000', 'hex'))]),
      uiccCapability: DEFAULT_UICC_CAPABILITY,
      ts102241Version: Buffer.from([9, 2, 0]),
      globalPlatformVersion: Buffer.from([2, 3, 1]),
      rspCapability: [0, 3], // additionalProfile, testProfileSupport
      ciPkIdsForVerification: this.ciPkIdsForVerification,
      ciPkIdsForSigning: this.ciPkIdsForSigning,
      euiccCategory: 2,
      ppVersion: Buffer.from([0, 0, 1]),
      sasAccreditationNumber: this.#opts.sasAccreditationNumber ?? 'MOCK-SMDP-SIM',
    });
  }

  // ------------------------------------------------------------------------------------------
  // Session: challenge, AuthenticateServer, PrepareDownload, CancelSession

  #endSession(): void {
    this.#session = undefined;
    this.#load = undefined;
  }

  #getEuiccChallenge(): Buffer {
    this.#endSession();
    this.#lastPir = undefined;
    const euiccChallenge = this.#random(16);
    this.#session = { euiccChallenge, stage: 'challenge' };
    return tlv(ES10.GetEuiccChallenge, tlv(0x80, euiccChallenge));
  }

  /** Checks a certificate issued by a trusted CI, with the role policy. */
  #checkServerCert(cert: Certificate, role: string): Certificate {
    const ci = cert.aki ? this.#trusted.get(hexU(cert.aki)) : undefined;
    if (!ci) throw new Error(`certificate "${cert.subject}" is not issued by a trusted CI`);
    checkIssued(cert, ci, { role, at: this.#opts.now ? this.#opts.now() : cert.notBefore });
    return ci;
  }

  #authenticateServer(command: Buffer): Buffer {
    const session = this.#session;
    let tid: Buffer | undefined;
    const fail = (code: number, why: string): Buffer => {
      this.lastError = `AuthenticateServer: ${why}`;
      this.#endSession();
      return encodeAuthenticateServerResponse({ error: { ...(tid ? { transactionId: tid } : {}), code } });
    };
    let req: ReturnType<typeof decodeAuthenticateServerRequest>;
    try {
      req = decodeAuthenticateServerRequest(command);
    } catch (err) {
      try {
        const t = decode(command).children().find((c) => c.tag === 0x30)?.find(0x80);
        if (t && t.length >= 1 && t.length <= 16) tid = t.value;
      } catch {
        /* no transactionId to echo */
      }
      return fail(AUTHENTICATE_ERROR.undefinedError, `malformed request: ${(err as Error).message}`);
    }
    const s1 = req.serverSigned1;
    tid = s1.transactionId;
    if (!session || session.stage !== 'challenge') return fail(AUTHENTICATE_ERROR.noSessionContext, 'no euiccChallenge issued');
    // CERT.DPauth: parsed, on a supported curve, issued by a CI the card trusts, role dp-auth.
    let dpAuth: Certificate;
    try {
      dpAuth = parseCertificateCached(req.serverCertificate);
    } catch (err) {
      const why = (err as Error).message;
      return fail(/unsupported curve|not an EC key/.test(why) ? AUTHENTICATE_ERROR.unsupportedCurve : AUTHENTICATE_ERROR.invalidCertificate, `CERT.DPauth: ${why}`);
    }
    try {
      this.#checkServerCert(dpAuth, RSP_ROLE.dpAuth);
    } catch (err) {
      return fail(AUTHENTICATE_ERROR.invalidCertificate, `CERT.DPauth: ${(err as Error).message}`);
    }
    const smdpOid = dpAuth.sanRegisteredIds[0];
    if (!smdpOid) return fail(AUTHENTICATE_ERROR.invalidOid, 'CERT.DPauth carries no SM-DP+ OID');
    if (!verifyRaw(dpAuth.publicKey, s1.raw, req.serverSignature1)) return fail(AUTHENTICATE_ERROR.invalidSignature, 'serverSignature1 does not verify');
    if (!s1.euiccChallenge.equals(session.euiccChallenge)) return fail(AUTHENTICATE_ERROR.euiccChallengeMismatch, 'euiccChallenge differs');
    const creds = this.#creds.find((c) => c.eum.aki!.equals(req.euiccCiPkIdToBeUsed));
    if (!creds) return fail(AUTHENTICATE_ERROR.ciPKUnknown, `no eUICC certificate under CI ${hexU(req.euiccCiPkIdToBeUsed)}`);

    const euiccSigned1 = encodeEuiccSigned1({
      transactionId: s1.transactionId,
      serverAddress: s1.serverAddress,
      serverChallenge: s1.serverChallenge,
      euiccInfo2: this.#euiccInfo2(),
      ctxParams1: req.ctxParams1.raw,
    });
    const euiccSignature1 = signRaw(creds.key, euiccSigned1);
    Object.assign(session, {
      stage: 'authenticated',
      transactionId: s1.transactionId,
      serverAddress: s1.serverAddress,
      serverChallenge: s1.serverChallenge,
      smdpOid,
      creds,
      euiccSignature1Do: tlv(0x5f37, euiccSignature1),
    } satisfies Partial<RspSession>);
    return encodeAuthenticateServerResponse({
      ok: { euiccSigned1, euiccSignature1, euiccCertificate: creds.cert.raw, eumCertificate: creds.eum.raw },
    });
  }

  #prepareDownload(command: Buffer): Buffer {
    const session = this.#session;
    let tid: Buffer | undefined = session?.transactionId;
    const fail = (code: number, why: string): Buffer => {
      this.lastError = `PrepareDownload: ${why}`;
      this.#endSession();
      return tlv(ES10.PrepareDownload, tlv(0xa1, tid && tlv(0x80, tid), integer(code)));
    };
    let req: ReturnType<typeof decodePrepareDownloadRequest>;
    try {
      req = decodePrepareDownloadRequest(command);
    } catch (err) {
      return fail(DOWNLOAD_ERROR.undefinedError, `malformed request: ${(err as Error).message}`);
    }
    tid = req.smdpSigned2.transactionId;
    if (!session || session.stage !== 'authenticated' || !session.creds || !session.euiccSignature1Do) {
      return fail(DOWNLOAD_ERROR.noSessionContext, 'no authenticated session');
    }
    let dpPb: Certificate;
    try {
      dpPb = parseCertificateCached(req.smdpCertificate);
      this.#checkServerCert(dpPb, RSP_ROLE.dpPb);
    } catch (err) {
      return fail(DOWNLOAD_ERROR.invalidCertificate, `CERT.DPpb: ${(err as Error).message}`);
    }
    if (!dpPb.sanRegisteredIds.includes(session.smdpOid!)) {
      return fail(DOWNLOAD_ERROR.invalidCertificate, `CERT.DPpb does not carry the SM-DP+ OID ${session.smdpOid} of CERT.DPauth`);
    }
    const signed = Buffer.concat([req.smdpSigned2.raw, session.euiccSignature1Do]);
    if (!verifyRaw(dpPb.publicKey, signed, req.smdpSignature2)) return fail(DOWNLOAD_ERROR.invalidSignature, 'smdpSignature2 does not verify');
    if (!req.smdpSigned2.transactionId.equals(session.transactionId!)) {
      return fail(DOWNLOAD_ERROR.invalidTransactionId, 'transactionId differs from the session');
    }
    let otKey: OtKey;
    const kept = this.#retainedOtKey;
    if (req.smdpSigned2.bppEuiccOtpk && kept && kept.curve === dpPb.curve && kept.publicPoint.equals(req.smdpSigned2.bppEuiccOtpk)) {
      otKey = kept;
    } else {
      const k = generateOtKeyPair(dpPb.curve);
      otKey = { curve: dpPb.curve, privateKey: k.privateKey, publicPoint: k.publicPoint };
    }
    this.#retainedOtKey = otKey;
    const euiccSigned2 = tlv(0x30, tlv(0x80, session.transactionId!), tlv(0x5f49, otKey.publicPoint), req.hashCc && tlv(0x04, req.hashCc));
    const euiccSignature2 = signRaw(session.creds.key, Buffer.concat([euiccSigned2, req.smdpSignature2Do]));
    Object.assign(session, { stage: 'prepared', dpPb, otKey } satisfies Partial<RspSession>);
    return tlv(ES10.PrepareDownload, tlv(0xa0, euiccSigned2, tlv(0x5f37, euiccSignature2)));
  }

  #cancelSession(cmd: Tlv): Buffer {
    const tag = ES10.CancelSession;
    const err = (code: number, why: string) => {
      this.lastError = `CancelSession: ${why}`;
      return tlv(tag, integer(code, 0x81));
    };
    let tid: Buffer;
    let reason: number;
    try {
      const t = cmd.find(0x80);
      const r = cmd.find(0x81);
      if (!t || !r || t.length < 1 || t.length > 16) return err(CANCEL_ERROR.undefinedError, 'malformed request');
      tid = t.value;
      reason = readUint(r);
    } catch (e) {
      return err(CANCEL_ERROR.undefinedError, `malformed request: ${(e as Error).message}`);
    }
    const s = this.#session;
    if (!s || s.stage === 'challenge' || !s.transactionId?.equals(tid) || !s.creds || !s.smdpOid) {
      return err(CANCEL_ERROR.invalidTransactionId, 'no session with this transactionId');
    }
    const signed = tlv(0x30, tlv(0x80, tid), tlv(0x81, encodeOidValue(s.smdpOid)), integer(reason, 0x82));
    const sig = signRaw(s.creds.key, signed);
    this.#endSession();
    this.#retainedOtKey = undefined;
    return tlv(tag, tlv(0xa0, signed, tlv(0x5f37, sig)));
  }

  // ------------------------------------------------------------------------------------------
  // LoadBoundProfilePackage

  /** A BF36 command: either a whole BPP (all pieces at once) or lpac's first piece. */
  #bppCommand(command: Buffer): Buffer {
    const h = readHeader(command);
    if (h && h.headerLength + h.length === command.length) {
      let pieces: Buffer[];
      try {
        pieces = splitBppForLoading(command);
      } catch (err) {
        return this.#startLoad(command, `malformed BoundProfilePackage: ${(err as Error).message}`);
      }
      for (const p of pieces) {
        const r = p === pieces[0] ? this.#startLoad(p) : this.#bppPiece(p);
        if (r.length) return r;
      }
      return this.#lastPir ?? this.#reject('BoundProfilePackage ended before its last segment');
    }
    return this.#startLoad(command);
  }

  #startLoad(piece: Buffer, malformedWhy?: string): Buffer {
    this.#load = undefined;
    this.#lastPir = undefined;
    const s = this.#session;
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
      this.#endSession();
      const pir = this.#pirFor({ euiccChallenge: Buffer.alloc(0), stage: 'challenge', transactionId: tid }, BPP_COMMAND.initialiseSecureChannel, BPP_ERROR.invalidTransactionId, 'no prepared download session');
      this.#lastPir = pir;
      return pir;
    }
    const load: BppLoad = {
      session: s as BppLoad['session'],
      phase: 'A0',
      remaining88: 0,
      remaining86: 0,
      metadataParts: [],
      uppParts: [],
    };
    this.#load = load;
    try {
      if (malformedWhy) throw new BppFailure(BPP_COMMAND.initialiseSecureChannel, BPP_ERROR.incorrectInputValues, malformedWhy);
      const h = readHeader(piece);
      if (!h) throw new BppFailure(BPP_COMMAND.initialiseSecureChannel, BPP_ERROR.incorrectInputValues, 'BF36 header unreadable');
      this.#initialiseSecureChannel(load, piece.subarray(h.headerLength));
      return Buffer.alloc(0);
    } catch (err) {
      return this.#abort(load, err);
    }
  }

  #initialiseSecureChannel(load: BppLoad, rest: Buffer): void {
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
      keys = deriveSessionKeys(ecka(s.otKey.privateKey, isc.smdpOtpk), isc.hostId, this.#state.eid);
    } catch (err) {
      throw F(BPP_ERROR.incorrectInputValues, `key agreement: ${(err as Error).message}`);
    }
    load.reader = new Scp03tReader(keys);
  }

  /** Opens one protected segment, mapping SCP03t failures to PIR error reasons of `step`. */
  #open(load: BppLoad, step: number, segment: Buffer): Buffer {
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

  #bppPiece(piece: Buffer): Buffer {
    const load = this.#load;
    if (!load) return this.#lastPir ?? this.#reject(`BPP piece ${piece[0]?.toString(16)} outside a LoadBoundProfilePackage`);
    try {
      return this.#piece(load, piece);
    } catch (err) {
      return this.#abort(load, err);
    }
  }

  #piece(load: BppLoad, piece: Buffer): Buffer {
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
        if (load.phase !== 'A0') throw structure('firstSequenceOf87 out of order');
        if (!whole) throw structure('firstSequenceOf87 must be sent whole');
        const segs = children();
        if (segs.length !== 1 || segs[0]!.tag !== 0x87) throw structure('firstSequenceOf87 must hold one 87 segment');
        const plain = this.#open(load, step, segs[0]!.raw);
        try {
          const c = decode(plain);
          if (c.tag !== 0xbf24) throw new Error(`expected ConfigureISDPRequest BF24, found ${c.tag.toString(16)}`);
        } catch (err) {
          throw new BppFailure(step, BPP_ERROR.incorrectInputValues, `ConfigureISDP: ${(err as Error).message}`);
        }
        load.phase = 'A1';
        return Buffer.alloc(0);
      }
      case 0xa1: {
        if (load.phase !== 'A1') throw structure('sequenceOf88 out of order');
        load.phase = '88';
        load.remaining88 = h.length;
        if (h.length === 0) return this.#metadataDone(load);
        if (whole) {
          let r: Buffer = Buffer.alloc(0);
          for (const c of children()) r = this.#piece(load, c.raw);
          return r;
        }
        return Buffer.alloc(0);
      }
      case 0x88: {
        if (load.phase !== '88' || !whole) throw structure('88 segment out of order');
        load.remaining88 -= piece.length;
        if (load.remaining88 < 0) throw structure('88 segments exceed the sequenceOf88 length');
        load.metadataParts.push(Buffer.from(this.#open(load, step, piece)));
        return load.remaining88 === 0 ? this.#metadataDone(load) : Buffer.alloc(0);
      }
      case 0xa2: {
        if (load.phase !== 'afterMetadata') throw structure('secondSequenceOf87 out of order');
        if (!whole) throw structure('secondSequenceOf87 must be sent whole');
        const segs = children();
        if (segs.length !== 1 || segs[0]!.tag !== 0x87) throw structure('secondSequenceOf87 must hold one 87 segment');
        const plain = this.#open(load, step, segs[0]!.raw);
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
      case 0xa3: {
        if (load.phase !== 'afterMetadata') throw structure('sequenceOf86 out of order');
        load.phase = '86';
        load.remaining86 = h.length;
        if (h.length === 0) return this.#install(load);
        if (whole) {
          let r: Buffer = Buffer.alloc(0);
          for (const c of children()) r = this.#piece(load, c.raw);
          return r;
        }
        return Buffer.alloc(0);
      }
      case 0x86: {
        if (load.phase !== '86' || !whole) throw structure('86 segment out of order');
        load.remaining86 -= piece.length;
        if (load.remaining86 < 0) throw structure('86 segments exceed the sequenceOf86 length');
        load.uppParts.push(Buffer.from(this.#open(load, step, piece)));
        return load.remaining86 === 0 ? this.#install(load) : Buffer.alloc(0);
      }
      default:
        throw structure(`unexpected BPP element ${h.tag.toString(16)}`);
    }
  }

  /** The StoreMetadataRequest is complete: parse it and check the ICCID is new. */
  #metadataDone(load: BppLoad): Buffer {
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
    if (es10c.findProfile(this.#state, { iccidEf: md.iccid })) {
      throw new BppFailure(step, BPP_ERROR.iccidAlreadyExistsOnEuicc, `ICCID ${iccidFromEf(md.iccid)} is already on the card`);
    }
    load.phase = 'afterMetadata';
    return Buffer.alloc(0);
  }

  /** All 86 segments are in: decode the profile package, install, answer the success PIR. */
  #install(load: BppLoad): Buffer {
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
    const idx = this.#state.nextIsdpIndex++;
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
    this.#state.profiles.push(record);
    const pir = this.#pirFor(s, undefined, undefined, undefined, md.iccid, aid);
    this.#retainedOtKey = undefined;
    this.#endSession();
    this.#lastPir = pir;
    this.#changed();
    return pir;
  }

  /** Ends a load with an errorResult PIR (queued as a notification). */
  #abort(load: BppLoad, err: unknown): Buffer {
    if (!(err instanceof BppFailure)) {
      // Not a protocol failure: a bug. Still end the load with a PIR rather than hang the LPA.
      err = new BppFailure(BPP_COMMAND.loadProfileElements, BPP_ERROR.unknownError, `internal error: ${(err as Error)?.stack ?? String(err)}`);
    }
    const f = err as BppFailure;
    const pir = this.#pirFor(load.session, f.bppCommandId, f.errorReason, f.message, load.metadata?.iccid);
    this.#endSession();
    this.#lastPir = pir;
    this.#changed();
    return pir;
  }

  /**
   * A signed ProfileInstallationResult. Success when `bppCommandId` is undefined. Queued as a pending
   * notification when the session has a serverAddress to send it to.
   */
  #pirFor(s: RspSession | undefined, bppCommandId: number | undefined, errorReason: number | undefined, why: string | undefined, iccidEf?: Buffer, aid?: Buffer): Buffer {
    if (why) this.lastError = `LoadBoundProfilePackage: ${why}`;
    const creds = s?.creds ?? this.#creds[0]!;
    const address = s?.serverAddress ?? '';
    const queue = address !== '';
    const seq = queue ? this.#state.nextSeqNumber++ : 0;
    const metadata = this.#notificationMetadata(seq, NOTIFICATION_EVENT.install, address, iccidEf);
    const finalResult =
      bppCommandId === undefined
        ? tlv(0xa0, tlv(0x4f, aid!), tlv(0x04, SIMA_RESPONSE_OK))
        : tlv(0xa1, integer(bppCommandId, 0x80), integer(errorReason!, 0x81));
    const data = tlv(
      0xbf27,
      tlv(0x80, s?.transactionId ?? Buffer.from([0])),
      metadata,
      s?.smdpOid ? tlv(0x06, encodeOidValue(s.smdpOid)) : undefined,
      tlv(0xa2, finalResult),
    );
    const pir = tlv(0xbf37, data, tlv(0x5f37, signRaw(creds.key, data)));
    if (queue) {
      this.#state.notifications.push({
        seqNumber: seq,
        operation: NOTIFICATION_EVENT.install,
        address,
        ...(iccidEf ? { iccid: iccidFromEf(iccidEf) } : {}),
        metadata: hexU(metadata),
        pending: hexU(pir),
        createdAt: new Date().toISOString(),
      });
    }
    return pir;
  }

  // ------------------------------------------------------------------------------------------
  // Notifications

  #notificationMetadata(seq: number, operation: number, address: string, iccidEf?: Buffer): Buffer {
    return tlv(0xbf2f, integer(seq, 0x80), namedBits([operation], 0x81), utf8(address, 0x0c), iccidEf && tlv(0x5a, iccidEf));
  }

  #credsForProfile(p: ProfileRecord): EuiccCredentials {
    return (p.ciPkId && this.#creds.find((c) => hexU(c.eum.aki!) === p.ciPkId)) || this.#creds[0]!;
  }

  /** One signed OtherSignedNotification per notificationConfigurationInfo entry listing `operation`. */
  #notifyProfileEvent(p: ProfileRecord, operation: number): void {
    const creds = this.#credsForProfile(p);
    for (const cfg of p.notificationConfigurationInfo) {
      if (!cfg.operations.includes(operation)) continue;
      const seq = this.#state.nextSeqNumber++;
      const metadata = this.#notificationMetadata(seq, operation, cfg.address, Buffer.from(p.iccidEf, 'hex'));
      const pending = tlv(0x30, metadata, tlv(0x5f37, signRaw(creds.key, metadata)), creds.cert.raw, creds.eum.raw);
      this.#state.notifications.push({
        seqNumber: seq,
        operation,
        address: cfg.address,
        iccid: p.iccid,
        metadata: hexU(metadata),
        pending: hexU(pending),
        createdAt: new Date().toISOString(),
      });
    }
  }

  /** ListNotification (`BF28 { 81 operations? }`) → `BF28 { A0 { BF2F … } }` | `BF28 { 81 127 }`. */
  #listNotification(cmd: Tlv): Buffer {
    const tag = ES10.ListNotification;
    let ops: number[] | undefined;
    try {
      const f = cmd.find(0x81);
      if (f) ops = readNamedBits(f);
    } catch (err) {
      this.lastError = `ListNotification: ${(err as Error).message}`;
      return tlv(tag, integer(127, 0x81));
    }
    const list = this.#state.notifications.filter((n) => !ops || ops.includes(n.operation));
    return tlv(tag, tlv(0xa0, ...list.map((n) => Buffer.from(n.metadata, 'hex'))));
  }

  /**
   * RetrieveNotificationsList (`BF2B { A0 { 80 seqNumber | 81 operations } }`) →
   * `BF2B { A0 { PendingNotification … } }` | `BF2B { 81 noResultAvailable(1) | undefinedError(127) }`.
   */
  #retrieveNotifications(cmd: Tlv): Buffer {
    const tag = ES10.RetrieveNotificationsList;
    let list = this.#state.notifications;
    try {
      const sc = cmd.find(0xa0);
      if (sc) {
        const c = sc.children()[0];
        if (c?.tag === 0x80) {
          const seq = readUint(c);
          list = list.filter((n) => n.seqNumber === seq);
        } else if (c?.tag === 0x81) {
          const ops = readNamedBits(c);
          list = list.filter((n) => ops.includes(n.operation));
        } else {
          throw new Error('searchCriteria must be 80 seqNumber or 81 profileManagementOperation');
        }
        if (!list.length) return tlv(tag, integer(1, 0x81));
      }
    } catch (err) {
      this.lastError = `RetrieveNotificationsList: ${(err as Error).message}`;
      return tlv(tag, integer(127, 0x81));
    }
    return tlv(tag, tlv(0xa0, ...list.map((n) => Buffer.from(n.pending, 'hex'))));
  }

  /** RemoveNotificationFromList (`BF30 { 80 seqNumber }`) → `BF30 { 80 ok(0) | nothingToDelete(1) | undefinedError(127) }`. */
  #removeNotification(cmd: Tlv): Buffer {
    const tag = ES10.RemoveNotificationFromList;
    let seq: number;
    try {
      const t = cmd.find(0x80);
      if (!t) throw new Error('no seqNumber');
      seq = readUint(t);
    } catch (err) {
      this.lastError = `RemoveNotificationFromList: ${(err as Error).message}`;
      return tlv(tag, integer(127, 0x80));
    }
    const before = this.#state.notifications.length;
    this.#state.notifications = this.#state.notifications.filter((n) => n.seqNumber !== seq);
    if (this.#state.notifications.length === before) return tlv(tag, integer(1, 0x80));
    this.#changed();
    return tlv(tag, integer(0, 0x80));
  }

  #changed(): void {
    if (this.#opts.persistTo) saveCardState(this.#opts.persistTo, this.#state);
    this.#opts.onChange?.(this.#state);
  }
}

