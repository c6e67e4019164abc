/** RSP sessions (one per transactionId) in the database, so any server process can continue one. */
import type { Queryable } from '../db/db.js';

export type SessionState = 'initiated' | 'authenticated' | 'bound';

export interface SessionRow {
  transaction_id: string;
  state: SessionState;
  ci_ski: string;
  server_address: string;
  euicc_challenge: Buffer;
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

export async function insertSession(
  q: Queryable,
  s: Pick<SessionRow, 'transaction_id' | 'ci_ski' | 'server_address' | 'euicc_challenge' | 'server_challenge'>,
  ttlSeconds: number,
): Promise<void> {
  await q.query(
    `INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, euicc_challenge, server_challenge, expires_at)
     VALUES ($1, 'initiated', $2, $3, $4, $5, now() + make_interval(secs => $6::integer))`,
    [s.transaction_id, s.ci_ski, s.server_address, s.euicc_challenge, s.server_challenge, ttlSeconds],
  );
}

/** The live (unexpired) session, locked for the rest of the transaction. */
export async function lockSession(q: Queryable, transactionId: string): Promise<SessionRow | undefined> {
  const rows = await q.query<SessionRow>(
    'SELECT * FROM rsp_sessions WHERE transaction_id = $1 AND expires_at > now() FOR UPDATE',
    [transactionId],
  );
  return rows[0];
}

export async function endSession(q: Queryable, transactionId: string): Promise<void> {
  await q.query('DELETE FROM rsp_sessions WHERE transaction_id = $1', [transactionId]);
}

export async function purgeExpiredSessions(q: Queryable): Promise<number> {
  const rows = await q.query('DELETE FROM rsp_sessions WHERE expires_at <= now() RETURNING 1');
  return rows.length;
}
