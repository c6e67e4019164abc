/** Server configuration: embedded defaults, overridden by environment variables, then by CLI flags. */

export interface Config {
  /** Interface to listen on. */
  listenHost: string;
  port: number;
  /** Serve ES9+ over HTTPS with the DP TLS certificate (false: plain HTTP, behind a TLS proxy). */
  tls: boolean;
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
  /** Bearer token for /admin routes; when unset, /admin accepts loopback callers only. */
  adminToken?: string;
  logLevel: string;
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = intEnv(env.PORT, 8443);
  const host = env.SMDP_HOSTNAME ?? 'localhost';
  return {
    listenHost: env.HOST ?? '0.0.0.0',
    port,
    tls: env.TLS !== '0' && env.TLS !== 'false',
    smdpAddress: env.SMDP_ADDRESS ?? (port === 443 ? host : `${host}:${port}`),
    certsDir: env.CERTS_DIR ?? 'certs',
    dataDir: env.DATA_DIR ?? 'data',
    databaseUrl: env.DATABASE_URL || undefined,
    dbPoolSize: intEnv(env.DB_POOL_SIZE, 10),
    sessionTtlSeconds: intEnv(env.SESSION_TTL_SECONDS, 600),
    adminToken: env.ADMIN_TOKEN || undefined,
    logLevel: env.LOG_LEVEL ?? 'info',
  };
}

function intEnv(v: string | undefined, dflt: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
  return n;
}

/** Host part of an SM-DP+ address (`host[:port]`). */
export function addressHost(address: string): string {
  return address.replace(/:\d+$/, '');
}
