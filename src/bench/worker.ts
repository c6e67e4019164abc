/**
 * Benchmark worker (worker_threads): runs `devices` virtual eUICCs concurrently against one SM-DP+.
 * Each device loops: take an activation code from the main thread, download it with the LPA (the
 * four ES9+ calls, PIR included), report the timings, then forget the profile locally. Codes come
 * only from the main thread, so the loops end when it stops handing them out.
 *
 * Connections: one keep-alive agent per worker (at most one socket per device), or, with
 * freshConnections, a new connection (a new TLS handshake with https) for every ES9+ call and no
 * agent kept between calls, as lpac's HTTP backend does. Every phase reports how many requests went
 * out and how many of them opened a connection, counted from Node's HTTP client diagnostics channel.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { ClientRequest } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { HttpClient } from '../http/client.js';
import { threadCpu } from './proc.js';
import type { EuiccCredentials } from '../pki/load.js';
import { VirtualEuicc } from '../sim/euicc.js';
import { Lpa, LpaError } from '../sim/lpa.js';
import { loadStateCredentials, type CardState } from '../sim/state.js';

export interface WorkerConfig {
  index: number;
  url: string;
  ca?: string[];
  servername?: string;
  verifyTls: boolean;
  /** smdpAddress presented in initiateAuthentication (undefined: the activation code's). */
  smdpAddress?: string;
  /** One card state (with embedded credentials) per device. */
  cards: CardState[];
  /** A new connection for every request (no keep-alive). */
  freshConnections: boolean;
}

/** One download: its timings (ms) and the sizes of what was installed, or why it failed. */
export type DownloadOutcome =
  | { ok: true; t: [ia: number, ac: number, gbpp: number, hn: number, es10: number, total: number]; uppBytes: number; metadataBytes: number }
  | { ok: false; error: string; message: string; ms: number };

/** Main → worker. */
export type ToWorker = { type: 'codes'; codes: string[]; done: boolean } | { type: 'phase' } | { type: 'exit' };

/** Worker → main. */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'need'; count: number }
  | { type: 'results'; results: DownloadOutcome[] }
  | { type: 'idle'; stats: PhaseStats }
  | { type: 'fatal'; message: string };

/** What a worker measured over one phase. */
export interface PhaseStats {
  /** CPU seconds of this worker thread (undefined where /proc/thread-self is missing). */
  threadCpu?: number;
  /** HTTP requests completed, and how many of them on a new connection. */
  requests: number;
  newConnections: number;
}

const cfg = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

/**
 * Messages between threads cost a wake-up each (measured ~0.3 ms of CPU on a busy 2-core machine),
 * so outcomes go in batches (every 500 ms or 64 outcomes) and codes are fetched `devices` at a time.
 */
let outcomes: DownloadOutcome[] = [];
let flushTimer: NodeJS.Timeout | undefined;
function flush() {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = undefined;
  if (outcomes.length) post({ type: 'results', results: outcomes });
  outcomes = [];
}
function report(o: DownloadOutcome) {
  outcomes.push(o);
  if (outcomes.length >= 64) flush();
  else flushTimer ??= setTimeout(flush, 500);
}

const httpOptions = {
  baseUrl: cfg.url,
  ...(cfg.ca?.length ? { ca: cfg.ca } : {}),
  ...(cfg.servername ? { servername: cfg.servername } : {}),
  verifyTls: cfg.verifyTls,
  freshConnections: cfg.freshConnections,
  maxSockets: Math.max(1, cfg.cards.length),
  timeoutMs: 60_000,
};
const http = new HttpClient(httpOptions);

// Requests and new connections of this thread (diagnostics channels are per thread).
let requests = 0;
let newConnections = 0;
subscribe('http.client.response.finish', (m) => {
  requests++;
  if (!(m as { request: ClientRequest }).request.reusedSocket) newConnections++;
});

/** Codes received but not yet taken, devices waiting for one, and whether the main thread said "no more" for this phase. */
let queue: string[] = [];
let waiting: Array<(code: string | undefined) => void> = [];
let requested = 0;
let phaseDone = false;

const BATCH = Math.max(1, cfg.cards.length);

/** Asks the main thread for another batch when at most half a batch is left and none is on its way. */
function refillIfLow() {
  if (phaseDone || requested > 0 || queue.length > BATCH / 2) return;
  requested = BATCH;
  post({ type: 'need', count: BATCH });
}

function takeCode(): Promise<string | undefined> {
  const c = queue.shift();
  refillIfLow();
  if (c !== undefined) return Promise.resolve(c);
  if (phaseDone) return Promise.resolve(undefined);
  return new Promise((resolve) => waiting.push(resolve));
}

function onCodes(codes: string[], done: boolean) {
  requested = Math.max(0, requested - codes.length);
  queue.push(...codes);
  while (waiting.length && queue.length) waiting.shift()!(queue.shift());
  if (done) {
    phaseDone = true;
    requested = 0;
    for (const w of waiting.splice(0)) w(undefined);
  } else {
    refillIfLow();
  }
}

function errorKey(err: unknown): string {
  if (err instanceof LpaError) {
    const fn = err.function ? ` ${err.function}` : '';
    const sc = err.subjectCode ? ` ${err.subjectCode}/${err.reasonCode ?? '?'}` : '';
    const hs = err.httpStatus ? ` HTTP ${err.httpStatus}` : '';
    return `${err.code}${fn}${sc}${hs}`;
  }
  return `exception ${(err as Error)?.name ?? 'Error'}: ${String((err as Error)?.message ?? err).slice(0, 120)}`;
}

interface Device {
  state: CardState;
  credentials: EuiccCredentials[];
}

const devices: Device[] = cfg.cards.map((state) => ({ state, credentials: loadStateCredentials(state) }));

async function deviceLoop(d: Device): Promise<void> {
  for (;;) {
    const code = await takeCode();
    if (code === undefined) return;
    // A fresh card state for every download: the profile and any notification of the previous one
    // are forgotten locally, without telling the server (the card stays small).
    const card = VirtualEuicc.fromJSON(d.state, { credentials: d.credentials });
    const lpa = new Lpa(card, { http, ...(cfg.smdpAddress ? { smdpAddress: cfg.smdpAddress } : {}) });
    const t0 = performance.now();
    try {
      const r = await lpa.download(code);
      if (!r.notificationSent) {
        report({ ok: false, error: 'notification not sent', message: String(r.notificationError).slice(0, 300), ms: performance.now() - t0 });
        continue;
      }
      const t = r.timings;
      const installed = card.profiles.find((p) => p.iccid === r.iccid);
      report({
        ok: true,
        t: [t.initiateAuthentication, t.authenticateClient, t.getBoundProfilePackage, t.handleNotification, t.es10, t.total],
        uppBytes: installed?.package ? Buffer.byteLength(installed.package, 'base64') : 0,
        metadataBytes: installed ? installed.metadata.length / 2 : 0,
      });
    } catch (err) {
      report({ ok: false, error: errorKey(err), message: String((err as Error)?.message ?? err).slice(0, 300), ms: performance.now() - t0 });
    }
  }
}

async function runPhase(): Promise<void> {
  phaseDone = false;
  queue = [];
  waiting = [];
  requested = 0;
  const cpu0 = threadCpu();
  const r0 = requests;
  const n0 = newConnections;
  await Promise.all(devices.map(deviceLoop));
  flush();
  const cpu1 = threadCpu();
  post({
    type: 'idle',
    stats: {
      ...(cpu0 !== undefined && cpu1 !== undefined ? { threadCpu: cpu1 - cpu0 } : {}),
      requests: requests - r0,
      newConnections: newConnections - n0,
    },
  });
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'codes') onCodes(m.codes, m.done);
  else if (m.type === 'phase') {
    runPhase().catch((err) => post({ type: 'fatal', message: (err as Error).stack ?? String(err) }));
  } else if (m.type === 'exit') {
    http.close();
    port.close();
  }
});
post({ type: 'ready' });
