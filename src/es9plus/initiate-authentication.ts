/**
 * ES9+.InitiateAuthentication (SGP.22 §5.6.1): choose a CI, open an RSP session, sign ServerSigned1.
 * The session is opened without a write: its transactionId carries it (src/es9plus/transaction-ids.ts).
 */
import { signRaw } from '../crypto/ecdsa.js';
import { tlv } from '../der/tlv.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { DpCredentials } from '../pki/load.js';
import { decodeEuiccInfo1, type EuiccInfo1 } from '../rsp/euiccinfo.js';
import { encodeServerSigned1 } from '../rsp/authentication.js';
import type { Es9Deps } from './context.js';
import { b64, decodeField } from './input.js';
import { tidHex } from './sessions.js';

export interface InitiateAuthenticationRequest {
  euiccChallenge: string;
  euiccInfo1: string;
  smdpAddress: string;
}

/** Verify that smdpAddress is this SM-DP+ (DNS names compare case-insensitively), otherwise 8.8.1/3.8. */
export function checkSmdpAddress(given: string, own: string): void {
  check(given.toLowerCase() === own.toLowerCase(), SC.smdpAddressRefused, `SM-DP+ address ${given} refused: this is ${own}`);
}

/** Verify that euiccChallenge is 16 bytes, otherwise 1.3.1/2.1. */
export function checkEuiccChallenge(challenge: Buffer): void {
  check(challenge.length === 16, SC.formatInvalid, 'euiccChallenge must be 16 bytes');
}

/** Verify the eUICC speaks SGP.22 v2 or v3, otherwise 8.8.3/3.1. */
export function checkSvn(info: EuiccInfo1): void {
  const major = info.svn[0];
  check(info.svn.length === 3 && (major === 2 || major === 3), SC.svnUnsupported, `SVN ${info.svn.toString('hex')} unsupported`);
}

/**
 * Select the CI: the first key in euiccCiPKIdListForSigning for which this SM-DP+ holds
 * credentials (otherwise 8.8.2/3.1), and which the eUICC also trusts for verification
 * (otherwise 8.8.4/3.7).
 */
export function selectCredentials(info: EuiccInfo1, byCiSkiHex: Map<string, DpCredentials>): DpCredentials {
  const signable = info.ciPkIdsForSigning.map((k) => byCiSkiHex.get(k.toString('hex').toUpperCase())).filter((c) => !!c);
  if (!signable.length) throw new FunctionFailed(SC.securityConfigUnsupported);
  const verifiable = new Set(info.ciPkIdsForVerification.map((k) => k.toString('hex').toUpperCase()));
  const chosen = signable.find((c) => verifiable.has(c.ciSki.toString('hex').toUpperCase()));
  if (!chosen) throw new FunctionFailed(SC.dpCertificateUnavailable);
  return chosen;
}

export async function initiateAuthentication(deps: Es9Deps, req: InitiateAuthenticationRequest) {
  checkSmdpAddress(req.smdpAddress, deps.config.smdpAddress);
  const euiccChallenge = b64(req.euiccChallenge, 'euiccChallenge');
  checkEuiccChallenge(euiccChallenge);
  const info = decodeField('euiccInfo1', () => decodeEuiccInfo1(b64(req.euiccInfo1, 'euiccInfo1')));
  checkSvn(info);
  const dp = selectCredentials(info, deps.pki.byCiSkiHex);

  const { transactionId, serverChallenge } = await deps.tids.issue(dp.ciSki.toString('hex'), deps.config.smdpAddress);
  const serverSigned1 = encodeServerSigned1({
    transactionId,
    euiccChallenge,
    serverAddress: deps.config.smdpAddress,
    serverChallenge,
  });
  const serverSignature1 = signRaw(dp.auth.key, serverSigned1);

  return {
    transactionId: tidHex(transactionId),
    serverSigned1: serverSigned1.toString('base64'),
    serverSignature1: tlv(0x5f37, serverSignature1).toString('base64'),
    euiccCiPKIdToBeUsed: tlv(0x04, dp.ciSki).toString('base64'),
    serverCertificate: dp.auth.cert.raw.toString('base64'),
  };
}
