/**
 * Server configuration: embedded defaults, overridden by environment variables, then by CLI flags.
 * Every value is checked here, once: a bad one is a ConfigError whose message is one line naming
 * the variable (or the flag) and the value given, which `mock-smdp` prints as it is.
 */
import { TLS_PROFILES, type TlsProfile } from './tls-profile.js';

/** A bad setting; its message is one line naming the variable (the CLI prints just that). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The certificate folder used when CERTS_DIR / --certs is not given: a test PKI is generated into it when missing. */
export const DEFAULT_CERTS_DIR = 'certs';

export interface Config {
  /** Interface to listen on. */
  listenHost: string;
  port: number;
  /** Serve ES9+ over HTTPS with the DP TLS certificate (false: plain HTTP, behind a TLS proxy). */
  tls: boolean;
  /** TLS settings of the HTTPS listener: 'sgp22' (SGP.22's TLS 1.2 profile) or 'compat' (Node's defaults). */
  tlsProfile: TlsProfile;
  /** The SM-DP+ address (host[:port]) that activation codes carry and smdpAddress must match. */
  smdpAddress: string;
  /**
   * The address (host[:port]) of this server's built-in SM-DS (docs/smds.md); unset: the SM-DP+
   * address (`smdsAddressOf`).
   */
  smdsAddress?: string;
  /**
   * ES12 over mutual TLS (docs/smds.md#es12-authentication). The client certificate chain and key
   * (PEM files) this SM-DP+ presents to an SM-DS (ES12_CLIENT_CERT, ES12_CLIENT_KEY, both or
   * neither); unset: the certs folder's CERT.DP.TLS.
   */
  es12ClientCert?: string;
  es12ClientKey?: string;
  /** PEM file of CA certificates trusted for an external SM-DS's TLS certificate, besides the system's and the folder's CIs (ES12_SMDS_CA). */
  es12SmdsCa?: string;
  /** PEM file of CA certificates the built-in SM-DS accepts ES12 client certificates under, besides the folder's CIs (SMDS_ES12_CLIENT_CA). */
  smdsEs12ClientCa?: string;
  /**
   * PKI folder in the SGP.26 layout. A test PKI is generated into it only when it is the default
   * folder and holds none, or an existing empty folder (src/server.ts ensurePki).
   */
  certsDir: string;
  /** PGlite data folder (used when databaseUrl is unset). */
  dataDir: string;
  databaseUrl?: string;
  dbPoolSize: number;
  /** A PostgreSQL connection that is not established within this time fails (start-up: one line, exit 1). */
  dbConnectTimeoutMs: number;
  /** An RSP session expires this many seconds after its initiateAuthentication. */
  sessionTtlSeconds: number;
  /**
   * Days of history kept: delivered callbacks, and notifications and order events of profiles in a
   * final state, older than this are deleted by the hourly prune (src/db/retention.ts). 0 keeps
   * everything (expired RSP sessions are deleted all the same).
   */
  retentionDays: number;
  /** Server processes on the one port (`serve --workers N`, node:cluster); more than 1 needs PostgreSQL. */
  workers: number;
  /** Bearer token for /admin routes; when unset, /admin accepts loopback callers only. */
  adminToken?: string;
  /** `POST /admin/reset` (empty orders and sessions between CI test cases) is served only when true (RESET_ENABLED=1). */
  resetEnabled: boolean;
  logLevel: string;
  /** 'pretty': one readable line per entry; 'json': pino's JSON lines; 'auto': pretty when stdout is a terminal. */
  logFormat: LogFormat;
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = portEnv(env, 'PORT', 8443);
  const host = hostnameEnv(env, 'SMDP_HOSTNAME', 'localhost');
  const dbUrl = str(env, 'DATABASE_URL');
  return {
    listenHost: listenHostValue('HOST', str(env, 'HOST') ?? '0.0.0.0'),
    port,
    tls: boolEnv(env, 'TLS', true),
    tlsProfile: oneOf('TLS_PROFILE', str(env, 'TLS_PROFILE'), TLS_PROFILES, 'sgp22'),
    smdpAddress: smdpAddressValue('SMDP_ADDRESS', str(env, 'SMDP_ADDRESS') ?? (port === 443 ? host : `${host}:${port}`)),
    smdsAddress: str(env, 'SMDS_ADDRESS') === undefined ? undefined : smdpAddressValue('SMDS_ADDRESS', str(env, 'SMDS_ADDRESS')!),
    ...es12Files(env),
    certsDir: folderValue('CERTS_DIR', str(env, 'CERTS_DIR') ?? DEFAULT_CERTS_DIR),
    dataDir: folderValue('DATA_DIR', str(env, 'DATA_DIR') ?? 'data'),
    databaseUrl: dbUrl === undefined ? undefined : databaseUrlValue('DATABASE_URL', dbUrl),
    dbPoolSize: positiveIntEnv(env, 'DB_POOL_SIZE', 10),
    dbConnectTimeoutMs: positiveIntEnv(env, 'DB_CONNECT_TIMEOUT_SECONDS', 5) * 1000,
    sessionTtlSeconds: positiveIntEnv(env, 'SESSION_TTL_SECONDS', 600),
    retentionDays: intEnv(env, 'RETENTION_DAYS', 7),
    workers: positiveIntEnv(env, 'WORKERS', 1),
    adminToken: str(env, 'ADMIN_TOKEN'),
    resetEnabled: boolEnv(env, 'RESET_ENABLED', false),
    logLevel: oneOf('LOG_LEVEL', str(env, 'LOG_LEVEL'), LOG_LEVELS, 'info'),
    logFormat: oneOf('LOG_FORMAT', str(env, 'LOG_FORMAT'), LOG_FORMATS, 'auto'),
  };
}

/** The ES12 TLS files (docs/smds.md#es12-authentication): paths only; src/smds/es12-tls.ts reads and checks them at start. */
function es12Files(env: NodeJS.ProcessEnv): Pick<Config, 'es12ClientCert' | 'es12ClientKey' | 'es12SmdsCa' | 'smdsEs12ClientCa'> {
  const cert = str(env, 'ES12_CLIENT_CERT');
  const key = str(env, 'ES12_CLIENT_KEY');
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConfigError(`ES12_CLIENT_CERT and ES12_CLIENT_KEY go together: set both (PEM files of the ES12 client certificate and its key) or neither (got only ${cert === undefined ? 'ES12_CLIENT_KEY' : 'ES12_CLIENT_CERT'})`);
  }
  const out: Pick<Config, 'es12ClientCert' | 'es12ClientKey' | 'es12SmdsCa' | 'smdsEs12ClientCa'> = {};
  if (cert !== undefined) out.es12ClientCert = fileValue('ES12_CLIENT_CERT', cert);
  if (key !== undefined) out.es12ClientKey = fileValue('ES12_CLIENT_KEY', key);
  const smdsCa = str(env, 'ES12_SMDS_CA');
  if (smdsCa !== undefined) out.es12SmdsCa = fileValue('ES12_SMDS_CA', smdsCa);
  const clientCa = str(env, 'SMDS_ES12_CLIENT_CA');
  if (clientCa !== undefined) out.smdsEs12ClientCa = fileValue('SMDS_ES12_CLIENT_CA', clientCa);
  return out;
}

/** The options of `mock-smdp serve`, as given on the command line (strings, or true for a switch). */
export interface ServeFlags {
  port?: string;
  host?: string;
  address?: string;
  certs?: string;
  data?: string;
  plainHttp?: boolean;
  workers?: string;
}

/** The configuration of `mock-smdp serve`: the environment's, then the flags' (errors name the flag). */
export function serveConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const c = defaultConfig(env);
  if (flags.port !== undefined) c.port = portValue('--port', flags.port);
  if (flags.host !== undefined) c.listenHost = listenHostValue('--host', flags.host);
  if (flags.certs !== undefined) c.certsDir = folderValue('--certs', flags.certs);
  if (flags.data !== undefined) c.dataDir = folderValue('--data', flags.data);
  if (flags.plainHttp) c.tls = false;
  if (flags.workers !== undefined) c.workers = intValue('--workers', flags.workers, 1);
  if (flags.address !== undefined) c.smdpAddress = smdpAddressValue('--address', flags.address);
  else if (flags.port !== undefined && !str(env, 'SMDP_ADDRESS')) {
    const host = hostnameEnv(env, 'SMDP_HOSTNAME', 'localhost');
    c.smdpAddress = c.port === 443 ? host : `${host}:${c.port}`;
  }
  return c;
}

const show = (v: string) => JSON.stringify(v);

/** A set variable's value; unset and empty are the same (the default). */
function str(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

export function boolValue(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (TRUE.includes(s)) return true;
  if (FALSE.includes(s)) return false;
  throw new ConfigError(`${name} must be one of 1/true/yes/on or 0/false/no/off (got ${show(v)})`);
}

function boolEnv(env: NodeJS.ProcessEnv, name: string, dflt: boolean): boolean {
  const v = str(env, name);
  return v === undefined ? dflt : boolValue(name, v);
}

function intValue(name: string, v: string, min: number): number {
  const s = v.trim();
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new ConfigError(`${name} must be a ${min > 0 ? 'positive' : 'non-negative'} integer (got ${show(v)})`);
  }
  return n;
}

function intEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = str(env, name);
  return v === undefined ? dflt : intValue(name, v, 0);
}

function positiveIntEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = str(env, name);
  return v === undefined ? dflt : intValue(name, v, 1);
}

function portValue(name: string, v: string): number {
  const s = v.trim();
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new ConfigError(`${name} must be a port number 0-65535 (got ${show(v)})`);
  return n;
}

function portEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = str(env, name);
  return v === undefined ? dflt : portValue(name, v);
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(`${name} must be one of ${allowed.join(', ')} (got ${show(v)})`);
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function hostnameEnv(env: NodeJS.ProcessEnv, name: string, dflt: string): string {
  const v = str(env, name);
  if (v === undefined) return dflt;
  if (!HOSTNAME.test(v)) throw new ConfigError(`${name} must be a host name such as smdp.example.com (got ${show(v)})`);
  return v;
}

/** An IP address or a host name to listen on. */
function listenHostValue(name: string, v: string): string {
  if (HOSTNAME.test(v) || /^[0-9a-fA-F:.]+$/.test(v)) return v;
  throw new ConfigError(`${name} must be an IP address or host name to listen on, e.g. 0.0.0.0 or 127.0.0.1 (got ${show(v)})`);
}

/** The built-in SM-DS's address: SMDS_ADDRESS, or else the SM-DP+ address. */
export function smdsAddressOf(c: Pick<Config, 'smdpAddress' | 'smdsAddress'>): string {
  return c.smdsAddress ?? c.smdpAddress;
}

/** SGP.22's SM-DP+ address: a host name with an optional port (host[:port]). */
function smdpAddressValue(name: string, v: string): string {
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m || !HOSTNAME.test(m[1]!) || (m[2] !== undefined && Number(m[2]) > 65535)) {
    throw new ConfigError(`${name} must be a host name with an optional port, e.g. smdp.example.com:8443 (got ${show(v)})`);
  }
  return v;
}

function fileValue(name: string, v: string): string {
  if (v.includes('\0')) throw new ConfigError(`${name} must be a file path (got ${show(v)})`);
  return v;
}

function folderValue(name: string, v: string): string {
  if (v.includes('\0')) throw new ConfigError(`${name} must be a folder path (got ${show(v)})`);
  return v;
}

/** The URL with its password hidden, for messages. */
export function redactUrl(v: string): string {
  try {
    const u = new URL(v);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return v.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@');
  }
}

function databaseUrlValue(name: string, v: string): string {
  const bad = (why: string) =>
    new ConfigError(`${name} must be a URL like postgres://user:password@host:5432/database: ${why} (got ${show(redactUrl(v))})`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw bad(`the scheme is ${u.protocol.replace(/:$/, '')}, not postgres`);
  // A socket folder may be given as ?host=/run/postgresql instead of a host name.
  if (!u.hostname && !u.searchParams.get('host')) throw bad('no host');
  if (u.port && Number(u.port) > 65535) throw bad('bad port');
  return v;
}

/** Host part of an SM-DP+ address (`host[:port]`). */
export function addressHost(address: string): string {
  return address.replace(/:\d+$/, '');
}
