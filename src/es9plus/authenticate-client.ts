/** ES9+.AuthenticateClient (SGP.22 §5.6.3): authenticate the eUICC, find its order, sign SmdpSigned2. */
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import type { KeyObject } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { tlv } from '../der/tlv.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { event, type ProfileRow, type ProfileTypeRow } from '../orders/store.js';
import { enqueueProgress } from '../es2plus/callbacks.js';
import { AUTHENTICATE_ERROR, decodeAuthenticateServerResponse, type EuiccSigned1 } from '../rsp/authentication.js';
import { encodeSmdpSigned2, encodeStoreMetadataRequest } from '../rsp/download.js';
import { iccidToEf } from '../rsp/identifiers.js';
import type { Es9Deps } from './context.js';
import { verifyEuiccChain } from './certificates.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { lockSession, type SessionRow } from './sessions.js';

export interface AuthenticateClientRequest {
  transactionId: string;
  authenticateServerResponse: string;
}


type OrderRow = ProfileRow & Pick<ProfileTypeRow, 'service_provider_name' | 'profile_name' | 'profile_class'>;

/** Verify the session exists, is live and awaits authenticateClient, otherwise 8.10.1/3.9. */
export function checkSessionState(session: SessionRow | undefined, expected: SessionRow['state'], tid: string): SessionRow {
  if (!session) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid}`);
  check(session.state === expected, SC.transactionUnknown, `transactionId ${tid} is not awaiting this function`);
  return session;
}

/** Verify the transactionId signed by the eUICC equals the session's, otherwise 8.10.1/3.9. */
export function checkSignedTransactionId(signed: Buffer, tidHex: string): void {
  check(signed.toString('hex').toUpperCase() === tidHex, SC.transactionUnknown, 'transactionId signed by the eUICC differs from the session');
}

/** Verify euiccSignature1 over euiccSigned1 as received, otherwise 8.1/6.1. */
export function checkEuiccSignature1(key: KeyObject, signed: EuiccSigned1, signature: Buffer): void {
  check(verifyRaw(key, signed.raw, signature), SC.euiccVerificationFailed, 'euiccSignature1 verification failed');
}

/** Verify the eUICC signed this session's serverChallenge and address, otherwise 8.1/6.1. */
export function checkServerChallenge(signed: EuiccSigned1, session: SessionRow): void {
  check(signed.serverChallenge.equals(session.server_challenge), SC.euiccVerificationFailed, 'serverChallenge mismatch');
  check(signed.serverAddress.toLowerCase() === session.server_address.toLowerCase(), SC.euiccVerificationFailed, 'serverAddress mismatch');
}

const ORDER_SELECT = `SELECT p.*, t.service_provider_name, t.profile_name, t.profile_class
  FROM profiles p JOIN profile_types t ON t.name = p.profile_type`;

/**
 * Find the order: by MatchingID (unknown: 8.2.6/3.8), or, with no MatchingID, a Released order
 * for this EID (the default SM-DP+ case; none: 8.1.1/3.8).
 */
export async function findOrder(q: Queryable, matchingId: string | undefined, eid: string): Promise<OrderRow> {
  if (matchingId) {
    const rows = await q.query<OrderRow>(`${ORDER_SELECT} WHERE p.matching_id = $1 FOR UPDATE OF p`, [matchingId.toUpperCase()]);
    if (!rows[0]) throw new FunctionFailed(SC.matchingIdRefused, `unknown MatchingID ${matchingId}`);
    return rows[0];
  }
  const rows = await q.query<OrderRow>(
    `${ORDER_SELECT} WHERE p.eid = $1 AND p.state = 'Released' ORDER BY p.updated_at LIMIT 1 FOR UPDATE OF p`,
    [eid],
  );
  if (!rows[0]) throw new FunctionFailed(SC.eidRefused, `no released order for EID ${eid}`);
  return rows[0];
}

/** Verify the order is bound to no EID or to this one, otherwise 8.1.1/3.8. */
export function checkOrderEid(order: ProfileRow, eid: string): void {
  check(order.eid === null || order.eid === eid, SC.eidRefused, 'the order is bound to another EID');
}

/** Verify the order may be downloaded now: released (8.2/1.2), not used (8.2.1/3.3), not expired (8.8.5/4.10), attempts left (8.8.5/6.4). */
export function checkOrderDownloadable(order: ProfileRow, now: Date): void {
  if (order.state === 'Installed' || order.state === 'Unavailable' || order.state === 'Error') {
    throw new FunctionFailed(SC.profileAlreadyUsed, `profile is ${order.state}`);
  }
  check(order.state === 'Released' || order.state === 'Downloaded', SC.profileNotReleased, `profile is ${order.state}, not Released`);
  check(!order.expires_at || order.expires_at > now, SC.orderExpired);
  check(order.download_attempts < order.max_download_attempts, SC.downloadRetryLimit);
}

/** Verify a test profile only goes to an eUICC that supports test profiles, otherwise 8.2.5/4.3. */
export function checkEligibility(order: OrderRow, signed: EuiccSigned1): void {
  if (order.profile_class === 0) {
    check(signed.euiccInfo2.rspCapability.includes(3), SC.profileTypeNotEligible, 'eUICC does not support test profiles');
  }
}

export function buildProfileMetadata(order: OrderRow, notificationAddress: string): Buffer {
  return encodeStoreMetadataRequest({
    iccid: iccidToEf(order.iccid),
    serviceProviderName: order.service_provider_name,
    profileName: order.profile_name,
    profileClass: order.profile_class as 0 | 1 | 2,
    // Enable, disable and delete notifications come back to this SM-DP+; the install result
    // goes to the address of the session that installed the profile.
    notificationConfigurationInfo: [1, 2, 3].map((op) => ({ operations: [op], address: notificationAddress })),
  });
}

export async function authenticateClient(deps: Es9Deps, req: AuthenticateClientRequest) {
  const tid = transactionIdOf(req.transactionId);
  const asrBytes = b64(req.authenticateServerResponse, 'authenticateServerResponse');
  const asr = decodeField('authenticateServerResponse', () => decodeAuthenticateServerResponse(asrBytes));

  return deps.db.tx(async (q) => {
    const session = checkSessionState(await lockSession(q, tid.hex), 'initiated', tid.hex);
    if ('error' in asr) {
      throw new FunctionFailed(SC.euiccVerificationFailed, `eUICC refused the server: ${codeName(AUTHENTICATE_ERROR, asr.error.code)}`);
    }
    const { euiccSigned1, euiccSignature1, euiccSignature1Do } = asr.ok;
    checkSignedTransactionId(euiccSigned1.transactionId, tid.hex);
    const chain = verifyEuiccChain(deps.pki, asr.ok.eumCertificate, asr.ok.euiccCertificate, { ciSkiHex: session.ci_ski });
    checkEuiccSignature1(chain.euicc.publicKey, euiccSigned1, euiccSignature1);
    checkServerChallenge(euiccSigned1, session);

    const order = await findOrder(q, euiccSigned1.ctxParams1.matchingId, chain.eid);
    checkOrderEid(order, chain.eid);
    checkOrderDownloadable(order, new Date());
    checkEligibility(order, euiccSigned1);

    const dp = deps.pki.byCiSkiHex.get(session.ci_ski)!;
    const metadata = buildProfileMetadata(order, deps.config.smdpAddress);
    const ccRequired = order.cc_digest !== null;
    const smdpSigned2 = encodeSmdpSigned2({ transactionId: tid.bytes, ccRequiredFlag: ccRequired });
    const smdpSignature2 = tlv(0x5f37, signRaw(dp.pb.key, Buffer.concat([smdpSigned2, euiccSignature1Do])));

    await q.query(
      `UPDATE profiles SET eid = $2, download_attempts = download_attempts + 1, updated_at = now() WHERE iccid = $1`,
      [order.iccid, chain.eid],
    );
    await q.query(
      `UPDATE rsp_sessions SET state = 'authenticated', eid = $2, iccid = $3, euicc_certificate = $4,
          smdp_signature2 = $5, profile_metadata = $6, cc_required = $7 WHERE transaction_id = $1`,
      [tid.hex, chain.eid, order.iccid, asr.ok.euiccCertificate, smdpSignature2, metadata, ccRequired],
    );
    await event(q, order.iccid, 'authenticated', { transactionId: tid.hex, eid: chain.eid, attempt: order.download_attempts + 1 });
    await enqueueProgress(q, { iccid: order.iccid, point: 1, status: 'Executed-Success', eid: chain.eid });

    return {
      transactionId: tid.hex,
      profileMetadata: metadata.toString('base64'),
      smdpSigned2: smdpSigned2.toString('base64'),
      smdpSignature2: smdpSignature2.toString('base64'),
      smdpCertificate: dp.pb.cert.raw.toString('base64'),
    };
  });
}
