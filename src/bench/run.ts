#!/usr/bin/env node
/**
 * `npm run bench`: N simulated devices (virtual eUICC + LPA, in worker threads) run complete
 * downloads — initiateAuthentication, authenticateClient, getBoundProfilePackage and the PIR's
 * handleNotification — against a running SM-DP+ (--url), or against one it starts itself, and print
 * downloads/s, p50/p99 per ES9+ function and the server's RSS.
 *
 * The URL it connects to is separate from the SM-DP+ address it presents, and the eUICC
 * credentials and trusted CI come from a folder, so the same client can measure another SM-DP+.
 * Loops are bounded (a number of downloads or a duration) and traffic goes only to the URL given,
 * or to loopback for the server it starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { addressHost } from '../config.js';
import type { CurveName } from '../crypto/curves.js';
import { Certificate } from '../crypto/x509.js';
import { HttpClient } from '../http/client.js';
import { eidWithCheckDigits } from '../pki/generate.js';
import { CURVE_NAMES, certPath, keyPath, layoutFiles } from '../pki/layout.js';
import { parseActivationCode } from '../rsp/activation-code.js';
import { VirtualEuicc } from '../sim/euicc.js';
import type { CardState } from '../sim/state.js';
import type { FromWorker, ToWorker, WorkerConfig } from './worker.js';

const USAGE = `mock-smdp benchmark: simulated devices run complete downloads against an SM-DP+

  npm run bench -- [options]

Target
  --url URL              a running SM-DP+ (default: start one: node dist/src/cli.js serve on a free
                         loopback port, temp data dir, DATABASE_URL if set, stopped at the end)
  --smdp-address A       smdpAddress presented in initiateAuthentication (default the server's)
  --tls | --plain-http   HTTPS (default) or plain HTTP, for the server the bench starts
  --ca FILE              PEM certificate(s) to trust for TLS (default the PKI folder's CI certificates)
  --insecure             accept any TLS certificate
  --server-node-args=S   extra node flags for the started server, e.g. --server-node-args="--cpu-prof"
Load
  --workers W            worker threads (default 2)
  --devices D            concurrent virtual eUICCs per worker (default 8)
  --downloads N          timed downloads (default 2000)
  --duration S           stop after S seconds instead (with --downloads too: whichever comes first)
  --warmup N             downloads before the timed run, not counted (default 50)
  --curve C              P-256 (default) or brainpoolP256r1
Credentials and orders
  --certs DIR            PKI folder with an EUM key: each device gets a fresh eUICC certificate
                         (default: the started server's PKI, or ./certs with --url)
  --euicc-dir DIR        existing eUICC credentials (e.g. ../shared/sgp26); all devices share its EID
  --codes FILE           activation codes, one a line (default: orders created through POST /admin/orders)
Output
  --json                 machine-readable summary on stdout
  -h, --help`;

const FUNCTIONS = ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'es10', 'total'] as const;
type Metric = (typeof FUNCTIONS)[number];
const ORDER_BATCH = 500;

interface Options {
  url?: string;
  smdpAddress?: string;
  tls: boolean;
  ca?: string;
  insecure: boolean;
  serverNodeArgs: string[];
  workers: number;
  devices: number;
  downloads?: number;
  duration?: number;
  warmup: number;
  curve: CurveName;
  certs?: string;
  euiccDir?: string;
  codes?: string;
  json: boolean;
}

class UsageError extends Error {}

function positiveInt(v: string | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}: ${v}`);
  return n;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string' },
      'smdp-address': { type: 'string' },
      tls: { type: 'boolean' },
      'plain-http': { type: 'boolean' },
      ca: { type: 'string' },
      insecure: { type: 'boolean' },
      'server-node-args': { type: 'string' },
      workers: { type: 'string' },
      devices: { type: 'string' },
      downloads: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      curve: { type: 'string' },
      certs: { type: 'string' },
      'euicc-dir': { type: 'string' },
      codes: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return undefined;
  if (values.tls && values['plain-http']) throw new UsageError('--tls and --plain-http exclude each other');
  if (values.certs && values['euicc-dir']) throw new UsageError('--certs and --euicc-dir exclude each other');
  const curve = (values.curve ?? 'P-256') as CurveName;
  if (!CURVE_NAMES.includes(curve)) throw new UsageError(`--curve must be one of ${CURVE_NAMES.join(', ')}`);
  if (values.url) {
    const u = new URL(values.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('--url must be http(s)://');
    if (values.tls || values['plain-http']) throw new UsageError('--tls/--plain-http apply to the server the bench starts; with --url the scheme decides');
    if (values['server-node-args']) throw new UsageError('--server-node-args applies to the server the bench starts');
  }
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && !(duration > 0)) throw new UsageError(`--duration must be > 0 seconds: ${values.duration}`);
  const downloads = positiveInt(values.downloads, 'downloads');
  return {
    ...(values.url ? { url: values.url.replace(/\/+$/, '') } : {}),
    ...(values['smdp-address'] ? { smdpAddress: values['smdp-address'] } : {}),
    tls: values.url ? new URL(values.url).protocol === 'https:' : !values['plain-http'],
    ...(values.ca ? { ca: values.ca } : {}),
    insecure: !!values.insecure,
    serverNodeArgs: values['server-node-args']?.split(/\s+/).filter(Boolean) ?? [],
    workers: positiveInt(values.workers, 'workers') ?? 2,
    devices: positiveInt(values.devices, 'devices') ?? 8,
    ...(downloads !== undefined || duration === undefined ? { downloads: downloads ?? 2000 } : {}),
    ...(duration !== undefined ? { duration } : {}),
    warmup: positiveInt(values.warmup, 'warmup', 0) ?? 50,
    curve,
    ...(values.certs ? { certs: values.certs } : {}),
    ...(values['euicc-dir'] ? { euiccDir: values['euicc-dir'] } : {}),
    ...(values.codes ? { codes: values.codes } : {}),
    json: !!values.json,
  };
}

// ---------------------------------------------------------------------------------------------
// The server the bench starts

interface ChildServer {
  proc: ChildProcess;
  pid: number;
  url: string;
  smdpAddress: string;
  certsDir: string;
  tmp: string;
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

async function startChildServer(o: Options, log: (s: string) => void): Promise<ChildServer> {
  const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-bench-'));
  const port = await freePort();
  const smdpAddress = o.smdpAddress ?? `localhost:${port}`;
  // The server's PKI: --certs, else an --euicc-dir that is a whole PKI folder (its CI must be the
  // one the eUICCs trust), else a test PKI generated into the temp folder.
  const certsDir = o.certs ?? (o.euiccDir && existsSync(join(o.euiccDir, 'CertificateIssuer')) ? o.euiccDir : join(tmp, 'certs'));
  const cli = fileURLToPath(new URL('../cli.js', import.meta.url));
  const args = [...o.serverNodeArgs, cli, 'serve', '--host', '127.0.0.1', '--port', String(port), '--address', smdpAddress, '--certs', certsDir, '--data', join(tmp, 'data')];
  if (!o.tls) args.push('--plain-http');
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', TLS: o.tls ? '1' : '0' };
  delete env.PORT;
  delete env.SMDP_ADDRESS;
  log(`starting the server: node ${args.map((a) => (a === cli ? 'dist/src/cli.js' : a)).join(' ')}${env.DATABASE_URL ? ' (DATABASE_URL set)' : ''}`);
  // Its own process group, so that a Ctrl-C in the terminal stops the loops first (the bench stops
  // the server afterwards); killed with the bench if that exits any other way.
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
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
  return { proc, pid: proc.pid!, url, smdpAddress, certsDir, tmp, stop };
}

/** VmRSS / VmHWM (bytes) and utime+stime (seconds) of a local process, from /proc. */
function procStats(pid: number): { rss?: number; hwm?: number; cpu?: number } {
  const out: { rss?: number; hwm?: number; cpu?: number } = {};
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => {
      const m = status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'));
      return m ? Number(m[1]) * 1024 : undefined;
    };
    const rss = kb('VmRSS');
    const hwm = kb('VmHWM');
    if (rss !== undefined) out.rss = rss;
    if (hwm !== undefined) out.hwm = hwm;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12]: utime, stime (fields 14 and 15 of stat), in clock ticks (100/s on Linux)
    out.cpu = (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    // not Linux, or the process is gone
  }
  return out;
}

/** Busy CPU seconds of the whole machine (all CPUs) from /proc/stat, and of local PostgreSQL processes. */
function machineStats(): { busy?: number; postgres?: number } {
  const out: { busy?: number; postgres?: number } = {};
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    out.busy = (f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3]! - f[4]!) / 100;
    let pg = 0;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (!stat.includes('(postgres)')) continue;
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        pg += (Number(fields[11]) + Number(fields[12])) / 100;
      } catch {
        // gone
      }
    }
    out.postgres = pg;
  } catch {
    // not Linux
  }
  return out;
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

interface Summary {
  command: string;
  config: {
    url: string;
    server: 'started' | 'given';
    smdpAddress: string;
    workers: number;
    devicesPerWorker: number;
    curve: CurveName;
    tls: boolean;
    keepAlive: true;
    database: string;
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
  clientCpuSeconds: number;
  clientCpuPercentOfOneCore: number;
  server: { pid?: number; rssBytes: number | null; peakRssBytes: number | null; cpuSeconds: number | null; cpuPercentOfOneCore: number | null };
  /** This machine during the timed run: busy CPU of all CPUs, of local PostgreSQL processes, and of everything but the bench, its server and PostgreSQL. */
  machine: { busyPercentOfAllCpus: number | null; postgresCpuSeconds: number | null; otherCpuSeconds: number | null };
  /**
   * CPU time per complete download (ms) of the bench's devices, the server and local PostgreSQL, and
   * the rate these would allow if they had every CPU of this machine to themselves (an estimate
   * that still means something on a machine shared with other work).
   */
  cpuPerDownloadMs: { client: number; server: number | null; postgres: number | null; cpuBoundDownloadsPerSecond: number | null };
}

function percentile(sorted: Float64Array, p: number): number {
  if (!sorted.length) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

const r1 = (x: number) => Math.round(x * 10) / 10;
const r2 = (x: number) => Math.round(x * 100) / 100;
const mb = (b: number | null | undefined) => (b === null || b === undefined ? 'n/a' : `${(b / 1048576).toFixed(1)} MiB`);

function printSummary(s: Summary): void {
  const c = s.config;
  const lines = [
    `mock-smdp bench: ${s.command}`,
    `  target     ${c.url} (${c.server === 'started' ? 'started by the bench' : 'given'}), smdpAddress ${c.smdpAddress}, database ${c.database}`,
    `  config     ${c.workers} workers × ${c.devicesPerWorker} devices, curve ${c.curve}, TLS ${c.tls ? 'on' : 'off'}, HTTP keep-alive, ${c.cpus} CPUs, node ${c.node}`,
    `  eUICCs     ${c.euiccs}; orders: ${c.orders}`,
    `  run        ${c.downloads !== undefined ? `${c.downloads} downloads` : ''}${c.downloads !== undefined && c.durationSeconds !== undefined ? ' or ' : ''}${c.durationSeconds !== undefined ? `${c.durationSeconds} s` : ''} after ${c.warmup} warm-up downloads`,
    '',
    `  downloads  ${s.downloads} complete, ${s.errors} failed`,
    ...Object.entries(s.errorsByCode).sort((a, b) => b[1] - a[1]).map(([k, n]) => `             ${String(n).padStart(6)} × ${k} (e.g. ${s.errorExamples[k]})`),
    `  wall       ${s.wallSeconds.toFixed(2)} s`,
    `  rate       ${s.downloadsPerSecond.toFixed(1)} downloads/s`,
    '',
    `  ${'ms'.padEnd(24)}${'p50'.padStart(9)}${'p99'.padStart(9)}${'mean'.padStart(9)}${'max'.padStart(9)}`,
    ...FUNCTIONS.map((f) => {
      const l = s.latencyMs[f];
      const name = f === 'es10' ? 'eUICC (ES10, client)' : f === 'total' ? 'total per download' : f;
      return `  ${name.padEnd(24)}${l.p50.toFixed(1).padStart(9)}${l.p99.toFixed(1).padStart(9)}${l.mean.toFixed(1).padStart(9)}${l.max.toFixed(1).padStart(9)}`;
    }),
    '',
    `  client CPU ${s.clientCpuSeconds.toFixed(2)} s (${s.clientCpuPercentOfOneCore.toFixed(0)}% of one core)`,
    `  server CPU ${s.server.cpuSeconds === null ? 'n/a' : `${s.server.cpuSeconds.toFixed(2)} s (${s.server.cpuPercentOfOneCore!.toFixed(0)}% of one core)`}`,
    `  server RSS ${mb(s.server.rssBytes)} at the end, peak ${mb(s.server.peakRssBytes)}`,
    `  per download ${s.cpuPerDownloadMs.client.toFixed(2)} ms client CPU, ${s.cpuPerDownloadMs.server === null ? 'n/a' : s.cpuPerDownloadMs.server.toFixed(2)} ms server${s.cpuPerDownloadMs.postgres ? `, ${s.cpuPerDownloadMs.postgres.toFixed(2)} ms local PostgreSQL` : ''}${s.cpuPerDownloadMs.cpuBoundDownloadsPerSecond === null ? '' : ` → CPU-bound estimate ${s.cpuPerDownloadMs.cpuBoundDownloadsPerSecond.toFixed(0)} downloads/s on ${s.config.cpus} CPUs`}`,
    `  machine    ${s.machine.busyPercentOfAllCpus === null ? 'n/a' : `${s.machine.busyPercentOfAllCpus.toFixed(0)}% of all CPUs busy`}${s.machine.postgresCpuSeconds ? `; local PostgreSQL ${s.machine.postgresCpuSeconds.toFixed(2)} s CPU` : ''}${s.machine.otherCpuSeconds !== null ? `; other processes ${s.machine.otherCpuSeconds.toFixed(2)} s CPU` : ''}`,
  ];
  console.log(lines.join('\n'));
}

function machineSummary(m0: ReturnType<typeof machineStats>, m1: ReturnType<typeof machineStats>, wall: number, clientCpu: number, serverCpu: number | null): Summary['machine'] {
  if (m0.busy === undefined || m1.busy === undefined) return { busyPercentOfAllCpus: null, postgresCpuSeconds: null, otherCpuSeconds: null };
  const busy = m1.busy - m0.busy;
  const pg = m0.postgres !== undefined && m1.postgres !== undefined ? Math.max(0, m1.postgres - m0.postgres) : null;
  return {
    busyPercentOfAllCpus: r1((100 * busy) / (wall * cpus().length)),
    postgresCpuSeconds: pg === null ? null : r2(pg),
    otherCpuSeconds: serverCpu === null ? null : r2(Math.max(0, busy - clientCpu - serverCpu - (pg ?? 0))),
  };
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
  const command = `npm run bench --${argv.length ? ` ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')}` : ''}`;

  let child: ChildServer | undefined;
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
    if (!opts.url) child = await startChildServer(opts, log);
    const url = opts.url ?? child!.url;
    const pkiDir = opts.euiccDir ?? opts.certs ?? child?.certsDir ?? 'certs';
    const ca = opts.ca ? [readFileSync(opts.ca, 'utf8')] : ciPems(pkiDir);

    // What the server says about itself (ours answers smdpAddress, database and rss).
    // (Always a servername for https: HttpClient passes checkServerIdentity: undefined without one, which tls.connect rejects.)
    const probe = new HttpClient({ baseUrl: url, ca, verifyTls: false, servername: addressHost(opts.smdpAddress ?? child?.smdpAddress ?? 'localhost'), timeoutMs: 10_000 });
    const health = async (): Promise<{ smdpAddress?: string; database?: string; rss?: number } | undefined> => {
      try {
        const r = await probe.get<{ smdpAddress?: string; database?: string; rss?: number }>('/health');
        return r.status === 200 && r.json && typeof r.json === 'object' ? r.json : undefined;
      } catch {
        return undefined;
      }
    };
    const h0 = await health();

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
    let okCount = 0;
    const errorsByCode: Record<string, number> = {};
    const errorExamples: Record<string, string> = {};
    let errorCount = 0;
    let idle = 0;
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
                  } else {
                    errorCount++;
                    errorsByCode[r.error] = (errorsByCode[r.error] ?? 0) + 1;
                    errorExamples[r.error] ??= r.message;
                  }
                }
                break;
              case 'idle':
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

    log(`timed run: ${opts.downloads !== undefined ? `${opts.downloads} downloads` : `${opts.duration} s`} with ${opts.workers} × ${opts.devices} devices`);
    const cpu0 = process.cpuUsage();
    const srv0 = child ? procStats(child.pid) : {};
    const m0 = machineStats();
    let peakRss = 0;
    const progressEvery = 5000;
    let lastProgress = performance.now();
    const sampler = setInterval(() => {
      if (child) peakRss = Math.max(peakRss, procStats(child.pid).rss ?? 0);
      else void health().then((h) => typeof h?.rss === 'number' && (peakRss = Math.max(peakRss, h.rss)));
      if (performance.now() - lastProgress >= progressEvery) {
        lastProgress = performance.now();
        log(`  … ${okCount} complete, ${errorCount} failed`);
      }
    }, 1000);
    const wall = await runPhase(opts.downloads, opts.duration);
    clearInterval(sampler);
    const cpu = process.cpuUsage(cpu0);
    const m1 = machineStats();
    const clientCpu = (cpu.user + cpu.system) / 1e6;

    let server: Summary['server'];
    const h1 = await health();
    if (child) {
      const s1 = procStats(child.pid);
      const serverCpu = s1.cpu !== undefined && srv0.cpu !== undefined ? s1.cpu - srv0.cpu : null;
      server = {
        pid: child.pid,
        rssBytes: s1.rss ?? null,
        peakRssBytes: Math.max(peakRss, s1.hwm ?? 0, s1.rss ?? 0) || null,
        cpuSeconds: serverCpu,
        cpuPercentOfOneCore: serverCpu === null ? null : (100 * serverCpu) / wall,
      };
    } else {
      const rss = typeof h1?.rss === 'number' ? h1.rss : null;
      server = { rssBytes: rss, peakRssBytes: rss === null ? null : Math.max(peakRss, rss), cpuSeconds: null, cpuPercentOfOneCore: null };
    }

    const latencyMs = {} as Summary['latencyMs'];
    for (const f of FUNCTIONS) {
      const sorted = Float64Array.from(samples[f]).sort();
      const sum = sorted.reduce((a, b) => a + b, 0);
      latencyMs[f] = { p50: r2(percentile(sorted, 50)), p99: r2(percentile(sorted, 99)), mean: r2(sorted.length ? sum / sorted.length : 0), max: r2(sorted.length ? sorted[sorted.length - 1]! : 0) };
    }
    const summary: Summary = {
      command,
      config: {
        url,
        server: child ? 'started' : 'given',
        smdpAddress,
        workers: opts.workers,
        devicesPerWorker: opts.devices,
        curve: opts.curve,
        tls: opts.tls,
        keepAlive: true,
        database: h1?.database ?? h0?.database ?? 'n/a',
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
      clientCpuSeconds: r2(clientCpu),
      clientCpuPercentOfOneCore: r1((100 * clientCpu) / wall),
      server: { ...server, cpuSeconds: server.cpuSeconds === null ? null : r2(server.cpuSeconds), cpuPercentOfOneCore: server.cpuPercentOfOneCore === null ? null : r1(server.cpuPercentOfOneCore) },
      machine: machineSummary(m0, m1, wall, clientCpu, server.cpuSeconds),
      cpuPerDownloadMs: { client: 0, server: null, postgres: null, cpuBoundDownloadsPerSecond: null },
    };
    if (okCount > 0) {
      const per = (x: number | null) => (x === null ? null : r2((1000 * x) / okCount));
      // Local PostgreSQL processes count when the server uses PostgreSQL (they may serve others too).
      const pg = summary.config.database === 'postgres' ? summary.machine.postgresCpuSeconds : null;
      const total = server.cpuSeconds === null ? null : clientCpu + server.cpuSeconds + (pg ?? 0);
      summary.cpuPerDownloadMs = {
        client: per(clientCpu)!,
        server: per(server.cpuSeconds),
        postgres: per(pg),
        cpuBoundDownloadsPerSecond: total ? r1((cpus().length * okCount) / total) : null,
      };
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
    await child?.stop();
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
