/**
 * Fault injection: make the next ES9+ call(s) of an order (by ICCID or MatchingID) or of an eUICC
 * (by EID) fail with a chosen subjectCode/reasonCode, be delayed, or lose its connection, so device
 * teams can exercise their error handling. Faults live in fault_injections (set through the admin
 * API or `mock-smdp fault add`); each firing decrements `remaining` atomically and is recorded as a
 * 'fault-injected' event in the order's history when the order is known.
 *
 * What identifies a call:
 * - initiateAuthentication carries neither an EID nor a MatchingID nor an order: it cannot be
 *   targeted (the admin API refuses such faults; a fault for "any function" skips it).
 * - authenticateClient: the MatchingID in ctxParams1 (and its order's ICCID), the EID of the eUICC
 *   certificate (read, not verified: the function itself verifies it).
 * - getBoundProfilePackage, cancelSession: the session of the transactionId (its ICCID and EID).
 * - handleNotification: an install result through its transactionId's session; other notifications
 *   by the ICCID in their metadata and the EID of their certificate. A 'fail' there answers a
 *   Failed header with HTTP 200 (the function normally answers 204); 'drop' is the useful mode.
 * All fields a fault sets must match (a fault with an ICCID and an EID fires only for that pair).
 */
import type { Database, Queryable } from '../db/db.js';
import { FunctionFailed, type StatusCode } from '../errors.js';
import { event } from '../orders/store.js';
import { decodeAuthenticateServerResponse } from '../rsp/authentication.js';
import { iccidFromEf } from '../rsp/identifiers.js';
import { decodePendingNotification } from '../rsp/notification.js';
import type { Es9Deps } from './context.js';
import { certificateEid } from './certificates.js';

export const FAULT_FUNCTIONS = ['authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'cancelSession'] as const;
export type FaultMode = 'fail' | 'delay' | 'drop';

export interface FaultRow {
  id: string;
  iccid: string | null;
  matching_id: string | null;
  eid: string | null;
  function_name: string | null;
  mode: FaultMode;
  subject_code: string | null;
  reason_code: string | null;
  message: string | null;
  delay_ms: number | null;
  remaining: number;
  fired: number;
  created_at: Date;
  last_fired_at: Date | null;
}

export interface FaultTarget {
  function: string;
  transactionId?: string;
  matchingId?: string;
  eid?: string;
  iccid?: string;
}

/** What the route must do: answer Failed, drop the connection, or (after any delay) run the function. */
export type FaultAction = { fail: FunctionFailed } | { drop: true } | null;

export class FaultError extends Error {
  override name = 'FaultError';
  constructor(
    readonly code: 'invalid',
    message: string,
  ) {
    super(message);
  }
}

export interface NewFault {
  iccid?: string;
  matchingId?: string;
  eid?: string;
  function?: string;
  mode: FaultMode;
  subjectCode?: string;
  reasonCode?: string;
  message?: string;
  delayMs?: number;
  count?: number;
}

const CODE_RE = /^\d+(\.\d+)*$/;

export async function addFault(q: Queryable, f: NewFault): Promise<FaultRow> {
  if (!f.iccid && !f.matchingId && !f.eid) throw new FaultError('invalid', 'a fault needs an iccid, a matchingId or an eid');
  if (f.function !== undefined && !(FAULT_FUNCTIONS as readonly string[]).includes(f.function)) {
    throw new FaultError('invalid', `function must be one of ${FAULT_FUNCTIONS.join(', ')} (initiateAuthentication carries no EID, MatchingID or order to match)`);
  }
  if (f.mode === 'fail' && (!f.subjectCode || !f.reasonCode || !CODE_RE.test(f.subjectCode) || !CODE_RE.test(f.reasonCode))) {
    throw new FaultError('invalid', "mode 'fail' needs subjectCode and reasonCode like 8.2.6 and 3.8");
  }
  if (f.mode === 'delay' && !(Number.isInteger(f.delayMs) && f.delayMs! > 0)) throw new FaultError('invalid', "mode 'delay' needs delayMs > 0");
  const rows = await q.query<FaultRow>(
    `INSERT INTO fault_injections (iccid, matching_id, eid, function_name, mode, subject_code, reason_code, message, delay_ms, remaining)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
    [f.iccid ?? null, f.matchingId?.toUpperCase() ?? null, f.eid ?? null, f.function ?? null, f.mode,
      f.mode === 'fail' ? f.subjectCode : null, f.mode === 'fail' ? f.reasonCode : null, f.message ?? null,
      f.mode === 'delay' ? f.delayMs : null, f.count ?? 1],
  );
  const row = rows[0]!;
  const iccid = f.iccid ?? (f.matchingId ? (await q.query<{ iccid: string }>('SELECT iccid FROM profiles WHERE matching_id = $1', [row.matching_id]))[0]?.iccid : undefined);
  if (iccid && (await q.query('SELECT 1 FROM profiles WHERE iccid = $1', [iccid])).length) {
    await event(q, iccid, 'fault-set', faultDetail(row));
  }
  return row;
}

export async function listFaults(q: Queryable, all = false): Promise<FaultRow[]> {
  return q.query<FaultRow>(`SELECT * FROM fault_injections ${all ? '' : 'WHERE remaining > 0'} ORDER BY id`);
}

export async function deleteFault(q: Queryable, id: string): Promise<boolean> {
  if (!/^\d{1,18}$/.test(id)) return false;
  return (await q.query('DELETE FROM fault_injections WHERE id = $1 RETURNING 1', [id])).length > 0;
}

function faultDetail(f: FaultRow): Record<string, unknown> {
  return {
    faultId: String(f.id),
    function: f.function_name,
    mode: f.mode,
    ...(f.mode === 'fail' ? { subjectCode: f.subject_code, reasonCode: f.reason_code } : {}),
    ...(f.mode === 'delay' ? { delayMs: f.delay_ms } : {}),
    ...(f.iccid ? { iccid: f.iccid } : {}),
    ...(f.matching_id ? { matchingId: f.matching_id } : {}),
    ...(f.eid ? { eid: f.eid } : {}),
  };
}

export function faultView(f: FaultRow) {
  return {
    id: String(f.id),
    iccid: f.iccid,
    matchingId: f.matching_id,
    eid: f.eid,
    function: f.function_name,
    mode: f.mode,
    subjectCode: f.subject_code,
    reasonCode: f.reason_code,
    message: f.message,
    delayMs: f.delay_ms,
    remaining: f.remaining,
    fired: f.fired,
    createdAt: new Date(f.created_at).toISOString(),
    lastFiredAt: f.last_fired_at ? new Date(f.last_fired_at).toISOString() : null,
  };
}

/**
 * Finds the oldest active fault matching the call, decrements it and returns it (null: none).
 * Resolves the call's identifiers first: transactionId → session (ICCID, EID); ICCID ↔ MatchingID
 * through the order.
 */
export async function consumeFault(db: Database, target: FaultTarget): Promise<FaultRow | null> {
  // The common case (no fault set) costs one indexed query.
  const any = await db.query(
    'SELECT 1 FROM fault_injections WHERE remaining > 0 AND (function_name IS NULL OR function_name = $1) LIMIT 1',
    [target.function],
  );
  if (!any.length) return null;

  let { iccid, eid, matchingId } = target;
  if (target.transactionId) {
    const s = (await db.query<{ iccid: string | null; eid: string | null }>('SELECT iccid, eid FROM rsp_sessions WHERE transaction_id = $1', [target.transactionId.toUpperCase()]))[0];
    iccid ??= s?.iccid ?? undefined;
    eid ??= s?.eid ?? undefined;
  }
  if (matchingId && !iccid) {
    iccid = (await db.query<{ iccid: string }>('SELECT iccid FROM profiles WHERE matching_id = $1', [matchingId.toUpperCase()]))[0]?.iccid;
  } else if (iccid && !matchingId) {
    matchingId = (await db.query<{ matching_id: string | null }>('SELECT matching_id FROM profiles WHERE iccid = $1', [iccid]))[0]?.matching_id ?? undefined;
  }
  if (!iccid && !eid && !matchingId) return null;

  const ids = { iccid, matchingId, eid };
  return db.tx((q) => fire(q, target, ids));
}

async function fire(q: Queryable, target: FaultTarget, ids: { iccid?: string; matchingId?: string; eid?: string }): Promise<FaultRow | null> {
  const { iccid, matchingId, eid } = ids;
  const rows = await q.query<FaultRow>(
    `UPDATE fault_injections SET remaining = remaining - 1, fired = fired + 1, last_fired_at = now()
      WHERE id = (
        SELECT id FROM fault_injections
         WHERE remaining > 0 AND (function_name IS NULL OR function_name = $1)
           AND (iccid IS NULL OR iccid = $2) AND (matching_id IS NULL OR matching_id = $3) AND (eid IS NULL OR eid = $4)
         ORDER BY id LIMIT 1
         FOR UPDATE SKIP LOCKED)
        AND remaining > 0
      RETURNING *`,
    [target.function, iccid ?? null, matchingId?.toUpperCase() ?? null, eid ?? null],
  );
  const fault = rows[0];
  if (!fault) return null;
  if (iccid) await event(q, iccid, 'fault-injected', { ...faultDetail(fault), function: target.function, transactionId: target.transactionId ?? null, remaining: fault.remaining });
  return fault;
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** The identifiers an ES9+ request carries (cheap decoding; anything malformed just yields fewer). */
export function targetOf(fn: string, body: unknown): FaultTarget | null {
  const b = (body ?? {}) as Record<string, unknown>;
  const target: FaultTarget = { function: fn, transactionId: str(b.transactionId) };
  try {
    if (fn === 'initiateAuthentication') return null;
    if (fn === 'authenticateClient' && str(b.authenticateServerResponse)) {
      const asr = decodeAuthenticateServerResponse(Buffer.from(str(b.authenticateServerResponse)!, 'base64'));
      if ('ok' in asr) {
        target.matchingId = asr.ok.euiccSigned1.ctxParams1.matchingId || undefined;
        target.eid = certificateEid(asr.ok.euiccCertificate);
      }
    }
    if (fn === 'handleNotification' && str(b.pendingNotification)) {
      const n = decodePendingNotification(Buffer.from(str(b.pendingNotification)!, 'base64'));
      if ('pir' in n) target.transactionId = n.pir.data.transactionId.toString('hex').toUpperCase();
      else {
        const meta = n.other.tbsOtherNotification;
        if (meta.iccid) target.iccid = iccidFromEf(meta.iccid);
        target.eid = certificateEid(n.other.euiccCertificate);
      }
    }
  } catch {
    // malformed input: the function itself reports it
  }
  if (target.transactionId && !/^[0-9A-Fa-f]{2,32}$/.test(target.transactionId)) target.transactionId = undefined;
  return target;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Thrown by an ES9+ function whose first read found fault injections pending (`faults_pending`,
 * src/es9plus/sessions.ts), before it changed anything: the route then looks for a fault matching
 * the call (injectFault) and runs the function again. With no fault set, this costs nothing beyond
 * that one column.
 */
export class FaultsPending extends Error {
  override name = 'FaultsPending';
}

/** Verify no fault injection waits to be matched against this call, otherwise hand it to the route (FaultsPending). */
export function checkFaultsHandled(deps: Pick<Es9Deps, 'faultsChecked'>, row: { faults_pending?: unknown }): void {
  if (row.faults_pending === true && !deps.faultsChecked) throw new FaultsPending();
}

/**
 * The route hook: consumes a matching fault, waits for a 'delay', and tells the route to answer a
 * 'fail' or to drop the connection. Never lets fault handling break a call.
 */
export async function injectFault(deps: Es9Deps, fn: string, body: unknown): Promise<FaultAction> {
  let fault: FaultRow | null;
  try {
    const target = targetOf(fn, body);
    if (!target) return null;
    fault = await consumeFault(deps.db, target);
  } catch (err) {
    deps.log.warn({ err }, 'fault injection lookup failed');
    return null;
  }
  if (!fault) return null;
  deps.log.info({ faultId: String(fault.id), function: fn, mode: fault.mode }, 'fault injected');
  if (fault.mode === 'delay') {
    await sleep(fault.delay_ms ?? 0);
    return null;
  }
  if (fault.mode === 'drop') return { drop: true };
  const status: StatusCode = { subjectCode: fault.subject_code!, reasonCode: fault.reason_code!, message: fault.message ?? `injected fault ${fault.subject_code}/${fault.reason_code}` };
  return { fail: new FunctionFailed(status, status.message) };
}
