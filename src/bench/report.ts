/**
 * What the bench reports: the summary of the timed run (rate, latency per ES9+ function, CPU per
 * download of the client, the server and its PostgreSQL backends, the machine), the crypto-only
 * cost beside it, the server's CPU profile, and the text form of all that (or --json).
 */
import { readdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import type { CurveName } from '../crypto/curves.js';
import { runCryptoCost, type ChildServer, type ServerProcesses } from './child-server.js';
import type { CryptoCost } from './crypto-cost.js';
import { shellLine, type Options } from './options.js';
import type { PgCpu } from './pg-monitor.js';
import { formatProfile, readProfile, summarizeProfile, type ProfileSummary } from './profile.js';
import { loadAverages, machineBusy } from './proc.js';
import { FUNCTIONS, type Metric, type PhaseResults } from './workers.js';

export interface PerDownload {
  seconds: number;
  percentOfOneCore: number;
  perDownloadMs: number;
}

export interface Summary {
  /** The bench's own command line, exactly as given (argv after the script). */
  command: { argv: string[]; line: string };
  config: {
    url: string;
    server: 'started' | 'given';
    serverCommand?: string;
    smdpAddress: string;
    workers: number;
    devicesPerWorker: number;
    curve: CurveName;
    tls: boolean;
    connections: 'keep-alive' | 'fresh';
    database: { kind: string; name: string | null; note: string };
    euiccs: string;
    orders: string;
    warmup: number;
    downloads?: number;
    durationSeconds?: number;
    cpus: number;
    node: string;
  };
  downloads: number;
  errors: number;
  errorsByCode: Record<string, number>;
  /** The message of the first failure of each kind. */
  errorExamples: Record<string, string>;
  wallSeconds: number;
  downloadsPerSecond: number;
  latencyMs: Record<Metric, { p50: number; p99: number; mean: number; max: number }>;
  /** HTTP requests of the timed run and how many opened a new connection (TCP, plus TLS with https). */
  connections: { requests: number; newConnections: number; newPerDownload: number | null };
  /** CPU of the timed run: seconds, % of one core, ms per complete download. */
  cpu: {
    /** The whole bench process (worker threads, main thread, V8 and libuv helper threads). */
    client: PerDownload & { workerThreadsSeconds: number | null; workerThreadsPerDownloadMs: number | null };
    /** The server's processes (a cluster's primary and all its children, exited ones included). */
    server: (PerDownload & { pids: number[]; how: string }) | null;
    /** The backends of the server's own database (pg_stat_activity.datname), from /proc. */
    postgres:
      | (PerDownload & Omit<PgCpu, 'backendsCpu' | 'sharedCpu' | 'samples' | 'database' | 'stats'> & {
          database: string;
          sharedProcessesSeconds: number;
          sharedProcessesPerDownloadMs: number;
          /** pg_stat_database of the run per download: transactions (autocommit statements count one each) and rows written. */
          perDownload: { transactions: number; rowsInserted: number; rowsUpdated: number; rowsDeleted: number } | null;
        })
      | null;
    /** client + server + postgres per download, and the rate that CPU would allow on all CPUs of this machine. */
    totalPerDownloadMs: number | null;
    cpuBoundDownloadsPerSecond: number | null;
  };
  server: { rssBytes: number | null; peakRssBytes: number | null };
  /** The machine during the timed run: busy share of all CPUs, CPU of everything the bench does not count, load averages. */
  machine: { busyPercentOfAllCpus: number | null; otherCpuSeconds: number | null; loadavgStart: number[]; loadavgEnd: number[] };
  /** Crypto-only cost of one download (crypto-cost.ts), and server CPU per download divided by it. */
  cryptoOnly:
    | (CryptoCost & {
        where: string;
        sizesSeen: { uppBytes: [min: number, max: number]; metadataBytes: [min: number, max: number] };
        distinctEuiccs: number;
        machineBusyPercentOfAllCpus: number | null;
        loadavg: number[];
        serverCpuRatio: number | null;
        serverCpuRatioWithoutChain: number | null;
      })
    | { skipped: string };
  /** The server's CPU profile over the timed run (--server-cpu-prof). */
  profile?: ProfileSummary & { files: string[] };
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const mb = (b: number | null | undefined) => (b === null || b === undefined ? 'n/a' : `${(b / 1048576).toFixed(1)} MiB`);
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));

export function printSummary(s: Summary): void {
  const c = s.config;
  const cpu = s.cpu;
  const row = (name: string, x: PerDownload | null, extra = '') =>
    `    ${name.padEnd(30)}${(x ? x.perDownloadMs.toFixed(2) : 'n/a').padStart(8)}${(x ? x.seconds.toFixed(2) : 'n/a').padStart(10)}${(x ? x.percentOfOneCore.toFixed(0) : 'n/a').padStart(8)}${extra ? `  ${extra}` : ''}`;
  const pg = cpu.postgres;
  const lines = [
    `mock-smdp bench`,
    `  command    node dist/src/bench/run.js ${s.command.line}`,
    `  target     ${c.url} (${c.server === 'started' ? 'started by the bench' : 'given'}), smdpAddress ${c.smdpAddress}`,
    ...(c.serverCommand ? [`  server     ${c.serverCommand}`] : []),
    `  database   ${c.database.kind}${c.database.name ? ` ${c.database.name}` : ''}${c.database.note ? ` (${c.database.note})` : ''}`,
    `  load       ${c.workers} workers × ${c.devicesPerWorker} devices, curve ${c.curve}, ${c.tls ? 'HTTPS' : 'plain HTTP'}, ${c.connections === 'fresh' ? 'FRESH CONNECTIONS: a new connection for every ES9+ call (no keep-alive)' : 'keep-alive connections (one per device)'}`,
    `  machine    ${c.cpus} CPUs, node ${c.node}`,
    `  eUICCs     ${c.euiccs}; orders: ${c.orders}`,
    `  run        ${c.downloads !== undefined ? `${c.downloads} downloads` : ''}${c.downloads !== undefined && c.durationSeconds !== undefined ? ' or ' : ''}${c.durationSeconds !== undefined ? `${c.durationSeconds} s` : ''} after ${c.warmup} warm-up downloads`,
    '',
    `  downloads  ${s.downloads} complete, ${s.errors} failed, in ${s.wallSeconds.toFixed(2)} s`,
    ...Object.entries(s.errorsByCode).sort((a, b) => b[1] - a[1]).map(([k, n]) => `             ${String(n).padStart(6)} × ${k} (e.g. ${s.errorExamples[k]})`),
    `  rate       ${s.downloadsPerSecond.toFixed(1)} downloads/s`,
    `  requests   ${s.connections.requests} HTTP requests, ${s.connections.newConnections} on a new connection (${s.connections.newPerDownload === null ? 'n/a' : s.connections.newPerDownload.toFixed(2)} per download)`,
    '',
    `  ${'latency ms'.padEnd(24)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'mean'.padStart(9)}${'max'.padStart(9)}`,
    ...FUNCTIONS.map((f) => {
      const l = s.latencyMs[f];
      const name = f === 'es10' ? 'eUICC (ES10, client)' : f === 'total' ? 'total per download' : f;
      return `  ${name.padEnd(24)}${l.p50.toFixed(1).padStart(9)}${l.p99.toFixed(1).padStart(9)}${l.mean.toFixed(1).padStart(9)}${l.max.toFixed(1).padStart(9)}`;
    }),
    '',
    `  CPU of the timed run          ms/download   total s  % core`,
    row('client (bench process)', cpu.client, cpu.client.workerThreadsPerDownloadMs === null ? '' : `of which worker threads ${cpu.client.workerThreadsPerDownloadMs.toFixed(2)} ms`),
    row(`server${cpu.server ? ` (${cpu.server.pids.length === 1 ? `pid ${cpu.server.pids[0]}` : `${cpu.server.pids.length} processes`})` : ''}`, cpu.server, cpu.server ? cpu.server.how : 'unknown pid: give --server-pid'),
    row('PostgreSQL (db backends)', pg, pg ? `${pg.database}: ${pg.seen} backends, ${pg.started} started and ${pg.exited} ended during the run` : c.database.kind === 'postgres' ? 'give --database-url to count its backends' : c.database.kind === 'pglite' ? 'PGlite runs inside the server process: counted as server' : ''),
    ...(pg?.perDownload ? [`    ${''.padEnd(30)}${''.padStart(8)}  per download: ${pg.perDownload.transactions} transactions, rows ${pg.perDownload.rowsInserted} inserted, ${pg.perDownload.rowsUpdated} updated, ${pg.perDownload.rowsDeleted} deleted`] : []),
    `    ${'total'.padEnd(30)}${f2(cpu.totalPerDownloadMs).padStart(8)}${''.padStart(18)}${cpu.cpuBoundDownloadsPerSecond === null ? '' : `  → CPU-bound estimate ${cpu.cpuBoundDownloadsPerSecond.toFixed(0)} downloads/s on ${c.cpus} CPUs`}`,
    `    not counted: ${pg ? `PostgreSQL's shared processes (all databases) ${pg.sharedProcessesPerDownloadMs.toFixed(2)} ms/download, ` : ''}other processes on the machine ${s.machine.otherCpuSeconds === null ? 'n/a' : `${s.machine.otherCpuSeconds.toFixed(2)} s`}`,
    `  server RSS ${mb(s.server.rssBytes)} at the end, peak ${mb(s.server.peakRssBytes)}`,
    `  machine    ${s.machine.busyPercentOfAllCpus === null ? 'n/a' : `${s.machine.busyPercentOfAllCpus.toFixed(0)}% of all CPUs busy`} during the run; load average ${s.machine.loadavgStart.map((x) => x.toFixed(2)).join(' ')} at the start, ${s.machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')} at the end`,
    '',
  ];
  const k = s.cryptoOnly;
  if ('skipped' in k) {
    lines.push(`  crypto-only  skipped: ${k.skipped}`);
  } else {
    lines.push(
      `  crypto-only  ${k.cpuMs.toFixed(3)} ms CPU per download (${k.wallMs.toFixed(3)} ms wall): ${k.curve}, profile package ${k.uppBytes} B, metadata ${k.metadataBytes} B (as served; seen ${k.sizesSeen.uppBytes.join('–')} B and ${k.sizesSeen.metadataBytes.join('–')} B)`,
      `               ${k.where}, ${k.iterations} iterations after ${k.warmup}; machine ${k.machineBusyPercentOfAllCpus === null ? 'n/a' : `${k.machineBusyPercentOfAllCpus.toFixed(0)}%`} busy, load average ${k.loadavg.map((x) => x.toFixed(2)).join(' ')}`,
      `               ${k.cpuMsWithoutChain.toFixed(3)} ms without verifying the EUM and eUICC certificates, which the server does once per eUICC (${k.distinctEuiccs} distinct eUICCs here)`,
      `  server CPU per download / crypto-only = ${k.serverCpuRatio === null ? 'n/a' : k.serverCpuRatio.toFixed(1)}${k.serverCpuRatioWithoutChain === null ? '' : ` (${k.serverCpuRatioWithoutChain.toFixed(1)} against the crypto without the certificate chain)`}`,
      `  crypto steps (CPU ms, timed one by one):`,
      ...k.steps.map((x) => `    ${x.step.padEnd(34)}${x.ms.toFixed(3).padStart(8)}`),
    );
  }
  if (s.profile) {
    lines.push(
      '',
      `  server CPU profile (${s.profile.files.length} file${s.profile.files.length === 1 ? '' : 's'} in ${s.profile.files[0] ? s.profile.files[0].replace(/\/[^/]*$/, '') : '?'}):`,
      '    (V8 samples on wall time: on a busy machine, time the server is preempted inside a system call,',
      '    e.g. a writev that wakes a PostgreSQL backend, is charged to that call)',
      ...formatProfile(s.profile, '    '),
    );
  }
  console.log(lines.join('\n'));
}

/** What the timed run measured, and how the run was set up. */
export interface Measured {
  argv: string[];
  opts: Options;
  url: string;
  child: ChildServer | undefined;
  smdpAddress: string;
  database: { kind: string; name: string | null; note: string };
  euiccs: string;
  orders: string;
  results: PhaseResults;
  /** Wall seconds of the timed run. */
  wall: number;
  /** CPU seconds of the bench process over the run. */
  clientCpu: number;
  serverProcs: ServerProcesses | undefined;
  srv0: { cpu: number; rss: number; pids: number[] } | undefined;
  srv1: { cpu: number; rss: number; pids: number[] } | undefined;
  pgCpu: PgCpu | undefined;
  busy0: number | undefined;
  busy1: number | undefined;
  peakRss: number;
  /** /health after the run. */
  h1: { database?: string; rss?: number } | undefined;
  loadStart: number[];
  loadEnd: number[];
}

/** The summary of the timed run (cryptoOnly still to be measured). */
export function summarize(m: Measured): Summary {
  const { argv, opts, url, child, smdpAddress, results, wall, clientCpu, serverProcs, srv0, srv1, pgCpu, busy0, busy1, peakRss, h1, loadStart, loadEnd } = m;
  const { okCount, errorCount, errorsByCode, errorExamples, samples, phaseStats } = results;
  const how = m.euiccs;
  const ordersHow = m.orders;
  const { kind: dbKind, name: dbName, note: dbNote } = m.database;
  const per = (x: number) => (okCount > 0 ? (1000 * x) / okCount : 0);
  const usage = (seconds: number): PerDownload => ({ seconds: r2(seconds), percentOfOneCore: r1((100 * seconds) / wall), perDownloadMs: r3(per(seconds)) });
  const threadSum = phaseStats.every((p) => p.threadCpu !== undefined) ? phaseStats.reduce((a, p) => a + p.threadCpu!, 0) : null;
  const serverCpu = srv0 && srv1 ? Math.max(0, srv1.cpu - srv0.cpu) : null;
  const pgSeconds = pgCpu ? pgCpu.backendsCpu : null;
  const total = serverCpu === null ? null : clientCpu + serverCpu + (pgSeconds ?? 0);
  const busy = busy0 !== undefined && busy1 !== undefined ? busy1 - busy0 : undefined;

  const latencyMs = {} as Summary['latencyMs'];
  for (const f of FUNCTIONS) {
    const sorted = Float64Array.from(samples[f]).sort();
    const sum = sorted.reduce((a, b) => a + b, 0);
    latencyMs[f] = { p50: r2(percentile(sorted, 50)), p99: r2(percentile(sorted, 99)), mean: r2(sorted.length ? sum / sorted.length : 0), max: r2(sorted.length ? sorted[sorted.length - 1]! : 0) };
  }
  const requests = phaseStats.reduce((a, p) => a + p.requests, 0);
  const newConnections = phaseStats.reduce((a, p) => a + p.newConnections, 0);
  return {
    command: { argv: [...argv], line: shellLine(argv) },
    config: {
      url,
      server: child ? 'started' : 'given',
      ...(child ? { serverCommand: child.commandLine } : {}),
      smdpAddress,
      workers: opts.workers,
      devicesPerWorker: opts.devices,
      curve: opts.curve,
      tls: opts.tls,
      connections: opts.freshConnections ? 'fresh' : 'keep-alive',
      database: { kind: h1?.database ?? dbKind, name: dbName, note: dbNote },
      euiccs: how,
      orders: ordersHow,
      warmup: opts.warmup,
      ...(opts.downloads !== undefined ? { downloads: opts.downloads } : {}),
      ...(opts.duration !== undefined ? { durationSeconds: opts.duration } : {}),
      cpus: cpus().length,
      node: process.version,
    },
    downloads: okCount,
    errors: errorCount,
    errorsByCode: { ...errorsByCode },
    errorExamples: { ...errorExamples },
    wallSeconds: r2(wall),
    downloadsPerSecond: r1(okCount / wall),
    latencyMs,
    connections: { requests, newConnections, newPerDownload: okCount ? r2(newConnections / okCount) : null },
    cpu: {
      client: { ...usage(clientCpu), workerThreadsSeconds: threadSum === null ? null : r2(threadSum), workerThreadsPerDownloadMs: threadSum === null ? null : r3(per(threadSum)) },
      server: serverCpu === null ? null : { ...usage(serverCpu), pids: srv1!.pids, how: serverProcs!.how },
      postgres: pgCpu
        ? {
            ...usage(pgCpu.backendsCpu),
            database: pgCpu.database,
            byType: Object.fromEntries(Object.entries(pgCpu.byType).map(([k, v]) => [k, r2(v)])),
            seen: pgCpu.seen,
            started: pgCpu.started,
            exited: pgCpu.exited,
            unreadable: pgCpu.unreadable,
            sharedProcessesSeconds: r2(pgCpu.sharedCpu),
            sharedProcessesPerDownloadMs: r3(per(pgCpu.sharedCpu)),
            perDownload:
              pgCpu.stats && okCount
                ? {
                    transactions: r1((pgCpu.stats.commits + pgCpu.stats.rollbacks) / okCount),
                    rowsInserted: r1(pgCpu.stats.rowsInserted / okCount),
                    rowsUpdated: r1(pgCpu.stats.rowsUpdated / okCount),
                    rowsDeleted: r1(pgCpu.stats.rowsDeleted / okCount),
                  }
                : null,
          }
        : null,
      totalPerDownloadMs: total === null || !okCount ? null : r3(per(total)),
      cpuBoundDownloadsPerSecond: total ? r1((cpus().length * okCount) / total) : null,
    },
    server: {
      rssBytes: srv1?.rss ?? (typeof h1?.rss === 'number' ? h1.rss : null),
      peakRssBytes: Math.max(peakRss, srv1?.rss ?? 0, typeof h1?.rss === 'number' ? h1.rss : 0) || null,
    },
    machine: {
      busyPercentOfAllCpus: busy === undefined ? null : r1((100 * busy) / (wall * cpus().length)),
      otherCpuSeconds: busy === undefined || serverCpu === null ? null : r2(Math.max(0, busy - clientCpu - serverCpu - (pgSeconds ?? 0) - (pgCpu?.sharedCpu ?? 0))),
      loadavgStart: loadStart.map(r2),
      loadavgEnd: loadEnd.map(r2),
    },
    cryptoOnly: { skipped: '--crypto-iterations 0' },
  };
}

/**
 * The crypto-only cost, in a process of its own, after the timed run (the server idle, still up),
 * and the server's CPU per download divided by it.
 */
export async function measureCryptoOnly(
  summary: Summary,
  m: { opts: Options; results: PhaseResults; child: ChildServer | undefined; smdpAddress: string; distinctEuiccs: number },
  log: (s: string) => void,
): Promise<void> {
  const { opts, child, smdpAddress, distinctEuiccs } = m;
  const { uppSizes, metadataSizes } = m.results;
  const mean = (xs: number[], dflt: number) => (xs.length ? Math.round(xs.reduce((a, b) => a + b, 0) / xs.length) : dflt);
  const range = (xs: number[]): [number, number] => (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 0]);
  const sizes = { upp: mean(uppSizes, 0), metadata: mean(metadataSizes, 0) };
  if (!sizes.upp || !sizes.metadata) {
    summary.cryptoOnly = { skipped: 'no profile package sizes (no complete download)' };
  } else {
    log(`crypto-only: ${opts.cryptoIterations} iterations in a process of its own`);
    const b0 = machineBusy();
    const w0 = performance.now();
    const k = await runCryptoCost(opts, sizes, child?.certsDir ?? opts.certs, smdpAddress);
    const kWall = (performance.now() - w0) / 1000;
    const b1 = machineBusy();
    const serverPer = summary.cpu.server?.perDownloadMs ?? null;
    summary.cryptoOnly = {
      ...k,
      cpuMs: r3(k.cpuMs),
      wallMs: r3(k.wallMs),
      cpuMsWithoutChain: r3(k.cpuMsWithoutChain),
      steps: k.steps.map((x) => ({ step: x.step, ms: r3(x.ms) })),
      where: `in a process of its own (node dist/src/bench/crypto-cost.js, pid ${k.pid}) on this machine right after the timed run, the server idle`,
      sizesSeen: { uppBytes: range(uppSizes), metadataBytes: range(metadataSizes) },
      distinctEuiccs,
      machineBusyPercentOfAllCpus: b0 !== undefined && b1 !== undefined ? r1((100 * (b1 - b0)) / (kWall * cpus().length)) : null,
      loadavg: loadAverages().map(r2),
      serverCpuRatio: serverPer === null ? null : r1(serverPer / k.cpuMs),
      serverCpuRatioWithoutChain: serverPer === null ? null : r1(serverPer / k.cpuMsWithoutChain),
    };
  }
}

/** The server's CPU profile over the timed run (--server-cpu-prof): the server is stopped, which writes it. */
export async function serverProfile(summary: Summary, cpuProfDir: string, child: ChildServer, fromUs: number, toUs: number, log: (s: string) => void): Promise<void> {
  await child.stop();
  const dir = resolve(cpuProfDir);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).mtimeMs >= child.startedAt);
  if (files.length) {
    summary.profile = { ...summarizeProfile(files.map(readProfile), { fromUs, toUs, top: 20 }), files };
  } else {
    log(`no .cpuprofile written in ${dir}`);
  }
}
