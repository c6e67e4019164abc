/**
 * Activation codes for the workers: read from a file (--codes) or created through POST /admin/orders,
 * handed out on request within the current phase's budget (a number of downloads, a deadline), and
 * topped up one batch at a time during a duration run without a count.
 */
import { readFileSync } from 'node:fs';
import type { HttpClient } from '../http/client.js';
import { UsageError, type Options } from './options.js';
import type { ToWorker } from './worker.js';

/** Orders created per POST /admin/orders. */
export const ORDER_BATCH = 500;

function adminHeaders(): Record<string, string> {
  return process.env.ADMIN_TOKEN ? { authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : {};
}

/** Creates `count` downloadable orders through POST /admin/orders; answers their activation codes. */
export async function createOrders(admin: HttpClient, count: number): Promise<string[]> {
  const r = await admin.post<{ orders?: Array<{ activationCode: string }>; message?: string }>('/admin/orders', { count }, adminHeaders());
  if (r.status !== 201 || !r.json?.orders) {
    throw new Error(`POST /admin/orders answered HTTP ${r.status}: ${r.json?.message ?? r.text.slice(0, 200)}${r.status === 401 ? ' (set ADMIN_TOKEN, or use --codes)' : ''}`);
  }
  return r.json.orders.map((x) => x.activationCode);
}

/** The activation codes of a --codes file: one a line, blank lines and `#` comments skipped. */
export function readCodeFile(file: string): string[] {
  const codes = readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (!codes.length) throw new UsageError(`no activation codes in ${file}`);
  return codes;
}

/** The codes of the warm-up and the timed run: the file's, or a first batch of orders (more during a duration run). */
export async function firstCodes(opts: Options, admin: HttpClient, fileCodes: string[] | undefined, nDevices: number, log: (s: string) => void): Promise<{ codes: string[]; how: string }> {
  const codes: string[] = fileCodes ?? [];
  const firstBatch = opts.warmup + (opts.downloads ?? Math.max(ORDER_BATCH, 2 * nDevices));
  let how = `from ${opts.codes}`;
  if (!fileCodes) {
    const tc = performance.now();
    for (let left = firstBatch; left > 0; left -= ORDER_BATCH) codes.push(...(await createOrders(admin, Math.min(ORDER_BATCH, left))));
    how = `${codes.length} created through POST /admin/orders in ${((performance.now() - tc) / 1000).toFixed(1)} s${opts.downloads === undefined ? ', more during the run' : ''}`;
    log(`orders: ${how}`);
  } else if (codes.length < firstBatch) {
    log(`warning: ${codes.length} activation codes for ${firstBatch} downloads; the run stops when they are used up`);
  }
  return { codes, how };
}

export interface DispenserOptions {
  admin: HttpClient;
  codes: string[];
  /** Create more orders when the codes run low (a duration run without a count, codes not from a file). */
  canRefill: boolean;
  /** Sends a message to worker `i`. */
  send: (i: number, m: ToWorker) => void;
  /** True once the run was interrupted: the phase ends. */
  stopped: () => boolean;
  log: (s: string) => void;
}

/** Phase state: how many codes may still be handed out, until when, and who is waiting for some. */
export class Dispenser {
  readonly #o: DispenserOptions;
  readonly #codes: string[];
  #next = 0;
  #canRefill: boolean;
  #refilling?: Promise<void>;
  #budget = 0;
  #deadline = Infinity;
  #finished = true;
  /** worker index → codes asked for */
  readonly #pending = new Map<number, number>();

  constructor(o: DispenserOptions) {
    this.#o = o;
    this.#codes = o.codes;
    this.#canRefill = o.canRefill;
  }

  /** A new phase: at most `budget` codes, none after `deadline` (performance.now() ms). */
  startPhase(budget: number, deadline: number): void {
    this.#budget = budget;
    this.#deadline = deadline;
    this.#finished = false;
  }

  /** Worker `i` asks for `count` more codes. */
  request(i: number, count: number): void {
    this.#pending.set(i, (this.#pending.get(i) ?? 0) + count);
    this.dispense();
  }

  /** Answers what it can of the pending requests; once the phase is over, tells every asking worker it is done. */
  dispense(): void {
    const codes = this.#codes;
    if (!this.#finished && (this.#budget <= 0 || performance.now() >= this.#deadline || this.#o.stopped() || (this.#next >= codes.length && !this.#canRefill))) this.#finished = true;
    for (const [i, want] of this.#pending) {
      if (this.#finished) {
        this.#pending.delete(i);
        this.#o.send(i, { type: 'codes', codes: [], done: true });
        continue;
      }
      const n = Math.min(want, this.#budget, codes.length - this.#next);
      if (n > 0) {
        this.#o.send(i, { type: 'codes', codes: codes.slice(this.#next, this.#next + n), done: false });
        this.#next += n;
        this.#budget -= n;
        if (want - n > 0) this.#pending.set(i, want - n);
        else this.#pending.delete(i);
      }
    }
    if (!this.#finished && this.#budget <= 0) return this.dispense();
    if (!this.#finished && this.#canRefill && codes.length - this.#next < ORDER_BATCH / 2) void this.#refill();
  }

  /** Duration runs without a count create more orders while they run (one batch at a time). */
  #refill(): Promise<void> {
    return (this.#refilling ??= createOrders(this.#o.admin, ORDER_BATCH)
      .then((c) => void this.#codes.push(...c))
      .catch((err) => {
        this.#o.log(`order refill failed, no more orders: ${(err as Error).message}`);
        this.#canRefill = false;
      })
      .finally(() => {
        this.#refilling = undefined;
        this.dispense();
      }));
  }
}
