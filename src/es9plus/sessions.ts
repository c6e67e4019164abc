/** RSP sessions (one per transactionId) in the database, so any server process can continue one. */
import type { Database, Queryable } from '../db/db.js';
import { ChangedMeanwhile, profileColumns, ROW_VERSION, type ProfileContext, type SqlPart } from '../orders/state-machine.js';
import type { ProfileTypeRow } from '../orders/store.js';
import type { OpenedSession } from './transaction-ids.js';

/**
 * 'initiated' is never a row: it is a transactionId issued by initiateAuthentication and not yet
 * used (src/es9plus/transaction-ids.ts); authenticateClient writes the row, and an ended session
 * keeps it, 'ended', until it expires.
 */
export type SessionState = 'initiated' | 'authenticated' | 'bound' | 'ended';

export interface SessionRow {
  transaction_id: string;
  state: SessionState;
  ci_ski: string;
  server_address: string;
  /** Not kept: signed in initiateAuthentication only (migration 014). */
  euicc_challenge: Buffer | null;
  server_challenge: Buffer;
  created_at: Date;
  expires_at: Date;
  eid: string | null;
  iccid: string | null;
  euicc_certificate: Buffer | null;
  smdp_signature2: Buffer | null;
  profile_metadata: Buffer | null;
  cc_required: boolean | null;
  euicc_otpk: Buffer | null;
  /** The BPP delivered in this session, re-sent to a retry with the same euiccOtpk (migration 008). */
  bound_profile_package: Buffer | null;
}

export const tidHex = (tid: Buffer) => tid.toString('hex').toUpperCase();

export type SessionStep = 'authenticateClient' | 'getBoundProfilePackage' | 'resendBoundProfilePackage' | 'installResult' | 'cancelSession';

/**
 * The RSP session's own small state machine (SGP.22 §3.1.3; docs/protocol.md#rsp-session-states): the
 * states each ES9+ step may run in, and the state it leaves the session in ('ended': the row is
 * kept in state 'ended' until it expires, so its transactionId is not used twice). A transactionId
 * issued by initiateAuthentication is a session 'initiated' with no row yet; expiry ends any.
 */
export const SESSION_STEPS: Readonly<Record<SessionStep, { from: readonly SessionState[]; to: SessionState | 'ended' }>> = {
  authenticateClient: { from: ['initiated'], to: 'authenticated' },
  getBoundProfilePackage: { from: ['authenticated'], to: 'bound' },
  resendBoundProfilePackage: { from: ['bound'], to: 'bound' },
  installResult: { from: ['bound'], to: 'ended' },
  cancelSession: { from: ['initiated', 'authenticated', 'bound'], to: 'ended' },
};

export function canSessionStep(session: Pick<SessionRow, 'state'>, step: SessionStep): boolean {
  return SESSION_STEPS[step].from.includes(session.state);
}

/**
 * The SET of a session that ends (install result, cancellation): its row stays, 'ended', until it
 * expires, so its transactionId is refused from then on; what it held of the eUICC and the package
 * goes.
 */
export const END_SESSION = `UPDATE rsp_sessions SET state = 'ended', euicc_certificate = NULL, smdp_signature2 = NULL,
         profile_metadata = NULL, euicc_otpk = NULL, bound_profile_package = NULL`;

/**
 * The session a transactionId opened and no row holds yet ('initiated'), or undefined when it has
 * expired (SGP.22 §5.6.1; src/es9plus/transaction-ids.ts).
 */
export function openedSession(tid: string, opened: OpenedSession, serverAddress: string, ttlSeconds: number, now = Date.now()): SessionRow | undefined {
  const expires = opened.openedAt.getTime() + ttlSeconds * 1000;
  if (expires <= now) return undefined;
  return {
    transaction_id: tid, state: 'initiated', ci_ski: opened.ciSki, server_address: serverAddress, euicc_challenge: null,
    server_challenge: opened.serverChallenge, created_at: opened.openedAt, expires_at: new Date(expires),
    eid: null, iccid: null, euicc_certificate: null, smdp_signature2: null, profile_metadata: null, cc_required: null,
    euicc_otpk: null, bound_profile_package: null,
  };
}

const SESSION_FIELDS = [
  'transaction_id', 'state', 'ci_ski', 'server_address', 'euicc_challenge', 'server_challenge', 'created_at', 'expires_at',
  'eid', 'iccid', 'euicc_certificate', 'smdp_signature2', 'profile_metadata', 'cc_required', 'euicc_otpk',
] as const;

/**
 * The session's columns as `s_<name>`, for a read that joins the session with its profile (`s` is
 * rsp_sessions); the stored BPP only where it is needed (getBoundProfilePackage adds it).
 */
export const SESSION_SELECT = SESSION_FIELDS.map((f) => `s.${f} AS s_${f}`).join(', ');

/** The session out of a row read with SESSION_SELECT. */
export function sessionOf(row: Record<string, unknown>): SessionRow {
  const out: Record<string, unknown> = {};
  for (const f of SESSION_FIELDS) out[f] = row[`s_${f}`];
  out.bound_profile_package = row.s_bound_profile_package ?? null;
  return out as unknown as SessionRow;
}

/** Whether any fault injection is pending (src/es9plus/faults.ts), as a column of a function's first read. */
export const FAULTS_PENDING = 'EXISTS (SELECT 1 FROM fault_injections WHERE remaining > 0) AS faults_pending';

export interface SessionRead {
  session: SessionRow;
  /** The session's profile, with the listeners' columns and, when asked for, its type's template. */
  profile?: ProfileContext & Partial<Pick<ProfileTypeRow, 'template'>> & { row_version: string };
  faults_pending: unknown;
}

function sessionWithProfileSql(opts: { template?: boolean; bpp?: boolean; lock?: boolean }): string {
  return `SELECT ${SESSION_SELECT}${opts.bpp ? ', s.bound_profile_package AS s_bound_profile_package' : ''}, o.*, ${FAULTS_PENDING}
       FROM rsp_sessions s
       LEFT JOIN LATERAL (
         SELECT p.*, ${ROW_VERSION}${opts.template ? ', t.template' : ''}${profileColumns()}
           FROM profiles p${opts.template ? ' JOIN profile_types t ON t.name = p.profile_type' : ''}
          WHERE p.iccid = s.iccid${opts.lock ? '\n            FOR UPDATE OF p' : ''}) o ON true
      WHERE s.transaction_id = $1 AND s.expires_at > now()${opts.lock ? '\n        FOR UPDATE OF s' : ''}`;
}

function sessionRead(rows: Record<string, unknown>[]): SessionRead | undefined {
  const row = rows[0];
  if (!row) return undefined;
  return { session: sessionOf(row), profile: row.iccid ? (row as unknown as SessionRead['profile']) : undefined, faults_pending: row.faults_pending };
}

/**
 * The first read of getBoundProfilePackage and handleNotification (install results): the live
 * session joined with its profile, the listeners' columns of the state machine, the profile's row
 * version and whether fault injections are pending; one statement, no lock and no transaction. What
 * the function then writes is guarded by `sessionGuard` and the row version (applyChange in
 * src/orders/state-machine.ts).
 */
export async function readSessionWithProfile(db: Database, tid: string, opts: { template?: boolean; bpp?: boolean } = {}): Promise<SessionRead | undefined> {
  return sessionRead(await db.query<Record<string, unknown>>(sessionWithProfileSql(opts), [tid], { keyLookups: true }));
}

/** The same read with the session and its profile locked for the rest of the caller's transaction (cancelSession). */
export async function lockSessionWithProfile(q: Queryable, tid: string, opts: { template?: boolean; bpp?: boolean } = {}): Promise<SessionRead | undefined> {
  return sessionRead(await q.query<Record<string, unknown>>(sessionWithProfileSql({ ...opts, lock: true }), [tid]));
}

/**
 * The guard of a write after an unlocked read (applyChange): the session is still live and in the
 * state that was read, and stays locked until the write is done (a writer of the session alone,
 * such as cancelSession ending it, waits, and the guard is checked again on what it wrote).
 */
export function sessionGuard(tid: string, state: SessionState): SqlPart {
  return {
    sql: 'EXISTS (SELECT 1 FROM rsp_sessions WHERE transaction_id = $1 AND state = $2::text AND expires_at > now() FOR UPDATE)',
    params: [tid, state],
  };
}

/**
 * Runs an ES9+ function whose write is guarded (applyChange) and reruns it, read and all, when its
 * rows changed between its read and its write (a concurrent retry of the same call): the rerun
 * sees the other call's result and answers accordingly. A few tries; the last one's error stands.
 */
export async function optimistically<T>(fn: () => Promise<T>, tries = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ChangedMeanwhile) || i >= tries) throw err;
    }
  }
}
