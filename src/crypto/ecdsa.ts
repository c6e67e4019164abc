/**
 * ECDSA with SHA-256 in the plain r‖s format SGP.22 signs with (docs/protocol.md#what-is-signed),
 * plus DER conversion.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import { decode, DerError } from '../der/tlv.js';
import { integer, seq, TAG } from '../der/types.js';
import { CryptoError } from './errors.js';

/** Both RSP curves have 256-bit orders: r and s are 32 bytes each. */
const HALF = 32;

/** Signs `data` with SHA-256; returns 64 bytes r‖s. */
export function signRaw(key: KeyObject, data: Buffer): Buffer {
  return sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
}

/** Verifies a 64-byte r‖s signature. Never throws: malformed signatures or keys give false. */
export function verifyRaw(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  if (!Buffer.isBuffer(sig) || sig.length !== 2 * HALF) return false;
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
  } catch {
    return false;
  }
}

/** r‖s -> DER `SEQUENCE { INTEGER r, INTEGER s }`. */
export function rawToDer(sig: Buffer): Buffer {
  if (sig.length === 0 || sig.length % 2 !== 0) throw new CryptoError('invalidSignature', `raw signature of ${sig.length} bytes`);
  const h = sig.length / 2;
  return seq(integer(sig.subarray(0, h)), integer(sig.subarray(h)));
}

/** DER `SEQUENCE { INTEGER r, INTEGER s }` -> r‖s, each left-padded to `size` bytes (32 for the RSP curves). */
export function derToRaw(sig: Buffer, size: number = HALF): Buffer {
  try {
    const t = decode(sig);
    const parts = t.tag === TAG.SEQUENCE ? t.children() : [];
    if (parts.length !== 2) throw new CryptoError('invalidSignature', 'ECDSA signature is not a SEQUENCE of two INTEGERs');
    const out = Buffer.alloc(2 * size);
    parts.forEach((p, i) => {
      let v = p.value;
      if (p.tag !== TAG.INTEGER || v.length === 0 || v[0]! & 0x80) throw new CryptoError('invalidSignature', 'r and s must be positive INTEGERs');
      let z = 0;
      while (z < v.length - 1 && v[z] === 0) z++;
      v = v.subarray(z);
      if (v.length > size) throw new CryptoError('invalidSignature', `signature component longer than ${size} bytes`);
      v.copy(out, (i + 1) * size - v.length);
    });
    return out;
  } catch (e) {
    if (e instanceof DerError) throw new CryptoError('invalidSignature', `malformed DER signature: ${e.message}`);
    throw e;
  }
}
