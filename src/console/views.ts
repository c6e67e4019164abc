/**
 * The JSON views the console's routes and its live feed share: an order (as GET /admin/orders shows
 * it), an operator callback (an outbox row with its delivery state) and a request the callback
 * catcher received.
 */
import type { Config } from '../config.js';
import type { PROGRESS_KIND } from '../es2plus/callbacks.js';

/** An order's view is the admin API's (GET /admin/orders). */
export { orderView } from '../inventory/store.js';

/** The columns of outbox that callbackView reads. */
export const OUTBOX_COLUMNS = 'id, operator_id, url, kind, payload, attempts, next_attempt_at, delivered_at, last_error, created_at, iccid';

export interface OutboxViewRow {
  id: string | number;
  operator_id: string;
  url: string;
  kind: string;
  payload: Record<string, unknown> | string;
  attempts: number;
  next_attempt_at: Date;
  delivered_at: Date | null;
  last_error: string | null;
  created_at: Date;
  iccid: string | null;
}

export type CallbackState = 'pending' | 'retrying' | 'delivered';

/** The outbox key of a family group's events (src/family/events.ts familyOutboxKey). */
const FAMILY_KEY = /^family:(.+)$/;

/** The outbox kind of an ES2+ progress callback; typed by src/es2plus/callbacks.ts (imported as a type: no listener loaded). */
const PROGRESS: typeof PROGRESS_KIND = 'handleDownloadProgressInfo';

/** One line saying what a callback reports: the ES2+ notification point and its status, or the family event. */
function summaryOf(kind: string, payload: Record<string, any>): string {
  if (kind === PROGRESS) {
    const s = payload.notificationPointStatus ?? {};
    const code = s.statusCodeData ? ` ${s.statusCodeData.subjectCode}/${s.statusCodeData.reasonCode}` : '';
    return `point ${payload.notificationPointId} ${s.status ?? '?'}${code}`;
  }
  if (typeof payload.type === 'string') return payload.type;
  return kind;
}

export function callbackView(r: OutboxViewRow) {
  const payload = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>;
  const family = r.iccid ? FAMILY_KEY.exec(r.iccid) : null;
  const state: CallbackState = r.delivered_at ? 'delivered' : r.attempts > 0 ? 'retrying' : 'pending';
  return {
    id: String(r.id),
    operatorId: r.operator_id,
    kind: r.kind,
    iccid: family ? null : r.iccid,
    groupId: family ? family[1]! : null,
    url: r.url,
    state,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: new Date(r.created_at).toISOString(),
    deliveredAt: r.delivered_at ? new Date(r.delivered_at).toISOString() : null,
    nextAttemptAt: r.delivered_at ? null : new Date(r.next_attempt_at).toISOString(),
    summary: summaryOf(r.kind, payload),
    payload,
  };
}

export interface CaughtRow {
  id: string | number;
  bin: string;
  received_at: Date;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  answered: number;
}

/** A caught request; a body longer than `maxBody` bytes is cut there (`truncated`, and no `json`). */
export function caughtView(r: CaughtRow, maxBody = Infinity) {
  const truncated = r.body.length > maxBody;
  const text = (truncated ? r.body.subarray(0, maxBody) : r.body).toString('utf8');
  let json: unknown = null;
  try {
    json = text && !truncated ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  const j = json as Record<string, any> | null;
  return {
    id: String(r.id),
    bin: r.bin,
    receivedAt: new Date(r.received_at).toISOString(),
    method: r.method,
    path: r.path,
    answered: r.answered,
    size: r.body.length,
    headers: r.headers,
    body: text,
    truncated,
    json,
    summary: j && typeof j === 'object' && !Array.isArray(j)
      ? [typeof j.iccid === 'string' ? j.iccid : null, j.notificationPointId !== undefined ? summaryOf('handleDownloadProgressInfo', j) : typeof j.type === 'string' ? j.type : null]
        .filter(Boolean).join(' ') || null
      : null,
  };
}
