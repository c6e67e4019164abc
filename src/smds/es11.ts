/**
 * ES11 on the built-in SM-DS (LPA → SM-DS, SGP.22 §5.9 of v2.x; docs/smds.md#es11): the common
 * mutual authentication of ES9+ (docs/protocol.md#es9-functions) with the SM-DS's CERT.DSauth, and,
 * once the eUICC is authenticated, the event entries for its EID instead of a profile. The checks
 * are the ES9+ ones (src/es9plus), run against the SM-DS's address, credentials and sessions.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../db/db.js';
import { signRaw } from '../crypto/ecdsa.js';
import { tlv } from '../der/tlv.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { checkEuiccSignature1, checkServerChallenge, checkSignedTransactionId } from '../es9plus/authenticate-client.js';
import { verifyEuiccChain } from '../es9plus/certificates.js';
import { checkEuiccChallenge, checkSmdpAddress, checkSvn, selectCredentials } from '../es9plus/initiate-authentication.js';
import { b64, codeName, decodeField, transactionIdOf } from '../es9plus/input.js';
import type { SessionRow } from '../es9plus/sessions.js';
import type { DpCredentials, ServerPki, SmdsCredentials } from '../pki/load.js';
import { AUTHENTICATE_ERROR, decodeAuthenticateServerResponse, encodeServerSigned1 } from '../rsp/authentication.js';
import { decodeEuiccInfo1 } from '../rsp/euiccinfo.js';
import { eventsForEid } from './store.js';

/** The first bytes of every SM-DS transactionId ("SMDS"): tells ES11 calls on the ES9+ paths apart. */
export const SMDS_TID_PREFIX = Buffer.from('SMDS', 'ascii');
export const SMDS_TID_PREFIX_HEX = SMDS_TID_PREFIX.toString('hex').toUpperCase();

export interface Es11Deps {
  db: Database;
  pki: ServerPki;
  /** The SM-DS's address (SMDS_ADDRESS), which the eUICC signs. */
  smdsAddress: string;
  sessionTtlSeconds: number;
}

/** The SM-DS's credentials in the shape selectCredentials takes (it reads the CI's SKI only). */
function asCredentials(smds: SmdsCredentials): Map<string, DpCredentials> {
  return new Map([...smds.byCiSkiHex].map(([ski, c]) => [ski, { curve: c.curve, ci: c.ci, ciSki: c.ciSki, auth: c, pb: c }]));
}

const credentialCache = new WeakMap<SmdsCredentials, Map<string, DpCredentials>>();

export function smdsCredentials(pki: ServerPki): SmdsCredentials {
  if (!pki.smds) throw new FunctionFailed(SC.dpCertificateUnavailable, 'this server\'s SM-DS has no CERT.DSauth (docs/smds.md#its-certificates)');
  return pki.smds;
}

export interface Es11InitiateRequest {
  euiccChallenge?: unknown;
  euiccInfo1?: unknown;
  smdpAddress?: unknown;
}

const str = (v: unknown, name: string): string => {
  check(v !== undefined && v !== null, SC.formatMissing, `missing ${name}`);
  check(typeof v === 'string', SC.formatInvalid, `${name} must be a string`);
  return v;
};

/** ES11.InitiateAuthentication: as ES9+'s (SGP.22 §5.6.1), signed with SK.DSauth, an SM-DS session. */
export async function es11InitiateAuthentication(deps: Es11Deps, req: Es11InitiateRequest) {
  const smds = smdsCredentials(deps.pki);
  // The LPA names the server it calls in the ES9+ field, smdpAddress (here: the SM-DS's address).
  checkSmdpAddress(str(req.smdpAddress, 'smdpAddress'), deps.smdsAddress);
  const euiccChallenge = b64(str(req.euiccChallenge, 'euiccChallenge'), 'euiccChallenge');
  checkEuiccChallenge(euiccChallenge);
  const info = decodeField('euiccInfo1', () => decodeEuiccInfo1(b64(str(req.euiccInfo1, 'euiccInfo1'), 'euiccInfo1')));
  checkSvn(info);
  let creds = credentialCache.get(smds);
  if (!creds) credentialCache.set(smds, (creds = asCredentials(smds)));
  const chosen = selectCredentials(info, creds);

  const transactionId = Buffer.concat([SMDS_TID_PREFIX, randomBytes(12)]);
  const serverChallenge = randomBytes(16);
  const serverSigned1 = encodeServerSigned1({ transactionId, euiccChallenge, serverAddress: deps.smdsAddress, serverChallenge });
  const tid = transactionId.toString('hex').toUpperCase();
  await deps.db.query('DELETE FROM smds_sessions WHERE expires_at < now()');
  await deps.db.query(
    `INSERT INTO smds_sessions (transaction_id, ci_ski, server_address, euicc_challenge, server_challenge, expires_at)
     VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int))`,
    [tid, chosen.ciSki.toString('hex').toUpperCase(), deps.smdsAddress, euiccChallenge, serverChallenge, deps.sessionTtlSeconds],
  );
  return {
    transactionId: tid,
    serverSigned1: serverSigned1.toString('base64'),
    serverSignature1: tlv(0x5f37, signRaw(chosen.auth.key, serverSigned1)).toString('base64'),
    euiccCiPKIdToBeUsed: tlv(0x04, chosen.ciSki).toString('base64'),
    serverCertificate: chosen.auth.cert.raw.toString('base64'),
  };
}

export interface Es11AuthenticateRequest {
  transactionId?: unknown;
  authenticateServerResponse?: unknown;
}

interface SmdsSessionRow {
  transaction_id: string;
  ci_ski: string;
  server_address: string;
  euicc_challenge: Buffer;
  server_challenge: Buffer;
}

/**
 * ES11.AuthenticateClient: the ES9+ checks of the eUICC (SGP.22 §5.6.3: signed transactionId, EUM
 * and eUICC certificates under the session's CI, euiccSignature1, server challenge and address),
 * then the event entries for the certified EID (only the one of ctxParams1's MatchingID, if the
 * LPA gave one). The session ends with the answer.
 */
export async function es11AuthenticateClient(deps: Es11Deps, req: Es11AuthenticateRequest) {
  const tid = transactionIdOf(str(req.transactionId, 'transactionId'));
  const asrBytes = b64(str(req.authenticateServerResponse, 'authenticateServerResponse'), 'authenticateServerResponse');
  const asr = decodeField('authenticateServerResponse', () => decodeAuthenticateServerResponse(asrBytes));
  const session = (await deps.db.query<SmdsSessionRow>(
    'DELETE FROM smds_sessions WHERE transaction_id = $1 AND expires_at > now() RETURNING *', [tid.hex]))[0];
  if (!session) throw new FunctionFailed(SC.transactionUnknown, `unknown or expired transactionId ${tid.hex}`);
  if ('error' in asr) {
    throw new FunctionFailed(SC.euiccVerificationFailed, `eUICC refused the server: ${codeName(AUTHENTICATE_ERROR, asr.error.code)}`);
  }
  const { euiccSigned1, euiccSignature1 } = asr.ok;
  checkSignedTransactionId(euiccSigned1.transactionId, tid.hex);
  const chain = verifyEuiccChain(deps.pki, asr.ok.eumCertificate, asr.ok.euiccCertificate, { ciSkiHex: session.ci_ski });
  checkEuiccSignature1(chain.euicc.publicKey, euiccSigned1, euiccSignature1);
  // checkServerChallenge reads the session's server challenge and address only.
  checkServerChallenge(euiccSigned1, session as unknown as SessionRow);

  const wanted = euiccSigned1.ctxParams1.matchingId || undefined;
  const events = (await eventsForEid(deps.db, chain.eid)).filter((e) => wanted === undefined || e.eventId === wanted);
  return {
    transactionId: tid.hex,
    eventEntries: events.map((e) => ({ eventId: e.eventId, rspServerAddress: e.rspServerAddress })),
  };
}
