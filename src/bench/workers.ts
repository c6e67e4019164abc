/**
 * The worker threads that run the simulated devices (worker.ts), and the results of one phase
 * (warm-up or timed run): timings per ES9+ function, sizes of what was installed, failures by code,
 * and each worker's CPU and connection counts.
 */
import { Worker } from 'node:worker_threads';
import type { Dispenser } from './dispenser.js';
import { sleep } from './child-server.js';
import type { FromWorker, PhaseStats, ToWorker, WorkerConfig } from './worker.js';

/** The timings a worker reports per download, in the order of DownloadOutcome.t. */
export const FUNCTIONS = ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'es10', 'total'] as const;
export type Metric = (typeof FUNCTIONS)[number];

/** What the workers reported in the current phase. */
export interface PhaseResults {
  samples: Record<Metric, number[]>;
  uppSizes: number[];
  metadataSizes: number[];
  okCount: number;
  errorCount: number;
  errorsByCode: Record<string, number>;
  /** The message of the first failure of each kind. */
  errorExamples: Record<string, string>;
  phaseStats: PhaseStats[];
}

export class WorkerPool {
  readonly #workers: Worker[] = [];
  readonly results: PhaseResults = {
    samples: Object.fromEntries(FUNCTIONS.map((f) => [f, []])) as unknown as Record<Metric, number[]>,
    uppSizes: [],
    metadataSizes: [],
    okCount: 0,
    errorCount: 0,
    errorsByCode: {},
    errorExamples: {},
    phaseStats: [],
  };
  #idle = 0;
  #phaseEnd: () => void = () => {};
  #fatal: Error | undefined;

  get size(): number {
    return this.#workers.length;
  }

  send(i: number, m: ToWorker): void {
    this.#workers[i]!.postMessage(m);
  }

  /** Starts `configs.length` workers and waits until each has its devices ready; a worker's request for codes goes to `dispenser`. */
  async start(configs: WorkerConfig[], dispenser: Pick<Dispenser, 'request'>): Promise<void> {
    const workerUrl = new URL('./worker.js', import.meta.url);
    const n = configs.length;
    const r = this.results;
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(workerUrl, { workerData: configs[i] });
      this.#workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.on('message', (m: FromWorker) => {
            switch (m.type) {
              case 'ready':
                resolve();
                break;
              case 'need':
                dispenser.request(i, m.count);
                break;
              case 'results':
                for (const x of m.results) {
                  if (x.ok) {
                    r.okCount++;
                    x.t.forEach((v, k) => r.samples[FUNCTIONS[k]!].push(v));
                    if (x.uppBytes > 0) r.uppSizes.push(x.uppBytes);
                    if (x.metadataBytes > 0) r.metadataSizes.push(x.metadataBytes);
                  } else {
                    r.errorCount++;
                    r.errorsByCode[x.error] = (r.errorsByCode[x.error] ?? 0) + 1;
                    r.errorExamples[x.error] ??= x.message;
                  }
                }
                break;
              case 'idle':
                r.phaseStats.push(m.stats);
                if (++this.#idle === n) this.#phaseEnd();
                break;
              case 'fatal':
                this.#fatal = new Error(`worker ${i}: ${m.message}`);
                if (++this.#idle === n) this.#phaseEnd();
                break;
            }
          });
          w.once('error', (err) => {
            reject(err);
            this.#fatal = err;
            if (++this.#idle === n) this.#phaseEnd();
          });
        }),
      );
    }
    await Promise.all(ready);
  }

  /** One phase: `count` downloads or `seconds` (whichever ends first); answers its wall time in seconds. */
  async runPhase(dispenser: Pick<Dispenser, 'startPhase' | 'dispense'>, count: number | undefined, seconds: number | undefined): Promise<number> {
    const r = this.results;
    for (const k of Object.keys(r.samples) as Metric[]) r.samples[k].length = 0;
    r.uppSizes.length = 0;
    r.metadataSizes.length = 0;
    r.phaseStats.length = 0;
    r.okCount = 0;
    r.errorCount = 0;
    for (const k of Object.keys(r.errorsByCode)) delete r.errorsByCode[k];
    for (const k of Object.keys(r.errorExamples)) delete r.errorExamples[k];
    this.#idle = 0;
    const start = performance.now();
    dispenser.startPhase(count ?? Infinity, seconds === undefined ? Infinity : start + seconds * 1000);
    const done = new Promise<void>((res) => (this.#phaseEnd = res));
    const timer = seconds === undefined ? undefined : setTimeout(() => dispenser.dispense(), seconds * 1000 + 1);
    for (let i = 0; i < this.#workers.length; i++) this.send(i, { type: 'phase' });
    await done;
    if (timer) clearTimeout(timer);
    if (this.#fatal) throw this.#fatal;
    return (performance.now() - start) / 1000;
  }

  /** Asks every worker to exit; one that does not within 2 s is terminated. */
  async close(): Promise<void> {
    for (const w of this.#workers) w.postMessage({ type: 'exit' } satisfies ToWorker);
    await Promise.all(this.#workers.map((w) => Promise.race([new Promise((r) => w.once('exit', r)), sleep(2000).then(() => w.terminate())])));
  }
}
