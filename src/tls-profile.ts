/**
 * TLS settings of the HTTPS listener (ES9+, ES2+, ES11, ES12 and admin share it).
 *
 * `sgp22` (default) is the SM-DP+ server profile of SGP.22 §2.6 (TLS requirements): TLS 1.2 only,
 * cipher suites TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
 * ECDHE on secp256r1, plus brainpoolP256r1 when the DP TLS key is on that curve (in TLS 1.2 the
 * client must list the certificate's curve among its groups, so a brainpool certificate needs it).
 * Anything else (TLS 1.3 or 1.1, AES-256, ChaCha20, RSA suites, X25519 ...) is refused.
 *
 * `compat` keeps Node's defaults, for clients that insist on TLS 1.3.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { ServerOptions } from 'node:https';
import { createSecureContext, type SecureContext, type SecureVersion } from 'node:tls';
import type { TlsCredentials } from './pki/load.js';

export const TLS_PROFILES = ['sgp22', 'compat'] as const;
export type TlsProfile = (typeof TLS_PROFILES)[number];

/** OpenSSL names of the two SGP.22 suites, in preference order. */
export const SGP22_CIPHERS = ['ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES128-SHA256'] as const;

export interface TlsProfileOptions {
  minVersion?: SecureVersion;
  maxVersion?: SecureVersion;
  ciphers?: string;
  ecdhCurve?: string;
  honorCipherOrder?: boolean;
}

/** The TLS options of a profile for a server whose TLS private key is `key` (KeyObject or PEM). */
export function tlsProfileOptions(profile: TlsProfile, key: KeyObject | string): TlsProfileOptions {
  if (profile === 'compat') return {};
  const k = typeof key === 'string' ? createPrivateKey(key) : key;
  const groups = ['P-256'];
  if (k.asymmetricKeyDetails?.namedCurve === 'brainpoolP256r1') groups.push('brainpoolP256r1');
  return {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: SGP22_CIPHERS.join(':'),
    ecdhCurve: groups.join(':'),
    honorCipherOrder: true,
  };
}

export interface HttpsServerExtras {
  /**
   * The built-in SM-DS's CERT.DS.TLS, served (SNI) to clients that name one of its DNS names that
   * CERT.DP.TLS does not carry (docs/smds.md#its-certificates).
   */
  dsTls?: Pick<TlsCredentials, 'keyPem' | 'chainPem' | 'cert'>;
  /** More CA certificates (PEM) an ES12 client certificate may chain to, besides the folder's CIs. */
  extraClientCas?: string[];
}

/**
 * node:https server options: the DP TLS certificate chain and key with the profile's settings.
 *
 * The listener also asks every client for a certificate without requiring one (requestCert, not
 * rejectUnauthorized): an SM-DP+ calling the built-in SM-DS's ES12 authenticates by its CERT.DP.TLS
 * (mutual TLS, SGP.22 §2.6), checked against the CIs by the ES12 route
 * (src/smds/es12-auth.ts), while LPAs, operators and the console, which present none, go on as
 * before on the same port.
 */
export function httpsServerOptions(profile: TlsProfile, tls: Pick<TlsCredentials, 'keyPem' | 'chainPem'> & Partial<Pick<TlsCredentials, 'ciPems'>>, extras: HttpsServerExtras = {}): ServerOptions {
  const ca = [...(tls.ciPems ?? []), ...(extras.extraClientCas ?? [])];
  const clientAuth = { requestCert: true, rejectUnauthorized: false, ...(ca.length ? { ca } : {}) };
  const options: ServerOptions = { key: tls.keyPem, cert: tls.chainPem, ...tlsProfileOptions(profile, tls.keyPem), ...clientAuth };
  const ds = extras.dsTls;
  if (ds) {
    const own = new Set(tlsNames(tls.chainPem));
    const names = new Set(ds.cert.sanDnsNames.map((n) => n.toLowerCase()).filter((n) => !own.has(n)));
    if (names.size) {
      const context = createSecureContext({ key: ds.keyPem, cert: ds.chainPem, ...tlsProfileOptions(profile, ds.keyPem), ...(ca.length ? { ca } : {}) });
      options.SNICallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) =>
        cb(null, names.has(servername.toLowerCase()) ? context : undefined);
    }
  }
  return options;
}

/** The DNS names of the first certificate of a PEM chain (lower case). */
function tlsNames(chainPem: string): string[] {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(chainPem)?.[0];
  if (!first) return [];
  const san = new X509Certificate(first).subjectAltName ?? '';
  return san.split(/,\s*/).filter((e) => e.startsWith('DNS:')).map((e) => e.slice(4).toLowerCase());
}
