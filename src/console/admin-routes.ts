/**
 * Admin read routes the console needs beyond the admin API: the callbacks sent to operators with
 * their delivery state (the outbox), and the family groups with members, lines, each profile's live
 * state and the usage against plan and caps, for any operator (the family API itself serves an
 * operator or a member only its own). Behind the /admin authorisation hook (src/admin/routes.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { familyOutboxKey, listGroupEvents } from '../family/events.js';
import { getGroup, listGroups, listLines, listMembers, liveState, profilesOf, publicGroup, publicLine, publicMember, type GroupRow } from '../family/store.js';
import { usageSummary } from '../family/usage.js';
import { CONTROLS_GROUP_EXAMPLE, CONTROLS_GROUP_PROPERTIES, CONTROLS_MEMBER_EXAMPLE, CONTROLS_MEMBER_PROPERTIES, controlsView } from '../family/console-view.js';
import { IdentifierError, normaliseIccid } from '../rsp/identifiers.js';
import { OUTBOX_COLUMNS, callbackView, type OutboxViewRow } from './views.js';
import { errorReply, jsonReply } from '../openapi.js';
import {
  CALLBACK_EXAMPLE, GROUP_DETAIL_EXAMPLE, GROUP_ID, GROUP_SUMMARY_EXAMPLE, callbackSchema, callbacksQuery, groupDetailSchema, groupSummarySchema, text,
} from './schemas.js';

interface CallbacksQuery {
  iccid?: string;
  groupId?: string;
  operator?: string;
  state?: 'pending' | 'retrying' | 'delivered' | 'undelivered';
  limit?: number;
}

const STATE_SQL: Record<NonNullable<CallbacksQuery['state']>, string> = {
  pending: 'delivered_at IS NULL AND attempts = 0',
  retrying: 'delivered_at IS NULL AND attempts > 0',
  undelivered: 'delivered_at IS NULL',
  delivered: 'delivered_at IS NOT NULL',
};

export async function consoleAdminRoutes(app: FastifyInstance, deps: { db: Database }) {
  const { db } = deps;

  app.get<{ Querystring: CallbacksQuery }>('/admin/callbacks', {
    schema: {
      tags: ['admin: callbacks'],
      summary: 'Callbacks to operators (ES2+ handleDownloadProgressInfo, family events) with their delivery state, newest first',
      querystring: callbacksQuery,
      response: {
        200: jsonReply('The callbacks (at most ?limit=, default 100) and how many of those matching the filters are in each delivery state', {
          type: 'object', required: ['callbacks', 'counts'],
          properties: {
            callbacks: { type: 'array', items: callbackSchema },
            counts: { type: 'object', properties: { pending: { type: 'integer' }, retrying: { type: 'integer' }, delivered: { type: 'integer' } } },
          },
        }, { callbacks: [CALLBACK_EXAMPLE], counts: { pending: 0, retrying: 0, delivered: 1 } }),
      },
    },
  }, async (req) => {
    const q = req.query;
    let key: string | null = null;
    if (q.iccid !== undefined && q.groupId !== undefined) throw ApiError.badRequest('give iccid or groupId, not both', { iccid: q.iccid, groupId: q.groupId });
    if (q.iccid !== undefined) {
      try {
        key = normaliseIccid(q.iccid);
      } catch (err) {
        if (err instanceof IdentifierError) throw ApiError.badRequest(err.message, { iccid: q.iccid });
        throw err;
      }
    } else if (q.groupId !== undefined) key = familyOutboxKey(q.groupId);
    const where = `($1::text IS NULL OR iccid = $1) AND ($2::text IS NULL OR operator_id = $2)`;
    const rows = await db.query<OutboxViewRow>(
      `SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE ${where} AND ${q.state ? STATE_SQL[q.state] : 'true'} ORDER BY id DESC LIMIT $3`,
      [key, q.operator ?? null, q.limit ?? 100],
    );
    const [c] = await db.query<Record<string, string | number>>(
      `SELECT count(*) FILTER (WHERE ${STATE_SQL.pending}) AS pending, count(*) FILTER (WHERE ${STATE_SQL.retrying}) AS retrying,
              count(*) FILTER (WHERE ${STATE_SQL.delivered}) AS delivered FROM outbox WHERE ${where}`,
      [key, q.operator ?? null],
    );
    return {
      callbacks: rows.map(callbackView),
      counts: { pending: Number(c!.pending), retrying: Number(c!.retrying), delivered: Number(c!.delivered) },
    };
  });

  const familyTags = ['admin: family'];
  // The group detail with the family controls (src/family/console-view.ts): the group's and each member's.
  const detailSchema = {
    ...groupDetailSchema,
    properties: {
      ...groupDetailSchema.properties,
      ...CONTROLS_GROUP_PROPERTIES,
      members: { ...groupDetailSchema.properties.members, items: { ...groupDetailSchema.properties.members.items, properties: { ...groupDetailSchema.properties.members.items.properties, ...CONTROLS_MEMBER_PROPERTIES } } },
    },
  };
  const detailExample = { ...GROUP_DETAIL_EXAMPLE, ...CONTROLS_GROUP_EXAMPLE, members: GROUP_DETAIL_EXAMPLE.members.map((m) => ({ ...m, ...CONTROLS_MEMBER_EXAMPLE })) };

  app.get<{ Querystring: { operator?: string } }>('/admin/family/groups', {
    schema: {
      tags: familyTags, summary: "Every operator's family groups (or ?operator=), with how many members and lines each has",
      querystring: { type: 'object', additionalProperties: false, properties: { operator: text(64) } },
      response: { 200: jsonReply('The groups, oldest first', { type: 'object', required: ['groups'], properties: { groups: { type: 'array', items: groupSummarySchema } } }, { groups: [GROUP_SUMMARY_EXAMPLE] }) },
    },
  }, async (req) => {
    const groups: GroupRow[] = req.query.operator !== undefined
      ? await listGroups(db, req.query.operator)
      : await db.query<GroupRow>('SELECT * FROM family_groups ORDER BY created_at, id LIMIT 1000');
    const ids = groups.map((g) => g.id);
    const counts = ids.length
      ? await db.query<{ id: string; members: string | number; lines: string | number }>(
        `SELECT g.id, (SELECT count(*) FROM family_members m WHERE m.group_id = g.id) AS members,
                (SELECT count(*) FROM family_lines l WHERE l.group_id = g.id) AS lines
           FROM family_groups g WHERE g.id = ANY($1::text[])`, [ids])
      : [];
    const byId = new Map(counts.map((c) => [c.id, c]));
    return {
      groups: groups.map((g) => ({ ...publicGroup(g), members: Number(byId.get(g.id)?.members ?? 0), lines: Number(byId.get(g.id)?.lines ?? 0) })),
    };
  });

  app.get<{ Params: { gid: string } }>('/admin/family/groups/:gid', {
    schema: {
      tags: familyTags,
      summary: "A family group: plan, members with their caps, controls and usage, lines with each profile's live state, the pool's usage this cycle, purchases awaiting approval and its latest events",
      params: { type: 'object', required: ['gid'], properties: { gid: GROUP_ID } },
      response: {
        200: jsonReply('The group', detailSchema, detailExample),
        404: errorReply(404, { error: 'notFound', message: 'no group "fg_0000"', details: { group: 'fg_0000' } }),
      },
    },
  }, async (req) => {
    const g = await getGroup(db, req.params.gid);
    if (!g) throw ApiError.notFound('group', req.params.gid);
    const [members, lines, usage, events] = [
      await listMembers(db, g.id),
      await listLines(db, { groupId: g.id }),
      await usageSummary(db, g.id),
      await listGroupEvents(db, g.id, { limit: 5000 }),
    ];
    const profiles = await profilesOf(db, lines.flatMap((l) => (l.iccid ? [l.iccid] : [])));
    const controls = await controlsView(db, g, members, usage);
    const usageOf = new Map(usage.members.map((m) => [m.memberId, m]));
    const lineUsage = new Map(usage.members.flatMap((m) => m.lines.map((l) => [l.lineId, l.usage] as const)));
    const profileStates: Record<string, number> = {};
    for (const l of lines) {
      const p = l.iccid ? profiles.get(l.iccid) : undefined;
      if (p) profileStates[liveState(p)] = (profileStates[liveState(p)] ?? 0) + 1;
    }
    return {
      group: publicGroup(g),
      profileStates,
      cycle: usage.cycle,
      clock: usage.clock,
      pool: usage.pool,
      ...controls.group,
      members: members.map((m) => {
        const u = usageOf.get(m.id);
        return {
          ...publicMember(m),
          ...controls.member(m),
          usage: u ? { data: u.data, hotspot: u.hotspot, voice: u.voice, sms: u.sms, throttledMb: u.throttledMb, blocked: u.blocked } : undefined,
          lines: lines.filter((l) => l.member_id === m.id).map((l) => ({
            ...publicLine(l, l.iccid ? profiles.get(l.iccid) : undefined),
            usage: lineUsage.get(l.id),
          })),
        };
      }),
      events: events.slice(-50).reverse().map((e) => ({ id: e.id, at: e.at, type: e.type, detail: e.detail })),
    };
  });
}
