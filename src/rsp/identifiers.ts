/**
 * Subscriber and card identifiers: ICCID (E.118), IMSI (TS 31.102 EF.IMSI coding) and EID (SGP.29).
 *
 * An ICCID travels in two codings (docs/protocol.md, ICCID and EID codings):
 *  - EF coding: BCD with the two digits of each byte swapped and an `F` filler after a 19-digit number.
 *    Used by EF.ICCID, StoreMetadataRequest / NotificationMetadata `5A` and ProfileInfo.
 *  - header coding: the digits in reading order, `F` filler at the end. Used by the SAIP ProfileHeader `83`.
 */

export type IdentifierErrorCode = 'invalidIccid' | 'invalidImsi' | 'invalidEid' | 'invalidDigits';

export class IdentifierError extends Error {
  override name = 'IdentifierError';
  constructor(
    readonly code: IdentifierErrorCode,
    message: string = code,
  ) {
    super(message);
  }
}

const DIGITS_RE = /^\d+$/;

// ---------------------------------------------------------------- Luhn

function luhnSum(digits: string, doubleFirstFromRight: boolean): number {
  let sum = 0;
  let double = doubleFirstFromRight;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum;
}

/** True when `digits` (check digit last) passes the Luhn mod-10 check. */
export function luhn(digits: string): boolean {
  if (!DIGITS_RE.test(digits) || digits.length < 2) return false;
  return luhnSum(digits, false) % 10 === 0;
}

/** The Luhn check digit for `prefix`. */
export function luhnDigit(prefix: string): string {
  if (!DIGITS_RE.test(prefix)) throw new IdentifierError('invalidDigits', `not a digit string: ${prefix}`);
  return String((10 - (luhnSum(prefix, true) % 10)) % 10);
}

/** `prefix` followed by its Luhn check digit. */
export function withLuhn(prefix: string): string {
  return prefix + luhnDigit(prefix);
}

// ---------------------------------------------------------------- ICCID

/**
 * Canonical ICCID digits from user input: 19 or 20 decimal digits, optionally followed by one `F`/`f`
 * filler (only after 19 digits). Spaces and dashes are ignored. With `{ luhn: true }` the last digit
 * must be a valid Luhn check digit.
 */
export function normaliseIccid(input: string, opts: { luhn?: boolean } = {}): string {
  if (typeof input !== 'string') throw new IdentifierError('invalidIccid', 'ICCID must be a string');
  let s = input.replace(/[\s-]/g, '');
  if (/^\d{19}[fF]$/.test(s)) s = s.slice(0, 19);
  if (!/^\d{19,20}$/.test(s)) throw new IdentifierError('invalidIccid', `ICCID must be 19 or 20 digits: ${input}`);
  if (opts.luhn && !luhn(s)) throw new IdentifierError('invalidIccid', `ICCID Luhn check digit is wrong: ${s}`);
  return s;
}

/** True when the ICCID's last digit is its Luhn check digit. */
export function iccidLuhnOk(iccid: string): boolean {
  return luhn(normaliseIccid(iccid));
}

function padIccid(iccid: string): string {
  const d = normaliseIccid(iccid);
  return d.length === 19 ? `${d}F` : d;
}

/** EF.ICCID coding: 10 bytes, nibble-swapped BCD, `F` filler after 19 digits (`…43 F5`). */
export function iccidToEf(iccid: string): Buffer {
  const s = padIccid(iccid);
  const out = Buffer.alloc(10);
  for (let i = 0; i < 10; i++) out[i] = parseInt(s[2 * i + 1]! + s[2 * i]!, 16);
  return out;
}

/** The ICCID digits of an EF-coded (swapped) 10-byte value. */
export function iccidFromEf(ef: Buffer): string {
  if (!Buffer.isBuffer(ef) || ef.length !== 10) throw new IdentifierError('invalidIccid', 'EF-coded ICCID must be 10 bytes');
  let s = '';
  for (const b of ef) s += (b & 0x0f).toString(16) + (b >> 4).toString(16);
  return iccidFromNibbles(s, ef);
}

/** SAIP ProfileHeader coding: 10 bytes, digits in order, `F` filler at the end (`…34 5F`). */
export function iccidToHeader(iccid: string): Buffer {
  return Buffer.from(padIccid(iccid), 'hex');
}

/** The ICCID digits of a header-coded (unswapped) 10-byte value. */
export function iccidFromHeader(h: Buffer): string {
  if (!Buffer.isBuffer(h) || h.length !== 10) throw new IdentifierError('invalidIccid', 'header-coded ICCID must be 10 bytes');
  return iccidFromNibbles(h.toString('hex'), h);
}

function iccidFromNibbles(nibbles: string, raw: Buffer): string {
  const s = nibbles.toUpperCase();
  if (/^\d{20}$/.test(s)) return s;
  if (/^\d{19}F$/.test(s)) return s.slice(0, 19);
  throw new IdentifierError('invalidIccid', `not a BCD ICCID: ${raw.toString('hex')}`);
}

// ---------------------------------------------------------------- IMSI

/** Checks an IMSI: 6 to 15 digits (MCC + MNC + MSIN). Returns it unchanged. */
export function normaliseImsi(imsi: string): string {
  if (typeof imsi !== 'string' || !/^\d{6,15}$/.test(imsi)) throw new IdentifierError('invalidImsi', `IMSI must be 6 to 15 digits: ${imsi}`);
  return imsi;
}

/**
 * EF.IMSI content (TS 31.102 §4.2.2, 9 bytes): length byte, then the first digit in the high nibble of
 * byte 2 with the parity/type nibble (`9` odd digit count, `1` even) below it, then the remaining digits
 * nibble-swapped; unused nibbles/bytes are `F`.
 * `001010123456063` → `08 09 10 10 10 32 54 06 36`.
 */
export function imsiToEf(imsi: string): Buffer {
  const d = normaliseImsi(imsi);
  const nibbles = [d.length % 2 ? 0x9 : 0x1, ...[...d].map((c) => c.charCodeAt(0) - 48)];
  if (nibbles.length % 2) nibbles.push(0xf);
  const out = Buffer.alloc(9, 0xff);
  out[0] = nibbles.length / 2;
  for (let i = 0; i < nibbles.length; i += 2) out[1 + i / 2] = (nibbles[i + 1]! << 4) | nibbles[i]!;
  return out;
}

/** The IMSI digits of EF.IMSI content. */
export function imsiFromEf(ef: Buffer): string {
  if (!Buffer.isBuffer(ef) || ef.length < 2) throw new IdentifierError('invalidImsi', 'EF.IMSI content too short');
  const len = ef[0]!;
  if (len < 1 || len > 8 || ef.length < 1 + len) throw new IdentifierError('invalidImsi', `bad EF.IMSI length byte ${len}`);
  const nibbles: number[] = [];
  for (const b of ef.subarray(1, 1 + len)) nibbles.push(b & 0x0f, b >> 4);
  const parity = nibbles.shift()!;
  if ((parity & 0x7) !== 0x1) throw new IdentifierError('invalidImsi', `EF.IMSI type nibble ${parity.toString(16)} is not IMSI`);
  const odd = (parity & 0x8) !== 0;
  if (!odd && nibbles[nibbles.length - 1] === 0xf) nibbles.pop();
  if (nibbles.some((n) => n > 9)) throw new IdentifierError('invalidImsi', `not a BCD IMSI: ${ef.toString('hex')}`);
  const s = nibbles.join('');
  if (odd !== (s.length % 2 === 1)) throw new IdentifierError('invalidImsi', 'EF.IMSI parity does not match its digit count');
  return normaliseImsi(s);
}

// ---------------------------------------------------------------- EID

/** 32 decimal digits (format only; see eidChecksumOk for the check digits). */
export function isEid(s: string): boolean {
  return typeof s === 'string' && /^\d{32}$/.test(s);
}

/** SGP.29 check: the EID read as a decimal number is 1 modulo 97. */
export function eidChecksumOk(eid: string): boolean {
  return isEid(eid) && BigInt(eid) % 97n === 1n;
}

/** The 2 check digits that make `prefix30` + digits an EID with mod-97 remainder 1. */
export function eidCheckDigits(prefix30: string): string {
  if (typeof prefix30 !== 'string' || !/^\d{30}$/.test(prefix30)) throw new IdentifierError('invalidEid', `EID prefix must be 30 digits: ${prefix30}`);
  const r = Number((BigInt(prefix30) * 100n) % 97n);
  return String(98 - r).padStart(2, '0');
}

/** `prefix30` completed with its check digits. */
export function eidWithCheckDigits(prefix30: string): string {
  return prefix30 + eidCheckDigits(prefix30);
}

/** Throws IdentifierError('invalidEid') unless `eid` is 32 digits with valid check digits. */
export function assertEid(eid: string): string {
  if (!isEid(eid)) throw new IdentifierError('invalidEid', `EID must be 32 digits: ${eid}`);
  if (!eidChecksumOk(eid)) throw new IdentifierError('invalidEid', `EID check digits are wrong: ${eid}`);
  return eid;
}
