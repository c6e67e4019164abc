/** Command line of `npm run bench` (src/bench/run.ts): usage text and option parsing, refusing bad combinations. */
import { parseArgs } from 'node:util';
import type { CurveName } from '../crypto/curves.js';
import { CURVE_NAMES } from '../pki/layout.js';

export const USAGE = `mock-smdp benchmark: simulated devices run complete downloads against an SM-DP+

  npm run bench -- [options]

Target
  --url URL              a running SM-DP+ (default: start one: node dist/src/cli.js serve on a free
                         loopback port, temp data dir, stopped at the end)
  --server-pid PID       with --url: the server's process, for its CPU and RSS (default: the process
                         listening on the URL's port when it is local, else the pid /health reports
                         if it runs here; a cluster's primary and all its children are summed)
  --smdp-address A       smdpAddress presented in initiateAuthentication (default the server's)
  --tls | --plain-http   HTTPS (default) or plain HTTP, for the server the bench starts
  --ca FILE              PEM certificate(s) to trust for TLS (default the PKI folder's CI certificates)
  --insecure             accept any TLS certificate
  --server-args=S        extra arguments for the started server's serve, e.g. --server-args="--workers 2"
  --server-node-args=S   extra node flags for the started server, e.g. --server-node-args="--max-old-space-size=512"
  --server-cpu-prof DIR  profile the started server (node --cpu-prof into DIR) and print the top
                         self-time functions and modules of the timed run
Database
  --database-url URL     PostgreSQL for the started server (default DATABASE_URL; neither: PGlite).
                         The bench creates a fresh database there for the run and drops it at the
                         end. With --url: the database the server uses, for its backends' CPU.
  --reuse-database       the started server uses the database of the URL as is (no fresh one)
  --pglite               the started server uses PGlite even if DATABASE_URL is set
Load
  --workers W            worker threads (default 2)
  --devices D            concurrent virtual eUICCs per worker (default 8)
  --downloads N          timed downloads (default 2000)
  --duration S           stop after S seconds instead (with --downloads too: whichever comes first)
  --warmup N             downloads before the timed run, not counted (default 2000: a fresh server's CPU
                         per download falls for its first few thousand, README "Benchmark")
  --fresh-connections    a new connection (a new TLS connection with TLS) for every ES9+ call, no
                         keep-alive, as lpac does (default: one keep-alive connection per device)
  --curve C              P-256 (default) or brainpoolP256r1
Credentials and orders
  --certs DIR            PKI folder with an EUM key: each device gets a fresh eUICC certificate
                         (default: the started server's PKI, or ./certs with --url)
  --euicc-dir DIR        existing eUICC credentials (e.g. the published SGP.26 folder); all devices share its EID
  --codes FILE           activation codes, one a line (default: orders created through POST /admin/orders)
Crypto-only cost
  --crypto-iterations N  iterations of the server's crypto for one download, timed in a process of
                         its own after the timed run (default 2000; 0: skip)
Output
  --json                 machine-readable summary on stdout (the same figures)
  -h, --help`;

export interface Options {
  url?: string;
  serverPid?: number;
  smdpAddress?: string;
  tls: boolean;
  ca?: string;
  insecure: boolean;
  serverArgs: string[];
  serverNodeArgs: string[];
  serverCpuProf?: string;
  databaseUrl?: string;
  reuseDatabase: boolean;
  pglite: boolean;
  workers: number;
  devices: number;
  downloads?: number;
  duration?: number;
  warmup: number;
  freshConnections: boolean;
  curve: CurveName;
  certs?: string;
  euiccDir?: string;
  codes?: string;
  cryptoIterations: number;
  json: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function int(v: string | undefined, name: string, min = 1): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}: ${v}`);
  return n;
}

const words = (s: string | undefined) => s?.split(/\s+/).filter(Boolean) ?? [];

/** The options of argv; undefined for --help. UsageError with a message naming the option otherwise. */
export function parseOptions(argv: string[]): Options | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        url: { type: 'string' },
        'server-pid': { type: 'string' },
        'smdp-address': { type: 'string' },
        tls: { type: 'boolean' },
        'plain-http': { type: 'boolean' },
        ca: { type: 'string' },
        insecure: { type: 'boolean' },
        'server-args': { type: 'string' },
        'server-node-args': { type: 'string' },
        'server-cpu-prof': { type: 'string' },
        'database-url': { type: 'string' },
        'reuse-database': { type: 'boolean' },
        pglite: { type: 'boolean' },
        workers: { type: 'string' },
        devices: { type: 'string' },
        downloads: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        'fresh-connections': { type: 'boolean' },
        curve: { type: 'string' },
        certs: { type: 'string' },
        'euicc-dir': { type: 'string' },
        codes: { type: 'string' },
        'crypto-iterations': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // node:util's messages name the option ("Unknown option '--x'", "Option '--url <value>' argument missing").
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  if (values.tls && values['plain-http']) throw new UsageError('--tls and --plain-http exclude each other');
  if (values.certs && values['euicc-dir']) throw new UsageError('--certs and --euicc-dir exclude each other');
  const curve = (values.curve ?? 'P-256') as CurveName;
  if (!CURVE_NAMES.includes(curve)) throw new UsageError(`--curve must be one of ${CURVE_NAMES.join(', ')}: ${values.curve}`);
  let url: URL | undefined;
  if (values.url !== undefined) {
    try {
      url = new URL(values.url);
    } catch {
      throw new UsageError(`--url is not a URL: ${values.url}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be http:// or https://: ${values.url}`);
    for (const o of ['tls', 'plain-http', 'server-args', 'server-node-args', 'server-cpu-prof', 'reuse-database', 'pglite'] as const) {
      if (values[o] !== undefined) throw new UsageError(`--${o} applies to the server the bench starts, not to --url (${o === 'tls' || o === 'plain-http' ? 'the URL\'s scheme decides' : 'start that server yourself'})`);
    }
  } else if (values['server-pid'] !== undefined) {
    throw new UsageError('--server-pid goes with --url (the bench knows the pid of the server it starts)');
  }
  if (values['database-url'] !== undefined) {
    let u: URL;
    try {
      u = new URL(values['database-url']);
    } catch {
      throw new UsageError(`--database-url is not a URL: ${values['database-url']}`);
    }
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new UsageError(`--database-url must be postgres://…: ${values['database-url']}`);
    if (values.pglite) throw new UsageError('--pglite and --database-url exclude each other');
  }
  if (values['reuse-database'] && values.pglite) throw new UsageError('--reuse-database and --pglite exclude each other');
  const duration = values.duration === undefined ? undefined : Number(values.duration);
  if (duration !== undefined && !(duration > 0 && Number.isFinite(duration))) throw new UsageError(`--duration must be a number of seconds > 0: ${values.duration}`);
  const downloads = int(values.downloads, 'downloads');
  const serverPid = int(values['server-pid'], 'server-pid');
  return {
    ...(values.url ? { url: values.url.replace(/\/+$/, '') } : {}),
    ...(serverPid !== undefined ? { serverPid } : {}),
    ...(values['smdp-address'] ? { smdpAddress: values['smdp-address'] } : {}),
    tls: url ? url.protocol === 'https:' : !values['plain-http'],
    ...(values.ca ? { ca: values.ca } : {}),
    insecure: !!values.insecure,
    serverArgs: words(values['server-args']),
    serverNodeArgs: words(values['server-node-args']),
    ...(values['server-cpu-prof'] ? { serverCpuProf: values['server-cpu-prof'] } : {}),
    ...(values['database-url'] ? { databaseUrl: values['database-url'] } : {}),
    reuseDatabase: !!values['reuse-database'],
    pglite: !!values.pglite,
    workers: int(values.workers, 'workers') ?? 2,
    devices: int(values.devices, 'devices') ?? 8,
    ...(downloads !== undefined || duration === undefined ? { downloads: downloads ?? 2000 } : {}),
    ...(duration !== undefined ? { duration } : {}),
    warmup: int(values.warmup, 'warmup', 0) ?? 2000,
    freshConnections: !!values['fresh-connections'],
    curve,
    ...(values.certs ? { certs: values.certs } : {}),
    ...(values['euicc-dir'] ? { euiccDir: values['euicc-dir'] } : {}),
    ...(values.codes ? { codes: values.codes } : {}),
    cryptoIterations: int(values['crypto-iterations'], 'crypto-iterations', 0) ?? 2000,
    json: !!values.json,
  };
}

/** argv as one shell-safe line. */
export function shellLine(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
