/** Typed errors of the crypto layer; the server maps `code` to SGP.22 status codes. */

export type CryptoErrorCode = 'unsupportedCurve' | 'invalidPoint' | 'invalidKey' | 'invalidSignature' | 'invalidInput';

export class CryptoError extends Error {
  override name = 'CryptoError';
  constructor(readonly code: CryptoErrorCode, message: string = code) {
    super(message);
  }
}

/**
 * SCP03t (BSP) failures. `security`: C-MAC mismatch (SGP.22 scp03tSecurityError); `structure`: the segment
 * is not a well-formed 86/87/88 TLV, its ciphertext is not whole blocks, or its padding is wrong
 * (scp03tStructureError); `segmentTooLarge`: the writer was asked for a segment above 1020 bytes.
 */
export type Scp03tErrorCode = 'security' | 'structure' | 'segmentTooLarge';

export class Scp03tError extends Error {
  override name = 'Scp03tError';
  constructor(readonly code: Scp03tErrorCode, message: string = code) {
    super(message);
  }
}
