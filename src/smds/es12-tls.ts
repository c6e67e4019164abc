/**
 * The files of ES12 over mutual TLS (docs/smds.md#es12-authentication), read and checked once at
 * start: the client certificate and key this SM-DP+ presents to an SM-DS (ES12_CLIENT_CERT and
 * ES12_CLIENT_KEY, default the certs folder's CERT.DP.TLS), the CAs it trusts for an external
 * SM-DS's TLS certificate (ES12_SMDS_CA), and the CAs the built-in SM-DS accepts callers' client
 * certificates under (SMDS_ES12_CLIENT_CA). A bad file is a ConfigError of one line naming the variable.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { ConfigError, type Config } from '../config.js';
import type { ServerPki } from '../pki/load.js';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function read(name: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The PEM certificates of a file (at least one, each parseable). */
export function readPemCertificates(name: string, path: string): string[] {
  const pems = read(name, path).match(PEM_CERT) ?? [];
  if (!pems.length) throw new ConfigError(`${name}: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  for (const [i, pem] of pems.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new ConfigError(`${name}: certificate ${i + 1} of ${path} is unreadable: ${(err as Error).message}`);
    }
  }
  return pems;
}

export interface Es12ClientTls {
  /** The client certificate, then any CA certificates of its chain (PEM). */
  certPem: string;
  keyPem: string;
  /** Where it came from, for messages. */
  source: string;
}

/**
 * The client certificate this SM-DP+ presents on ES12: ES12_CLIENT_CERT/KEY (the key must be the
 * certificate's), else CERT.DP.TLS; undefined when neither exists (plain-HTTP only, no DP TLS).
 */
export function es12ClientTls(config: Pick<Config, 'es12ClientCert' | 'es12ClientKey'>, pki: Pick<ServerPki, 'tls'>): Es12ClientTls | undefined {
  if (config.es12ClientCert === undefined || config.es12ClientKey === undefined) {
    return pki.tls ? { certPem: pki.tls.chainPem, keyPem: pki.tls.keyPem, source: 'CERT.DP.TLS of the certs folder' } : undefined;
  }
  const certs = readPemCertificates('ES12_CLIENT_CERT', config.es12ClientCert);
  const keyText = read('ES12_CLIENT_KEY', config.es12ClientKey);
  let key;
  try {
    key = createPrivateKey(keyText);
  } catch (err) {
    throw new ConfigError(`ES12_CLIENT_KEY: ${config.es12ClientKey} holds no readable PEM private key: ${(err as Error).message}`);
  }
  const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  if (!spki.equals(new X509Certificate(certs[0]!).publicKey.export({ format: 'der', type: 'spki' }))) {
    throw new ConfigError(`ES12_CLIENT_KEY: ${config.es12ClientKey} is not the key of the first certificate in ES12_CLIENT_CERT ${config.es12ClientCert}`);
  }
  return { certPem: certs.join('\n'), keyPem: key.export({ format: 'pem', type: 'pkcs8' }).toString(), source: config.es12ClientCert };
}

/** ES12_SMDS_CA's certificates, or none. */
export const es12SmdsCas = (config: Pick<Config, 'es12SmdsCa'>): string[] =>
  config.es12SmdsCa === undefined ? [] : readPemCertificates('ES12_SMDS_CA', config.es12SmdsCa);

/** SMDS_ES12_CLIENT_CA's certificates, or none. */
export const smdsEs12ClientCas = (config: Pick<Config, 'smdsEs12ClientCa'>): string[] =>
  config.smdsEs12ClientCa === undefined ? [] : readPemCertificates('SMDS_ES12_CLIENT_CA', config.smdsEs12ClientCa);
