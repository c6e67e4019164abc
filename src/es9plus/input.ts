/** Turning JSON fields into bytes and decoded messages, with SGP.22 format errors on bad input. */
import { DerError } from '../der/tlv.js';
import { FunctionFailed, SC } from '../errors.js';
import { RspError } from '../rsp/errors.js';

const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard base64 with padding (RFC 4648 §4); whitespace is tolerated as lpac strips it too. */
export function b64(value: string, field: string): Buffer {
  const s = value.replace(/\s+/g, '');
  if (!B64_RE.test(s)) throw new FunctionFailed(SC.formatInvalid, `${field} is not valid base64`);
  return Buffer.from(s, 'base64');
}

/** transactionId: 1..16 bytes as hex; compared upper-case. */
export function transactionIdOf(value: string): { hex: string; bytes: Buffer } {
  if (!/^([0-9A-Fa-f]{2}){1,16}$/.test(value)) throw new FunctionFailed(SC.transactionUnknown, 'transactionId must be 1 to 16 bytes of hex');
  const hex = value.toUpperCase();
  return { hex, bytes: Buffer.from(hex, 'hex') };
}

/** Runs a decoder; structure errors become 1.3.1/2.1 naming the field. */
export function decodeField<T>(field: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DerError || err instanceof RspError) {
      throw new FunctionFailed(SC.formatInvalid, `${field}: ${err.message}`);
    }
    throw err;
  }
}

/** The name of a code in one of the SGP.22 code tables of src/rsp (for messages and events). */
export function codeName(table: Readonly<Record<string, number>>, code: number): string {
  return Object.keys(table).find((k) => table[k] === code) ?? String(code);
}
