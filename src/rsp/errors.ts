/**
 * The error of the RSP message codecs.
 *
 * Decoders are strict about the elements they need and tolerant of unknown extra elements
 * (SGP.22 types are EXTENSIBILITY IMPLIED). Any structural problem, including a DerError from the
 * TLV layer, surfaces as RspError 'malformed' with a message naming the element; values the codec
 * understands but this server does not support give 'unsupported'. The reading helpers that raise
 * it are in src/der/read.ts; the data objects several messages share in data-objects.ts.
 */

export type RspErrorCode = 'malformed' | 'unsupported';

export class RspError extends Error {
  override name = 'RspError';
  constructor(
    readonly code: RspErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function malformed(message: string): never {
  throw new RspError('malformed', message);
}
