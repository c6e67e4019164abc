/**
 * Who may call ES12 on the built-in SM-DS (docs/smds.md#es12-authentication). SGP.22 §2.6 has
 * ES12 over mutual TLS: over HTTPS the caller is the SM-DP+ of its verified client certificate
 * (chained to a CI of the certs folder or SMDS_ES12_CLIENT_CA, role id-rspRole-dp-tls), named in
 * header.functionRequesterIdentifier by one of the certificate's SAN registeredIDs or dNSNames, and
 * on the allow-list: this server's own SM-DP+ (its SM-DP+ OID) or a row of `smds_clients`.
 *
 * On plain HTTP (TLS=0, the test mode without TLS) there is no certificate to check, so an SM-DP+
 * sends a key in `X-API-Key` instead: this server's own is derived from its SK.DPauth (so every
 * process sharing the PKI folder knows it and nothing needs storing); other SM-DP+ servers' keys are
 * made by `addSmdsClient` (only its SHA-256 kept). Over HTTPS a key alone is refused.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Certificate, RSP_ROLE } from '../crypto/x509.js';
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

/**
 * A new SM-DP+ allowed to call ES12 here, by the requester identifier its TLS client certificate
 * names (its SM-DP+ OID or a DNS name); answers its key for plain HTTP (shown once).
 */
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
  check(typeof apiKey === 'string' && apiKey.length > 0 && apiKey.length <= 200, SC.requesterUnknown, 'ES12 on plain HTTP needs the SM-DP+\'s key in X-API-Key');
  let who: string | undefined;
  const own = Buffer.from(digest(ownEs12Key(pki)), 'hex');
  const given = Buffer.from(digest(apiKey), 'hex');
  if (timingSafeEqual(own, given)) who = ownRequester(pki);
  else who = (await q.query<{ requester: string }>('SELECT requester FROM smds_clients WHERE key_digest = $1', [given.toString('hex')]))[0]?.requester;
  if (who === undefined) throw new FunctionFailed(SC.requesterUnknown, 'unknown ES12 key: this SM-DP+ is not allowed to register events here');
  check(requester === who, SC.requesterNotAllowed, `functionRequesterIdentifier must be ${who}, the SM-DP+ of this key`);
  return who;
}

/** The requesters a certificate names: its SAN registeredIDs (the SM-DP+ OID) and dNSNames. */
export function certificateIdentities(der: Buffer): string[] {
  const san = new X509Certificate(der).subjectAltName ?? '';
  return san.split(/,\s*/).flatMap((e) => {
    if (e.startsWith('DNS:')) return [e.slice(4)];
    // Node writes a registeredID as "Registered ID:2.999.10".
    const m = /^Registered ID:([0-9.]+)$/.exec(e);
    return m ? [m[1]!] : [];
  });
}

/** Whether a DER certificate carries a certificate policy (its RSP role). */
function hasPolicy(der: Buffer, oid: string): boolean {
  try {
    return Certificate.parse(der).policies.includes(oid);
  } catch {
    return false;
  }
}

const isAllowed = async (q: Queryable, pki: ServerPki, who: string) =>
  who === ownRequester(pki) || (await q.query('SELECT 1 FROM smds_clients WHERE requester = $1', [who])).length === 1;

/**
 * The caller of an ES12 request over TLS, from its client certificate: none 1.1/1.1; one that does
 * not chain to a trusted CA, or is not a CERT.DP.TLS, 1.1/1.1; a requester the certificate does not
 * name, or one not on the allow-list, 1.1/1.2. This server's own CERT.DP.TLS is recognised by its
 * bytes (the handshake proved its key, which is ours), so an expired one (the SGP.26 set's) still serves.
 */
export async function authenticateByCertificate(q: Queryable, pki: ServerPki, socket: TLSSocket, requester: unknown): Promise<string> {
  const peer = socket.getPeerCertificate();
  const der = peer && 'raw' in peer && Buffer.isBuffer(peer.raw) ? peer.raw : undefined;
  check(der, SC.requesterUnknown, 'ES12 needs mutual TLS: present the SM-DP+\'s TLS client certificate (CERT.DP.TLS)');
  const ownCert = pki.tls?.cert.raw.equals(der) ?? false;
  if (!ownCert) {
    check(socket.authorized, SC.requesterUnknown, `the client certificate is not trusted: ${String(socket.authorizationError ?? 'unverified')} (it must chain to a CI of this server or SMDS_ES12_CLIENT_CA)`);
    check(hasPolicy(der, RSP_ROLE.dpTls), SC.requesterUnknown, 'the client certificate is not an SM-DP+ TLS certificate (policy id-rspRole-dp-tls)');
  }
  const names = certificateIdentities(der);
  check(typeof requester === 'string' && names.includes(requester), SC.requesterNotAllowed,
    `functionRequesterIdentifier must be one the client certificate names (${names.join(', ') || 'none'})`);
  check(await isAllowed(q, pki, requester), SC.requesterNotAllowed, `SM-DP+ ${requester} is not allowed to register events here (POST /admin/smds/clients)`);
  return requester;
}
