/**
 * Delivers the outbox (callbacks to operators) at least once: claims due rows, POSTs each as JSON
 * with a timeout, marks it delivered on a 2xx, otherwise schedules a retry with exponential backoff.
 *
 * - Several server processes may run a worker on one PostgreSQL database: rows are claimed with
 *   FOR UPDATE SKIP LOCKED and leased (next_attempt_at pushed past the request timeout), so a
 *   process that dies mid-delivery only delays the row until the lease runs out.
 * - A given ICCID's callbacks go out strictly in id order: a row is not claimed while an earlier
 *   row of the same ICCID is undelivered.
 * - No transaction is held while a request is in flight, so ES9+ never waits for an operator.
 * - Idle, it sleeps: a trigger on outbox (migration 009) NOTIFYs channel 'outbox' when a
 *   transaction that queued callbacks commits, and the worker LISTENs for it (PostgreSQL: on its own
 *   connection; PGlite: this process's own commits). Between notifications it wakes when the
 *   earliest pending row is due (a retry's backoff, a lease running out) and, as a safety net, every
 *   `idlePollMs`. Without a working LISTEN (its connection lost) it polls every `pollIntervalMs`.
 */
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import type { Database, Listener } from '../db/db.js';

export interface OutboxWorkerOptions {
  /** Sleep between polls when nothing was due and LISTEN is not working (ms, default 500). */
  pollIntervalMs?: number;
  /** Longest sleep while LISTEN works and nothing is pending (ms, default 30 000). */
  idlePollMs?: number;
  /** Rows claimed per round (default 16). They belong to different ICCIDs and are sent concurrently. */
  batchSize?: number;
  /** Per-request timeout (ms, default 10 000). */
  timeoutMs?: number;
  /** Backoff after the n-th failed attempt: min(baseDelayMs · 2^(n-1), maxDelayMs). Defaults 1 s and 5 min. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Filled into header.functionRequesterIdentifier when the queued payload has none (the SM-DP+ address). */
  requesterIdentifier?: string;
  /** Sent as X-Admin-Protocol. */
  adminProtocol?: string;
  /** false: accept any TLS certificate from operators (test setups). Default true. */
  verifyTls?: boolean;
  /**
   * PEM certificates trusted for operators' HTTPS besides Node's CA list: the server passes its own
   * CI certificates, so that a callback URL on this server (the console's catcher, docs/console.md)
   * or on anything with a certificate from this test PKI is delivered to.
   */
  extraCa?: string[];
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface OutboxRow {
  id: string;
  operator_id: string;
  url: string;
  kind: string;
  payload: Record<string, unknown>;
  attempts: number;
  iccid: string | null;
}

export interface OutboxWorker {
  /** Runs one claim-and-deliver round now; resolves with the number of rows handled. */
  runOnce(): Promise<number>;
  /** Wakes the loop (e.g. right after a callback was queued). */
  kick(): void;
  /** Stops polling, aborts requests in flight (their rows become due again at once), resolves when idle. */
  stop(): Promise<void>;
  /** Claim rounds run so far (tests: an idle worker runs almost none). */
  readonly rounds: number;
  /** Whether new rows wake the worker through LISTEN (false: it polls). */
  readonly listening: boolean;
}

/** The NOTIFY channel of migration 009's trigger on outbox. */
export const OUTBOX_CHANNEL = 'outbox';

export function backoffMs(attempts: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, Math.min(attempts - 1, 30)));
}

/** Claims up to `limit` due rows, leasing them for `leaseMs`. */
export async function claimDue(db: Database, limit: number, leaseMs: number): Promise<OutboxRow[]> {
  const rows = await db.query<OutboxRow>(
    `UPDATE outbox SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000)
      WHERE id IN (
        SELECT o.id FROM outbox o
         WHERE o.delivered_at IS NULL AND o.next_attempt_at <= now()
           AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.iccid = o.iccid AND e.delivered_at IS NULL AND e.id < o.id)
         ORDER BY o.id
         LIMIT $1
         FOR UPDATE SKIP LOCKED)
      RETURNING id, operator_id, url, kind, payload, attempts, iccid`,
    [limit, leaseMs],
  );
  for (const r of rows) r.id = String(r.id);
  return rows.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
}

/**
 * Milliseconds until the earliest row claimDue could claim becomes due (≤ 0: due now), or null
 * when nothing is pending. Rows waiting behind an earlier row of their ICCID do not count: they
 * become claimable only when that row is delivered, by this worker (which then runs again) or
 * another one (whose delivery leaves the earlier row's due time to wake us).
 */
export async function nextDueInMs(db: Database): Promise<number | null> {
  const [r] = await db.query<{ ms: number | null }>(
    `SELECT (extract(epoch FROM min(o.next_attempt_at) - now()) * 1000)::double precision AS ms
       FROM outbox o
      WHERE o.delivered_at IS NULL
        AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.iccid = o.iccid AND e.delivered_at IS NULL AND e.id < o.id)`,
  );
  return r?.ms == null ? null : Number(r.ms);
}

interface PostResult {
  ok: boolean;
  status?: number;
  error?: string;
}

function post(url: string, body: Buffer, headers: Record<string, string>, timeoutMs: number, verifyTls: boolean, signal: AbortSignal, ca?: string[]): Promise<PostResult> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      resolve({ ok: false, error: `invalid URL ${url}` });
      return;
    }
    const mod = u.protocol === 'https:' ? https : http;
    let done = false;
    const finish = (r: PostResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const req = mod.request(u, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(body.length) },
      ...(u.protocol === 'https:' ? { rejectUnauthorized: verifyTls, ...(ca ? { ca } : {}) } : {}),
    }, (res) => {
      res.resume();
      res.on('end', () => finish({ ok: res.statusCode! >= 200 && res.statusCode! < 300, status: res.statusCode }));
      res.on('error', (err) => finish({ ok: false, error: err.message }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, error: `timeout after ${timeoutMs} ms` });
    }, timeoutMs);
    const onAbort = () => {
      req.destroy();
      finish({ ok: false, error: 'aborted' });
    };
    signal.addEventListener('abort', onAbort);
    req.on('error', (err) => finish({ ok: false, error: err.message }));
    req.end(body);
  });
}

export function startOutboxWorker(db: Database, opts: OutboxWorkerOptions = {}): OutboxWorker {
  const pollMs = opts.pollIntervalMs ?? 500;
  const idlePollMs = opts.idlePollMs ?? 30_000;
  const batch = opts.batchSize ?? 16;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const baseMs = opts.baseDelayMs ?? 1_000;
  const maxMs = opts.maxDelayMs ?? 300_000;
  // Setting `ca` replaces Node's list: keep it and add ours.
  const ca = opts.extraCa?.length ? [...tls.rootCertificates, ...opts.extraCa] : undefined;
  const leaseMs = timeoutMs + 5_000;
  const abort = new AbortController();
  let stopped = false;
  let wake: (() => void) | undefined;
  let kicked = false;
  let rounds = 0;
  let listener: Listener | undefined;

  async function deliver(row: OutboxRow): Promise<void> {
    const payload = row.payload as { header?: Record<string, unknown> };
    if (opts.requesterIdentifier && payload.header && payload.header.functionRequesterIdentifier === undefined) {
      payload.header = { functionRequesterIdentifier: opts.requesterIdentifier, ...payload.header };
    }
    const body = Buffer.from(JSON.stringify(payload));
    const headers = {
      'content-type': 'application/json;charset=UTF-8',
      'x-admin-protocol': opts.adminProtocol ?? 'gsma/rsp/v2.5.0',
      'user-agent': 'mock-smdp',
    };
    const r = await post(row.url, body, headers, timeoutMs, opts.verifyTls ?? true, abort.signal, ca);
    if (r.ok) {
      await db.query('UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1', [row.id]);
      return;
    }
    if (r.error === 'aborted') {
      // Stopping: give the row back untouched so the next worker sends it at once.
      await db.query('UPDATE outbox SET next_attempt_at = now() WHERE id = $1 AND delivered_at IS NULL', [row.id]).catch(() => {});
      return;
    }
    const attempts = row.attempts + 1;
    const delay = backoffMs(attempts, baseMs, maxMs);
    const error = r.error ?? `HTTP ${r.status}`;
    opts.log?.warn({ outboxId: row.id, url: row.url, attempts, retryInMs: delay, error }, 'operator callback not delivered');
    await db.query(
      `UPDATE outbox SET attempts = $2, last_error = $3, next_attempt_at = now() + make_interval(secs => $4::double precision / 1000)
        WHERE id = $1`,
      [row.id, attempts, error, delay],
    );
  }

  async function runOnce(): Promise<number> {
    rounds++;
    const rows = await claimDue(db, batch, leaseMs);
    await Promise.all(rows.map((r) => deliver(r).catch((err) => opts.log?.warn({ err, outboxId: r.id }, 'outbox delivery failed'))));
    return rows.length;
  }

  const kick = () => {
    kicked = true;
    wake?.();
  };

  /** How long to sleep when the last round found nothing to do. */
  async function idleSleepMs(): Promise<number> {
    const longest = listener?.active ? idlePollMs : pollMs;
    const due = await nextDueInMs(db);
    if (due === null) return longest;
    // A row that is due but was not claimed is locked by another worker's claim for a moment.
    return Math.max(10, Math.min(longest, Math.ceil(due)));
  }

  const loop = (async () => {
    try {
      listener = await db.listen(OUTBOX_CHANNEL, kick);
    } catch (err) {
      opts.log?.warn({ err }, 'outbox: LISTEN failed, polling');
    }
    while (!stopped) {
      kicked = false;
      let n = 0;
      let sleepMs = pollMs;
      try {
        n = await runOnce();
        if (n === 0 && !kicked && !stopped) sleepMs = await idleSleepMs();
      } catch (err) {
        if (stopped) break;
        opts.log?.warn({ err }, 'outbox round failed');
      }
      if (stopped) break;
      if (n > 0 || kicked) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, sleepMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      wake = undefined;
    }
    await listener?.close();
  })();

  return {
    runOnce,
    kick,
    async stop() {
      stopped = true;
      abort.abort();
      wake?.();
      await loop;
    },
    get rounds() {
      return rounds;
    },
    get listening() {
      return listener?.active ?? false;
    },
  };
}
