/**
 * One BER-TLV codec for everything SGP.22 carries: ASN.1 DER (certificates, RSP messages) and the
 * SAIP profile elements. Multi-byte tags (`BF36`, `5F37`, `7F21`) are held as one number
 * (`0xBF36`). Every decoded element keeps the exact bytes it was read from (`raw`), so signatures
 * are always checked over the bytes as received, never over a re-encoding.
 */

export class DerError extends Error {
  override name = 'DerError';
  constructor(message: string, readonly offset?: number) {
    super(offset === undefined ? message : `${message} at offset ${offset}`);
  }
}

export class Tlv {
  #children?: Tlv[];

  constructor(
    /** Tag as one number, e.g. 0x30, 0x80, 0xBF36, 0x5F37. */
    readonly tag: number,
    /** The whole element: tag, length and value, as received. */
    readonly raw: Buffer,
    /** Offset of the value inside `raw`. */
    readonly headerLength: number,
  ) {}

  get value(): Buffer {
    return this.raw.subarray(this.headerLength);
  }

  get length(): number {
    return this.raw.length - this.headerLength;
  }

  /** The constructed bit of the first tag byte. */
  get constructed(): boolean {
    return (firstTagByte(this.tag) & 0x20) !== 0;
  }

  /** Sub-elements of a constructed element (decoded once, then cached). */
  children(): Tlv[] {
    if (!this.#children) this.#children = decodeAll(this.value);
    return this.#children;
  }

  /** First child with this tag, or undefined. */
  find(tag: number): Tlv | undefined {
    return this.children().find((c) => c.tag === tag);
  }

  /** First child with this tag; a DerError naming the tag when it is absent. */
  get(tag: number): Tlv {
    const c = this.find(tag);
    if (!c) throw new DerError(`missing element ${tagHex(tag)} in ${tagHex(this.tag)}`);
    return c;
  }

  /** Every child with this tag. */
  all(tag: number): Tlv[] {
    return this.children().filter((c) => c.tag === tag);
  }

  /** Throws unless this element has the given tag. */
  expect(tag: number): this {
    if (this.tag !== tag) throw new DerError(`expected ${tagHex(tag)}, found ${tagHex(this.tag)}`);
    return this;
  }
}

function firstTagByte(tag: number): number {
  let t = tag;
  while (t > 0xff) t = Math.floor(t / 256);
  return t;
}

export function tagHex(tag: number): string {
  const h = tag.toString(16).toUpperCase();
  return h.length % 2 ? `0${h}` : h;
}

/** Bytes of a tag number as written on the wire. */
export function tagBytes(tag: number): Buffer {
  if (!Number.isInteger(tag) || tag < 0) throw new DerError(`invalid tag ${tag}`);
  const out: number[] = [];
  let t = tag;
  do {
    out.unshift(t & 0xff);
    t = Math.floor(t / 256);
  } while (t > 0);
  return Buffer.from(out);
}

export function encodeLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n <= 0xff) return Buffer.from([0x81, n]);
  if (n <= 0xffff) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n <= 0xffffff) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  if (n <= 0xffffffff) return Buffer.from([0x84, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
  throw new DerError(`length ${n} too large`);
}

/** Encodes one TLV. The value may be given as several parts, concatenated in order. */
export function tlv(tag: number, ...value: Array<Buffer | Uint8Array | undefined | null | false>): Buffer {
  const parts = value.filter((v): v is Buffer | Uint8Array => !!v);
  const body = parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
  return Buffer.concat([tagBytes(tag), encodeLength(body.length), body]);
}

/** Header (tag + length) only, for the BPP's "header then pieces" loading. */
export function tlvHeader(tag: number, valueLength: number): Buffer {
  return Buffer.concat([tagBytes(tag), encodeLength(valueLength)]);
}

/**
 * Reads one element at `offset` of `buf`. Checks that tag, length and value fit in the buffer;
 * rejects indefinite lengths and non-minimal long-form lengths above 4 bytes.
 */
export function decodeAt(buf: Buffer, offset = 0): Tlv {
  let p = offset;
  const end = buf.length;
  if (p >= end) throw new DerError('truncated: no tag', p);
  let tag = buf[p++]!;
  if ((tag & 0x1f) === 0x1f) {
    let more = true;
    let n = 0;
    while (more) {
      if (p >= end) throw new DerError('truncated: multi-byte tag', p);
      const b = buf[p++]!;
      tag = tag * 256 + b;
      more = (b & 0x80) !== 0;
      if (++n > 3) throw new DerError('tag too long', offset);
    }
  }
  if (p >= end) throw new DerError('truncated: no length', p);
  let len = buf[p++]!;
  if (len === 0x80) throw new DerError('indefinite length not allowed', p - 1);
  if (len > 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new DerError('length field too long', p - 1);
    if (p + n > end) throw new DerError('truncated: length', p);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p++]!;
  }
  if (p + len > end) throw new DerError(`truncated: value needs ${len} bytes, ${end - p} left`, p);
  return new Tlv(tag, buf.subarray(offset, p + len), p - offset);
}

/** Decodes exactly one element: trailing bytes are an error. */
export function decode(input: Buffer | Uint8Array): Tlv {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const t = decodeAt(buf, 0);
  if (t.raw.length !== buf.length) throw new DerError(`${buf.length - t.raw.length} trailing bytes`, t.raw.length);
  return t;
}

/** Decodes a concatenation of elements (the value of a constructed element, a SAIP profile, …). */
export function decodeAll(input: Buffer | Uint8Array): Tlv[] {
  const buf = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const out: Tlv[] = [];
  let p = 0;
  while (p < buf.length) {
    const t = decodeAt(buf, p);
    out.push(t);
    p += t.raw.length;
  }
  return out;
}
