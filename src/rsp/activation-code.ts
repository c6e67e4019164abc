/**
 * Activation codes (SGP.22 §4.1): `1$<SM-DP+ address>$<MatchingID>[$<SM-DP+ OID>[$<CC required flag>]]`,
 * prefixed `LPA:` in a QR code. Fields are positional; an empty OID between a present token and
 * flag is allowed (`LPA:1$HOST$TOKEN$$1`).
 */

export interface ActivationCode {
  smdpAddress: string;
  matchingId: string;
  smdpOid?: string;
  confirmationCodeRequired?: boolean;
}

export class ActivationCodeError extends Error {
  override name = 'ActivationCodeError';
}

/** The alphabet lpac accepts in a MatchingID, and that QR alphanumeric mode can carry. */
export const MATCHING_ID_RE = /^[0-9A-Z-]{1,64}$/;
const ADDRESS_RE = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;
const OID_RE = /^\d+(\.\d+)+$/;

export function buildActivationCode(ac: ActivationCode, opts: { lpaPrefix?: boolean } = {}): string {
  if (!ADDRESS_RE.test(ac.smdpAddress)) throw new ActivationCodeError(`invalid SM-DP+ address: ${ac.smdpAddress}`);
  if (!MATCHING_ID_RE.test(ac.matchingId)) throw new ActivationCodeError(`invalid MatchingID: ${ac.matchingId}`);
  if (ac.smdpOid !== undefined && !OID_RE.test(ac.smdpOid)) throw new ActivationCodeError(`invalid OID: ${ac.smdpOid}`);
  const fields = ['1', ac.smdpAddress.toUpperCase(), ac.matchingId];
  if (ac.confirmationCodeRequired) fields.push(ac.smdpOid ?? '', '1');
  else if (ac.smdpOid) fields.push(ac.smdpOid);
  const s = fields.join('$');
  return opts.lpaPrefix === false ? s : `LPA:${s}`;
}

export function parseActivationCode(input: string): ActivationCode {
  const s = input.trim().replace(/^LPA:/i, '');
  const f = s.split('$');
  if (f[0] !== '1') throw new ActivationCodeError('activation code format must be 1');
  if (f.length < 3 || f.length > 5) throw new ActivationCodeError('activation code needs 3 to 5 fields');
  const [, address, matchingId, oid, flag] = f as [string, string, string, string?, string?];
  if (!ADDRESS_RE.test(address)) throw new ActivationCodeError(`invalid SM-DP+ address: ${address}`);
  if (matchingId !== '' && !MATCHING_ID_RE.test(matchingId.toUpperCase())) throw new ActivationCodeError(`invalid MatchingID: ${matchingId}`);
  if (oid && !OID_RE.test(oid)) throw new ActivationCodeError(`invalid OID: ${oid}`);
  if (flag !== undefined && flag !== '' && flag !== '1' && flag !== '0') throw new ActivationCodeError(`invalid CC flag: ${flag}`);
  return {
    smdpAddress: address,
    matchingId,
    ...(oid ? { smdpOid: oid } : {}),
    ...(flag === '1' ? { confirmationCodeRequired: true } : {}),
  };
}
