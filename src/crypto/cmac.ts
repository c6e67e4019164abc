/** AES-CMAC (RFC 4493; NIST SP 800-38B). Node has no CMAC, so CBC-MAC with the K1/K2 subkeys. */
import { createCipheriv } from 'node:crypto';
import { CryptoError } from './errors.js';

const BLOCK = 16;
const ZERO = Buffer.alloc(BLOCK);

function cbcName(key: Buffer): string {
  if (key.length === 16 || key.length === 24 || key.length === 32) return `aes-${key.length * 8}-cbc`;
  throw new CryptoError('invalidKey', `AES key of ${key.length} bytes`);
}

/** Doubling in GF(2^128): shift left one bit, xor 0x87 on carry. */
function dbl(b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(BLOCK);
  for (let i = 0; i < BLOCK; i++) out[i] = ((b[i]! << 1) | (i + 1 < BLOCK ? b[i + 1]! >> 7 : 0)) & 0xff;
  if (b[0]! & 0x80) out[BLOCK - 1]! ^= 0x87;
  return out;
}

/** CMAC with the subkeys computed once per key; `mac` accepts the message in parts (no concatenation). */
export class AesCmac {
  readonly #key: Buffer;
  readonly #alg: string;
  readonly #k1: Buffer;
  readonly #k2: Buffer;

  constructor(key: Buffer) {
    this.#alg = cbcName(key);
    this.#key = key;
    const l = createCipheriv(this.#alg, key, ZERO).setAutoPadding(false).update(ZERO);
    this.#k1 = dbl(l);
    this.#k2 = dbl(this.#k1);
  }

  /** 16-byte tag over the concatenation of `parts`. */
  mac(...parts: Buffer[]): Buffer {
    let total = 0;
    for (const p of parts) total += p.length;
    const lastLen = total === 0 ? 0 : total % BLOCK || BLOCK;
    let head = total - lastLen; // bytes fed before the last block
    const cipher = createCipheriv(this.#alg, this.#key, ZERO).setAutoPadding(false);
    const last = Buffer.alloc(BLOCK);
    let filled = 0;
    for (const p of parts) {
      if (head > 0) {
        const n = Math.min(head, p.length);
        if (n > 0) cipher.update(n === p.length ? p : p.subarray(0, n));
        head -= n;
        if (n < p.length) filled += p.copy(last, filled, n);
      } else {
        filled += p.copy(last, filled);
      }
    }
    const k = lastLen === BLOCK ? this.#k1 : this.#k2;
    if (lastLen < BLOCK) last[lastLen] = 0x80;
    for (let i = 0; i < BLOCK; i++) last[i]! ^= k[i]!;
    return cipher.update(last);
  }
}

export function aesCmac(key: Buffer, msg: Buffer): Buffer {
  return new AesCmac(key).mac(msg);
}
