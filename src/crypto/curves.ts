/**
 * The two RSP curves (docs/protocol.md#curves-and-certificates) and their names in OIDs, node:crypto
 * and SGP.26 file names.
 */
import type { KeyObject } from 'node:crypto';
import { CryptoError } from './errors.js';

export type CurveName = 'P-256' | 'brainpoolP256r1';

export const CURVES: Record<CurveName, { oid: string; nodeName: string; fileTag: 'NIST' | 'BRP' }> = {
  'P-256': { oid: '1.2.840.10045.3.1.7', nodeName: 'prime256v1', fileTag: 'NIST' },
  brainpoolP256r1: { oid: '1.3.36.3.3.2.8.1.1.7', nodeName: 'brainpoolP256r1', fileTag: 'BRP' },
};

/** Curve of an EC public or private key; CryptoError 'unsupportedCurve' for anything else. */
export function curveOfKey(key: KeyObject): CurveName {
  if (key.asymmetricKeyType === 'ec') {
    const n = key.asymmetricKeyDetails?.namedCurve;
    if (n === 'prime256v1' || n === 'P-256') return 'P-256';
    if (n === 'brainpoolP256r1') return 'brainpoolP256r1';
    throw new CryptoError('unsupportedCurve', `unsupported curve ${n ?? '(explicit parameters)'}`);
  }
  throw new CryptoError('unsupportedCurve', `not an EC key (${key.asymmetricKeyType ?? key.type})`);
}
