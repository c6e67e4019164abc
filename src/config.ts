/** Server configuration: embedded defaults, overridden by environment variables, then by CLI flags. */
import { TLS_PROFILES, type TlsProfile } from './tls-profile.js';

/** A bad setting; its message is one line naming the variable (the CLI prints just that). */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

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
  /** PKI folder in the SGP.26 layout (generated on first start when empty). */
  certsDir: string;
  /** PGlite data folder (used when databaseUrl is unset). */
  dataDir: string;
  databaseUrl?: string;
  dbPoolSize: number;
  /** Idle RSP sessions are dropped after this many seconds. */
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
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = intEnv(env, 'PORT', 8443);
  const host = env.SMDP_HOSTNAME ?? 'localhost';
  return {
    listenHost: env.HOST ?? '0.0.0.0',
    port,
    tls: env.TLS !== '0' && env.TLS !== 'false',
    tlsProfile: tlsProfileEnv(env.TLS_PROFILE),
    smdpAddress: env.SMDP_ADDRESS ?? (port === 443 ? host : `${host}:${port}`),
    certsDir: env.CERTS_DIR ?? 'certs',
    dataDir: env.DATA_DIR ?? 'data',
    databaseUrl: env.DATABASE_URL || undefined,
    dbPoolSize: intEnv(env, 'DB_POOL_SIZE', 10),
    sessionTtlSeconds: intEnv(env, 'SESSION_TTL_SECONDS', 600),
    retentionDays: intEnv(env, 'RETENTION_DAYS', 7),
    workers: positiveIntEnv(env, 'WORKERS', 1),
    adminToken: env.ADMIN_TOKEN || undefined,
    resetEnabled: env.RESET_ENABLED === '1' || env.RESET_ENABLED === 'true',
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}

function intEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${name} must be a non-negative integer (got ${JSON.stringify(v)})`);
  return n;
}

function positiveIntEnv(env: NodeJS.ProcessEnv, name: string, dflt: number): number {
  const n = intEnv(env, name, dflt);
  if (n < 1) throw new ConfigError(`${name} must be a positive integer (got ${JSON.stringify(env[name])})`);
  return n;
}

function tlsProfileEnv(v: string | undefined): TlsProfile {
  if (v === undefined || v === '') return 'sgp22';
  if ((TLS_PROFILES as readonly string[]).includes(v)) return v as TlsProfile;
  throw new ConfigError(`TLS_PROFILE must be one of ${TLS_PROFILES.join(', ')} (got ${JSON.stringify(v)})`);
}

/** Host part of an SM-DP+ address (`host[:port]`). */
export function addressHost(address: string): string {
  return address.replace(/:\d+$/, '');
}
