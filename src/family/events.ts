/**
 * A family group's event log (group_events) and its delivery to the group's operator: every event is
 * written in the caller's transaction together with an outbox row (kind 'familyEvent'), which the
 * outbox worker POSTs to the operator's callback_url, one group's events strictly in order.
 */
import type { Queryable } from '../db/db.js';
import { eventOf, onProfileChange, PROFILE_EVENT, type ProfileChange, type ProfileEventName } from '../orders/state-machine.js';
import { groupClock } from './clock.js';

const FAMILY_EVENT_KIND = 'familyEvent';
/** Path appended to a bare callback_url (no path) for family events; a URL with a path is used as is. */
export const FAMILY_EVENT_PATH = '/mock-smdp/family/events';

/**
 * The types of a group's events (group_events.type: the `type` of GET /family/groups/:gid/events and
 * of the operator's callback): the one list of them. `recordGroupEvent` takes only these.
 */
export const GROUP_EVENT = {
  groupCreated: 'group-created',
  groupRenamed: 'group-renamed',
  planSet: 'plan-set',
  groupRemoved: 'group-removed',
  memberAdded: 'member-added',
  memberChanged: 'member-changed',
  capsSet: 'caps-set',
  memberRemoved: 'member-removed',
  lineAdded: 'line-added',
  lineChanged: 'line-changed',
  lineMoved: 'line-moved',
  lineRemoved: 'line-removed',
  orderCancelled: 'order-cancelled',
  profileUnbound: 'profile-unbound',
  profileIssued: 'profile-issued',
  profileDownloaded: 'profile-downloaded',
  profileInstalled: 'profile-installed',
  profileEnabled: 'profile-enabled',
  profileDisabled: 'profile-disabled',
  profileDeleted: 'profile-deleted',
  capReached: 'cap-reached',
  poolExhausted: 'pool-exhausted',
  cycleRolledOver: 'cycle-rolled-over',
  // Controls (docs/family.md): settings, roaming limits, add-on purchases.
  timeZoneSet: 'time-zone-set',
  emergencyNumbersSet: 'emergency-numbers-set',
  roamingPlanSet: 'roaming-plan-set',
  passesSet: 'passes-set',
  controlsSet: 'controls-set',
  roamingAllowanceReached: 'roaming-allowance-reached',
  purchaseRequested: 'purchase-requested',
  purchaseApproved: 'purchase-approved',
  purchaseDeclined: 'purchase-declined',
  purchaseActivated: 'purchase-activated',
  // Companion devices through the TS.43 entitlement endpoint (docs/entitlement.md).
  companionSubscribed: 'companion-subscribed',
  companionUnsubscribed: 'companion-unsubscribed',
  companionTransferred: 'companion-transferred',
} as const;

export type GroupEventType = (typeof GROUP_EVENT)[keyof typeof GROUP_EVENT];

export interface GroupEvent {
  id: string;
  groupId: string;
  at: string;
  /** A GroupEventType when written by this version; read back as the database holds it. */
  type: string;
  detail: Record<string, unknown> | null;
}

export interface FamilyEventPayload {
  eventId: string;
  groupId: string;
  type: GroupEventType;
  detail: Record<string, unknown> | null;
  at: string;
}

function familyEventEndpoint(callbackUrl: string): string {
  const u = new URL(callbackUrl);
  if (u.pathname === '/' || u.pathname === '') u.pathname = FAMILY_EVENT_PATH;
  return u.toString();
}

/** Outbox ordering key of a group's events (the worker delivers rows with one key in id order). */
export function familyOutboxKey(groupId: string): string {
  return `family:${groupId}`;
}

/**
 * Logs an event of the group (timestamped with the group's clock, see clock.ts) and queues it for the
 * group operator's callback_url, if it has one. Use inside the transaction of the change it reports.
 */
export async function recordGroupEvent(q: Queryable, groupId: string, type: GroupEventType, detail: Record<string, unknown> | null = null): Promise<GroupEvent> {
  const { now } = await groupClock(q, groupId);
  const [row] = await q.query<{ id: string | number }>(
    `INSERT INTO group_events (group_id, at, type, detail) VALUES ($1, $2, $3, $4) RETURNING id`,
    [groupId, now, type, detail === null ? null : JSON.stringify(detail)],
  );
  const event: GroupEvent = { id: String(row!.id), groupId, at: now.toISOString(), type, detail };
  const [op] = await q.query<{ operator_id: string; callback_url: string | null }>(
    `SELECT o.id AS operator_id, o.callback_url FROM family_groups g JOIN operators o ON o.id = g.operator_id WHERE g.id = $1`,
    [groupId],
  );
  if (op?.callback_url) {
    let url: string | undefined;
    try {
      url = familyEventEndpoint(op.callback_url);
    } catch {
      url = undefined; // an unusable callback_url is the operator's problem; the event stays logged
    }
    if (url) {
      const payload: FamilyEventPayload = { eventId: event.id, groupId, type, detail, at: event.at };
      await q.query(`INSERT INTO outbox (operator_id, url, kind, payload, iccid) VALUES ($1, $2, $3, $4, $5)`, [
        op.operator_id, url, FAMILY_EVENT_KIND, JSON.stringify(payload), familyOutboxKey(groupId),
      ]);
    }
  }
  return event;
}

/** The profile history events of a family line's profile that its group logs, and the group event each becomes. */
const BY_PROFILE_EVENT: Partial<Record<ProfileEventName, GroupEventType>> = {
  [PROFILE_EVENT.downloaded]: GROUP_EVENT.profileDownloaded,
  [PROFILE_EVENT.installed]: GROUP_EVENT.profileInstalled,
  [PROFILE_EVENT.enabled]: GROUP_EVENT.profileEnabled,
  [PROFILE_EVENT.disabled]: GROUP_EVENT.profileDisabled,
  [PROFILE_EVENT.deleted]: GROUP_EVENT.profileDeleted,
};

/**
 * Called where a profile changes (issued by family; downloaded, installed, enabled, disabled,
 * deleted through ES9+): when the ICCID is (or was) a family line's profile, logs the group event.
 * Does nothing otherwise.
 */
export async function familyProfileEvent(q: Queryable, iccid: string, type: GroupEventType, extra: Record<string, unknown> = {}): Promise<void> {
  type LineRef = { group_id: string; member_id: string; line_id: string };
  let rows = await q.query<LineRef>('SELECT group_id, member_id, id AS line_id FROM family_lines WHERE iccid = $1', [iccid]);
  if (!rows.length) {
    // A profile moved away from its line (or whose line is gone) still belongs to the group's history.
    rows = await q.query<LineRef>('SELECT group_id, member_id, line_id FROM family_line_profiles WHERE iccid = $1 ORDER BY id DESC LIMIT 1', [iccid]);
  }
  const r = rows[0];
  if (!r) return;
  const [p] = await q.query<{ eid: string | null }>('SELECT eid FROM profiles WHERE iccid = $1', [iccid]);
  await recordGroupEvent(q, r.group_id, type, { iccid, lineId: r.line_id, memberId: r.member_id, eid: p?.eid ?? null, ...extra });
}

export interface EventQuery {
  type?: string;
  /** Events with id greater than this. */
  after?: string;
  limit?: number;
}

export async function listGroupEvents(q: Queryable, groupId: string, f: EventQuery = {}): Promise<GroupEvent[]> {
  const params: unknown[] = [groupId];
  let where = 'group_id = $1';
  if (f.type) {
    params.push(f.type.split(','));
    where += ` AND type = ANY($${params.length}::text[])`;
  }
  if (f.after) {
    params.push(f.after);
    where += ` AND id > $${params.length}::bigint`;
  }
  params.push(Math.min(Math.max(f.limit ?? 500, 1), 5000));
  const rows = await q.query<{ id: string | number; group_id: string; at: Date | string; type: string; detail: Record<string, unknown> | null }>(
    `SELECT id, group_id, at, type, detail FROM group_events WHERE ${where} ORDER BY id LIMIT $${params.length}`,
    params,
  );
  return rows.map((r) => ({ id: String(r.id), groupId: r.group_id, at: new Date(r.at).toISOString(), type: r.type, detail: r.detail }));
}

/** The group event of a profile change made elsewhere (ES9+, ES2+): by the history event the change records. */
function familyTypeOf(c: ProfileChange): GroupEventType | undefined {
  return BY_PROFILE_EVENT[eventOf(c)];
}

/**
 * A profile that was ever a family line's gets its group event. Whether it was is read with the
 * locked profile (`family_bound`), so other profiles cost no statement.
 */
onProfileChange({
  columns: ['EXISTS (SELECT 1 FROM family_line_profiles f WHERE f.iccid = p.iccid) AS family_bound'],
  wantsAfter: (c) => familyTypeOf(c) !== undefined && c.row.family_bound !== false,
  async after(q, c) {
    const type = familyTypeOf(c);
    if (type && c.row.family_bound !== false) await familyProfileEvent(q, c.iccid, type);
  },
});
