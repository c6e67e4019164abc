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
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '../db/db.js';
import { checkGroupOperator, checkMayReadGroup, checkMayReadMember, resolvePrincipal, type Principal } from './auth.js';
import { listGroupEvents } from './events.js';
import { FamilyError, getGroup, HTTP_STATUS, type GroupRow } from './store.js';
import { advanceGroupClock, clockOf, listUsageEvents, recordUsage, rollover, usageSummary, UsageError, type UsageKind } from './usage.js';

const tags = ['family'];
const idParam = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;
const params = (...names: string[]) => ({ type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, idParam])) });

type P = { gid: string; mid: string; lid: string };

export async function familyUsageRoutes(app: FastifyInstance, deps: { db: Database }) {
  const { db } = deps;

  function route<B>(method: 'GET' | 'POST', url: string, schema: Record<string, unknown>,
    fn: (c: { principal: Principal; group: GroupRow; body: B; params: P; query: Record<string, string | undefined> }) => Promise<unknown>) {
    app.route({
      method,
      url: `/family${url}`,
      schema: { tags, ...schema },
      attachValidation: true,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        try {
          const principal = await resolvePrincipal(db, req);
          if (req.validationError) throw new FamilyError('invalid', req.validationError.message);
          const p = req.params as P;
          const group = await getGroup(db, p.gid);
          if (!group) throw new FamilyError('notFound', `no family group ${p.gid}`);
          return reply.send(await fn({ principal, group, body: (req.body ?? {}) as B, params: p, query: (req.query ?? {}) as Record<string, string | undefined> }));
        } catch (err) {
          if (err instanceof FamilyError) return reply.code(HTTP_STATUS[err.code]).send({ error: err.code, message: err.message });
          if (err instanceof UsageError) return reply.code(err.code === 'notFound' ? 404 : 400).send({ error: err.code, message: err.message });
          throw err;
        }
      },
    });
  }

  route<{ kind: UsageKind; amount: number; hotspot?: boolean }>('POST', '/groups/:gid/lines/:lid/usage', {
    summary: "Record a line's usage (data MB, voice minutes, SMS); answers allowed / throttled / blocked (operator)",
    params: params('gid', 'lid'),
    body: {
      type: 'object', required: ['kind', 'amount'], additionalProperties: false,
      properties: { kind: { enum: ['data', 'voice', 'sms'] }, amount: { type: 'integer', minimum: 1, maximum: 10_000_000 }, hotspot: { type: 'boolean' } },
    },
  }, async ({ principal, group, body, params: p }) => {
    checkGroupOperator(principal, group, 'report usage');
    return recordUsage(db, { groupId: group.id, lineId: p.lid, kind: body.kind, amount: body.amount, hotspot: body.hotspot });
  });

  const cycleQuery = { type: 'object', properties: { cycle: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' } } };

  route('GET', '/groups/:gid/usage', { summary: "The group's usage this cycle (or ?cycle=YYYY-MM-DD): pool and members (operator, group owner)", params: params('gid'), querystring: cycleQuery },
    async ({ principal, group, query }) => {
      checkMayReadGroup(principal, group);
      return usageSummary(db, group.id, { cycle: query.cycle });
    });

  route('GET', '/groups/:gid/members/:mid/usage', { summary: "A member's usage and the pool (operator, group owner, the member)", params: params('gid', 'mid'), querystring: cycleQuery },
    async ({ principal, group, params: p, query }) => {
      checkMayReadMember(principal, group, p.mid);
      const s = await usageSummary(db, group.id, { memberId: p.mid, cycle: query.cycle });
      if (!s.members.length) throw new FamilyError('notFound', `no member ${p.mid} in group ${group.id}`);
      return s;
    });

  route('GET', '/groups/:gid/usage/events', {
    summary: 'Usage events with their decisions (operator, group owner)', params: params('gid'),
    querystring: { type: 'object', properties: { line: idParam, member: idParam, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
  }, async ({ principal, group, query }) => {
    checkMayReadGroup(principal, group);
    return { events: await listUsageEvents(db, group.id, { lineId: query.line, memberId: query.member, limit: query.limit ? Number(query.limit) : undefined }) };
  });

  route('GET', '/groups/:gid/clock', { summary: "The group's clock (with its test offset) and billing cycle (operator, group owner)", params: params('gid') }, async ({ principal, group }) => {
    checkMayReadGroup(principal, group);
    return clockOf(db, group.id);
  });

  route<{ days?: number; seconds?: number }>('POST', '/groups/:gid/clock/advance', {
    summary: "Move the group's clock forward (tests, QA); the cycle rolls over when its end is passed (operator)",
    params: params('gid'),
    body: { type: 'object', additionalProperties: false, properties: { days: { type: 'number', minimum: 0, maximum: 3650 }, seconds: { type: 'integer', minimum: 0 } } },
  }, async ({ principal, group, body }) => {
    checkGroupOperator(principal, group, 'move the clock');
    return advanceGroupClock(db, group.id, body);
  });

  route('POST', '/groups/:gid/rollover', { summary: 'Move the group\'s clock to its next billing cycle: counters start from zero (operator)', params: params('gid') },
    async ({ principal, group }) => {
      checkGroupOperator(principal, group, 'roll the cycle over');
      return rollover(db, group.id);
    });

  route('GET', '/groups/:gid/events', {
    summary: "The group's event log (operator, group owner)", params: params('gid'),
    querystring: { type: 'object', properties: { type: { type: 'string', maxLength: 500 }, after: { type: 'string', pattern: '^\\d+$' }, limit: { type: 'integer', minimum: 1, maximum: 5000 } } },
  }, async ({ principal, group, query }) => {
    checkMayReadGroup(principal, group);
    return { events: await listGroupEvents(db, group.id, { type: query.type, after: query.after, limit: query.limit ? Number(query.limit) : undefined }) };
  });
}
