/**
 * Errors of the RSP message codecs, and the small decoding helpers every src/rsp module shares.
 *
 * Decoders are strict about the elements they need and tolerant of unknown extra elements
 * (SGP.22 types are EXTENSIBILITY IMPLIED). Any structural problem, including a DerError from the
 * TLV layer, surfaces as RspError 'malformed' with a message naming the element; values the codec
 * understands but this server does not support give 'unsupported'.
 */
import { decode, DerError, tagHex, tlv, type Tlv } from '../der/tlv.js';

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

/** A decoded message part together with the exact bytes it was read from. */
export type WithRaw<T> = T & { raw: Buffer };

export type Bytes = Buffer | Uint8Array;

/** Tag of the `5F37` signature data objects and of the `5F49` one-time public keys. */
export const TAG_SIGNATURE = 0x5f37;
export const TAG_OTPK = 0x5f49;

export function malformed(message: string): never {
  throw new RspError('malformed', message);
}

/**
 * Runs a decoder body; a DerError (or an RspError without context) comes out as RspError
 * 'malformed' prefixed with the name of the message being decoded.
 */
export function guard<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof RspError) throw err;
    if (err instanceof DerError) throw new RspError('malformed', `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Decodes exactly one element with the expected tag (no trailing bytes). */
export function top(input: Bytes, tag: number, what: string): Tlv {
  const t = guard(what, () => decode(input));
  if (t.tag !== tag) malformed(`${what}: expected tag ${tagHex(tag)}, found ${tagHex(t.tag)}`);
  return t;
}

/** The first child with `tag`, or RspError naming the element and its parent. */
export function need(parent: Tlv, tag: number, name: string): Tlv {
  const c = guard(name, () => parent.find(tag));
  if (!c) malformed(`missing ${name} (${tagHex(tag)}) in ${tagHex(parent.tag)}`);
  return c;
}

export function opt(parent: Tlv, tag: number): Tlv | undefined {
  return guard(tagHex(parent.tag), () => parent.find(tag));
}

/** Value bytes with a length check; `max` defaults to `min` (exact length). */
export function sized(t: Tlv, name: string, min: number, max: number = min): Buffer {
  const n = t.length;
  if (n < min || n > max) {
    malformed(`${name} (${tagHex(t.tag)}) must be ${min === max ? `${min}` : `${min}..${max}`} bytes, got ${n}`);
  }
  return t.value;
}

export function transactionIdOf(t: Tlv): Buffer {
  return sized(t, 'transactionId', 1, 16);
}

/** Value of a `5F37 40` signature DO: exactly 64 bytes r‖s. */
export function signatureOf(t: Tlv, name: string): Buffer {
  if (t.tag !== TAG_SIGNATURE) malformed(`${name}: expected tag 5F37, found ${tagHex(t.tag)}`);
  return sized(t, name, 64);
}

/** A certificate element: must be a SEQUENCE; its exact bytes are returned. */
export function certificateOf(t: Tlv, name: string): Buffer {
  if (t.tag !== 0x30) malformed(`${name}: expected a certificate (30), found ${tagHex(t.tag)}`);
  return t.raw;
}

/** Children of a constructed element, each required to carry `tag` (SEQUENCE OF). */
export function listOf(t: Tlv, tag: number, name: string): Tlv[] {
  const items = guard(name, () => t.children());
  for (const i of items) if (i.tag !== tag) malformed(`${name}: unexpected element ${tagHex(i.tag)}, expected ${tagHex(tag)}`);
  return items;
}

/** Children of a constructed element with DerError mapped to RspError. */
export function kids(t: Tlv, name: string): Tlv[] {
  return guard(name, () => t.children());
}

/** Runs a leaf reader (readUint, readUtf8, …), naming the element on failure. */
export function read<T>(t: Tlv, name: string, fn: (t: Tlv) => T): T {
  return guard(name, () => fn(t));
}

/** The `5F37 40 <r‖s>` data object as carried in ES9+ JSON and in ES10 messages. */
export function encodeSignatureDo(signature: Buffer): Buffer {
  if (signature.length !== 64) malformed(`signature must be 64 bytes, got ${signature.length}`);
  return tlv(TAG_SIGNATURE, signature);
}

/** r‖s out of a `5F37` DO (e.g. the ES9+ `serverSignature1` field). */
export function decodeSignatureDo(input: Bytes, what = 'signature'): Buffer {
  return signatureOf(top(input, TAG_SIGNATURE, what), what);
}

/** Checks a value before encoding; encoders refuse what decoders would reject. */
export function checkLength(v: Uint8Array, name: string, min: number, max: number = min): Buffer {
  if (!(v instanceof Uint8Array)) malformed(`${name} must be bytes`);
  if (v.length < min || v.length > max) malformed(`${name} must be ${min === max ? `${min}` : `${min}..${max}`} bytes, got ${v.length}`);
  return Buffer.from(v);
}

/** A nested part given either as exact bytes (used verbatim) or as fields (encoded). */
export function bytesOr<T>(v: Buffer | T, encode: (v: T) => Buffer): Buffer {
  return Buffer.isBuffer(v) ? v : encode(v);
}

/** A certificate to embed: must be exactly one SEQUENCE TLV. */
export function certificateBytes(cert: Buffer, name: string): Buffer {
  return top(cert, 0x30, name).raw;
}
