/**
 * SCP03t / BSP protection of the BPP's 86, 87 and 88 segments (docs/protocol.md#scp03t-protection-of-the-bpp).
 * Encrypted (86, 87): ICV = AES-ECB(S-ENC, counter), AES-CBC over P‖80‖00…, then C-MAC.
 * MAC-only (88): C-MAC over the plaintext; the counter still advances.
 * C-MAC: M = CMAC(S-MAC, MCV ‖ tag ‖ length ‖ data); MCV := M; the first 8 bytes of M end the TLV.
 */
import { createCipheriv, createDecipheriv, timingSafeEqual, type Cipher } from 'node:crypto';
import { decode } from '../der/tlv.js';
import { AesCmac } from './cmac.js';
import { CryptoError, Scp03tError } from './errors.js';
import type { SessionKeys } from './kdf.js';

export { Scp03tError } from './errors.js';

const BLOCK = 16;
const MAC_LEN = 8;
const ZERO_IV = Buffer.alloc(0);

/** Largest 86/87/88 TLV, tag, length and C-MAC included. */
export const MAX_SEGMENT = 1020;

/** Bytes of tag + DER length for a value of `n` bytes (segments stay below 64 KiB). */
function headerLength(n: number): number {
  return n < 0x80 ? 2 : n <= 0xff ? 3 : 4;
}

function segmentLength(plain: number, encrypted: boolean): number {
  const body = (encrypted ? (Math.floor(plain / BLOCK) + 1) * BLOCK : plain) + MAC_LEN;
  return headerLength(body) + body;
}

function largestPlaintext(encrypted: boolean): number {
  let p = MAX_SEGMENT;
  while (segmentLength(p, encrypted) > MAX_SEGMENT) p--;
  return p;
}

/** Largest plaintext of one 86/87 segment: 1007 (→ 1008 ciphertext, 86 82 03 F8, 1020 bytes). */
export const MAX_ENCRYPTED_PLAINTEXT = largestPlaintext(true);
/** Largest plaintext of one 88 segment: 1008 (88 82 03 F8, 1020 bytes). */
export const MAX_MAC_ONLY_PLAINTEXT = largestPlaintext(false);

/** `80 00…` paddings of 1..16 bytes. */
const PADDING = Array.from({ length: BLOCK + 1 }, (_, n) => {
  const b = Buffer.alloc(n);
  if (n > 0) b[0] = 0x80;
  return b;
});

/** Splits into pieces of at most `size` bytes (views, no copies); empty input gives no pieces. */
export function chunk(data: Buffer, size: number): Buffer[] {
  if (!(size > 0)) throw new CryptoError('invalidInput', `chunk size ${size}`);
  const out: Buffer[] = [];
  for (let p = 0; p < data.length; p += size) out.push(data.subarray(p, p + size));
  return out;
}

function checkKeys(k: SessionKeys): void {
  for (const [name, b] of [['S-ENC', k.sEnc], ['S-MAC', k.sMac], ['MCV', k.mcv]] as const) {
    if (!Buffer.isBuffer(b) || b.length !== 16) throw new CryptoError('invalidKey', `${name} must be 16 bytes`);
  }
}

/** Keys, chaining value and counter of one direction; shared by writer and reader. */
class Scp03tState {
  protected sEnc!: Buffer;
  protected cmac!: AesCmac;
  protected mcv!: Buffer;
  protected counter = 1;
  /** AES-ECB(S-ENC), reused for every ICV (ECB keeps no state between blocks). */
  #ecb!: Cipher;
  readonly #counterBlock = Buffer.alloc(BLOCK);

  constructor(keys: SessionKeys) {
    this.#load(keys);
  }

  /** After ReplaceSessionKeys: PPK-ENC, PPK-MAC, MCV := initialMacChainingValue, counter back to 1. */
  usePpk(ppk: SessionKeys): void {
    this.#load(ppk);
  }

  #load(k: SessionKeys): void {
    checkKeys(k);
    this.sEnc = k.sEnc;
    this.cmac = new AesCmac(k.sMac);
    this.mcv = k.mcv;
    this.counter = 1;
    this.#ecb = createCipheriv('aes-128-ecb', k.sEnc, ZERO_IV).setAutoPadding(false);
  }

  /** ICV of the current counter value; advances the counter. */
  protected nextIcv(): Buffer {
    this.#counterBlock.writeUIntBE(this.counter++, BLOCK - 6, 6);
    return this.#ecb.update(this.#counterBlock);
  }
}

export class Scp03tWriter extends Scp03tState {
  /** An 86 (profile) or 87 (ConfigureISDP / ReplaceSessionKeys) segment; `plain` ≤ MAX_ENCRYPTED_PLAINTEXT. */
  encrypted(tag: 0x86 | 0x87, plain: Buffer): Buffer {
    if (tag !== 0x86 && tag !== 0x87) throw new CryptoError('invalidInput', `tag ${(tag as number).toString(16)} is not 86/87`);
    if (plain.length > MAX_ENCRYPTED_PLAINTEXT) {
      throw new Scp03tError('segmentTooLarge', `${plain.length} bytes > ${MAX_ENCRYPTED_PLAINTEXT} per encrypted segment`);
    }
    const pad = BLOCK - (plain.length % BLOCK);
    const ctLen = plain.length + pad;
    const cbc = createCipheriv('aes-128-cbc', this.sEnc, this.nextIcv()).setAutoPadding(false);
    const out = this.#start(tag, ctLen);
    const hl = out.length - ctLen - MAC_LEN;
    const a = cbc.update(plain);
    a.copy(out, hl);
    cbc.update(PADDING[pad]!).copy(out, hl + a.length);
    this.#seal(out);
    return out;
  }

  /** An 88 (StoreMetadataRequest) segment; `plain` ≤ MAX_MAC_ONLY_PLAINTEXT. */
  macOnly(tag: 0x88, plain: Buffer): Buffer {
    if (tag !== 0x88) throw new CryptoError('invalidInput', `tag ${Number(tag).toString(16)} is not 88`);
    if (plain.length > MAX_MAC_ONLY_PLAINTEXT) {
      throw new Scp03tError('segmentTooLarge', `${plain.length} bytes > ${MAX_MAC_ONLY_PLAINTEXT} per MAC-only segment`);
    }
    this.counter++;
    const out = this.#start(tag, plain.length);
    plain.copy(out, out.length - MAC_LEN - plain.length);
    this.#seal(out);
    return out;
  }

  /** Output buffer with tag and length written; value and C-MAC left to fill. */
  #start(tag: number, dataLen: number): Buffer {
    const lf = dataLen + MAC_LEN;
    const hl = headerLength(lf);
    const out = Buffer.allocUnsafe(hl + lf);
    out[0] = tag;
    if (hl === 2) out[1] = lf;
    else if (hl === 3) (out[1] = 0x81), (out[2] = lf);
    else (out[1] = 0x82), out.writeUInt16BE(lf, 2);
    return out;
  }

  /** C-MAC over MCV ‖ everything but the last 8 bytes, written into those 8 bytes. */
  #seal(out: Buffer): void {
    const end = out.length - MAC_LEN;
    const m = this.cmac.mac(this.mcv, out.subarray(0, end));
    this.mcv = m;
    m.copy(out, end, 0, MAC_LEN);
  }
}

export class Scp03tReader extends Scp03tState {
  /**
   * Verifies one segment TLV and returns its plaintext (decrypted and unpadded for 86/87, a view of the
   * value for 88). Scp03tError 'security' on a C-MAC mismatch, 'structure' on a malformed segment.
   * A segment failing its C-MAC leaves the state (MCV, counter) unchanged.
   */
  open(segment: Buffer): Buffer {
    let value: Buffer;
    let tag: number;
    try {
      const t = decode(segment);
      value = t.value;
      tag = t.tag;
    } catch (e) {
      throw new Scp03tError('structure', `segment is not one TLV: ${(e as Error).message}`);
    }
    if (value.length < MAC_LEN) throw new Scp03tError('structure', 'segment shorter than its C-MAC');
    const end = segment.length - MAC_LEN;
    const m = this.cmac.mac(this.mcv, segment.subarray(0, end));
    if (!timingSafeEqual(m.subarray(0, MAC_LEN), segment.subarray(end))) throw new Scp03tError('security', 'C-MAC mismatch');
    const data = value.subarray(0, value.length - MAC_LEN);
    if (tag === 0x88) {
      this.mcv = m;
      this.counter++;
      return data;
    }
    if (tag !== 0x86 && tag !== 0x87) throw new Scp03tError('structure', `unexpected segment tag ${tag.toString(16)}`);
    if (data.length === 0 || data.length % BLOCK !== 0) throw new Scp03tError('structure', 'ciphertext is not whole AES blocks');
    const icv = this.nextIcv();
    this.mcv = m;
    const p = createDecipheriv('aes-128-cbc', this.sEnc, icv).setAutoPadding(false).update(data);
    let i = p.length - 1;
    const min = p.length - BLOCK;
    while (i > min && p[i] === 0) i--;
    if (p[i] !== 0x80) throw new Scp03tError('structure', 'bad padding');
    return p.subarray(0, i);
  }
}
