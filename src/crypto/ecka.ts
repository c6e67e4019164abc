/**
 * One-time ECKA keys and the ECDH shared secret (docs/protocol.md#key-agreement-and-kdf). Points are
 * uncompressed `04‖X‖Y` (65 bytes), as carried in `5F49`.
 *
 * Speed (measured, Node 20 / OpenSSL 3): on P-256, `createECDH` is about twice as fast as KeyObject ECDH
 * (whose DER key imports cost ~0.15 ms), so P-256 one-time keys are made with it and its object is kept
 * for the key agreement that follows; the private KeyObject of such a key is made only if asked for
 * (a JWK import, about a twentieth of a millisecond). On Brainpool the KeyObject path is faster.
 */
import { createECDH, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type ECDH, type KeyObject } from 'node:crypto';
import { decode } from '../der/tlv.js';
import { bitStringBytes, oid, readBitStringBytes, seq } from '../der/types.js';
import { CURVES, curveOfKey, type CurveName } from './curves.js';
import { CryptoError } from './errors.js';

const POINT_LEN = 65;
const SCALAR_LEN = 32;
const ID_EC_PUBLIC_KEY = '1.2.840.10045.2.1';

/** SubjectPublicKeyInfo bytes up to (excluding) the 65-byte point, per curve. */
const spkiPrefix = Object.fromEntries(
  (Object.keys(CURVES) as CurveName[]).map((c) => {
    const der = seq(seq(oid(ID_EC_PUBLIC_KEY), oid(CURVES[c].oid)), bitStringBytes(Buffer.alloc(POINT_LEN)));
    return [c, der.subarray(0, der.length - POINT_LEN)];
  }),
) as Record<CurveName, Buffer>;

/** ECDH objects of private keys made here, so `ecka` needs no key export or re-import. */
const ecdhOf = new WeakMap<KeyObject, ECDH>();

function checkPointFormat(point: Buffer): void {
  if (!Buffer.isBuffer(point) || point.length !== POINT_LEN || point[0] !== 0x04) {
    throw new CryptoError('invalidPoint', `EC point must be 65 bytes 04‖X‖Y (got ${point?.length ?? 0} bytes)`);
  }
}

function leftPad(b: Buffer, n: number): Buffer {
  if (b.length === n) return b;
  const out = Buffer.alloc(n);
  b.copy(out, n - b.length);
  return out;
}

function p256PrivateKey(d: Buffer, point: Buffer): KeyObject {
  return createPrivateKey({
    format: 'jwk',
    key: {
      kty: 'EC', crv: 'P-256', d: d.toString('base64url'),
      x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url'),
    },
  });
}

/** SEC1 ECPrivateKey of a private KeyObject: { d, point }. */
function sec1Parts(key: KeyObject): { d: Buffer; point: Buffer } {
  const t = decode(key.export({ format: 'der', type: 'sec1' }));
  return { d: t.get(0x04).value, point: readBitStringBytes(t.get(0xa1).get(0x03)) };
}

/** A one-time key pair (otPK/otSK, docs/protocol.md#key-agreement-and-kdf). */
export interface OtKeyPair {
  readonly publicPoint: Buffer;
  /** The private key as a KeyObject (on P-256 made on first use: `agree` does not need it). */
  readonly privateKey: KeyObject;
  /** ECKA-DH with this key: Z for `peerPoint`, as `ecka(privateKey, peerPoint)`. */
  agree(peerPoint: Buffer): Buffer;
}

/** A fresh one-time key pair on `curve`. */
export function generateOtKeyPair(curve: CurveName): OtKeyPair {
  if (curve === 'P-256') {
    const ecdh = createECDH(CURVES[curve].nodeName);
    const publicPoint = ecdh.generateKeys();
    let privateKey: KeyObject | undefined;
    return {
      publicPoint,
      get privateKey() {
        if (!privateKey) {
          privateKey = p256PrivateKey(leftPad(ecdh.getPrivateKey(), SCALAR_LEN), publicPoint);
          ecdhOf.set(privateKey, ecdh);
        }
        return privateKey;
      },
      agree: (peerPoint) => {
        checkPointFormat(peerPoint);
        return computeSecret(ecdh, peerPoint);
      },
    };
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: CURVES[curve].nodeName });
  return { privateKey, publicPoint: sec1Parts(privateKey).point, agree: (peerPoint) => ecka(privateKey, peerPoint) };
}

/** Z of a P-256 ECDH object and a peer point already format-checked; CryptoError 'invalidPoint' off the curve. */
function computeSecret(ecdh: ECDH, peerPoint: Buffer): Buffer {
  try {
    return ecdh.computeSecret(peerPoint);
  } catch {
    throw new CryptoError('invalidPoint', 'peer point is not on the curve of the private key');
  }
}

/**
 * A fresh one-time key pair on `curve` used at once for ECKA with `peerPoint` and then forgotten, as the
 * SM-DP+ does when it binds a profile (docs/protocol.md#key-agreement-and-kdf): its public point and
 * the shared secret Z. No private KeyObject is made on P-256.
 */
export function eckaWithFreshKey(curve: CurveName, peerPoint: Buffer): { publicPoint: Buffer; z: Buffer } {
  checkPointFormat(peerPoint);
  if (curve !== 'P-256') {
    const ot = generateOtKeyPair(curve);
    return { publicPoint: ot.publicPoint, z: ecka(ot.privateKey, peerPoint) };
  }
  const ecdh = createECDH(CURVES[curve].nodeName);
  const publicPoint = ecdh.generateKeys();
  return { publicPoint, z: computeSecret(ecdh, peerPoint) };
}

/** Public KeyObject from `04‖X‖Y`; CryptoError 'invalidPoint' if malformed or not on the curve. */
export function publicKeyFromPoint(curve: CurveName, point: Buffer): KeyObject {
  checkPointFormat(point);
  try {
    return createPublicKey({ key: Buffer.concat([spkiPrefix[curve], point]), format: 'der', type: 'spki' });
  } catch {
    throw new CryptoError('invalidPoint', `point is not on ${curve}`);
  }
}

/** `04‖X‖Y` of an EC public key (or of the public half of a private key). */
export function pointOfPublicKey(key: KeyObject): Buffer {
  const curve = curveOfKey(key);
  if (curve === 'P-256') {
    const j = key.export({ format: 'jwk' });
    return Buffer.concat([Buffer.from([0x04]), Buffer.from(j.x!, 'base64url'), Buffer.from(j.y!, 'base64url')]);
  }
  const point = key.type === 'private'
    ? sec1Parts(key).point
    : readBitStringBytes(decode(key.export({ format: 'der', type: 'spki' })).children()[1]!);
  checkPointFormat(point);
  return point;
}

/** ECKA-DH: Z = x-coordinate of privateKey·peerPoint (32 bytes). CryptoError 'invalidPoint' for a bad peer point. */
export function ecka(privateKey: KeyObject, peerPoint: Buffer): Buffer {
  checkPointFormat(peerPoint);
  let ecdh = ecdhOf.get(privateKey);
  if (!ecdh) {
    if (privateKey.type !== 'private') throw new CryptoError('invalidKey', 'ECKA needs a private key');
    const curve = curveOfKey(privateKey);
    if (curve !== 'P-256') return diffieHellman({ privateKey, publicKey: publicKeyFromPoint(curve, peerPoint) });
    ecdh = createECDH(CURVES[curve].nodeName);
    ecdh.setPrivateKey(sec1Parts(privateKey).d);
    ecdhOf.set(privateKey, ecdh);
  }
  return computeSecret(ecdh, peerPoint);
}
