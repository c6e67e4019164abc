/**
 * Tampering on the wire between the simulated LPA and the SM-DP+: a stand-in for the world's
 * HttpClient that lets a test rewrite one ES9+ request (or response) before it is forwarded, records
 * every exchange, and snapshots the server's state right before and right after each tampered or
 * replayed request — so a test can show that a refused request left no trace.
 */
import { randomInt, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { HttpClient, HttpResponse } from '../../src/http/client.js';
import type { Database } from '../../src/db/db.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { LPA_HEADERS, Lpa, LpaError } from '../../src/sim/lpa.js';
import { signRaw } from '../../src/crypto/ecdsa.js';
import { decodeAuthenticateServerResponse, decodeEuiccSigned1, encodeAuthenticateServerResponse, encodeEuiccSigned1, type EuiccSigned1 } from '../../src/rsp/authentication.js';
import { decodePrepareDownloadResponse, encodeEuiccSigned2, encodePrepareDownloadResponse, type EuiccSigned2 } from '../../src/rsp/download.js';
import { decodeCancelSessionResponse, encodeCancelSessionResponse } from '../../src/rsp/cancel.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { ES9_FUNCTIONS, ES9_PREFIX, type Es9Function } from '../../src/rsp/es9plus.js';
import type { World } from './world.js';

/** The ES9+ path prefix (src/rsp/es9plus.ts). */
export const ES9 = ES9_PREFIX;
export { ES9_FUNCTIONS, type Es9Function };
export type Body = Record<string, string>;

/** What "state" means for these tests: every profile row's order fields, every event, every notification. */
export interface StateSnapshot {
  profiles: Record<string, { state: string; eid: string | null; download_attempts: number; cc_attempts: number; matching_id: string | null; device_state: string | null; updated_at: string }>;
  events: Array<{ id: string; iccid: string; event: string; detail: string | null }>;
  notifications: Array<{ id: string; kind: string; verified: boolean; iccid: string | null; outcome: string | null }>;
}

export async function snapshot(db: Database): Promise<StateSnapshot> {
  const profiles: StateSnapshot['profiles'] = {};
  const rows = await db.query<{ iccid: string; state: string; eid: string | null; download_attempts: number; cc_attempts: number; matching_id: string | null; device_state: string | null; updated_at: Date }>(
    'SELECT iccid, state, eid, download_attempts, cc_attempts, matching_id, device_state, updated_at FROM profiles ORDER BY iccid',
  );
  for (const { iccid, updated_at, ...r } of rows) profiles[iccid] = { ...r, updated_at: new Date(updated_at).toISOString() };
  const events = await db.query<{ id: string | number; iccid: string; event: string; detail: unknown }>('SELECT id, iccid, event, detail FROM profile_events ORDER BY id');
  const notifications = await db.query<{ id: string | number; kind: string; verified: boolean; iccid: string | null; outcome: string | null }>(
    'SELECT id, kind, verified, iccid, outcome FROM notifications ORDER BY id',
  );
  return {
    profiles,
    events: events.map((e) => ({ id: String(e.id), iccid: e.iccid, event: e.event, detail: e.detail == null ? null : JSON.stringify(e.detail) })),
    notifications: notifications.map((n) => ({ ...n, id: String(n.id) })),
  };
}

export interface Exchange {
  fn: string;
  /** The body as the LPA built it. */
  original: unknown;
  /** The body actually sent. */
  sent: unknown;
  tampered: boolean;
  status: number;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
  /** Server state around the request, for tampered and replayed requests. */
  before?: StateSnapshot;
  after?: StateSnapshot;
}

export interface WireHooks {
  /** Rewrite a request body before it is forwarded. */
  request?: Partial<Record<Es9Function, (body: Body, wire: Wire) => Body | Promise<Body>>>;
  /** Rewrite (or throw instead of delivering) a response after it was recorded. */
  response?: Partial<Record<Es9Function, (res: HttpResponse, wire: Wire) => HttpResponse | Promise<HttpResponse>>>;
}

export class Wire {
  readonly exchanges: Exchange[] = [];
  /** The card behind the LPA (set by device()), whose key a test re-signs tampered messages with. */
  card?: VirtualEuicc;
  /** Pass as `new Lpa(card, { http: wire.http })`. */
  readonly http: HttpClient;

  constructor(
    readonly world: World,
    readonly hooks: WireHooks = {},
  ) {
    this.http = { post: (path: string, body: unknown, headers?: Record<string, string>) => this.#post(path, body, headers) } as unknown as HttpClient;
  }

  async #post(path: string, body: unknown, headers?: Record<string, string>): Promise<HttpResponse> {
    const fn = path.split('/').pop() as Es9Function;
    const hook = this.hooks.request?.[fn];
    const sent = hook ? await hook(structuredClone(body) as Body, this) : body;
    const res = await this.#forward(fn, path, body, sent, !!hook, headers);
    const rh = this.hooks.response?.[fn];
    return rh ? rh(res, this) : res;
  }

  async #forward(fn: string, path: string, original: unknown, sent: unknown, watch: boolean, headers?: Record<string, string>): Promise<HttpResponse> {
    const before = watch ? await snapshot(this.world.db) : undefined;
    const res = await this.world.http.post(path, sent, headers ?? { ...LPA_HEADERS });
    const after = watch ? await snapshot(this.world.db) : undefined;
    this.exchanges.push({ fn, original, sent, tampered: watch, status: res.status, text: res.text, json: res.json, ...(before ? { before, after } : {}) });
    return res;
  }

  /** Re-sends a body directly (a replay), with state snapshots around it. */
  async send(fn: Es9Function, body: unknown): Promise<Exchange> {
    await this.#forward(fn, `${ES9}/${fn}`, body, body, true);
    return this.exchanges.at(-1)!;
  }

  /** The exchanges of one function, in order. */
  of(fn: Es9Function): Exchange[] {
    return this.exchanges.filter((e) => e.fn === fn);
  }

  /** The last exchange of a function (throws when there is none). */
  last(fn: Es9Function): Exchange {
    const e = this.of(fn).at(-1);
    if (!e) throw new Error(`no ${fn} exchange recorded`);
    return e;
  }

  /** The private key of the card's eUICC certificate (single-curve cards). */
  get euiccKey() {
    const c = this.card?.credentials;
    if (c?.length !== 1) throw new Error('wire.euiccKey needs a card with exactly one set of credentials');
    return c[0]!.key;
  }

  /** The tampered (or replayed) exchange; exactly one is expected. */
  get tampered(): Exchange {
    const t = this.exchanges.filter((e) => e.tampered);
    if (t.length !== 1) throw new Error(`${t.length} tampered exchanges, expected 1`);
    return t[0]!;
  }
}

let eidCounter = randomInt(1_000_000);

/** A virtual eUICC with its own EID (issued from the world's EUM, one curve) and an LPA on a Wire. */
export async function device(w: World, hooks: WireHooks = {}, curve: CurveName = 'P-256') {
  const eid = eidWithCheckDigits(`89049032${String(eidCounter++).padStart(22, '0')}`);
  const card = await VirtualEuicc.create({ pkiDir: w.pkiDir, eid, curves: [curve] });
  const wire = new Wire(w, hooks);
  wire.card = card;
  return { card, wire, lpa: new Lpa(card, { http: wire.http }), creds: card.credentials[0]! };
}

/** A copy with one bit flipped (by default the lowest bit of the last byte). */
export function flipBit(b: Buffer, index = b.length - 1, bit = 0): Buffer {
  const c = Buffer.from(b);
  c[index] = c[index]! ^ (1 << bit);
  return c;
}

export const fromB64 = (s: string) => Buffer.from(s, 'base64');
export const toB64 = (b: Buffer) => b.toString('base64');

/** A request with exactly these bytes and headers (for bodies HttpClient would not produce). */
export function rawPost(url: string, path: string, body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; text: string; json?: any }> {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(path, url), { method: 'POST', headers: { 'content-length': String(payload.length), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

// ---------------------------------------------------------------------------------------------
// Re-encoding the eUICC's messages with one part changed (src/rsp encoders)

type AsrOk = { euiccSigned1: Buffer; euiccSignature1: Buffer; euiccCertificate: Buffer; eumCertificate: Buffer };

/** authenticateServerResponse (b64) with its ok branch rewritten. */
export function retouchAsr(b64: string, f: (ok: AsrOk) => AsrOk): string {
  const asr = decodeAuthenticateServerResponse(fromB64(b64));
  if (!('ok' in asr)) throw new Error('authenticateServerResponse is an error branch');
  const { euiccSigned1, euiccSignature1, euiccCertificate, eumCertificate } = asr.ok;
  return toB64(encodeAuthenticateServerResponse({ ok: f({ euiccSigned1: euiccSigned1.raw, euiccSignature1, euiccCertificate, eumCertificate }) }));
}

/** euiccSigned1 with some fields changed, re-encoded and re-signed with `key` (as a genuine eUICC would sign it). */
export function resignEuiccSigned1(ok: AsrOk, key: KeyObject, change: Partial<Pick<EuiccSigned1, 'transactionId' | 'serverAddress' | 'serverChallenge'>>): AsrOk {
  const s = decodeEuiccSigned1(ok.euiccSigned1);
  const euiccSigned1 = encodeEuiccSigned1({
    transactionId: s.transactionId,
    serverAddress: s.serverAddress,
    serverChallenge: s.serverChallenge,
    euiccInfo2: s.euiccInfo2.raw,
    ctxParams1: s.ctxParams1.raw,
    ...change,
  });
  return { ...ok, euiccSigned1, euiccSignature1: signRaw(key, euiccSigned1) };
}

type PdrOk = { euiccSigned2: Buffer; euiccSignature2: Buffer };

/** prepareDownloadResponse (b64) with its ok branch rewritten. */
export function retouchPdr(b64: string, f: (ok: PdrOk) => PdrOk): string {
  const pdr = decodePrepareDownloadResponse(fromB64(b64));
  if (!('ok' in pdr)) throw new Error('prepareDownloadResponse is an error branch');
  return toB64(encodePrepareDownloadResponse({ ok: f({ euiccSigned2: pdr.ok.euiccSigned2.raw, euiccSignature2: pdr.ok.euiccSignature2 }) }));
}

/** EUICCSigned2 changed and re-signed over EUICCSigned2 ‖ smdpSignature2 DO (docs/protocol.md, What is signed). */
export function resignEuiccSigned2(key: KeyObject, smdpSignature2Do: Buffer, s: Omit<EuiccSigned2, 'raw'>): PdrOk {
  const euiccSigned2 = encodeEuiccSigned2(s);
  return { euiccSigned2, euiccSignature2: signRaw(key, Buffer.concat([euiccSigned2, smdpSignature2Do])) };
}

type CsrOk = { signed: Buffer; signature: Buffer };

/** cancelSessionResponse (b64) with its ok branch rewritten. */
export function retouchCancel(b64: string, f: (ok: CsrOk) => CsrOk): string {
  const csr = decodeCancelSessionResponse(fromB64(b64));
  if (!('ok' in csr)) throw new Error('cancelSessionResponse is an error branch');
  return toB64(encodeCancelSessionResponse({ ok: f({ signed: csr.ok.signed.raw, signature: csr.ok.signature }) }));
}

// ---------------------------------------------------------------------------------------------
// Assertions

/** The part of a tap Test these helpers use. */
/* eslint-disable @typescript-eslint/no-explicit-any */
export interface Asserts {
  equal(...args: any[]): unknown;
  match(...args: any[]): unknown;
  same(...args: any[]): unknown;
  ok(...args: any[]): unknown;
  notOk(...args: any[]): unknown;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** HTTP 200, header.functionExecutionStatus.status 'Failed', exactly this subjectCode/reasonCode. */
export function failedWith(t: Asserts, ex: Exchange, subjectCode: string, reasonCode: string): void {
  t.equal(ex.status, 200, `${ex.fn}: HTTP 200`);
  const fes = ex.json?.header?.functionExecutionStatus;
  t.equal(fes?.status, 'Failed', `${ex.fn}: functionExecutionStatus Failed`);
  t.same(
    { subjectCode: fes?.statusCodeData?.subjectCode, reasonCode: fes?.statusCodeData?.reasonCode },
    { subjectCode, reasonCode },
    `${ex.fn}: ${subjectCode}/${reasonCode} (${fes?.statusCodeData?.message})`,
  );
}

export function succeeded(t: Asserts, ex: Exchange): void {
  t.equal(ex.status, 200, `${ex.fn}: HTTP 200`);
  t.equal(ex.json?.header?.functionExecutionStatus?.status, 'Executed-Success', `${ex.fn}: Executed-Success`);
}

/** The refused request changed no profile, event or notification. */
export function untouched(t: Asserts, ex: Exchange): void {
  t.ok(ex.before && ex.after, `${ex.fn}: state observed around the request`);
  t.same(ex.after, ex.before, `${ex.fn}: no trace in profiles, profile_events, notifications`);
}

/** The LPA stopped on this ES9+ function with this status. */
export function lpaFailed(t: Asserts, err: unknown, fn: Es9Function, subjectCode: string, reasonCode: string): void {
  t.ok(err instanceof LpaError, `the LPA stopped with an LpaError (${(err as Error)?.message})`);
  const e = err as LpaError;
  t.same({ code: e.code, function: e.function, subjectCode: e.subjectCode, reasonCode: e.reasonCode }, { code: 'es9Failed', function: fn, subjectCode, reasonCode }, `LpaError ${fn} ${subjectCode}/${reasonCode}`);
}
