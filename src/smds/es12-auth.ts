/**
 * Who may call ES12 on the built-in SM-DS (docs/smds.md#who-may-register-events). An SM-DP+ sends
 * its key in `X-API-Key` and names itself in header.functionRequesterIdentifier. This server's own
 * SM-DP+ names itself by its SM-DP+ OID and uses a key derived from its SK.DPauth, so every process
 * sharing the PKI folder knows it and nothing needs storing; other SM-DP+ servers are rows of
 * `smds_clients` (a key made by `addSmdsClient`, only its SHA-256 kept).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { ServerPki } from '../pki/load.js';

const digest = (key: string) => createHash('sha256').update(key, 'utf8').digest('hex');

/** The ES12 key of this server's own SM-DP+ (HMAC-SHA256 under the first SK.DPauth, hex). */
export function ownEs12Key(pki: ServerPki): string {
  const sk = pki.credentials[0]!.auth.key.export({ format: 'der', type: 'pkcs8' });
  return createHmac('sha256', sk).update('mock-smdp ES12 client key').digest('hex');
}

/** The requester identifier of this server's own SM-DP+ on ES12: its SM-DP+ OID. */
export const ownRequester = (pki: ServerPki) => pki.smdpOid;

/** A new SM-DP+ allowed to call ES12 here; answers its key (shown once). */
export async function addSmdsClient(q: Queryable, requester: string): Promise<string> {
  const key = `smds_${randomBytes(24).toString('base64url')}`;
  await q.query(
    `INSERT INTO smds_clients (requester, key_digest) VALUES ($1, $2)
     ON CONFLICT (requester) DO UPDATE SET key_digest = EXCLUDED.key_digest`,
    [requester, digest(key)],
  );
  return key;
}

/**
 * The SM-DP+ a key belongs to: this server's own (its OID) or a row of smds_clients; no key or an
 * unknown one is 1.1/1.1. `requester` (the request header's) must be that SM-DP+, else 1.1/1.2.
 */
export async function authenticateSmdp(q: Queryable, pki: ServerPki, apiKey: string | undefined, requester: unknown): Promise<string> {
  check(typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= 200, SC.requesterUnknown, 'ES12 needs the SM-DP+\'s key in X-API-Key');
  let who: string | undefined;
  const own = Buffer.from(digest(ownEs12Key(pki)), 'hex');
  const given = Buffer.from(digest(apiKey), 'hex');
  if (timingSafeEqual(own, given)) who = ownRequester(pki);
  else who = (await q.query<{ requester: string }>('SELECT requester FROM smds_clients WHERE key_digest = $1', [given.toString('hex')]))[0]?.requester;
  if (who === undefined) throw new FunctionFailed(SC.requesterUnknown, 'unknown ES12 key: this SM-DP+ is not allowed to register events here');
  check(requester === who, SC.requesterNotAllowed, `functionRequesterIdentifier must be ${who}, the SM-DP+ of this key`);
  return who;
}
