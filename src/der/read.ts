/**
 * Strict reading (and checked writing) of DER messages: the helpers every src/rsp codec uses to
 * take an element apart. Each names the element it was reading when something is wrong, and
 * reports it as RspError 'malformed' (src/rsp/errors.ts), the one error of the message codecs; a
 * DerError from the TLV layer is mapped to it with the name of the message being read.
 */
import { RspError, malformed } from '../rsp/errors.js';
import { decode, DerError, tagHex, type Tlv } from './tlv.js';

export { malformed };

/** A decoded message part together with the exact bytes it was read from. */
export type WithRaw<T> = T & { raw: Buffer };

export type Bytes = Buffer | Uint8Array;

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
