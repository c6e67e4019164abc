/** ES9+.GetBoundProfilePackage (SGP.22 §5.6.2): verify the eUICC, check the confirmation code, bind and protect the profile. */
import { randomBytes, type KeyObject } from 'node:crypto';
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import type { CurveName } from '../crypto/curves.js';
import { eckaWithFreshKey } from '../crypto/ecka.js';
import { hashCc } from '../crypto/hashcc.js';
import { deriveSessionKeys } from '../crypto/kdf.js';
import { chunk, MAX_ENCRYPTED_PLAINTEXT, MAX_MAC_ONLY_PLAINTEXT, Scp03tWriter } from '../crypto/scp03t.js';
import type { Database } from '../db/db.js';
import { check, FunctionFailed, SC } from '../errors.js';
import type { ProfileRow } from '../orders/store.js';
import { applyChange } from '../orders/state-machine.js';
import { buildBoundProfilePackage, encodeInitialiseSecureChannel, smdpSignInput } from '../rsp/bpp.js';
import { decodePrepareDownloadResponse, DOWNLOAD_ERROR, type EuiccSigned2 } from '../rsp/download.js';
import { orderProfilePackage } from '../saip/template.js';
import type { Es9Deps } from './context.js';
import { checkSessionState, checkSignedTransactionId } from './authenticate-client.js';
import { sessionEuiccCertificate } from './certificates.js';
import { b64, codeName, decodeField, transactionIdOf } from './input.js';
import { canSessionStep, optimistically, readSessionWithProfile, sessionGuard, type SessionRead, type SessionRow } from './sessions.js';
import { checkFaultsHandled } from './faults.js';
import { fromSnapshot } from './snapshots.js';

export interface GetBoundProfilePackageRequest {
  transactionId: string;
  prepareDownloadResponse: string;
}


/** Verify euiccSignature2 over EUICCSigned2 ‖ smdpSignature2 DO, otherwise 8.1/6.1. */
export function checkEuiccSignature2(key: KeyObject, signed: EuiccSigned2, signature: Buffer, smdpSignature2Do: Buffer): void {
  check(verifyRaw(key, Buffer.concat([signed.raw, smdpSignature2Do]), signature), SC.euiccVerificationFailed, 'euiccSignature2 verification failed');
}

type CcOutcome = { ok: true } | { ok: false; failure: FunctionFailed; attempts: number; exhausted: boolean };

/**
 * Verify the confirmation code: hashCc must be present (8.2.7/2.2) and equal
 * SHA-256(SHA-256(CC) ‖ transactionId) (8.2.7/3.8; at the attempt limit 8.2.7/6.4).
 */
export function checkConfirmationCode(order: ProfileRow, session: SessionRow, tid: Buffer, given?: Buffer): CcOutcome {
  if (!session.cc_required) return { ok: true };
  check(given !== undefined, SC.confirmationCodeMissing);
  check(order.cc_attempts < order.cc_max_attempts, SC.confirmationCodeRetryLimit);
  if (order.cc_digest && hashCc(order.cc_digest, tid).equals(given)) return { ok: true };
  const attempts = order.cc_attempts + 1;
  const exhausted = attempts >= order.cc_max_attempts;
  return {
    ok: false,
    attempts,
    exhausted,
    failure: new FunctionFailed(exhausted ? SC.confirmationCodeRetryLimit : SC.confirmationCodeRefused,
      exhausted ? 'confirmation code refused; no attempts left, the order is ended' : `confirmation code refused (${order.cc_max_attempts - attempts} attempts left)`),
  };
}

/**
 * Protects the profile for this eUICC: ECKA with a fresh one-time key, session keys, SCP03t segments
 * (docs/protocol.md: Bound Profile Package, Key agreement and KDF, SCP03t protection of the BPP).
 */
export function bindProfilePackage(opts: {
  tid: Buffer; eid: string; euiccOtpk: Buffer; pbKey: KeyObject; curve: CurveName;
  metadata: Buffer; upp: Buffer;
}): Buffer {
  const ot = eckaWithFreshKey(opts.curve, opts.euiccOtpk);
  const z = ot.z;
  const hostId = randomBytes(8);
  const keys = deriveSessionKeys(z, hostId, opts.eid);
  const smdpSign = signRaw(opts.pbKey, smdpSignInput(opts.tid, hostId, ot.publicPoint, opts.euiccOtpk));
  const w = new Scp03tWriter(keys);
  return buildBoundProfilePackage({
    initialiseSecureChannel: encodeInitialiseSecureChannel({ transactionId: opts.tid, hostId, smdpOtpk: ot.publicPoint, smdpSign }),
    firstSequenceOf87: [w.encrypted(0x87, Buffer.from([0xbf, 0x24, 0x00]))],
    sequenceOf88: chunk(opts.metadata, MAX_MAC_ONLY_PLAINTEXT).map((p) => w.macOnly(0x88, p)),
    sequenceOf86: chunk(opts.upp, MAX_ENCRYPTED_PLAINTEXT).map((p) => w.encrypted(0x86, p)),
  });
}

type OrderRow = NonNullable<SessionRead['profile']>;

/** Verify the eUICC's PrepareDownload succeeded, its transactionId is the session's and euiccSignature2 verifies. */
function checkPrepareDownload(s: SessionRow, tid: { hex: string }, pdr: ReturnType<typeof decodePrepareDownloadResponse>): EuiccSigned2 {
  if ('error' in pdr) {
    throw new FunctionFailed(SC.downloadErrorReported, `eUICC refused PrepareDownload: ${codeName(DOWNLOAD_ERROR, pdr.error.code)}`);
  }
  const { euiccSigned2, euiccSignature2 } = pdr.ok;
  checkSignedTransactionId(euiccSigned2.transactionId, tid.hex);
  checkEuiccSignature2(sessionEuiccCertificate(s.euicc_certificate!).publicKey, euiccSigned2, euiccSignature2, s.smdp_signature2!);
  return euiccSigned2;
}

/**
 * getBoundProfilePackage again in a session that already has its package, e.g. the LPA retrying
 * after a network error (the session is kept until the PIR: docs/protocol.md#rsp-session-states).
 * The request is verified like the first one (euiccSignature2 over the new EUICCSigned2, the transactionId inside it); with
 * the same euiccOtpk the eUICC still holds the one-time key the package was bound to, so it gets the
 * very same bytes again (a new binding would change the order's history and could be installed
 * twice). Another euiccOtpk would need a new binding: refused, 8.2/3.7. Nothing is re-recorded as
 * downloaded and no second point-3 callback goes out; the retry is logged as 'bpp-resent'.
 */
async function resendBoundProfilePackage(db: Database, s: SessionRow, order: OrderRow | undefined, tid: { hex: string }, euiccSigned2: EuiccSigned2, snapshot: boolean) {
  const bpp = s.bound_profile_package;
  check(!!bpp && !!s.euicc_otpk && euiccSigned2.euiccOtpk.equals(s.euicc_otpk), SC.rebindingRefused,
    'a bound profile package was already delivered in this session for another euiccOtpk');
  check(order?.state === 'Downloaded' && order.eid === s.eid, SC.profileNotReleased, 'the order is no longer released');
  check(!order!.expires_at || order!.expires_at > new Date(), SC.orderExpired);
  await applyChange(db, order!, { action: 'bppResent', to: 'Downloaded', detail: { transactionId: tid.hex, eid: s.eid }, facts: { eid: s.eid } }, [], sessionGuard(tid.hex, 'bound'), { snapshot });
  return { response: { transactionId: tid.hex, boundProfilePackage: bpp!.toString('base64') } };
}

export async function getBoundProfilePackage(deps: Es9Deps, req: GetBoundProfilePackageRequest) {
  const tid = transactionIdOf(req.transactionId);
  const pdrBytes = b64(req.prepareDownloadResponse, 'prepareDownloadResponse');
  const pdr = decodeField('prepareDownloadResponse', () => decodePrepareDownloadResponse(pdrBytes));

  const result = await optimistically(async () => {
    // The session's previous step on this process left a snapshot: no read (src/es9plus/snapshots.ts).
    const snapshot = deps.snapshots?.take(tid.hex);
    const read = snapshot ?? await readSessionWithProfile(deps.db, tid.hex, { template: true, bpp: true });
    return fromSnapshot(snapshot, () => bindOrResend(deps, tid, pdr, read, !!snapshot));
  });
  if ('failure' in result) throw result.failure;
  return result.response;
}

/** The function's steps on what was read (or kept: `snapshot`), up to its one write. */
async function bindOrResend(
  deps: Es9Deps, tid: ReturnType<typeof transactionIdOf>, pdr: ReturnType<typeof decodePrepareDownloadResponse>,
  read: SessionRead | undefined, snapshot: boolean,
): Promise<{ response: { transactionId: string; boundProfilePackage: string } } | { failure: FunctionFailed }> {
  if (read) checkFaultsHandled(deps, read);
  if (read && canSessionStep(read.session, 'resendBoundProfilePackage')) return resendBoundProfilePackage(deps.db, read.session, read.profile, tid, checkPrepareDownload(read.session, tid, pdr), snapshot);
  const s = checkSessionState(read?.session, 'getBoundProfilePackage', tid.hex);
  const euiccSigned2 = checkPrepareDownload(s, tid, pdr);

  const order = read!.profile;
  check(order && (order.state === 'Released' || order.state === 'Downloaded'), SC.profileNotReleased, 'the order is no longer released');
  check(!order!.expires_at || order!.expires_at > new Date(), SC.orderExpired);

  const cc = checkConfirmationCode(order!, s, tid.bytes, euiccSigned2.hashCc);
  if (!cc.ok) {
    // The failed attempt is counted (and the order ended at the limit) even though the call fails.
    await applyChange(deps.db, order!, {
      action: cc.exhausted ? 'orderKilled' : 'confirmationCodeRefused',
      to: cc.exhausted ? 'Error' : order!.state,
      set: { cc_attempts: cc.attempts },
      detail: { transactionId: tid.hex, attempts: cc.attempts },
      facts: { eid: s.eid, message: cc.failure.message },
    }, [], sessionGuard(tid.hex, 'authenticated'), { snapshot });
    return { failure: cc.failure };
  }

  const dp = deps.pki.byCiSkiHex.get(s.ci_ski)!;
  const bpp = bindProfilePackage({
    tid: tid.bytes,
    eid: s.eid!,
    euiccOtpk: euiccSigned2.euiccOtpk,
    pbKey: dp.pb.key,
    curve: dp.curve,
    metadata: s.profile_metadata!,
    upp: orderProfilePackage({ iccid: order!.iccid, imsi: order!.imsi, ki: order!.ki, opc: order!.opc, scp03Keys: order!.scp03_keys }, order!.template ?? null),
  });
  // One statement: the order (state, history, operator callback) and the session's binding.
  const written = await applyChange(deps.db, order!, { action: 'bppDownloaded', to: 'Downloaded', detail: { transactionId: tid.hex, eid: s.eid }, facts: { eid: s.eid } }, [{
    sql: `UPDATE rsp_sessions SET state = 'bound', euicc_otpk = $2, bound_profile_package = $3
           WHERE transaction_id = $1 AND state = 'authenticated' AND EXISTS (SELECT 1 FROM t) RETURNING 1`,
    params: [tid.hex, euiccSigned2.euiccOtpk, bpp],
  }], sessionGuard(tid.hex, 'authenticated'), { snapshot });
  // For the install result: neither the package (a retry on a snapshot reads it) nor the template.
  deps.snapshots?.keep({
    session: { ...s, state: 'bound', euicc_otpk: euiccSigned2.euiccOtpk, bound_profile_package: null },
    profile: { ...written, template: undefined },
    faults_pending: read!.faults_pending,
  });
  return { response: { transactionId: tid.hex, boundProfilePackage: bpp.toString('base64') } };
}
