/**
 * Confirmation Code hashing (docs/protocol.md#confirmation-code):
 * hashCc = SHA-256(SHA-256(CC) ‖ transactionId).
 */
import { createHash } from 'node:crypto';

export function sha256(buf: Buffer): Buffer {
  return createHash('sha256').update(buf).digest();
}

/** What the eUICC sends as hashCc, given the stored SHA-256 of the code. */
export function hashCc(ccSha256: Buffer, transactionId: Buffer): Buffer {
  return createHash('sha256').update(ccSha256).update(transactionId).digest();
}

/** SHA-256 of the code as entered (UTF-8): the value the server stores instead of the code. */
export function confirmationCodeDigest(cc: string): Buffer {
  return createHash('sha256').update(cc, 'utf8').digest();
}
