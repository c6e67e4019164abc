/**
 * The built-in SM-DS's event records (docs/smds.md): what ES12 RegisterEvent stores and DeleteEvent
 * removes, and what ES11 answers for an authenticated eUICC's EID (SGP.22 §5.8, §5.9 of v2.x; the
 * exact field names are unverified, docs/smds.md#not-verified).
 */
import type { Queryable } from '../db/db.js';

export interface SmdsEvent {
  eventId: string;
  eid: string;
  rspServerAddress: string;
  registeredBy: string;
  createdAt: string;
}

interface EventRow {
  event_id: string;
  eid: string;
  rsp_server_address: string;
  registered_by: string;
  created_at: Date | string;
}

const toEvent = (r: EventRow): SmdsEvent => ({
  eventId: r.event_id,
  eid: r.eid,
  rspServerAddress: r.rsp_server_address,
  registeredBy: r.registered_by,
  createdAt: new Date(r.created_at).toISOString(),
});

export async function findEvent(q: Queryable, eventId: string): Promise<SmdsEvent | undefined> {
  const rows = await q.query<EventRow>('SELECT * FROM smds_events WHERE event_id = $1', [eventId]);
  return rows[0] && toEvent(rows[0]);
}

/** Stores an event record; false when its EventID is taken (by any record, even an identical one). */
export async function insertEvent(q: Queryable, e: Omit<SmdsEvent, 'createdAt'>): Promise<boolean> {
  const rows = await q.query(
    `INSERT INTO smds_events (event_id, eid, rsp_server_address, registered_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
    [e.eventId, e.eid, e.rspServerAddress, e.registeredBy],
  );
  return rows.length === 1;
}

export async function deleteEvent(q: Queryable, eventId: string): Promise<boolean> {
  return (await q.query('DELETE FROM smds_events WHERE event_id = $1 RETURNING event_id', [eventId])).length === 1;
}

/** The events pending for an EID, oldest first. */
export async function eventsForEid(q: Queryable, eid: string): Promise<SmdsEvent[]> {
  return (await q.query<EventRow>('SELECT * FROM smds_events WHERE eid = $1 ORDER BY created_at, event_id', [eid])).map(toEvent);
}

/** Every event (the admin API), newest first, optionally for one EID. */
export async function listEvents(q: Queryable, opts: { eid?: string; limit?: number } = {}): Promise<SmdsEvent[]> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
  const rows = opts.eid === undefined
    ? await q.query<EventRow>('SELECT * FROM smds_events ORDER BY created_at DESC, event_id LIMIT $1', [limit])
    : await q.query<EventRow>('SELECT * FROM smds_events WHERE eid = $1 ORDER BY created_at DESC, event_id LIMIT $2', [opts.eid, limit]);
  return rows.map(toEvent);
}
