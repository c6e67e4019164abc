/**
 * A Local Profile Assistant (LPA, SGP.22 §3.1 / §5.6 ES9+ client, §5.7 ES10 caller) that drives an
 * `Es10Card` the way lpac does: the same ES10 commands in the same order, the same ES9+ JSON and
 * HTTP headers, the BPP loaded in lpac's pieces, and a session cancelled on both sides whenever the
 * download stops after initiateAuthentication.
 *
 * It builds the ES10b requests from the bytes the SM-DP+ sent, unchanged (serverSigned1,
 * smdpSigned2, signatures and certificates are passed through as received), and reads the eUICC's
 * answers with the shared TLV codec only — an independent check of the server and card encoders.
 */
import { performance } from 'node:perf_hooks';
import { confirmationCodeDigest, hashCc } from '../crypto/hashcc.js';
import { decode, tlv, type Tlv } from '../der/tlv.js';
import { integer, readUint } from '../der/types.js';
import type { HttpClient, HttpResponse } from '../http/client.js';
import { parseActivationCode } from '../rsp/activation-code.js';
import { splitBppForLoading } from '../rsp/bpp.js';
import { iccidFromEf, iccidToEf } from '../rsp/identifiers.js';
import { ES11_PREFIX, ES9_PREFIX } from '../rsp/es9plus.js';
import { NOTIFICATION_OPERATIONS, type NotificationOperationName } from '../rsp/notification.js';
import { profileResultName, type Es10Card, type ProfileOperation } from './es10.js';

/** Headers lpac sends on every ES9+ request (interop captures). */
export const LPA_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json',
  'x-admin-protocol': 'gsma/rsp/v2.2.2',
  'user-agent': 'gsma-rsp-lpad',
};

export { CANCEL_REASON } from '../rsp/cancel.js';
import { CANCEL_REASON } from '../rsp/cancel.js';

/** lpac's default TAC (DeviceInfo.tac, 4 bytes). */
export const DEFAULT_TAC = Buffer.from('35290611', 'hex');

export type NotificationOperation = NotificationOperationName | 'unknown';

export type LpaErrorCode =
  | 'activationCode' // the AC cannot be used
  | 'confirmationCodeRequired' // the AC or the SM-DP+ asks for a CC and none was given
  | 'http' // transport error or non-2xx answer
  | 'badResponse' // 2xx but not a usable ES9+ answer (JSON, header, keys, base64)
  | 'es9Failed' // header.functionExecutionStatus says the function failed
  | 'card' // the eUICC answered something unusable, or an ES10 function returned an error code
  | 'authenticateServer' // AuthenticateServerResponse error branch
  | 'prepareDownload' // PrepareDownloadResponse error branch
  | 'metadataMismatch' // the BPP's StoreMetadataRequest differs from profileMetadata
  | 'cancelled' // the metadata callback refused the profile
  | 'installFailed'; // the PIR carries an errorResult

export interface CancelOutcome {
  reason: number;
  /** The eUICC signed a CancelSessionResponse. */
  cardOk: boolean;
  /** ES9+ cancelSession status (`Executed-Success`, `Failed 8.10.1/3.9`, `HTTP 500`, …) when it was called. */
  es9?: string;
}

export class LpaError extends Error {
  override name = 'LpaError';
  /** ES9+ or ES10 function that failed (`authenticateClient`, `AuthenticateServer`, …). */
  function?: string;
  subjectCode?: string;
  reasonCode?: string;
  /** HTTP status, for 'http' errors. */
  httpStatus?: number;
  /** ES10 error code (authenticateErrorCode, downloadErrorCode, result codes). */
  cardErrorCode?: number;
  bppCommandId?: number;
  errorReason?: number;
  transactionId?: string;
  /** How the session was cancelled after the failure, when it was. */
  cancel?: CancelOutcome;
  constructor(
    readonly code: LpaErrorCode,
    message: string,
    details: Partial<Pick<LpaError, 'function' | 'subjectCode' | 'reasonCode' | 'httpStatus' | 'cardErrorCode' | 'bppCommandId' | 'errorReason'>> = {},
  ) {
    super(message);
    Object.assign(this, details);
  }
}

export interface LpaOptions {
  /**
   * Client for the SM-DP+ of the activation code (and, by default, every notification address).
   * May be omitted when `clientFor` is given (it is then asked for the AC's address).
   */
  http?: HttpClient;
  /** Sent as `smdpAddress` in initiateAuthentication instead of the activation code's address. */
  smdpAddress?: string;
  /**
   * Client for a notification address (`host[:port]`). Default: `http` for every address, which is
   * right only when all notifications go to that one SM-DP+.
   */
  clientFor?: (address: string) => HttpClient | undefined;
  /** DeviceInfo.tac (4 bytes; default lpac's 35290611). */
  tac?: Buffer;
  /** Value of DeviceInfo.deviceCapabilities (default empty, as lpac sends). */
  deviceCapabilities?: Buffer;
  /** X-Admin-Protocol to send (default lpac's gsma/rsp/v2.2.2). */
  adminProtocol?: string;
  /** Progress messages (function names, like lpac's progress output). */
  progress?: (step: string, detail?: string) => void;
}

export interface DownloadOptions {
  confirmationCode?: string;
  /** DeviceInfo.imei (8 bytes, TBCD). */
  imei?: Buffer;
  /** DeviceInfo.tac for this download (4 bytes). */
  tac?: Buffer;
  /** Post the PIR with handleNotification and remove it from the eUICC (default true). */
  sendPir?: boolean;
  /** Compare the BPP's StoreMetadataRequest with profileMetadata and cancel on a difference (default true). */
  checkMetadata?: boolean;
  /** Profile preview, like `lpac profile download -p`: return false to refuse (endUserRejection). */
  onMetadata?: (metadata: ProfileMetadata) => boolean | Promise<boolean>;
  /** Reason used when the session has to be cancelled after an error (default endUserRejection, like lpac). */
  cancelReason?: number;
}

/** An event entry from an SM-DS (ES11): download it from rspServerAddress with eventId as the MatchingID. */
export interface SmdsEvent {
  eventId: string;
  rspServerAddress: string;
}

export interface ProfileMetadata {
  iccid: string;
  serviceProviderName?: string;
  profileName?: string;
  profileClass?: 'test' | 'provisioning' | 'operational';
  /** The StoreMetadataRequest exactly as received (base64-decoded profileMetadata). */
  raw: Buffer;
}

export interface DownloadTimings {
  initiateAuthentication: number;
  authenticateClient: number;
  getBoundProfilePackage: number;
  /** The PIR's handleNotification (0 when not sent). */
  handleNotification: number;
  /** Time spent in the eUICC (all ES10 commands). */
  es10: number;
  total: number;
}

export interface DownloadResult {
  iccid: string;
  profileName?: string;
  serviceProviderName?: string;
  profileClass?: ProfileMetadata['profileClass'];
  /** ISD-P AID from the successful PIR (hex). */
  isdpAid: string;
  transactionId: string;
  /** seqNumber of the install notification. */
  seqNumber: number;
  notificationAddress: string;
  /** The PIR was posted (2xx) and removed from the eUICC. */
  notificationSent: boolean;
  notificationError?: string;
  timings: DownloadTimings;
}

export interface NotificationInfo {
  seqNumber: number;
  operation: NotificationOperation;
  notificationAddress: string;
  iccid?: string;
}

export interface NotificationOutcome extends NotificationInfo {
  sent: boolean;
  httpStatus?: number;
  removed: boolean;
  error?: string;
  ms: number;
}

export interface ProfileInfo {
  iccid: string;
  isdpAid?: string;
  state: 'enabled' | 'disabled' | 'unknown';
  nickname?: string;
  serviceProviderName?: string;
  profileName?: string;
  profileClass?: ProfileMetadata['profileClass'];
}

const PROFILE_CLASS = ['test', 'provisioning', 'operational'] as const;

/** What every step of one download uses. */
interface DownloadStep {
  client: HttpClient;
  address: string;
  /** Where the functions are posted: ES9_PREFIX, or ES11_PREFIX for discovery at an SM-DS. */
  prefix?: string;
  progress: (step: string, detail?: string) => void;
  opts: DownloadOptions;
  timings: Record<string, number>;
}

/** The authenticateClient answer with its profileMetadata read. */
interface AuthenticatedClient {
  answer: Record<string, string>;
  metadataRaw: Buffer;
  metadata: ProfileMetadata;
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

function fromB64(value: string, field: string): Buffer {
  const s = value.replace(/\s+/g, '');
  if (!B64_RE.test(s) || s.length % 4 !== 0) throw new LpaError('badResponse', `${field} is not base64`);
  return Buffer.from(s, 'base64');
}

function b64(b: Buffer): string {
  return b.toString('base64');
}

function parseTlv(buf: Buffer, tag: number, what: string): Tlv {
  try {
    const t = decode(buf);
    if (t.tag !== tag) throw new Error(`tag ${t.tag.toString(16).toUpperCase()}`);
    return t;
  } catch (err) {
    throw new LpaError('card', `${what}: malformed answer (${(err as Error).message})`, { function: what });
  }
}

function firstChild(t: Tlv, what: string): Tlv {
  const c = t.children()[0];
  if (!c) throw new LpaError('card', `${what}: empty answer`, { function: what });
  return c;
}

/** An ES10b answer's ok branch (A0) is there, or an LpaError with the error code (02) of its error branch. */
function requireOk(resp: Tlv, fn: 'AuthenticateServer' | 'PrepareDownload', code: 'authenticateServer' | 'prepareDownload', codeName: string): void {
  const branch = firstChild(resp, fn);
  if (branch.tag === 0xa0) return;
  const c = branch.find(0x02);
  const n = c ? readUint(c) : undefined;
  throw new LpaError(code, `${fn} failed: ${codeName} ${n ?? '?'}`, { function: fn, ...(n !== undefined ? { cardErrorCode: n } : {}) });
}

/** NotificationMetadata (BF2F) fields. */
function readNotificationMetadata(t: Tlv): NotificationInfo {
  const ops = t.get(0x81).value;
  // BIT STRING with exactly one bit set: its position is the operation
  let op = -1;
  for (let i = 1; i < ops.length && op < 0; i++) {
    for (let j = 0; j < 8; j++) {
      if (ops[i]! & (0x80 >> j)) {
        op = (i - 1) * 8 + j;
        break;
      }
    }
  }
  const iccid = t.find(0x5a);
  return {
    seqNumber: readUint(t.get(0x80)),
    operation: NOTIFICATION_OPERATIONS[op] ?? 'unknown',
    notificationAddress: t.get(0x0c).value.toString('utf8'),
    ...(iccid ? { iccid: iccidFromEf(iccid.value) } : {}),
  };
}

function readMetadata(raw: Buffer): ProfileMetadata {
  let t: Tlv;
  try {
    t = decode(raw);
    if (t.tag !== 0xbf25) throw new Error(`tag ${t.tag.toString(16)}`);
    const iccid = iccidFromEf(t.get(0x5a).value);
    const spn = t.find(0x91);
    const name = t.find(0x92);
    const cls = t.find(0x95);
    return {
      iccid,
      ...(spn ? { serviceProviderName: spn.value.toString('utf8') } : {}),
      ...(name ? { profileName: name.value.toString('utf8') } : {}),
      ...(cls ? { profileClass: PROFILE_CLASS[readUint(cls)] } : {}),
      raw,
    };
  } catch (err) {
    if (err instanceof LpaError) throw err;
    throw new LpaError('badResponse', `profileMetadata is not a StoreMetadataRequest: ${(err as Error).message}`);
  }
}

/** Plaintext StoreMetadataRequest carried MAC-only in the BPP's sequenceOf88 (each 88 value minus its 8-byte MAC). */
export function metadataFromBpp(bpp: Buffer): Buffer {
  const root = decode(bpp);
  if (root.tag !== 0xbf36) throw new Error('not a BoundProfilePackage');
  const seq88 = root.get(0xa1);
  return Buffer.concat(seq88.all(0x88).map((s) => s.value.subarray(0, Math.max(0, s.length - 8))));
}


export class Lpa {
  readonly #card: Es10Card;
  readonly #opts: LpaOptions;
  #es10ms = 0;

  constructor(card: Es10Card, opts: LpaOptions) {
    this.#card = card;
    this.#opts = opts;
  }

  async #es10(command: Buffer): Promise<Buffer> {
    const t0 = performance.now();
    try {
      return await this.#card.transmit(command);
    } catch (err) {
      if (err instanceof LpaError) throw err;
      const tag = command.subarray(0, 2).toString('hex').toUpperCase();
      throw new LpaError('card', `ES10 command ${tag} failed: ${(err as Error).message}`, { function: tag });
    } finally {
      this.#es10ms += performance.now() - t0;
    }
  }

  #clientFor(address: string): HttpClient {
    const c = this.#opts.clientFor?.(address) ?? this.#opts.http;
    if (!c) throw new LpaError('http', `no HTTP client for ${address}`);
    return c;
  }

  /**
   * One ES9+ call, checked as lpac checks it: 2xx, JSON with header.functionExecutionStatus, and
   * every expected key present as a string. A non-success status becomes an 'es9Failed' LpaError.
   */
  async #es9(
    client: HttpClient, fn: string, body: Record<string, string>, keys: string[], timings?: Record<string, number>,
    arrays?: { keys: string[]; out: Record<string, unknown[]> }, prefix = ES9_PREFIX,
  ): Promise<Record<string, string>> {
    const headers = { ...LPA_HEADERS, ...(this.#opts.adminProtocol ? { 'x-admin-protocol': this.#opts.adminProtocol } : {}) };
    const t0 = performance.now();
    let res: HttpResponse;
    try {
      res = await client.post(`${prefix}/${fn}`, body, headers);
    } catch (err) {
      throw new LpaError('http', `${fn}: ${(err as Error).message}`, { function: fn });
    } finally {
      if (timings) timings[fn] = (timings[fn] ?? 0) + (performance.now() - t0);
    }
    if (res.status < 200 || res.status > 299) throw new LpaError('http', `${fn}: HTTP status ${res.status}`, { function: fn, httpStatus: res.status });
    if (fn === 'handleNotification') return {};
    let json: unknown = res.json;
    if (json === undefined) {
      try {
        json = JSON.parse(res.text);
      } catch {
        throw new LpaError('badResponse', `${fn}: answer is not JSON`, { function: fn, httpStatus: res.status });
      }
    }
    const o = json as { header?: { functionExecutionStatus?: { status?: string; statusCodeData?: Record<string, string> } } } & Record<string, unknown>;
    const fes = o?.header?.functionExecutionStatus;
    if (!fes || typeof fes !== 'object') throw new LpaError('badResponse', `${fn}: no header.functionExecutionStatus`, { function: fn });
    if (fes.status !== 'Executed-Success' && fes.status !== 'Executed-WithWarning') {
      const scd = fes.statusCodeData ?? {};
      const sc = scd.subjectCode;
      const rc = scd.reasonCode;
      throw new LpaError('es9Failed', `${fn} ${fes.status ?? 'without status'}${sc ? ` ${sc}/${rc}` : ''}${scd.message ? `: ${scd.message}` : ''}`, {
        function: fn,
        ...(sc ? { subjectCode: sc } : {}),
        ...(rc ? { reasonCode: rc } : {}),
      });
    }
    const out: Record<string, string> = {};
    for (const k of keys) {
      const v = o[k];
      if (typeof v !== 'string') throw new LpaError('badResponse', `${fn}: answer lacks ${k}`, { function: fn });
      out[k] = v;
    }
    for (const k of arrays?.keys ?? []) {
      const v = o[k];
      if (!Array.isArray(v)) throw new LpaError('badResponse', `${fn}: answer lacks the array ${k}`, { function: fn });
      arrays!.out[k] = v;
    }
    return out;
  }

  /**
   * Downloads and installs the profile of an activation code (SGP.22 §3.1.3), as lpac's
   * `profile download -a` does, then posts the PIR and removes it from the eUICC. One method per
   * step below; after initiateAuthentication any failure cancels the session on both sides.
   */
  async download(activationCode: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
    const progress = this.#opts.progress ?? (() => {});
    const tStart = performance.now();
    this.#es10ms = 0;
    const timings: Record<string, number> = { initiateAuthentication: 0, authenticateClient: 0, getBoundProfilePackage: 0, handleNotification: 0 };
    const { address, matchingId } = this.#target(activationCode, opts);
    const client = this.#opts.http ?? this.#clientFor(address);
    const d: DownloadStep = { client, address, progress, opts, timings };

    const { challenge, info1 } = await this.#challengeAndInfo(d);
    const ia = await this.#initiateAuthentication(d, challenge, info1);
    const tid = ia.transactionId!;

    let metadata: ProfileMetadata;
    let pirRaw: Buffer;
    try {
      const asResp = await this.#authenticateServer(d, ia, matchingId);
      const ac = await this.#authenticateClient(d, tid, asResp);
      metadata = ac.metadata;
      const pdResp = await this.#prepareDownload(d, ac, Buffer.from(tid, 'hex'));
      const pieces = await this.#getBoundProfilePackage(d, tid, pdResp, ac.metadataRaw);
      pirRaw = await this.#loadBoundProfilePackage(d, pieces);
    } catch (err) {
      if (!(err instanceof LpaError)) throw err;
      const reason =
        err.code === 'metadataMismatch'
          ? CANCEL_REASON.metadataMismatch
          : err.function === 'LoadBoundProfilePackage'
            ? CANCEL_REASON.loadBppExecutionError
            : (opts.cancelReason ?? CANCEL_REASON.endUserRejection);
      progress('es10b_cancel_session', address);
      err.cancel = await this.cancelSession(tid, reason, client);
      err.transactionId = tid;
      throw err;
    }
    // The session has ended on the eUICC (it answered with a PIR): no cancel from here on.
    return this.#afterInstall(pirRaw, metadata, tid, opts, timings, tStart);
  }

  /**
   * Asks an SM-DS for the events of this eUICC (ES11, SGP.22 §3.1.2 and §5.9 of v2.x;
   * docs/smds.md#es11): the common mutual authentication at `smdsAddress` with no MatchingID, then
   * authenticateClient answers eventEntries. On the ES11 paths, or with `es9Paths` on the ES9+ paths
   * as lpac's `profile discovery` posts them (those reach an SM-DS only at an address of its own).
   */
  async discover(smdsAddress: string, opts: Pick<DownloadOptions, 'tac' | 'imei'> & { es9Paths?: boolean } = {}): Promise<SmdsEvent[]> {
    const progress = this.#opts.progress ?? (() => {});
    const client = this.#opts.clientFor?.(smdsAddress) ?? this.#opts.http;
    if (!client) throw new LpaError('http', `no HTTP client for ${smdsAddress}`);
    const prefix = opts.es9Paths ? ES9_PREFIX : ES11_PREFIX;
    const d: DownloadStep = { client, address: smdsAddress, prefix, progress, opts, timings: {} };
    const { challenge, info1 } = await this.#challengeAndInfo(d);
    const ia = await this.#initiateAuthentication(d, challenge, info1);
    const asResp = await this.#authenticateServer(d, ia, undefined);
    progress('es11_authenticate_client', smdsAddress);
    const arrays = { keys: ['eventEntries'], out: {} as Record<string, unknown[]> };
    await this.#es9(client, 'authenticateClient', { transactionId: ia.transactionId!, authenticateServerResponse: b64(asResp.raw) }, [], undefined, arrays, prefix);
    return arrays.out.eventEntries!.map((e) => {
      const { eventId, rspServerAddress } = (e ?? {}) as Record<string, unknown>;
      if (typeof eventId !== 'string' || typeof rspServerAddress !== 'string') {
        throw new LpaError('badResponse', 'authenticateClient: an event entry lacks eventId or rspServerAddress', { function: 'authenticateClient' });
      }
      return { eventId, rspServerAddress };
    });
  }

  /** The SM-DP+ address and MatchingID of the activation code (or the default SM-DP+ with an empty one). */
  #target(activationCode: string, opts: DownloadOptions): { address: string; matchingId?: string } {
    if (activationCode === '' && this.#opts.smdpAddress) return { address: this.#opts.smdpAddress }; // default SM-DP+ case: no MatchingID
    let ac;
    try {
      ac = parseActivationCode(activationCode);
    } catch (err) {
      throw new LpaError('activationCode', (err as Error).message);
    }
    if (ac.confirmationCodeRequired && !opts.confirmationCode) {
      throw new LpaError('confirmationCodeRequired', 'the activation code requires a confirmation code');
    }
    const matchingId = ac.matchingId || undefined;
    return { address: this.#opts.smdpAddress ?? ac.smdpAddress, ...(matchingId !== undefined ? { matchingId } : {}) };
  }

  /** ES10b.GetEUICCChallenge and GetEUICCInfo1 (lpac: challenge first). */
  async #challengeAndInfo(d: DownloadStep): Promise<{ challenge: Buffer; info1: Buffer }> {
    d.progress('es10b_get_euicc_challenge_and_info', d.address);
    const ch = parseTlv(await this.#es10(tlv(0xbf2e)), 0xbf2e, 'GetEuiccChallenge');
    const challenge = ch.find(0x80)?.value;
    if (!challenge || challenge.length !== 16) throw new LpaError('card', 'GetEuiccChallenge: no 16-byte euiccChallenge', { function: 'GetEuiccChallenge' });
    const info1 = parseTlv(await this.#es10(tlv(0xbf20)), 0xbf20, 'GetEuiccInfo1').raw;
    return { challenge, info1 };
  }

  /** ES9+.InitiateAuthentication (SGP.22 §5.6.1). */
  #initiateAuthentication(d: DownloadStep, challenge: Buffer, info1: Buffer): Promise<Record<string, string>> {
    d.progress('es9p_initiate_authentication', d.address);
    return this.#es9(
      d.client,
      'initiateAuthentication',
      { smdpAddress: d.address, euiccChallenge: b64(challenge), euiccInfo1: b64(info1) },
      ['transactionId', 'serverSigned1', 'serverSignature1', 'euiccCiPKIdToBeUsed', 'serverCertificate'],
      d.timings,
      undefined,
      d.prefix,
    );
  }

  /** ES10b.AuthenticateServer with the server's bytes as received and ctxParams1 (SGP.22 §5.7.13). */
  async #authenticateServer(d: DownloadStep, ia: Record<string, string>, matchingId: string | undefined): Promise<Tlv> {
    const ctxParams1 = tlv(
      0xa0,
      matchingId !== undefined && tlv(0x80, Buffer.from(matchingId, 'utf8')),
      tlv(0xa1, tlv(0x80, d.opts.tac ?? this.#opts.tac ?? DEFAULT_TAC), tlv(0xa1, this.#opts.deviceCapabilities ?? Buffer.alloc(0)), d.opts.imei && tlv(0x82, d.opts.imei)),
    );
    const asReq = tlv(
      0xbf38,
      fromB64(ia.serverSigned1!, 'serverSigned1'),
      fromB64(ia.serverSignature1!, 'serverSignature1'),
      fromB64(ia.euiccCiPKIdToBeUsed!, 'euiccCiPKIdToBeUsed'),
      fromB64(ia.serverCertificate!, 'serverCertificate'),
      ctxParams1,
    );
    d.progress('es10b_authenticate_server', d.address);
    const asResp = parseTlv(await this.#es10(asReq), 0xbf38, 'AuthenticateServer');
    requireOk(asResp, 'AuthenticateServer', 'authenticateServer', 'authenticateErrorCode');
    return asResp;
  }

  /** ES9+.AuthenticateClient (SGP.22 §5.6.3), then the profile preview (onMetadata). */
  async #authenticateClient(d: DownloadStep, tid: string, asResp: Tlv): Promise<AuthenticatedClient> {
    d.progress('es9p_authenticate_client', d.address);
    const ac = await this.#es9(
      d.client,
      'authenticateClient',
      { transactionId: tid, authenticateServerResponse: b64(asResp.raw) },
      ['profileMetadata', 'smdpSigned2', 'smdpSignature2', 'smdpCertificate'],
      d.timings,
    );
    const metadataRaw = fromB64(ac.profileMetadata!, 'profileMetadata');
    const metadata = readMetadata(metadataRaw);
    d.progress('es8p_metadata_parse', metadata.iccid);
    if (d.opts.onMetadata && !(await d.opts.onMetadata(metadata))) {
      throw new LpaError('cancelled', 'profile refused by the user');
    }
    return { answer: ac, metadataRaw, metadata };
  }

  /** ES10b.PrepareDownload (SGP.22 §5.7.5), hashCc = SHA-256(SHA-256(CC) || transactionId) when the SM-DP+ asks for a CC. */
  async #prepareDownload(d: DownloadStep, ac: AuthenticatedClient, tidBytes: Buffer): Promise<Tlv> {
    const smdpSigned2 = fromB64(ac.answer.smdpSigned2!, 'smdpSigned2');
    let ccRequired = false;
    let signedTid: Buffer = tidBytes;
    try {
      const s2 = decode(smdpSigned2);
      signedTid = s2.get(0x80).value;
      const flag = s2.find(0x01);
      ccRequired = !!flag && flag.value[0] !== 0;
    } catch (err) {
      throw new LpaError('badResponse', `smdpSigned2 malformed: ${(err as Error).message}`, { function: 'authenticateClient' });
    }
    if (ccRequired && !d.opts.confirmationCode) {
      throw new LpaError('confirmationCodeRequired', 'the SM-DP+ requires a confirmation code');
    }
    const pdReq = tlv(
      0xbf21,
      smdpSigned2,
      fromB64(ac.answer.smdpSignature2!, 'smdpSignature2'),
      ccRequired && tlv(0x04, hashCc(confirmationCodeDigest(d.opts.confirmationCode!), signedTid)),
      fromB64(ac.answer.smdpCertificate!, 'smdpCertificate'),
    );
    d.progress('es10b_prepare_download', d.address);
    const pdResp = parseTlv(await this.#es10(pdReq), 0xbf21, 'PrepareDownload');
    requireOk(pdResp, 'PrepareDownload', 'prepareDownload', 'downloadErrorCode');
    return pdResp;
  }

  /** ES9+.GetBoundProfilePackage (SGP.22 §5.6.2): the BPP, its metadata compared with profileMetadata, split into lpac's pieces. */
  async #getBoundProfilePackage(d: DownloadStep, tid: string, pdResp: Tlv, metadataRaw: Buffer): Promise<Buffer[]> {
    d.progress('es9p_get_bound_profile_package', d.address);
    const gb = await this.#es9(d.client, 'getBoundProfilePackage', { transactionId: tid, prepareDownloadResponse: b64(pdResp.raw) }, ['boundProfilePackage'], d.timings);
    const bpp = fromB64(gb.boundProfilePackage!, 'boundProfilePackage');
    try {
      if (d.opts.checkMetadata ?? true) {
        const inBpp = metadataFromBpp(bpp);
        if (!inBpp.equals(metadataRaw)) {
          throw new LpaError('metadataMismatch', 'the StoreMetadataRequest in the BPP differs from profileMetadata');
        }
      }
      return splitBppForLoading(bpp);
    } catch (err) {
      if (err instanceof LpaError) throw err;
      throw new LpaError('badResponse', `boundProfilePackage malformed: ${(err as Error).message}`, { function: 'getBoundProfilePackage' });
    }
  }

  /** ES10b.LoadBoundProfilePackage (SGP.22 §5.7.6), piece by piece; the first non-empty answer is the PIR. */
  async #loadBoundProfilePackage(d: DownloadStep, pieces: Buffer[]): Promise<Buffer> {
    d.progress('es10b_load_bound_profile_package', d.address);
    for (const piece of pieces) {
      const r = await this.#es10(piece);
      if (r.length > 0) return r;
    }
    throw new LpaError('card', 'LoadBoundProfilePackage: no ProfileInstallationResult', { function: 'LoadBoundProfilePackage' });
  }

  async #afterInstall(pirRaw: Buffer, metadata: ProfileMetadata, tid: string, opts: DownloadOptions, timings: Record<string, number>, tStart: number): Promise<DownloadResult> {
    let seqNumber: number;
    let address: string;
    let success: { aid: string } | undefined;
    let failure: { bppCommandId: number; errorReason: number } | undefined;
    try {
      const pir = decode(pirRaw);
      if (pir.tag !== 0xbf37) throw new Error(`tag ${pir.tag.toString(16).toUpperCase()}`);
      const data = pir.get(0xbf27);
      const meta = readNotificationMetadata(data.get(0xbf2f));
      seqNumber = meta.seqNumber;
      address = meta.notificationAddress;
      const fr = firstChild(data.get(0xa2), 'LoadBoundProfilePackage');
      if (fr.tag === 0xa0) success = { aid: fr.get(0x4f).value.toString('hex').toUpperCase() };
      else failure = { bppCommandId: readUint(fr.get(0x80)), errorReason: readUint(fr.get(0x81)) };
    } catch (err) {
      const e = new LpaError('card', `LoadBoundProfilePackage: malformed ProfileInstallationResult (${(err as Error).message})`, { function: 'LoadBoundProfilePackage' });
      e.transactionId = tid;
      throw e;
    }

    let notificationSent = false;
    let notificationError: string | undefined;
    if (opts.sendPir ?? true) {
      this.#opts.progress?.('es9p_handle_notification', address);
      try {
        await this.#es9(this.#clientFor(address), 'handleNotification', { pendingNotification: b64(pirRaw) }, [], timings);
        await this.removeNotification(seqNumber);
        notificationSent = true;
      } catch (err) {
        notificationError = (err as Error).message;
      }
    }

    if (failure) {
      const e = new LpaError('installFailed', `profile installation failed: bppCommandId ${failure.bppCommandId}, errorReason ${failure.errorReason}`, {
        function: 'LoadBoundProfilePackage',
        ...failure,
      });
      e.transactionId = tid;
      throw e;
    }
    return {
      iccid: metadata.iccid,
      ...(metadata.profileName !== undefined ? { profileName: metadata.profileName } : {}),
      ...(metadata.serviceProviderName !== undefined ? { serviceProviderName: metadata.serviceProviderName } : {}),
      ...(metadata.profileClass !== undefined ? { profileClass: metadata.profileClass } : {}),
      isdpAid: success!.aid,
      transactionId: tid,
      seqNumber,
      notificationAddress: address,
      notificationSent,
      ...(notificationError ? { notificationError } : {}),
      timings: {
        initiateAuthentication: timings.initiateAuthentication ?? 0,
        authenticateClient: timings.authenticateClient ?? 0,
        getBoundProfilePackage: timings.getBoundProfilePackage ?? 0,
        handleNotification: timings.handleNotification ?? 0,
        es10: this.#es10ms,
        total: performance.now() - tStart,
      },
    };
  }

  /**
   * ES10b.CancelSession on the eUICC, then ES9+ cancelSession with its signed answer (lpac's error
   * path). Never throws: the outcome is reported.
   */
  async cancelSession(transactionId: string, reason: number, client?: HttpClient): Promise<CancelOutcome> {
    const out: CancelOutcome = { reason, cardOk: false };
    let resp: Buffer;
    try {
      resp = await this.#es10(tlv(0xbf41, tlv(0x80, Buffer.from(transactionId, 'hex')), integer(reason, 0x81)));
      const t = decode(resp);
      out.cardOk = t.tag === 0xbf41 && t.children()[0]?.tag === 0xa0;
    } catch {
      return out;
    }
    if (!out.cardOk) return out;
    this.#opts.progress?.('es9p_cancel_session');
    try {
      await this.#es9(client ?? this.#clientFor(this.#opts.smdpAddress ?? ''), 'cancelSession', { transactionId, cancelSessionResponse: b64(resp) }, []);
      out.es9 = 'Executed-Success';
    } catch (err) {
      const e = err as LpaError;
      out.es9 = e.code === 'es9Failed' ? `Failed ${e.subjectCode ?? '?'}/${e.reasonCode ?? '?'}` : e.code === 'http' && e.httpStatus ? `HTTP ${e.httpStatus}` : e.message;
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Notifications (ES10b ListNotification / RetrieveNotificationsList / RemoveNotificationFromList)

  async listNotifications(): Promise<NotificationInfo[]> {
    const r = parseTlv(await this.#es10(tlv(0xbf28)), 0xbf28, 'ListNotification');
    const branch = firstChild(r, 'ListNotification');
    if (branch.tag !== 0xa0) throw new LpaError('card', `ListNotification failed: error ${readUint(branch)}`, { function: 'ListNotification', cardErrorCode: readUint(branch) });
    return branch.all(0xbf2f).map(readNotificationMetadata);
  }

  /** The PendingNotification (BF37 PIR or 30 OtherSignedNotification) with this seqNumber, as stored. */
  async retrieveNotification(seqNumber: number): Promise<Buffer> {
    const r = parseTlv(await this.#es10(tlv(0xbf2b, tlv(0xa0, integer(seqNumber, 0x80)))), 0xbf2b, 'RetrieveNotificationsList');
    const branch = firstChild(r, 'RetrieveNotificationsList');
    if (branch.tag !== 0xa0) throw new LpaError('card', `RetrieveNotificationsList failed: error ${readUint(branch)}`, { function: 'RetrieveNotificationsList', cardErrorCode: readUint(branch) });
    const n = branch.children()[0];
    if (!n) throw new LpaError('card', `no notification ${seqNumber}`, { function: 'RetrieveNotificationsList' });
    return n.raw;
  }

  async removeNotification(seqNumber: number): Promise<void> {
    const r = parseTlv(await this.#es10(tlv(0xbf30, integer(seqNumber, 0x80))), 0xbf30, 'RemoveNotificationFromList');
    const status = readUint(r.get(0x80));
    if (status !== 0) {
      throw new LpaError('card', `RemoveNotificationFromList ${seqNumber}: ${status === 1 ? 'nothingToDelete' : `error ${status}`}`, { function: 'RemoveNotificationFromList', cardErrorCode: status });
    }
  }

  /**
   * Delivers pending notifications (all, or those listed) to `https://<notificationAddress>` via
   * ES9+ handleNotification and removes each one after a 2xx — lpac's `notification process -r`.
   */
  async processNotifications(opts: { seqNumbers?: number[]; remove?: boolean } = {}): Promise<NotificationOutcome[]> {
    const list = await this.listNotifications();
    const out: NotificationOutcome[] = [];
    for (const n of list) {
      if (opts.seqNumbers && !opts.seqNumbers.includes(n.seqNumber)) continue;
      const t0 = performance.now();
      const o: NotificationOutcome = { ...n, sent: false, removed: false, ms: 0 };
      try {
        const pending = await this.retrieveNotification(n.seqNumber);
        this.#opts.progress?.('es9p_handle_notification', n.notificationAddress);
        await this.#es9(this.#clientFor(n.notificationAddress), 'handleNotification', { pendingNotification: b64(pending) }, []);
        o.sent = true;
        if (opts.remove ?? true) {
          await this.removeNotification(n.seqNumber);
          o.removed = true;
        }
      } catch (err) {
        o.error = (err as Error).message;
        if (err instanceof LpaError && err.httpStatus) o.httpStatus = err.httpStatus;
      }
      o.ms = performance.now() - t0;
      out.push(o);
    }
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // ES10c: local profile management

  async getEid(): Promise<string> {
    const r = parseTlv(await this.#es10(tlv(0xbf3e, Buffer.from([0x5c, 0x01, 0x5a]))), 0xbf3e, 'GetEID');
    const eid = r.find(0x5a);
    if (!eid) throw new LpaError('card', 'GetEID: no EID', { function: 'GetEID' });
    return eid.value.toString('hex').toUpperCase();
  }

  async listProfiles(): Promise<ProfileInfo[]> {
    const r = parseTlv(await this.#es10(tlv(0xbf2d)), 0xbf2d, 'GetProfilesInfo');
    const branch = firstChild(r, 'GetProfilesInfo');
    if (branch.tag !== 0xa0) throw new LpaError('card', `GetProfilesInfo failed: error ${readUint(branch)}`, { function: 'GetProfilesInfo', cardErrorCode: readUint(branch) });
    return branch.all(0xe3).map((p) => {
      const get = (tag: number) => p.find(tag);
      const state = get(0x9f70);
      const cls = get(0x95);
      const aid = get(0x4f);
      const s = state ? readUint(state) : undefined;
      const iccid = get(0x5a);
      return {
        iccid: iccid ? iccidFromEf(iccid.value) : '',
        ...(aid ? { isdpAid: aid.value.toString('hex').toUpperCase() } : {}),
        state: s === 1 ? 'enabled' : s === 0 ? 'disabled' : 'unknown',
        ...(get(0x90) ? { nickname: get(0x90)!.value.toString('utf8') } : {}),
        ...(get(0x91) ? { serviceProviderName: get(0x91)!.value.toString('utf8') } : {}),
        ...(get(0x92) ? { profileName: get(0x92)!.value.toString('utf8') } : {}),
        ...(cls ? { profileClass: PROFILE_CLASS[readUint(cls)] } : {}),
      } satisfies ProfileInfo;
    });
  }

  async #profileOp(tag: number, name: ProfileOperation, body: Buffer): Promise<void> {
    const r = parseTlv(await this.#es10(tlv(tag, body)), tag, name);
    const code = readUint(r.get(0x80));
    if (code !== 0) throw new LpaError('card', `${name} failed: ${profileResultName(name, code) ?? `result ${code}`}`, { function: name, cardErrorCode: code });
  }

  /** ES10c.EnableProfile by ICCID (refreshFlag false, as lpac sends by default). */
  enableProfile(iccid: string, refresh = false): Promise<void> {
    return this.#profileOp(0xbf31, 'EnableProfile', Buffer.concat([tlv(0xa0, tlv(0x5a, iccidToEf(iccid))), tlv(0x81, Buffer.from([refresh ? 0xff : 0x00]))]));
  }

  disableProfile(iccid: string, refresh = false): Promise<void> {
    return this.#profileOp(0xbf32, 'DisableProfile', Buffer.concat([tlv(0xa0, tlv(0x5a, iccidToEf(iccid))), tlv(0x81, Buffer.from([refresh ? 0xff : 0x00]))]));
  }

  deleteProfile(iccid: string): Promise<void> {
    return this.#profileOp(0xbf33, 'DeleteProfile', tlv(0x5a, iccidToEf(iccid)));
  }
}
