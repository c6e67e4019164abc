/**
 * Typed errors of the SAIP (eUICC Profile Package) layer.
 *  - `malformed`: not a well-formed sequence of DER ProfileElements (truncated, bad lengths, header/end missing or misplaced)
 *  - `missingElement`: a PE or a field the caller needs is absent (no ICCID, no EF.IMSI content, no Milenage key …)
 *  - `invalidValue`: a value of the wrong size or coding (Ki not 16 bytes, PIN not digits …)
 *  - `iccidMismatch`: the ProfileHeader ICCID differs from EF.ICCID or from the metadata ICCID (SGP.22 errorReason 13)
 */
export type SaipErrorCode = 'malformed' | 'missingElement' | 'invalidValue' | 'iccidMismatch';

export class SaipError extends Error {
  override name = 'SaipError';
  constructor(
    readonly code: SaipErrorCode,
    message: string = code,
  ) {
    super(message);
  }
}
