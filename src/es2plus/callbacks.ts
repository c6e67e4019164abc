/**
 * ES2+.HandleDownloadProgressInfo (SM-DP+ → operator, SGP.22 §5.3.5), written to the database outbox in
 * the transaction of the state change it reports; src/outbox/worker.ts delivers it later, at least
 * once. Nothing here talks to the network, so an ES9+ call never waits for an operator.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { SC, type FunctionExecutionStatus, type StatusCode } from '../errors.js';
import { onProfileChange, type ProfileChange } from '../orders/state-machine.js';

export const PROGRESS_KIND = 'handleDownloadProgressInfo';
/** ES2+ path of the callback, appended to the operator's callback_url unless that already ends with it. */
const PROGRESS_PATH = '/gsma/rsp2/es2plus/handleDownloadProgressInfo';

/** Notification points (SGP.22 §5.3.5; docs/protocol.md#notification-points). */
const POINT = { eligibility: 1, confirmationFailure: 2, bppDownload: 3, bppInstallation: 4 } as const;

/** Point 4 with an errorResult in the PIR: the eUICC could not install the profile. */
const INSTALL_FAILED: StatusCode = { subjectCode: '8.2', reasonCode: '4.2', message: 'Profile installation failed on the eUICC' };

/**
 * A verified ES9+.CancelSession. SGP.22 v2 defines no notification point for it
 * (docs/protocol.md#notification-points; docs/protocol.md#not-verified), so this server reports it at the point the download stopped at, BPP download
 * (3), as Failed 8.8.5/3.8 (download order / refused) with the cancel reason in the message
 * (e.g. `session cancelled: endUserRejection`). Change it here only.
 */
export const SESSION_CANCELLED = {
  point: POINT.bppDownload,
  status: 'Failed',
  statusCode: { subjectCode: '8.8.5', reasonCode: '3.8', message: 'Download session cancelled by the LPA' } as StatusCode,
} as const;

/**
 * A verified delete notification (OtherSignedNotification, operation delete) from the eUICC the
 * profile was installed on. SGP.22 v2 defines notification points only for the download (1-4,
 * docs/protocol.md#notification-points; how other notifications reach the operator is unverified), so this server reports a
 * deletion at the point whose outcome it undoes, BPP installation (4), as Failed 8.2.1/3.7 (profile
 * ICCID / unavailable: the profile is now Unavailable for good), with resultData = the signed
 * notification exactly as received, as point 4 carries the PendingNotification (a delete
 * notification is the other branch of that CHOICE, so an operator's point-4 decoder reads it and
 * finds the delete operation in its metadata). No new point id: operator systems know 1-4 only; and
 * Failed, so that one reading only point and status does not take the profile for usable. The
 * message names the operation and seqNumber (`profile deleted on the eUICC (seqNumber 7)`). Change
 * it here only.
 */
export const PROFILE_DELETED = {
  point: POINT.bppInstallation,
  status: 'Failed',
  statusCode: { subjectCode: '8.2.1', reasonCode: '3.7', message: 'Profile deleted on the eUICC' } as StatusCode,
} as const;

export interface ProgressInfo {
  iccid: string;
  point: 1 | 2 | 3 | 4 | number;
  status: 'Executed-Success' | 'Failed';
  statusCode?: StatusCode;
  /** Replaces statusCode.message in statusCodeData. */
  message?: string;
  /** Point 4: the PendingNotification exactly as received (sent base64). */
  resultData?: Buffer;
  eid?: string | null;
  /** header.functionRequesterIdentifier; when absent the delivering worker fills in its own (the SM-DP+ address). */
  requester?: string;
}

export interface ProgressPayload {
  header: { functionRequesterIdentifier?: string; functionCallIdentifier: string };
  eid?: string;
  iccid: string;
  profileType: string;
  timestamp: string;
  notificationPointId: number;
  notificationPointStatus: FunctionExecutionStatus;
  resultData?: string;
}

/** `YYYY-MM-DDThh:mm:ssZ` (UTC, no fraction), as SGP.22 §5.3.5 gives it (docs/protocol.md#es2-functions-and-callbacks). */
export function progressTimestamp(d = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The operator endpoint for a callback_url: a bare base URL gets the ES2+ path appended. */
function callbackEndpoint(callbackUrl: string): string {
  const u = new URL(callbackUrl);
  if (u.pathname === '/' || u.pathname === '') u.pathname = PROGRESS_PATH;
  return u.toString();
}

function buildProgressPayload(p: ProgressInfo, profileType: string, profileEid: string | null, at = new Date()): ProgressPayload {
  const eid = p.eid ?? profileEid ?? undefined;
  const status: FunctionExecutionStatus = { status: p.status };
  if (p.statusCode) {
    status.statusCodeData = { subjectCode: p.statusCode.subjectCode, reasonCode: p.statusCode.reasonCode, message: p.message ?? p.statusCode.message };
  }
  return {
    header: { ...(p.requester ? { functionRequesterIdentifier: p.requester } : {}), functionCallIdentifier: randomUUID() },
    ...(eid ? { eid } : {}),
    iccid: p.iccid,
    profileType,
    timestamp: progressTimestamp(at),
    notificationPointId: p.point,
    notificationPointStatus: status,
    ...(p.resultData ? { resultData: p.resultData.toString('base64') } : {}),
  };
}

/**
 * Queues a handleDownloadProgressInfo for the operator owning the profile, in the caller's
 * transaction (so it exists exactly when the reported change committed). Does nothing when the
 * profile has no operator or the operator no callback_url.
 */
export async function enqueueProgress(q: Queryable, p: ProgressInfo): Promise<void> {
  const rows = await q.query<{ profile_type: string; eid: string | null; operator_id: string; callback_url: string }>(
    `SELECT p.profile_type, p.eid, o.id AS operator_id, o.callback_url
       FROM profiles p JOIN operators o ON o.id = p.operator_id
      WHERE p.iccid = $1 AND o.callback_url IS NOT NULL AND o.callback_url <> ''`,
    [p.iccid],
  );
  const r = rows[0];
  const row = r && progressRow(p, r.callback_url, r.profile_type, r.eid);
  if (!row) return;
  await q.query(
    `INSERT INTO outbox (operator_id, url, kind, payload, iccid) VALUES ($1, $2, $3, $4, $5)`,
    [r.operator_id, row.url, PROGRESS_KIND, row.payload, p.iccid],
  );
}

/** The outbox row's URL and payload, or undefined when the callback URL is unusable. */
function progressRow(p: ProgressInfo, callbackUrl: string, profileType: string, profileEid: string | null): { url: string; payload: string } | undefined {
  try {
    return { url: callbackEndpoint(callbackUrl), payload: JSON.stringify(buildProgressPayload(p, profileType, profileEid)) };
  } catch {
    return undefined; // an unusable URL is the operator's configuration problem; never fail the ES9+ call for it
  }
}

/** What the operator is told of each profile change, if anything (docs/protocol.md#notification-points). */
function progressOf(c: ProfileChange): ProgressInfo | undefined {
  const f = c.facts ?? {};
  const base = { iccid: c.iccid, eid: f.eid ?? c.set?.eid ?? c.row.eid };
  switch (c.action) {
    case 'authenticated':
      return { ...base, point: POINT.eligibility, status: 'Executed-Success' };
    case 'confirmationCodeRefused':
      return { ...base, point: POINT.confirmationFailure, status: 'Failed', statusCode: SC.confirmationCodeRefused, message: f.message };
    case 'orderKilled':
      return { ...base, point: POINT.confirmationFailure, status: 'Failed', statusCode: SC.confirmationCodeRetryLimit, message: f.message };
    case 'bppDownloaded':
      return { ...base, point: POINT.bppDownload, status: 'Executed-Success' };
    case 'sessionCancelled':
      return { ...base, ...SESSION_CANCELLED, message: f.message };
    case 'installed':
      return { ...base, point: POINT.bppInstallation, status: 'Executed-Success', resultData: f.notification };
    case 'installFailed':
      return { ...base, point: POINT.bppInstallation, status: 'Failed', statusCode: INSTALL_FAILED, message: f.message, resultData: f.notification };
    case 'deleted':
      return { ...base, ...PROFILE_DELETED, message: f.message, resultData: f.notification };
    default:
      return undefined;
  }
}

/**
 * The operator's callback for a profile change: its callback URL is read with the locked profile
 * (`progress_callback_url`), so a profile with no operator, or one without a callback URL, costs no
 * statement, and the outbox row is written in the same statement as the change.
 */
onProfileChange({
  columns: [`(SELECT o.callback_url FROM operators o WHERE o.id = p.operator_id AND o.callback_url <> '') AS progress_callback_url`],
  parts(c) {
    const url = c.row.progress_callback_url;
    if (typeof url !== 'string') return [];
    const info = progressOf(c);
    const row = info && progressRow(info, url, c.row.profile_type, c.row.eid);
    if (!row) return [];
    return [{
      sql: `INSERT INTO outbox (operator_id, url, kind, payload, iccid) SELECT t.operator_id, $1::text, $2::text, $3::jsonb, t.iccid FROM t`,
      params: [row.url, PROGRESS_KIND, row.payload],
    }];
  },
});
