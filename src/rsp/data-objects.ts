/**
 * Data objects several RSP messages carry alike (SGP.22 §5.5–5.7): the transactionId, the `5F37`
 * signature DO (64 bytes r‖s), the `5F49` one-time public key tag and embedded certificates.
 */
import { tagHex, tlv, type Tlv } from '../der/tlv.js';
import { malformed, sized, top, type Bytes } from '../der/read.js';

/** Tag of the `5F37` signature data objects and of the `5F49` one-time public keys. */
export const TAG_SIGNATURE = 0x5f37;
export const TAG_OTPK = 0x5f49;

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

/** The `5F37 40 <r‖s>` data object as carried in ES9+ JSON and in ES10 messages. */
export function encodeSignatureDo(signature: Buffer): Buffer {
  if (signature.length !== 64) malformed(`signature must be 64 bytes, got ${signature.length}`);
  return tlv(TAG_SIGNATURE, signature);
}

/** r‖s out of a `5F37` DO (e.g. the ES9+ `serverSignature1` field). */
export function decodeSignatureDo(input: Bytes, what = 'signature'): Buffer {
  return signatureOf(top(input, TAG_SIGNATURE, what), what);
}

/** A certificate to embed: must be exactly one SEQUENCE TLV. */
export function certificateBytes(cert: Buffer, name: string): Buffer {
  return top(cert, 0x30, name).raw;
}
