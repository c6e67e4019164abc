/**
 * TLS settings of the HTTPS listener (ES9+, ES2+ and admin share it).
 *
 * `sgp22` (default) is the SM-DP+ server profile of SGP.22 §2.6 (TLS requirements): TLS 1.2 only,
 * cipher suites TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 and TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
 * ECDHE on secp256r1, plus brainpoolP256r1 when the DP TLS key is on that curve (in TLS 1.2 the
 * client must list the certificate's curve among its groups, so a brainpool certificate needs it).
 * Anything else (TLS 1.3 or 1.1, AES-256, ChaCha20, RSA suites, X25519 ...) is refused.
 *
 * `compat` keeps Node's defaults, for clients that insist on TLS 1.3.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import type { SecureVersion } from 'node:tls';
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

/** node:https server options: the DP TLS certificate chain and key with the profile's settings. */
export function httpsServerOptions(profile: TlsProfile, tls: Pick<TlsCredentials, 'keyPem' | 'chainPem'>) {
  return { key: tls.keyPem, cert: tls.chainPem, ...tlsProfileOptions(profile, tls.keyPem) };
}
