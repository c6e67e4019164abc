/** Universal ASN.1 types on top of the TLV codec: INTEGER, OID, BIT STRING, strings, times. */
import { DerError, Tlv, tlv } from './tlv.js';

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** Minimal two's-complement bytes of a non-negative integer (number, bigint or big-endian bytes). */
export function uintBytes(v: number | bigint | Buffer): Buffer {
  let b: Buffer;
  if (Buffer.isBuffer(v)) {
    let i = 0;
    while (i < v.length - 1 && v[i] === 0) i++;
    b = v.subarray(i);
    if (b.length === 0) b = Buffer.from([0]);
  } else {
    let n = BigInt(v);
    if (n < 0n) throw new DerError('negative integer');
    const bytes: number[] = [];
    do {
      bytes.unshift(Number(n & 0xffn));
      n >>= 8n;
    } while (n > 0n);
    b = Buffer.from(bytes);
  }
  return b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b;
}

export function integer(v: number | bigint | Buffer, tag: number = TAG.INTEGER): Buffer {
  return tlv(tag, uintBytes(v));
}

/** Reads an INTEGER value as a JS number (small, non-negative integers: versions, codes, counters). */
export function readUint(t: Tlv): number {
  const v = t.value;
  if (v.length === 0) throw new DerError(`empty integer ${t.tag.toString(16)}`);
  if (v.length > 6) throw new DerError('integer too large');
  let n = 0;
  for (const b of v) n = n * 256 + b;
  return n;
}

export function encodeOidValue(oid: string): Buffer {
  const parts = oid.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new DerError(`invalid OID ${oid}`);
    return BigInt(p);
  });
  if (parts.length < 2) throw new DerError(`invalid OID ${oid}`);
  const out: number[] = [];
  const push = (n: bigint) => {
    const tmp: number[] = [Number(n & 0x7fn)];
    n >>= 7n;
    while (n > 0n) {
      tmp.unshift(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    out.push(...tmp);
  };
  push(parts[0]! * 40n + parts[1]!);
  for (const p of parts.slice(2)) push(p);
  return Buffer.from(out);
}

export function oid(o: string, tag: number = TAG.OID): Buffer {
  return tlv(tag, encodeOidValue(o));
}

export function decodeOidValue(v: Buffer): string {
  if (v.length === 0) throw new DerError('empty OID');
  const arcs: bigint[] = [];
  let n = 0n;
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!;
    n = (n << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(n);
      n = 0n;
    } else if (i === v.length - 1) throw new DerError('truncated OID');
  }
  const first = arcs.shift()!;
  const a = first < 80n ? first / 40n : 2n;
  const b = first - a * 40n;
  return [a, b, ...arcs].join('.');
}

export function utf8(s: string, tag: number = TAG.UTF8_STRING): Buffer {
  return tlv(tag, Buffer.from(s, 'utf8'));
}

export function readUtf8(t: Tlv): string {
  return t.value.toString('utf8');
}

export function bool(v: boolean, tag: number = TAG.BOOLEAN): Buffer {
  return tlv(tag, Buffer.from([v ? 0xff : 0x00]));
}

export function readBool(t: Tlv): boolean {
  if (t.length !== 1) throw new DerError('BOOLEAN must be one byte');
  return t.value[0] !== 0;
}

export function octets(v: Buffer, tag: number = TAG.OCTET_STRING): Buffer {
  return tlv(tag, v);
}

/**
 * DER BIT STRING from named bit positions (bit 0 = most significant bit of the first byte),
 * with trailing zero bits removed as DER requires.
 */
export function namedBits(bits: number[], tag: number = TAG.BIT_STRING): Buffer {
  if (bits.length === 0) return tlv(tag, Buffer.from([0]));
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (max & 7);
  return tlv(tag, Buffer.from([unused]), bytes);
}

/** Bit positions that are set in a BIT STRING value. */
export function readNamedBits(t: Tlv): number[] {
  const v = t.value;
  if (v.length === 0) throw new DerError('empty BIT STRING');
  const out: number[] = [];
  for (let i = 1; i < v.length; i++) {
    for (let j = 0; j < 8; j++) if (v[i]! & (0x80 >> j)) out.push((i - 1) * 8 + j);
  }
  return out;
}

/** BIT STRING wrapping whole bytes (signatures, public keys). */
export function bitStringBytes(bytes: Buffer, tag: number = TAG.BIT_STRING): Buffer {
  return tlv(tag, Buffer.from([0]), bytes);
}

export function readBitStringBytes(t: Tlv): Buffer {
  if (t.length === 0 || t.value[0] !== 0) throw new DerError('BIT STRING with unused bits where whole bytes are expected');
  return t.value.subarray(1);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const rest = `${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(TAG.UTC_TIME, Buffer.from(`${pad(y % 100)}${rest}`, 'ascii'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(`${pad(y, 4)}${rest}`, 'ascii'));
}

export function readTime(t: Tlv): Date {
  const s = t.value.toString('ascii');
  let m: RegExpMatchArray | null;
  let year: number;
  if (t.tag === TAG.UTC_TIME) {
    m = s.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/);
    if (!m) throw new DerError(`bad UTCTime ${s}`);
    const yy = Number(m[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (t.tag === TAG.GENERALIZED_TIME) {
    m = s.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$/);
    if (!m) throw new DerError(`bad GeneralizedTime ${s}`);
    year = Number(m[1]);
  } else throw new DerError(`not a time: tag ${t.tag.toString(16)}`);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
}

export function seq(...items: Array<Buffer | undefined | null | false>): Buffer {
  return tlv(TAG.SEQUENCE, ...items);
}
