#!/usr/bin/env node
/**
 * `npm run bench`: N simulated devices (virtual eUICC + LPA, in worker threads) run complete
 * downloads — initiateAuthentication, authenticateClient, getBoundProfilePackage and the PIR's
 * handleNotification — against a running SM-DP+ (--url), or against one it starts itself, and print
 * downloads/s, p50/p99 per ES9+ function, CPU per download of the bench (client), the server (a
 * cluster's primary and children summed) and the PostgreSQL backends of the server's database, the
 * crypto-only cost of one download (crypto-cost.ts) and the ratio of the server's CPU to it.
 *
 * The URL it connects to is separate from the SM-DP+ address it presents, and the eUICC
 * credentials and trusted CI come from a folder, so the same client can measure another SM-DP+.
 * Loops are bounded (a number of downloads or a duration) and traffic goes only to the URL given,
 * or to loopback for the server it starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { addressHost } from '../config.js';
import type { CurveName } from '../crypto/curves.js';
import { Certificate } from '../crypto/x509.js';
import { HttpClient } from '../http/client.js';
import { eidWithCheckDigits } from '../pki/generate.js';
import { certPath, keyPath, layoutFiles } from '../pki/layout.js';
import { parseActivationCode } from '../rsp/activation-code.js';
import { VirtualEuicc } from '../sim/euicc.js';
import type { CardState } from '../sim/state.js';
import type { CryptoCost } from './crypto-cost.js';
import { parseOptions, shellLine, USAGE, UsageError, type Options } from './options.js';
import { createBenchDatabase, databaseOf, PgBackendMonitor, type PgCpu } from './pg-monitor.js';
import { formatProfile, readProfile, summarizeProfile, type ProfileSummary } from './profile.js';
import { isLocalHost, listeningPids, loadAverages, machineBusy, procStat, treeSample } from './proc.js';
import type { FromWorker, PhaseStats, ToWorker, WorkerConfig } from './worker.js';

const FUNCTIONS = ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'es10', 'total'] as const;
type Metric = (typeof FUNCTIONS)[number];
const ORDER_BATCH = 500;

// ---------------------------------------------------------------------------------------------
// The server the bench starts

interface ChildServer {
  proc: ChildProcess;
  pid: number;
  url: string;
  smdpAddress: string;
  certsDir: string;
  tmp: string;
  /** The command line it was started with (paths as given). */
  commandLine: string;
  startedAt: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startChildServer(o: Options, databaseUrl: string | undefined, log: (s: string) => void): Promise<ChildServer> {
  const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-bench-'));
  const port = await freePort();
  const smdpAddress = o.smdpAddress ?? `localhost:${port}`;
  // The server's PKI: --certs, else an --euicc-dir that is a whole PKI folder (its CI must be the
  // one the eUICCs trust), else a test PKI generated into the temp folder.
  const certsDir = o.certs ?? (o.euiccDir && existsSync(join(o.euiccDir, 'CertificateIssuer')) ? o.euiccDir : join(tmp, 'certs'));
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const nodeArgs = [...o.serverNodeArgs];
  if (o.serverCpuProf) {
    mkdirSync(o.serverCpuProf, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${resolve(o.serverCpuProf)}`);
  }
  const serveArgs = ['serve', '--host', '127.0.0.1', '--port', String(port), '--address', smdpAddress, '--certs', certsDir, '--data', join(tmp, 'data')];
  if (!o.tls) serveArgs.push('--plain-http');
  serveArgs.push(...o.serverArgs);
  const args = [...nodeArgs, cli, ...serveArgs];
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', TLS: o.tls ? '1' : '0' };
  delete env.PORT;
  delete env.SMDP_ADDRESS;
  if (databaseUrl) env.DATABASE_URL = databaseUrl;
  else delete env.DATABASE_URL;
  const commandLine = `node ${shellLine([...nodeArgs, 'dist/src/cli.js', ...serveArgs])}`;
  log(`starting the server: ${commandLine}${databaseUrl ? ` (DATABASE_URL …/${databaseOf(databaseUrl)})` : ' (PGlite)'}`);
  // Its own process group, so that a Ctrl-C in the terminal stops the loops first (the bench stops
  // the server afterwards); killed with the bench if that exits any other way.
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const startedAt = Date.now();
  const killOnExit = () => proc.kill('SIGKILL');
  process.once('exit', killOnExit);
  const forward = (chunk: Buffer) => process.stderr.write(chunk.toString().replace(/^(?=.)/gm, '[server] '));
  proc.stdout!.on('data', forward);
  proc.stderr!.on('data', forward);
  let exited: number | null | undefined;
  const exitP = new Promise<void>((resolve) => proc.once('exit', (code) => ((exited = code), resolve())));
  const url = `${o.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === undefined) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exitP;
      clearTimeout(t);
    }
    process.off('exit', killOnExit);
    rmSync(tmp, { recursive: true, force: true });
  };
  // Ready when /health answers (the PKI may be generated and PGlite initialised first).
  const deadline = Date.now() + 300_000;
  for (;;) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`the server exited (code ${exited}) before it answered /health`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('the server did not answer /health within 300 s');
    }
    const probe = new HttpClient({ baseUrl: url, verifyTls: false, servername: addressHost(smdpAddress), keepAlive: false, timeoutMs: 2000 });
    try {
      const r = await probe.get('/health');
      if (r.status === 200) break;
    } catch {
      // not listening yet
    } finally {
      probe.close();
    }
    await sleep(200);
  }
  return { proc, pid: proc.pid!, url, smdpAddress, certsDir, tmp, commandLine, startedAt, stop };
}

/** The server's process tree(s): which pids, and how the bench knows them. */
interface ServerProcesses {
  roots: number[];
  how: string;
}

/**
 * The server's process: the one the bench started, --server-pid, the process listening on the URL's
 * port when that is local, else the pid /health reports (ours does) when it runs here — for a
 * node:cluster worker (NODE_UNIQUE_ID in its environment), its primary, so that all workers count.
 */
function serverProcesses(o: Options, child: ChildServer | undefined, healthPid: unknown): ServerProcesses | undefined {
  if (child) return { roots: [child.pid], how: 'started by the bench' };
  if (o.serverPid !== undefined) {
    if (!procStat(o.serverPid)) throw new UsageError(`--server-pid ${o.serverPid}: no such process on this machine`);
    return { roots: [o.serverPid], how: '--server-pid' };
  }
  const u = new URL(o.url!);
  if (isLocalHost(u.hostname)) {
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    const roots = listeningPids(port);
    if (roots.length) return { roots, how: `discovered: listening on port ${port}` };
  }
  if (typeof healthPid === 'number' && Number.isInteger(healthPid) && procStat(healthPid)) {
    let env = '';
    try {
      env = readFileSync(`/proc/${healthPid}/environ`, 'latin1');
    } catch {
      // another user's process: taken as is
    }
    const ppid = procStat(healthPid)!.ppid;
    if (env.split('\0').some((v) => v.startsWith('NODE_UNIQUE_ID=')) && procStat(ppid)) {
      return { roots: [ppid], how: `discovered: /health pid ${healthPid}, a cluster worker of ${ppid}` };
    }
    return { roots: [healthPid], how: `discovered: /health pid ${healthPid}` };
  }
  return undefined;
}

/** CPU seconds and RSS of the server's trees (a cluster's primary with all its children). */
function serverSample(p: ServerProcesses | undefined): { cpu: number; rss: number; pids: number[] } | undefined {
  if (!p) return undefined;
  let cpu = 0;
  let rss = 0;
  const pids: number[] = [];
  for (const root of p.roots) {
    const t = treeSample(root);
    if (!t) return undefined;
    cpu += t.cpu;
    rss += t.rss;
    pids.push(...t.pids);
  }
  return { cpu, rss, pids };
}

/** The crypto-only cost, measured in a process of its own (node dist/src/bench/crypto-cost.js). */
async function runCryptoCost(o: Options, sizes: { upp: number; metadata: number }, pkiDir: string | undefined, smdpAddress: string): Promise<CryptoCost> {
  const script = fileURLToPath(new URL('./crypto-cost.js', import.meta.url));
  const args = [script, '--json', '--curve', o.curve, '--upp-bytes', String(sizes.upp), '--metadata-bytes', String(sizes.metadata), '--iterations', String(o.cryptoIterations), '--smdp-address', smdpAddress];
  if (pkiDir) args.push('--pki', pkiDir);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    p.once('error', reject);
    p.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`crypto-only measurement exited with code ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as CryptoCost);
      } catch {
        reject(new Error(`crypto-only measurement printed no JSON: ${out.slice(0, 200)}`));
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Credentials, CA, activation codes

function pemOf(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
}

/** The CI certificates of a PKI folder, as PEM (the DP TLS certificate chains up to one of them). */
function ciPems(dir: string): string[] {
  const out: string[] = [];
  for (const f of Object.values(layoutFiles.ci)) {
    const p = join(dir, f);
    if (existsSync(p)) out.push(pemOf(Certificate.parse(readFileSync(p)).raw));
  }
  return out;
}

/** A random EID under the folder's EUM's first permitted EIN. */
function randomEid(dir: string, curve: CurveName): string {
  let ein = '89049032';
  const f = join(dir, certPath('eum', curve));
  if (existsSync(f)) {
    const p = Certificate.parse(readFileSync(f)).permittedEins[0];
    if (p && /^\d{1,29}$/.test(p)) ein = p;
  }
  let digits = ein;
  while (digits.length < 30) digits += String(randomInt(10));
  return eidWithCheckDigits(digits);
}

/** One card state per device, with embedded credentials (issued once here, or the folder's). */
async function deviceCards(o: Options, pkiDir: string, count: number): Promise<{ cards: CardState[]; how: string }> {
  if (o.euiccDir) {
    const card = await VirtualEuicc.create({ pkiDir: o.euiccDir, curves: [o.curve], embed: true });
    const state = card.toJSON();
    return { cards: Array.from({ length: count }, () => state), how: `shared EID ${card.eid} from --euicc-dir` };
  }
  if (!existsSync(join(pkiDir, certPath('eum', o.curve))) || !existsSync(join(pkiDir, keyPath('eum', o.curve)))) {
    throw new UsageError(`no ${o.curve} EUM certificate and key in ${pkiDir} to issue eUICC certificates with (--certs DIR or --euicc-dir DIR)`);
  }
  const cards: CardState[] = [];
  const eids = new Set<string>();
  while (cards.length < count) {
    const eid = randomEid(pkiDir, o.curve);
    if (eids.has(eid)) continue;
    eids.add(eid);
    cards.push((await VirtualEuicc.create({ pkiDir, eid, curves: [o.curve] })).toJSON());
  }
  return { cards, how: `${count} eUICC certificates issued from the PKI folder` };
}

function adminHeaders(): Record<string, string> {
  return process.env.ADMIN_TOKEN ? { authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : {};
}

/** Creates `count` downloadable orders through POST /admin/orders; answers their activation codes. */
async function createOrders(admin: HttpClient, count: number): Promise<string[]> {
  const r = await admin.post<{ orders?: Array<{ activationCode: string }>; message?: string }>('/admin/orders', { count }, adminHeaders());
  if (r.status !== 201 || !r.json?.orders) {
    throw new Error(`POST /admin/orders answered HTTP ${r.status}: ${r.json?.message ?? r.text.slice(0, 200)}${r.status === 401 ? ' (set ADMIN_TOKEN, or use --codes)' : ''}`);
  }
  return r.json.orders.map((x) => x.activationCode);
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

interface PerDownload {
  seconds: number;
  percentOfOneCore: number;
  perDownloadMs: number;
}

interface Summary {
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

function printSummary(s: Summary): void {
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

// ---------------------------------------------------------------------------------------------
// Main

async function main(argv: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(argv);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (!o) {
    console.log(USAGE);
    return 0;
  }
  const opts = o;
  const log = (s: string) => process.stderr.write(`${s}\n`);

  let child: ChildServer | undefined;
  let benchDb: Awaited<ReturnType<typeof createBenchDatabase>> | undefined;
  let monitor: PgBackendMonitor | undefined;
  const workers: Worker[] = [];
  let interrupted = false;
  let onInterrupt = () => {};
  const sigint = () => {
    if (interrupted) {
      // (a server still starting is killed by its exit hook)
      void (child ? child.stop() : Promise.resolve()).finally(() => process.exit(130));
      return;
    }
    interrupted = true;
    log('interrupted: stopping the loops (Ctrl-C again to abort)');
    onInterrupt();
  };
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigint);

  try {
    // The database: for the server the bench starts, a fresh one in the given PostgreSQL (only its
    // backends are counted, nobody else's data is touched), or PGlite.
    let serverDbUrl: string | undefined;
    let dbNote = '';
    if (!opts.url) {
      const given = opts.pglite ? undefined : (opts.databaseUrl ?? process.env.DATABASE_URL);
      if (given && !opts.reuseDatabase) {
        try {
          benchDb = await createBenchDatabase(given);
        } catch (err) {
          throw new UsageError(`cannot create a database for the run in ${databaseOf(given)}'s server: ${(err as Error).message} (--reuse-database uses it as is)`);
        }
        serverDbUrl = benchDb.url;
        dbNote = 'created for this run, dropped at the end';
      } else if (given) {
        serverDbUrl = given;
        dbNote = 'as given (--reuse-database); anything else using it is counted too';
      }
      child = await startChildServer(opts, serverDbUrl, log);
    } else if (opts.databaseUrl) {
      serverDbUrl = opts.databaseUrl;
      dbNote = 'the server\'s, from --database-url';
    }
    const url = opts.url ?? child!.url;
    const pkiDir = opts.euiccDir ?? opts.certs ?? child?.certsDir ?? 'certs';
    const ca = opts.ca ? [readFileSync(opts.ca, 'utf8')] : ciPems(pkiDir);

    // What the server says about itself (ours answers smdpAddress, database, pid and rss).
    // (Always a servername for https: HttpClient passes checkServerIdentity: undefined without one, which tls.connect rejects.)
    const probe = new HttpClient({ baseUrl: url, ca, verifyTls: false, servername: addressHost(opts.smdpAddress ?? child?.smdpAddress ?? 'localhost'), timeoutMs: 10_000 });
    const health = async (): Promise<{ smdpAddress?: string; database?: string; rss?: number; pid?: unknown } | undefined> => {
      try {
        const r = await probe.get<{ smdpAddress?: string; database?: string; rss?: number; pid?: unknown }>('/health');
        return r.status === 200 && r.json && typeof r.json === 'object' ? r.json : undefined;
      } catch {
        return undefined;
      }
    };
    const h0 = await health();
    const serverProcs = serverProcesses(opts, child, h0?.pid);
    if (!serverProcs) log(`the server's pid is unknown (not local, or not readable): its CPU is n/a; give --server-pid`);
    const dbKind = h0?.database ?? (serverDbUrl ? 'postgres' : child ? 'pglite' : 'n/a');
    if (serverDbUrl && dbKind === 'postgres') monitor = await PgBackendMonitor.connect(serverDbUrl, databaseOf(serverDbUrl));

    // Activation codes: a file, or orders created through our admin API.
    let fileCodes: string[] | undefined;
    if (opts.codes) {
      fileCodes = readFileSync(opts.codes, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
      if (!fileCodes.length) throw new UsageError(`no activation codes in ${opts.codes}`);
    }
    const smdpAddress = opts.smdpAddress ?? child?.smdpAddress ?? h0?.smdpAddress ?? (fileCodes ? parseActivationCode(fileCodes[0]!).smdpAddress : undefined);
    if (!smdpAddress) throw new UsageError('cannot tell the SM-DP+ address: give --smdp-address');
    const servername = opts.tls ? addressHost(smdpAddress) : undefined;
    const http = { ca, ...(servername ? { servername } : {}), verifyTls: !opts.insecure };
    const admin = new HttpClient({ baseUrl: url, ...http, timeoutMs: 300_000 });

    const nDevices = opts.workers * opts.devices;
    const t0 = performance.now();
    const { cards, how } = await deviceCards(opts, pkiDir, nDevices);
    log(`${how} (${nDevices} devices, ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const distinctEuiccs = opts.euiccDir ? 1 : nDevices;

    const codes: string[] = fileCodes ?? [];
    let codeIndex = 0;
    const firstBatch = opts.warmup + (opts.downloads ?? Math.max(ORDER_BATCH, 2 * nDevices));
    let ordersHow = `from ${opts.codes}`;
    if (!fileCodes) {
      const tc = performance.now();
      for (let left = firstBatch; left > 0; left -= ORDER_BATCH) codes.push(...(await createOrders(admin, Math.min(ORDER_BATCH, left))));
      ordersHow = `${codes.length} created through POST /admin/orders in ${((performance.now() - tc) / 1000).toFixed(1)} s${opts.downloads === undefined ? ', more during the run' : ''}`;
      log(`orders: ${ordersHow}`);
    } else if (codes.length < firstBatch) {
      log(`warning: ${codes.length} activation codes for ${firstBatch} downloads; the run stops when they are used up`);
    }
    // Duration runs without a count create more orders while they run (one batch at a time).
    let refilling: Promise<void> | undefined;
    let canRefill = !fileCodes && opts.downloads === undefined;
    const refill = () =>
      (refilling ??= createOrders(admin, ORDER_BATCH)
        .then((c) => void codes.push(...c))
        .catch((err) => {
          log(`order refill failed, no more orders: ${(err as Error).message}`);
          canRefill = false;
        })
        .finally(() => {
          refilling = undefined;
          dispense();
        }));

    // Phase state: how many codes may still be handed out, until when, and who is waiting for some.
    let budget = 0;
    let deadline = Infinity;
    let finished = true;
    const pending = new Map<number, number>(); // worker index → codes asked for
    const send = (i: number, m: ToWorker) => workers[i]!.postMessage(m);
    const dispense = () => {
      if (!finished && (budget <= 0 || performance.now() >= deadline || interrupted || (codeIndex >= codes.length && !canRefill))) finished = true;
      for (const [i, want] of pending) {
        if (finished) {
          pending.delete(i);
          send(i, { type: 'codes', codes: [], done: true });
          continue;
        }
        const n = Math.min(want, budget, codes.length - codeIndex);
        if (n > 0) {
          send(i, { type: 'codes', codes: codes.slice(codeIndex, codeIndex + n), done: false });
          codeIndex += n;
          budget -= n;
          if (want - n > 0) pending.set(i, want - n);
          else pending.delete(i);
        }
      }
      if (!finished && budget <= 0) return dispense();
      if (!finished && canRefill && codes.length - codeIndex < ORDER_BATCH / 2) void refill();
    };
    onInterrupt = () => dispense();

    // Results of the current phase.
    const samples: Record<Metric, number[]> = Object.fromEntries(FUNCTIONS.map((f) => [f, []])) as unknown as Record<Metric, number[]>;
    const uppSizes: number[] = [];
    const metadataSizes: number[] = [];
    let okCount = 0;
    const errorsByCode: Record<string, number> = {};
    const errorExamples: Record<string, string> = {};
    let errorCount = 0;
    let idle = 0;
    const phaseStats: PhaseStats[] = [];
    let phaseEnd: () => void = () => {};
    let fatal: Error | undefined;

    const workerUrl = new URL('./worker.js', import.meta.url);
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < opts.workers; i++) {
      const data: WorkerConfig = {
        index: i,
        url,
        ...http,
        ...(smdpAddress ? { smdpAddress } : {}),
        cards: cards.slice(i * opts.devices, (i + 1) * opts.devices),
        freshConnections: opts.freshConnections,
      };
      const w = new Worker(workerUrl, { workerData: data });
      workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.on('message', (m: FromWorker) => {
            switch (m.type) {
              case 'ready':
                resolve();
                break;
              case 'need':
                pending.set(i, (pending.get(i) ?? 0) + m.count);
                dispense();
                break;
              case 'results':
                for (const r of m.results) {
                  if (r.ok) {
                    okCount++;
                    r.t.forEach((v, k) => samples[FUNCTIONS[k]!].push(v));
                    if (r.uppBytes > 0) uppSizes.push(r.uppBytes);
                    if (r.metadataBytes > 0) metadataSizes.push(r.metadataBytes);
                  } else {
                    errorCount++;
                    errorsByCode[r.error] = (errorsByCode[r.error] ?? 0) + 1;
                    errorExamples[r.error] ??= r.message;
                  }
                }
                break;
              case 'idle':
                phaseStats.push(m.stats);
                if (++idle === opts.workers) phaseEnd();
                break;
              case 'fatal':
                fatal = new Error(`worker ${i}: ${m.message}`);
                if (++idle === opts.workers) phaseEnd();
                break;
            }
          });
          w.once('error', (err) => {
            reject(err);
            fatal = err;
            if (++idle === opts.workers) phaseEnd();
          });
        }),
      );
    }
    await Promise.all(ready);

    const runPhase = async (count: number | undefined, seconds: number | undefined) => {
      for (const f of FUNCTIONS) samples[f].length = 0;
      uppSizes.length = 0;
      metadataSizes.length = 0;
      phaseStats.length = 0;
      okCount = 0;
      errorCount = 0;
      for (const k of Object.keys(errorsByCode)) delete errorsByCode[k];
      for (const k of Object.keys(errorExamples)) delete errorExamples[k];
      idle = 0;
      budget = count ?? Infinity;
      const start = performance.now();
      deadline = seconds === undefined ? Infinity : start + seconds * 1000;
      finished = false;
      const done = new Promise<void>((r) => (phaseEnd = r));
      const timer = seconds === undefined ? undefined : setTimeout(dispense, seconds * 1000 + 1);
      for (let i = 0; i < workers.length; i++) send(i, { type: 'phase' });
      await done;
      if (timer) clearTimeout(timer);
      if (fatal) throw fatal;
      return (performance.now() - start) / 1000;
    };

    if (opts.warmup > 0 && !interrupted) {
      log(`warm-up: ${opts.warmup} downloads`);
      await runPhase(opts.warmup, undefined);
      if (errorCount) log(`warm-up: ${errorCount} failed (${Object.entries(errorsByCode).map(([k, n]) => `${n} × ${k}, e.g. ${errorExamples[k]}`).join('; ')})`);
    }

    log(`timed run: ${opts.downloads !== undefined ? `${opts.downloads} downloads` : `${opts.duration} s`} with ${opts.workers} × ${opts.devices} devices${opts.freshConnections ? ', fresh connections' : ''}`);
    const loadStart = loadAverages();
    await monitor?.start();
    const srv0 = serverSample(serverProcs);
    const busy0 = machineBusy();
    const cpu0 = process.cpuUsage();
    const profileFromUs = Number(process.hrtime.bigint() / 1000n);
    let peakRss = srv0?.rss ?? 0;
    const progressEvery = 5000;
    let lastProgress = performance.now();
    const sampler = setInterval(() => {
      if (serverProcs) peakRss = Math.max(peakRss, serverSample(serverProcs)?.rss ?? 0);
      else void health().then((h) => typeof h?.rss === 'number' && (peakRss = Math.max(peakRss, h.rss)));
      if (performance.now() - lastProgress >= progressEvery) {
        lastProgress = performance.now();
        log(`  … ${okCount} complete, ${errorCount} failed`);
      }
    }, 1000);
    const wall = await runPhase(opts.downloads, opts.duration);
    clearInterval(sampler);
    const profileToUs = Number(process.hrtime.bigint() / 1000n);
    const cpu = process.cpuUsage(cpu0);
    const busy1 = machineBusy();
    const srv1 = serverSample(serverProcs);
    const pgCpu = monitor ? await monitor.stop() : undefined;
    const loadEnd = loadAverages();
    const clientCpu = (cpu.user + cpu.system) / 1e6;
    const h1 = await health();

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
    const dbName = serverDbUrl ? databaseOf(serverDbUrl) : null;
    const summary: Summary = {
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
    if (pgCpu?.unreadable) log(`warning: ${pgCpu.unreadable} PostgreSQL backends had no readable /proc entry (PostgreSQL on another machine?): their CPU is missing`);

    // The crypto-only cost, in a process of its own, after the timed run (the server idle, still up).
    if (opts.cryptoIterations > 0 && !interrupted) {
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

    // The server's profile: written when it exits.
    if (child && opts.serverCpuProf) {
      await child.stop();
      const dir = resolve(opts.serverCpuProf);
      const files = readdirSync(dir)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(dir, f))
        .filter((f) => statSync(f).mtimeMs >= child!.startedAt);
      if (files.length) {
        summary.profile = { ...summarizeProfile(files.map(readProfile), { fromUs: profileFromUs, toUs: profileToUs, top: 20 }), files };
      } else {
        log(`no .cpuprofile written in ${dir}`);
      }
    }

    if (opts.json) console.log(JSON.stringify(summary, null, 2));
    else printSummary(summary);
    probe.close();
    admin.close();
    return errorCount > 0 || okCount === 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      return 2;
    }
    console.error(`bench failed: ${(err as Error).stack ?? err}`);
    return 1;
  } finally {
    for (const w of workers) w.postMessage({ type: 'exit' } satisfies ToWorker);
    await Promise.all(workers.map((w) => Promise.race([new Promise((r) => w.once('exit', r)), sleep(2000).then(() => w.terminate())])));
    await monitor?.close();
    await child?.stop();
    if (benchDb) await benchDb.drop().catch((err) => log(`could not drop the bench database ${benchDb!.database}: ${(err as Error).message}`));
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigint);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(err);
    process.exitCode = 1;
  },
);
