/**
 * Family usage REST API (under /family, next to routes.ts): usage events with their decisions, usage
 * summaries, the group's test clock and billing-cycle rollover, and the group's event log.
 *
 *   POST /family/groups/:gid/lines/:lid/usage   {kind, amount, hotspot?}  operator (the network reports usage)
 *   GET  /family/groups/:gid/usage[?cycle=]     pool + every member        operator, group owner
 *   GET  /family/groups/:gid/members/:mid/usage one member                 operator, group owner, the member
 *   GET  /family/groups/:gid/usage/events       usage events (?line=&member=&limit=)   operator, group owner
 *   GET  /family/groups/:gid/clock              the group's clock and cycle            operator, group owner
 *   POST /family/groups/:gid/clock/advance      {days?, seconds?}                      operator
 *   POST /family/groups/:gid/rollover           jump to the next cycle                 operator
 *   GET  /family/groups/:gid/events             event log (?type=a,b&after=ID&limit=)  operator, group owner
 *
 * The controls routes (controls-routes.ts: time windows, roaming, passes, purchases) are registered
 * from here, at the end.
 */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply, OPERATOR_ONLY } from '../openapi.js';
import { checkGroupOperator, checkMayReadGroup, checkMayReadMember } from './auth.js';
import { listGroupEvents } from './events.js';
import { groupRoutes } from './group-route.js';
import { loadSchemas } from '../schemas.js';
import { familyControlRoutes } from './controls-routes.js';
import { advanceGroupClock, clockOf, listUsageEvents, recordUsage, rollover, usageSummary, type UsageKind } from './usage.js';

const tags = ['family'];
const idParam = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;
const params = (...names: string[]) => ({ type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, idParam])) });

type P = { gid: string; mid: string; lid: string };

const open = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: true, required, properties });
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const at = '2026-01-15T12:00:00.000Z';
const E403 = errorReply(403, { error: 'forbidden', message: 'group fg_3k9x2 belongs to another operator' });
const E404 = errorReply(404, { error: 'notFound', message: 'no family group fg_nope', details: { group: 'fg_nope' } });
const cycleSchema = open({ start: str, end: str, daysLeft: int });
const cycleExample = { start: '2026-01-15', end: '2026-02-15', daysLeft: 31 };
const limitExample = { used: 1200, limit: 50000, remaining: 48800 };
const summarySchema = open({ groupId: str, cycle: open({ start: str, end: str, daysLeft: int, current: { type: 'boolean' } }), clock: open({ now: str, offsetSeconds: int }), pool: open({}), members: { type: 'array', items: open({ memberId: str, name: str, role: str }) } }, ['groupId', 'cycle', 'pool', 'members']);
const summaryExample = {
  groupId: 'fg_3k9x2', cycle: { ...cycleExample, current: true }, clock: { now: at, offsetSeconds: 0 },
  pool: { data: { ...limitExample, throttledMb: 0, exhausted: false } },
  members: [{ memberId: 'fm_7q2', name: 'Kim', role: 'child', atCap: 'throttle', data: { used: 200, limit: 2000, remaining: 1800 } }],
};
const clockSchema = open({ now: str, offsetSeconds: int, cycle: cycleSchema }, ['now', 'offsetSeconds', 'cycle']);
const clockChangeSchema = open({ groupId: str, now: str, offsetSeconds: int, cycle: cycleSchema, rolledOver: { type: 'boolean' }, from: str }, ['groupId', 'now', 'offsetSeconds', 'cycle', 'rolledOver']);
const clockChangeExample = { groupId: 'fg_3k9x2', now: at, offsetSeconds: 86400, cycle: cycleExample, rolledOver: false, from: '2026-01-15' };
const ok = (description: string, schema: Record<string, unknown>, example: unknown, more: Record<string, unknown> = {}) =>
  ({ 200: jsonReply(description, schema, example), 403: E403, 404: E404, ...more });

export async function familyUsageRoutes(app: FastifyInstance, deps: { db: Database }) {
  const { db } = deps;

  // Usage is serialised per group by recordUsage itself: these routes read the group without a lock.
  const route = groupRoutes<P>(app, db, { tags, tx: false });

  route<{ kind: UsageKind; amount: number; hotspot?: boolean; otherParty?: string; visitedCountry?: string }>('POST', '/groups/:gid/lines/:lid/usage', {
    ...OPERATOR_ONLY, summary: "Record a line's usage (data MB, voice minutes, SMS; the other party, the visited country); answers allowed / throttled / blocked and the rule that decided (operator)",
    params: params('gid', 'lid'),
    body: loadSchemas('family').get('usage.request'),
    response: ok('The decision', open({ eventId: str, decision: { type: 'string', enum: ['allowed', 'throttled', 'blocked'] }, reason: str, rule: str, kind: str, amount: int, roaming: { type: 'boolean' } }, ['eventId', 'decision', 'reason', 'rule']),
      { eventId: '17', decision: 'blocked', reason: 'timeWindow', rule: 'time-window:school', kind: 'voice', amount: 3, hotspot: false, otherParty: '447700900123', visitedCountry: null, roaming: false, purchaseId: null, groupId: 'fg_3k9x2', memberId: 'fm_7q2', lineId: 'fl_9d1', localTime: { zone: 'Europe/London', at: 'mon 09:30' } },
      { 404: errorReply(404, { error: 'notFound', message: 'no line fl_nope in group fg_3k9x2' }) }),
  }, async ({ principal, group, body, params: p }) => {
    checkGroupOperator(principal, group, 'report usage');
    return recordUsage(db, { groupId: group.id, lineId: p.lid, kind: body.kind, amount: body.amount, hotspot: body.hotspot, otherParty: body.otherParty, visitedCountry: body.visitedCountry });
  });

  // A real calendar date (format date), not only its shape: PostgreSQL would refuse 2026-13-45.
  const cycleQuery = { type: 'object', properties: { cycle: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', format: 'date' } } };

  route('GET', '/groups/:gid/usage', { summary: "The group's usage this cycle (or ?cycle=YYYY-MM-DD): pool and members (operator, group owner)", params: params('gid'), querystring: cycleQuery, response: ok('The usage', summarySchema, summaryExample) },
    async ({ principal, group, query }) => {
      checkMayReadGroup(principal, group);
      return usageSummary(db, group.id, { cycle: query.cycle });
    });

  route('GET', '/groups/:gid/members/:mid/usage', { summary: "A member's usage and the pool (operator, group owner, the member)", params: params('gid', 'mid'), querystring: cycleQuery, response: ok('The usage', summarySchema, summaryExample) },
    async ({ principal, group, params: p, query }) => {
      checkMayReadMember(principal, group, p.mid);
      const s = await usageSummary(db, group.id, { memberId: p.mid, cycle: query.cycle });
      if (!s.members.length) throw new ApiError(404, 'notFound', `no member ${p.mid} in group ${group.id}`, { group: group.id, member: p.mid });
      return s;
    });

  route('GET', '/groups/:gid/usage/events', {
    summary: 'Usage events with their decisions (operator, group owner)', params: params('gid'),
    querystring: { type: 'object', properties: { line: idParam, member: idParam, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
    response: ok('The usage events', open({ events: { type: 'array', items: open({}) } }, ['events']), { events: [{ id: '17', at, memberId: 'fm_7q2', lineId: 'fl_9d1', kind: 'data', amount: 100, decision: 'allowed', reason: 'within-caps' }] }),
  }, async ({ principal, group, query }) => {
    checkMayReadGroup(principal, group);
    return { events: await listUsageEvents(db, group.id, { lineId: query.line, memberId: query.member, limit: query.limit ? Number(query.limit) : undefined }) };
  });

  route('GET', '/groups/:gid/clock', { summary: "The group's clock (with its test offset) and billing cycle (operator, group owner)", params: params('gid'), response: ok('The clock', clockSchema, { now: at, offsetSeconds: 0, cycle: cycleExample }) }, async ({ principal, group }) => {
    checkMayReadGroup(principal, group);
    return clockOf(db, group.id);
  });

  route<{ days?: number; seconds?: number }>('POST', '/groups/:gid/clock/advance', {
    ...OPERATOR_ONLY, summary: "Move the group's clock forward (tests, QA); the cycle rolls over when its end is passed (operator)",
    params: params('gid'),
    body: { type: 'object', additionalProperties: false, properties: { days: { type: 'number', minimum: 0, maximum: 3650 }, seconds: { type: 'integer', minimum: 0, maximum: 315_360_000 } } },
    response: ok('The clock after the move', clockChangeSchema, clockChangeExample),
  }, async ({ principal, group, body }) => {
    checkGroupOperator(principal, group, 'move the clock');
    return advanceGroupClock(db, group.id, body);
  });

  route('POST', '/groups/:gid/rollover', { ...OPERATOR_ONLY, summary: 'Move the group\'s clock to its next billing cycle: counters start from zero (operator)', params: params('gid'), response: ok('The clock after the rollover', clockChangeSchema, { ...clockChangeExample, rolledOver: true }) },
    async ({ principal, group }) => {
      checkGroupOperator(principal, group, 'roll the cycle over');
      return rollover(db, group.id);
    });

  route('GET', '/groups/:gid/events', {
    summary: "The group's event log (operator, group owner)", params: params('gid'),
    querystring: { type: 'object', properties: { type: { type: 'string', maxLength: 500 }, after: { type: 'string', pattern: '^\\d{1,18}$' }, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
    response: ok('The events', open({ events: { type: 'array', items: open({ id: str, at: str, type: str }) } }, ['events']), { events: [{ id: '5', at, type: 'member-added', detail: { member: 'fm_7q2', name: 'Kim', role: 'child' } }] }),
  }, async ({ principal, group, query }) => {
    checkMayReadGroup(principal, group);
    return { events: await listGroupEvents(db, group.id, { type: query.type, after: query.after, limit: query.limit ? Number(query.limit) : undefined }) };
  });

  await familyControlRoutes(app, { db });
}
