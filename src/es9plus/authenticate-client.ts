/** ES9+.AuthenticateClient (SGP.22 §5.6.3): authenticate the eUICC, find its order, sign SmdpSigned2. */
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import type { KeyObject } from 'node:crypto';
import type { Database } from '../db/db.js';
import { pruneExpiredSessions } from '../db/retention.js';
import { tlv } from '../der/tlv.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { ProfileRow, ProfileTypeRow } from '../orders/store.js';
import { applyChange, ChangedMeanwhile, profileColumns, ROW_VERSION, type ProfileContext, type SqlPart } from '../orders/state-machine.js';
import { AUTHENTICATE_ERROR, decodeAuthenticateServerResponse, type EuiccSigned1 } from '../rsp/authentication.js';
import { encodeSmdpSigned2, encodeStoreMetadataRequest } from '../rsp/download.js';
import { iccidToEf } from '../rsp/identifiers.js';
import { KEY_LOOKUPS, type Es9Deps } from './context.js';
import { certificateEid, verifyEuiccChain } from './certificates.js';
import { checkFaultsHandled } from './faults.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { FAULTS_PENDING, canSessionStep, openedSession, optimistically, type SessionRow, type SessionStep } from './sessions.js';

export interface AuthenticateClientRequest {
  transactionId: string;
  authenticateServerResponse: string;
}


type OrderRow = ProfileContext & Pick<ProfileTypeRow, 'service_provider_name' | 'profile_name' | 'profile_class' | 'template'> & { row_version: string };

/** Verify the session exists, is live and may take this step (SESSION_STEPS), otherwise 8.10.1/3.9. */
export function checkSessionState(session: SessionRow | undefined, step: SessionStep, tid: string): SessionRow {
  if (!session) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid}`);
  check(canSessionStep(session, step), SC.transactionUnknown, `transactionId ${tid} is not awaiting this function`);
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

/**
 * The one read of authenticateClient: the order the eUICC asks for, by MatchingID, or with none the
 * oldest Released order for the eUICC's EID (the default SM-DP+ case), with the profile type's
 * metadata and template (for getBoundProfilePackage, through the snapshot), the listeners' columns
 * and the profile's row version; whether the transactionId was used already (a session row exists:
 * the session was opened without a write, src/es9plus/transaction-ids.ts) and whether fault
 * injections are pending. No lock: the write is guarded (applyChange).
 */
async function readOrder(db: Database, tidHex: string, matchingId: string | undefined, eid: string | undefined) {
  const rows = await db.query<Record<string, unknown>>(
    `SELECT x.*, o.*
       FROM (SELECT EXISTS (SELECT 1 FROM rsp_sessions WHERE transaction_id = $1) AS session_written, ${FAULTS_PENDING}) x
       LEFT JOIN LATERAL (
         SELECT p.*, ${ROW_VERSION}, t.service_provider_name, t.profile_name, t.profile_class, t.template${profileColumns()}
           FROM profiles p JOIN profile_types t ON t.name = p.profile_type
          WHERE ${matchingId ? 'p.matching_id = $2' : `p.eid = $2 AND p.state = 'Released'`}
          ORDER BY p.updated_at LIMIT 1) o ON true`,
    [tidHex, matchingId ? matchingId.toUpperCase() : eid ?? null],
    KEY_LOOKUPS,
  );
  const row = rows[0]!;
  return { sessionWritten: row.session_written === true, order: row.iccid ? (row as unknown as OrderRow) : undefined, faults_pending: row.faults_pending };
}

/**
 * Verify the transactionId was issued by this server (its tag) and has not expired, otherwise
 * 8.10.1/3.9; answers the session it opened ('initiated', no row yet).
 */
export async function checkSessionOpened(deps: Pick<Es9Deps, 'tids' | 'config'>, tid: { hex: string; bytes: Buffer }): Promise<SessionRow> {
  const opened = await deps.tids.open(tid.bytes, deps.config.smdpAddress);
  const session = opened && openedSession(tid.hex, opened, deps.config.smdpAddress, deps.config.sessionTtlSeconds);
  return checkSessionState(session, 'authenticateClient', tid.hex);
}

/** Verify no session row holds the transactionId yet (it was not used already), otherwise 8.10.1/3.9. */
export function checkSessionUnused(written: boolean, tid: string): void {
  check(!written, SC.transactionUnknown, `transactionId ${tid} is not awaiting this function`);
}

/**
 * Verify an order was found: by MatchingID (unknown: 8.2.6/3.8), or, with no MatchingID, a Released
 * order for this EID (the default SM-DP+ case; none: 8.1.1/3.8).
 */
export function checkOrderFound(order: OrderRow | undefined, matchingId: string | undefined, eid: string): OrderRow {
  if (order) return order;
  if (matchingId) throw new FunctionFailed(SC.matchingIdRefused, `unknown MatchingID ${matchingId}`);
  throw new FunctionFailed(SC.eidRefused, `no released order for EID ${eid}`);
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

/** The session's first row, written with the change (`… FROM t`: only if the change is). */
function insertSession(s: SessionRow): SqlPart {
  return {
    sql: `INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, created_at, expires_at,
            eid, iccid, euicc_certificate, smdp_signature2, profile_metadata, cc_required)
          SELECT $1::text, 'authenticated', $2::text, $3::text, $4::bytea, $5::timestamptz, $6::timestamptz,
            $7::text, $8::text, $9::bytea, $10::bytea, $11::bytea, $12::boolean FROM t RETURNING 1`,
    params: [s.transaction_id, s.ci_ski, s.server_address, s.server_challenge, s.created_at, s.expires_at,
      s.eid, s.iccid, s.euicc_certificate, s.smdp_signature2, s.profile_metadata, s.cc_required],
  };
}

/** The guard of authenticateClient's write: no session row holds the transactionId yet. */
function unusedTransactionId(tid: string): SqlPart {
  return { sql: 'NOT EXISTS (SELECT 1 FROM rsp_sessions WHERE transaction_id = $1::text)', params: [tid] };
}

let calls = 0;

export async function authenticateClient(deps: Es9Deps, req: AuthenticateClientRequest) {
  const tid = transactionIdOf(req.transactionId);
  const asrBytes = b64(req.authenticateServerResponse, 'authenticateServerResponse');
  const asr = decodeField('authenticateServerResponse', () => decodeAuthenticateServerResponse(asrBytes));
  const matchingId = 'ok' in asr ? asr.ok.euiccSigned1.ctxParams1.matchingId || undefined : undefined;
  // The EID as the certificate states it, to find the order in the same read; verified below.
  const claimedEid = 'ok' in asr ? certificateEid(asr.ok.euiccCertificate) : undefined;

  // A transactionId this server did not issue, or one expired, is refused before any read.
  const session = await checkSessionOpened(deps, tid);
  // Ended sessions keep their row until they expire: a batch of expired ones goes now and then.
  if (++calls % 256 === 0) pruneExpiredSessions(deps.db).catch((err: unknown) => deps.log.warn({ err }, 'session purge failed'));
  return optimistically(async () => {
    const read = await readOrder(deps.db, tid.hex, matchingId, claimedEid);
    checkSessionUnused(read.sessionWritten, tid.hex);
    checkFaultsHandled(deps, read);
    if ('error' in asr) {
      throw new FunctionFailed(SC.euiccVerificationFailed, `eUICC refused the server: ${codeName(AUTHENTICATE_ERROR, asr.error.code)}`);
    }
    const { euiccSigned1, euiccSignature1, euiccSignature1Do } = asr.ok;
    checkSignedTransactionId(euiccSigned1.transactionId, tid.hex);
    const chain = verifyEuiccChain(deps.pki, asr.ok.eumCertificate, asr.ok.euiccCertificate, { ciSkiHex: session.ci_ski });
    checkEuiccSignature1(chain.euicc.publicKey, euiccSigned1, euiccSignature1);
    checkServerChallenge(euiccSigned1, session);

    const order = checkOrderFound(chain.eid === claimedEid ? read.order : undefined, matchingId, chain.eid);
    checkOrderEid(order, chain.eid);
    checkOrderDownloadable(order, new Date());
    checkEligibility(order, euiccSigned1);

    const dp = deps.pki.byCiSkiHex.get(session.ci_ski)!;
    const metadata = buildProfileMetadata(order, deps.config.smdpAddress);
    const ccRequired = order.cc_digest !== null;
    const smdpSigned2 = encodeSmdpSigned2({ transactionId: tid.bytes, ccRequiredFlag: ccRequired });
    const smdpSignature2 = tlv(0x5f37, signRaw(dp.pb.key, Buffer.concat([smdpSigned2, euiccSignature1Do])));

    // One statement: the order (eid, attempt count, history, operator callback) and the session's
    // first row. Two calls with one transactionId: the session's primary key lets one through.
    const authenticated: SessionRow = {
      ...session, state: 'authenticated', eid: chain.eid, iccid: order.iccid, euicc_certificate: asr.ok.euiccCertificate,
      smdp_signature2: smdpSignature2, profile_metadata: metadata, cc_required: ccRequired,
    };
    const written = await applyChange(deps.db, order, {
      action: 'authenticated',
      to: order.state,
      set: { eid: chain.eid, download_attempts: order.download_attempts + 1 },
      detail: { transactionId: tid.hex, eid: chain.eid, attempt: order.download_attempts + 1 },
      facts: { eid: chain.eid, transactionId: tid.hex },
    }, [insertSession(authenticated)], unusedTransactionId(tid.hex)).catch((err: unknown) => {
      if ((err as { code?: string })?.code === '23505') throw new ChangedMeanwhile('transactionId used meanwhile');
      throw err;
    });
    deps.snapshots?.keep({ session: authenticated, profile: written, faults_pending: read.faults_pending });

    return {
      transactionId: tid.hex,
      profileMetadata: metadata.toString('base64'),
      smdpSigned2: smdpSigned2.toString('base64'),
      smdpSignature2: smdpSignature2.toString('base64'),
      smdpCertificate: dp.pb.cert.raw.toString('base64'),
    };
  });
}
