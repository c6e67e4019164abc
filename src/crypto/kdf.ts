/** ANSI X9.63 KDF (SHA-256) and the BSP session keys (docs/protocol.md#key-agreement-and-kdf). */
import { createHash } from 'node:crypto';
import { CryptoError } from './errors.js';

const HASH_LEN = 32;

/** K = SHA-256(Z ‖ counter(4, from 1) ‖ sharedInfo) ‖ … truncated to `length` bytes. */
export function x963Kdf(z: Buffer, sharedInfo: Buffer, length: number): Buffer {
  const blocks = Math.ceil(length / HASH_LEN);
  const out = Buffer.allocUnsafe(blocks * HASH_LEN);
  const counter = Buffer.alloc(4);
  for (let i = 0; i < blocks; i++) {
    counter.writeUInt32BE(i + 1);
    createHash('sha256').update(z).update(counter).update(sharedInfo).digest().copy(out, i * HASH_LEN);
  }
  return length === out.length ? out : out.subarray(0, length);
}

export interface SessionKeys {
  /** Initial MAC chaining value (16 bytes). */
  mcv: Buffer;
  sEnc: Buffer;
  sMac: Buffer;
}

/**
 * Session keys from the ECKA secret. SharedInfo = `88 10 len(hostId) hostId 10 EID(16)`
 * (keyType AES, keyLen 16, EID as 16 bytes of hex).
 */
export function deriveSessionKeys(z: Buffer, hostId: Buffer, eid: string): SessionKeys {
  if (!/^[0-9A-Fa-f]{32}$/.test(eid)) throw new CryptoError('invalidInput', 'EID must be 32 hex digits');
  if (hostId.length < 1 || hostId.length > 16) throw new CryptoError('invalidInput', 'hostId must be 1..16 bytes');
  const h = hostId.length;
  const si = Buffer.allocUnsafe(3 + h + 17);
  si[0] = 0x88;
  si[1] = 0x10;
  si[2] = h;
  hostId.copy(si, 3);
  si[3 + h] = 0x10;
  si.write(eid, 4 + h, 'hex');
  const k = x963Kdf(z, si, 48);
  return { mcv: k.subarray(0, 16), sEnc: k.subarray(16, 32), sMac: k.subarray(32, 48) };
}
