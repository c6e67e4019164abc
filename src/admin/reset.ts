/**
 * POST /admin/reset: empties orders and sessions between CI test cases, in one transaction (served
 * only with RESET_ENABLED=1; otherwise 404 naming the setting). What it empties is in docs/api.md:
 *
 *   default   RSP sessions, notifications, callbacks (outbox), fault injections, the history of
 *             ordered profiles; every profile that left the pool: one an admin order created is
 *             deleted, an inventory profile goes back to Available with its download state cleared
 *             (and a family line bound to it is unbound). Profile types, inventory, operators and
 *             family groups stay.
 *   ?all=1    everything the server stores except the schema and the built-in `default` profile
 *             type: also every profile, operator, profile type and family group.
 */
import type { FastifyInstance } from 'fastify';
import type { Queryable } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply } from '../openapi.js';
import { PROFILE_EVENT, profileEventSql } from '../orders/state-machine.js';
import { ORDER_SOURCE } from '../orders/store.js';
import type { AdminDeps } from './routes.js';

export interface ResetSummary {
  scope: 'orders' | 'all';
  deleted: Record<string, number>;
  /** Inventory profiles back to Available (default scope). */
  returnedToPool: number;
  /** Family lines whose profile was reset (default scope). */
  unboundLines: number;
}

const count = async (q: Queryable, sql: string, params: unknown[] = []) =>
  Number((await q.query<{ n: string | number }>(`WITH d AS (${sql} RETURNING 1) SELECT count(*) AS n FROM d`, params))[0]!.n);

/** The events of a profile's creation (the 'created' event, src/orders/store.ts `insertProfile`). */
const CREATED = profileEventSql(PROFILE_EVENT.created);

/** The profiles an order made: their creation event says source ORDER_SOURCE (src/orders/store.ts). */
const MADE_BY_ORDER = `EXISTS (SELECT 1 FROM profile_events e WHERE e.iccid = profiles.iccid AND e.event = ${CREATED} AND e.detail->>'source' = '${ORDER_SOURCE}')`;

/** Empties orders and sessions (or with all, everything); one transaction, so a failure changes nothing. */
async function resetState(q: Queryable, opts: { all?: boolean } = {}): Promise<ResetSummary> {
  const deleted: Record<string, number> = {};
  deleted.sessions = await count(q, 'DELETE FROM rsp_sessions');
  deleted.notifications = await count(q, 'DELETE FROM notifications');
  deleted.callbacks = await count(q, 'DELETE FROM outbox');
  deleted.faults = await count(q, 'DELETE FROM fault_injections');
  // What the console's callback catcher received (docs/console.md) belongs to the test case too.
  deleted.caughtRequests = await count(q, 'DELETE FROM caught_requests');
  // The built-in SM-DS's events, its discovery sessions and pending deletions (docs/smds.md).
  deleted.smdsEvents = await count(q, 'DELETE FROM smds_events');
  await q.query('DELETE FROM smds_sessions');
  await q.query('DELETE FROM smds_deletions');
  if (opts.all) {
    deleted.usageEvents = await count(q, 'DELETE FROM usage_events');
    deleted.groupEvents = await count(q, 'DELETE FROM group_events');
    await q.query('DELETE FROM family_usage_counters');
    await q.query('DELETE FROM family_cycles');
    await q.query('DELETE FROM family_clock');
    await q.query('DELETE FROM family_line_profiles');
    // Add-on purchases (docs/family.md) and companion devices (docs/entitlement.md) go with their group.
    deleted.familyPurchases = await count(q, 'DELETE FROM family_purchases');
    deleted.companionDevices = await count(q, 'DELETE FROM companion_devices');
    deleted.familyLines = await count(q, 'DELETE FROM family_lines');
    deleted.familyMembers = await count(q, 'DELETE FROM family_members');
    deleted.familyGroups = await count(q, 'DELETE FROM family_groups');
    deleted.events = await count(q, 'DELETE FROM profile_events');
    deleted.profiles = await count(q, 'DELETE FROM profiles');
    deleted.operators = await count(q, 'DELETE FROM operators');
    await q.query('DELETE FROM smds_clients');
    deleted.profileTypes = await count(q, `DELETE FROM profile_types WHERE name <> 'default'`);
    return { scope: 'all', deleted, returnedToPool: 0, unboundLines: 0 };
  }
  await q.query(`CREATE TEMP TABLE reset_targets ON COMMIT DROP AS
    SELECT iccid, ${MADE_BY_ORDER} AS made_by_order FROM profiles WHERE state <> 'Available'`);
  const unboundLines = await count(q, 'UPDATE family_lines SET iccid = NULL, updated_at = now() WHERE iccid IN (SELECT iccid FROM reset_targets)');
  await q.query('DELETE FROM family_line_profiles WHERE iccid IN (SELECT iccid FROM reset_targets)');
  deleted.events = await count(q, `DELETE FROM profile_events WHERE iccid IN (SELECT iccid FROM reset_targets)
    AND (event <> ${CREATED} OR iccid IN (SELECT iccid FROM reset_targets WHERE made_by_order))`);
  deleted.orders = await count(q, 'DELETE FROM profiles WHERE iccid IN (SELECT iccid FROM reset_targets WHERE made_by_order)');
  const returnedToPool = await count(q, `UPDATE profiles SET state = 'Available', eid = NULL, matching_id = NULL, cc_digest = NULL, cc_attempts = 0,
      download_attempts = 0, expires_at = NULL, device_state = NULL, updated_at = now()
    WHERE iccid IN (SELECT iccid FROM reset_targets WHERE NOT made_by_order)`);
  return { scope: 'orders', deleted, returnedToPool, unboundLines };
}

const summaryExample: ResetSummary = {
  scope: 'orders',
  deleted: { sessions: 2, notifications: 3, callbacks: 4, faults: 1, events: 12, orders: 2 },
  returnedToPool: 1,
  unboundLines: 0,
};

export async function resetRoutes(app: FastifyInstance, deps: AdminDeps) {
  app.post<{ Querystring: { all?: string } }>('/admin/reset', {
    schema: {
      tags: ['admin'],
      summary: 'Empty orders and sessions between CI test cases (RESET_ENABLED=1 only)',
      description: 'One transaction. Default: RSP sessions, notifications, callbacks, fault injections, the callback catcher\'s requests and the history of ordered profiles are deleted; ' +
        'profiles an admin order created are deleted, inventory profiles that left the pool go back to Available (family lines bound to them are unbound). ' +
        'Profile types, inventory, operators and family groups stay. `?all=1`: everything except the built-in `default` profile type. ' +
        'Without RESET_ENABLED=1 the route answers 404.',
      querystring: { type: 'object', additionalProperties: false, properties: { all: { type: 'string', enum: ['1', '0', 'true', 'false'], description: '1 (or true): also delete profiles, operators, profile types and family groups' } } },
      response: {
        200: jsonReply('What was emptied (row counts)', {
          type: 'object',
          required: ['scope', 'deleted', 'returnedToPool', 'unboundLines'],
          properties: {
            scope: { type: 'string', enum: ['orders', 'all'] },
            deleted: { type: 'object', additionalProperties: { type: 'integer' } },
            returnedToPool: { type: 'integer' },
            unboundLines: { type: 'integer' },
          },
        }, summaryExample),
        404: errorReply(404, { error: 'notFound', message: 'POST /admin/reset is off: start the server with RESET_ENABLED=1', details: { setting: 'RESET_ENABLED' } }, 'Reset is not enabled (RESET_ENABLED)'),
      },
    },
  }, async (req) => {
    if (!deps.config.resetEnabled) throw new ApiError(404, 'notFound', 'POST /admin/reset is off: start the server with RESET_ENABLED=1', { setting: 'RESET_ENABLED' });
    const summary = await deps.db.tx((q) => resetState(q, { all: req.query.all === '1' || req.query.all === 'true' }));
    req.log.info({ summary }, 'state reset');
    return summary;
  });
}
