/**
 * ES2+ callers (operators): who they are, how they authenticate (API key stored as SHA-256, and/or
 * the SHA-256 fingerprint of a TLS client certificate), their callback URL and order limits.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { normaliseIccid } from '../rsp/identifiers.js';

export interface OperatorRow {
  id: string;
  name: string;
  api_key_sha256: Buffer | null;
  client_cert_sha256: string | null;
  callback_url: string | null;
  cc_max_attempts: number;
  max_download_attempts: number;
  order_ttl_seconds: number | null;
  created_at: Date;
}

export class OperatorError extends Error {
  override name = 'OperatorError';
  constructor(
    readonly code: 'invalid' | 'conflict' | 'notFound',
    message: string,
  ) {
    super(message);
  }
}

export interface NewOperator {
  /** The functionRequesterIdentifier the operator sends. */
  id: string;
  name: string;
  callbackUrl?: string;
  /** SHA-256 fingerprint of the operator's TLS client certificate (hex, colons allowed). */
  clientCertSha256?: string;
  ccMaxAttempts?: number;
  maxDownloadAttempts?: number;
  orderTtlSeconds?: number;
  /** Whether to issue an API key (default true). */
  apiKey?: boolean;
}

export const OPERATOR_ID_RE = /^[\x21-\x7e]{1,64}$/;

export function apiKeyDigest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** Lower-case hex without separators, from `AB:CD:…` (Node's fingerprint256) or plain hex. */
export function normaliseFingerprint(fp: string): string {
  const hex = fp.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new OperatorError('invalid', `not a SHA-256 fingerprint: ${fp}`);
  return hex;
}

/** Longest order lifetime an operator may set: ten years (and within the integer column). */
export const MAX_SECONDS = 10 * 365 * 24 * 3600;

function positive(name: string, v: number | undefined, max = 1000): number | null {
  if (v === undefined) return null;
  if (!Number.isInteger(v) || v <= 0 || v > max) throw new OperatorError('invalid', `${name} must be an integer of 1..${max}`);
  return v;
}

/** Printable text without NUL or lone surrogates (PostgreSQL refuses NUL). */
const TEXT_OK = /^[^\u0000\uD800-\uDFFF]*$/u;

/** Creates an operator; returns it with its API key (shown once, only its SHA-256 is stored). */
export async function createOperator(q: Queryable, o: NewOperator): Promise<{ operator: OperatorRow; apiKey?: string }> {
  if (!OPERATOR_ID_RE.test(o.id)) throw new OperatorError('invalid', 'operator id must be 1-64 printable ASCII characters without spaces');
  if (!o.name) throw new OperatorError('invalid', 'operator name required');
  if (!TEXT_OK.test(o.name) || (o.callbackUrl !== undefined && !TEXT_OK.test(o.callbackUrl))) {
    throw new OperatorError('invalid', 'operator name and callback URL must not contain NUL or unpaired surrogates');
  }
  if (o.callbackUrl !== undefined) {
    let u: URL;
    try {
      u = new URL(o.callbackUrl);
    } catch {
      throw new OperatorError('invalid', `callback URL is not a URL: ${o.callbackUrl}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OperatorError('invalid', 'callback URL must be http(s)');
  }
  const apiKey = o.apiKey === false ? undefined : `msk_${randomBytes(24).toString('base64url')}`;
  const fp = o.clientCertSha256 ? normaliseFingerprint(o.clientCertSha256) : null;
  const rows = await q.query<OperatorRow>(
    `INSERT INTO operators (id, name, api_key_sha256, client_cert_sha256, callback_url, cc_max_attempts, max_download_attempts, order_ttl_seconds)
     VALUES ($1, $2, $3, $4, $5, COALESCE($6, 3), COALESCE($7, 5), $8)
     ON CONFLICT DO NOTHING RETURNING *`,
    [
      o.id,
      o.name,
      apiKey ? apiKeyDigest(apiKey) : null,
      fp,
      o.callbackUrl ?? null,
      positive('ccMaxAttempts', o.ccMaxAttempts),
      positive('maxDownloadAttempts', o.maxDownloadAttempts),
      positive('orderTtlSeconds', o.orderTtlSeconds, MAX_SECONDS),
    ],
  );
  if (!rows[0]) throw new OperatorError('conflict', `operator ${o.id} (or its certificate) already exists`);
  return { operator: rows[0], ...(apiKey ? { apiKey } : {}) };
}

export async function getOperator(q: Queryable, id: string): Promise<OperatorRow | undefined> {
  return (await q.query<OperatorRow>('SELECT * FROM operators WHERE id = $1', [id]))[0];
}

export async function findOperatorByApiKey(q: Queryable, key: string): Promise<OperatorRow | undefined> {
  if (!key) return undefined;
  return (await q.query<OperatorRow>('SELECT * FROM operators WHERE api_key_sha256 = $1', [apiKeyDigest(key)]))[0];
}

export async function findOperatorByCertFingerprint(q: Queryable, fingerprint: string): Promise<OperatorRow | undefined> {
  let fp: string;
  try {
    fp = normaliseFingerprint(fingerprint);
  } catch {
    return undefined;
  }
  return (await q.query<OperatorRow>('SELECT * FROM operators WHERE client_cert_sha256 = $1', [fp]))[0];
}

export async function listOperators(q: Queryable): Promise<OperatorRow[]> {
  return q.query<OperatorRow>('SELECT * FROM operators ORDER BY id');
}

/** Gives profiles to an operator (inventory set-up, tests). */
export async function assignProfiles(q: Queryable, operatorId: string, iccids: string[]): Promise<void> {
  const norm = iccids.map((i) => normaliseIccid(i));
  await q.query('UPDATE profiles SET operator_id = $1, updated_at = now() WHERE iccid = ANY($2::text[])', [operatorId, norm]);
}

/** The public view: never the key digest. */
export function publicOperator(o: OperatorRow) {
  return {
    id: o.id,
    name: o.name,
    callbackUrl: o.callback_url,
    hasApiKey: o.api_key_sha256 !== null,
    clientCertSha256: o.client_cert_sha256,
    ccMaxAttempts: o.cc_max_attempts,
    maxDownloadAttempts: o.max_download_attempts,
    orderTtlSeconds: o.order_ttl_seconds,
    createdAt: o.created_at.toISOString(),
  };
}
