/**
 * Companion-device records (migration 013_entitlement.sql): which companion (terminal id, EID) a
 * member subscribed through the TS.43 endpoint, with which service, on which family line and profile.
 * Plain data access; the operations are src/entitlement/odsa.ts.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import type { CompanionService } from './ts43.js';

export type CompanionState = 'active' | 'unsubscribed' | 'transferred';

export interface CompanionRow {
  id: string;
  group_id: string;
  member_id: string;
  terminal_id: string;
  eid: string;
  service: CompanionService;
  primary_line_id: string | null;
  primary_terminal_id: string | null;
  line_id: string | null;
  iccid: string | null;
  msisdn: string | null;
  state: CompanionState;
  transferred_to: string | null;
  vendor: string | null;
  model: string | null;
  sw_version: string | null;
  friendly_name: string | null;
  created_at: Date;
  updated_at: Date;
  ended_at: Date | null;
}

export interface NewCompanion {
  groupId: string;
  memberId: string;
  terminalId: string;
  eid: string;
  service: CompanionService;
  primaryLineId: string | null;
  primaryTerminalId: string | null;
  lineId: string;
  iccid: string;
  msisdn: string | null;
  vendor?: string | undefined;
  model?: string | undefined;
  swVersion?: string | undefined;
  friendlyName?: string | undefined;
}

export async function insertCompanion(q: Queryable, c: NewCompanion): Promise<CompanionRow> {
  const rows = await q.query<CompanionRow>(
    `INSERT INTO companion_devices (id, group_id, member_id, terminal_id, eid, service, primary_line_id, primary_terminal_id, line_id, iccid, msisdn,
                                    vendor, model, sw_version, friendly_name)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING *`,
    [`cd_${randomBytes(8).toString('hex')}`, c.groupId, c.memberId, c.terminalId, c.eid, c.service, c.primaryLineId, c.primaryTerminalId, c.lineId, c.iccid, c.msisdn,
      c.vendor ?? null, c.model ?? null, c.swVersion ?? null, c.friendlyName ?? null],
  );
  return rows[0]!;
}

/** The active companion with this terminal id, wherever it is subscribed (locked with `lock`). */
export async function activeByTerminal(q: Queryable, terminalId: string, opts: { lock?: boolean } = {}): Promise<CompanionRow | undefined> {
  return (await q.query<CompanionRow>(`SELECT * FROM companion_devices WHERE terminal_id = $1 AND state = 'active'${opts.lock ? ' FOR UPDATE' : ''}`, [terminalId]))[0];
}

/** The active companion on this EID, if any. */
export async function activeByEid(q: Queryable, eid: string): Promise<CompanionRow | undefined> {
  return (await q.query<CompanionRow>(`SELECT * FROM companion_devices WHERE eid = $1 AND state = 'active'`, [eid]))[0];
}

/** The member's active companions, oldest first. */
export async function activeOfMember(q: Queryable, memberId: string): Promise<CompanionRow[]> {
  return q.query<CompanionRow>(`SELECT * FROM companion_devices WHERE member_id = $1 AND state = 'active' ORDER BY created_at, id`, [memberId]);
}

/** Ends a companion subscription: unsubscribed, or transferred to another record. */
export async function endCompanion(q: Queryable, id: string, state: Exclude<CompanionState, 'active'>, transferredTo: string | null = null): Promise<CompanionRow> {
  const rows = await q.query<CompanionRow>(
    `UPDATE companion_devices SET state = $2, transferred_to = $3, ended_at = now(), updated_at = now() WHERE id = $1 RETURNING *`,
    [id, state, transferredTo],
  );
  return rows[0]!;
}

/** Every record (all states), newest first, of one group or of all; with the member's name and the profile's state. */
export async function listCompanions(q: Queryable, where: { groupId?: string; limit?: number } = {}) {
  const params: unknown[] = [];
  let sql = `SELECT c.*, m.name AS member_name, p.state AS profile_state, p.device_state AS profile_device_state
               FROM companion_devices c
               LEFT JOIN family_members m ON m.id = c.member_id
               LEFT JOIN profiles p ON p.iccid = c.iccid`;
  if (where.groupId) {
    params.push(where.groupId);
    sql += ` WHERE c.group_id = $1`;
  }
  params.push(where.limit ?? 500);
  sql += ` ORDER BY c.created_at DESC, c.id DESC LIMIT $${params.length}`;
  return q.query<CompanionRow & { member_name: string | null; profile_state: string | null; profile_device_state: string | null }>(sql, params);
}

export function publicCompanion(c: CompanionRow & { member_name?: string | null; profile_state?: string | null; profile_device_state?: string | null }) {
  return {
    id: c.id,
    groupId: c.group_id,
    memberId: c.member_id,
    memberName: c.member_name ?? null,
    terminalId: c.terminal_id,
    eid: c.eid,
    service: c.service,
    msisdn: c.msisdn,
    lineId: c.line_id,
    iccid: c.iccid,
    profileState: c.profile_device_state === 'Deleted' ? 'Deleted' : (c.profile_state ?? null),
    state: c.state,
    transferredTo: c.transferred_to,
    friendlyName: c.friendly_name,
    model: c.model,
    createdAt: c.created_at.toISOString(),
    endedAt: c.ended_at?.toISOString() ?? null,
  };
}
