/**
 * The SM-DP+ the bench starts (`node dist/src/cli.js serve` on a free loopback port, its own
 * process group) and the server processes whose CPU the bench counts: the one it started,
 * --server-pid, or one it discovers. Also the crypto-only measurement, run as a process of its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addressHost } from '../config.js';
import { HttpClient } from '../http/client.js';
import type { CryptoCost } from './crypto-cost.js';
import { shellLine, UsageError, type Options } from './options.js';
import { databaseOf } from './pg-monitor.js';
import { isLocalHost, listeningPids, procStat, treeSample } from './proc.js';

export interface ChildServer {
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

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startChildServer(o: Options, databaseUrl: string | undefined, log: (s: string) => void): Promise<ChildServer> {
  const tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-bench-'));
  const port = await freePort();
  const smdpAddress = o.smdpAddress ?? `localhost:${port}`;
  // The server's PKI: --certs, else an --euicc-dir that is a whole PKI folder (its CI must be the
  // one the eUICCs trust), else a test PKI generated into the temp folder.
  const certsDir = o.certs ?? (o.euiccDir && existsSync(join(o.euiccDir, 'CertificateIssuer')) ? o.euiccDir : join(tmp, 'certs'));
  // (serve generates a test PKI into an empty folder, and refuses one that does not exist)
  if (certsDir === join(tmp, 'certs')) mkdirSync(certsDir);
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
export interface ServerProcesses {
  roots: number[];
  how: string;
}

/**
 * The server's process: the one the bench started, --server-pid, the process listening on the URL's
 * port when that is local, else the pid /health reports (ours does) when it runs here — for a
 * node:cluster worker (NODE_UNIQUE_ID in its environment), its primary, so that all workers count.
 */
export function serverProcesses(o: Options, child: ChildServer | undefined, healthPid: unknown): ServerProcesses | undefined {
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
export function serverSample(p: ServerProcesses | undefined): { cpu: number; rss: number; pids: number[] } | undefined {
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
export async function runCryptoCost(o: Options, sizes: { upp: number; metadata: number }, pkiDir: string | undefined, smdpAddress: string): Promise<CryptoCost> {
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