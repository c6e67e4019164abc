/**
 * Admin API of the built-in SM-DS (docs/smds.md#admin-api): the event records it holds, the
 * SM-DP+ servers allowed to register events, and an order's event at whichever SM-DS it names. Authorisation is the /admin hook of src/admin/routes.ts.
 */
import type { FastifyInstance } from 'fastify';
import { smdsAddressOf, type Config } from '../config.js';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply } from '../openapi.js';
import type { ProfileState } from '../orders/store.js';
import { addSmdsClient } from './es12-auth.js';
import { findEvent, listEvents, type SmdsEvent } from './store.js';

/** Where an order's SM-DS event stands (docs/smds.md#an-orders-event). */
export type OrderEventState = 'none' | 'not-registered' | 'registered' | 'deleting' | 'deleted';

export interface OrderEvent {
  iccid: string;
  smdsAddress: string | null;
  /** The SM-DS is this server's own. */
  builtIn: boolean;
  eventId: string | null;
  state: OrderEventState;
  /** The SM-DP+ address the event names (this server's). */
  rspServerAddress: string | null;
  /** The built-in SM-DS's record, while it has one. */
  event: SmdsEvent | null;
  /** A DeleteEvent not yet accepted by the SM-DS. */
  deletion: { attempts: number; lastError: string | null; nextAttemptAt: string } | null;
}

/** Profile states after a completed download: the event was deleted (or its deletion is pending). */
const AFTER_INSTALL = new Set<ProfileState>(['Installed', 'Unavailable']);

/**
 * The SM-DS event of an order, at the built-in SM-DS or an external one: from the profile's SM-DS
 * address and state, the built-in SM-DS's records and the SM-DP+'s pending DeleteEvents (smds_deletions).
 */
export async function orderEvent(db: Database, config: Pick<Config, 'smdpAddress' | 'smdsAddress'>, iccid: string): Promise<OrderEvent | undefined> {
  const [p] = await db.query<{ state: ProfileState; eid: string | null; matching_id: string | null; smds_address: string | null }>(
    'SELECT state, eid, matching_id, smds_address FROM profiles WHERE iccid = $1', [iccid]);
  if (!p) return undefined;
  const address = p.smds_address;
  const builtIn = address !== null && address.toLowerCase() === smdsAddressOf(config).toLowerCase();
  const out: OrderEvent = {
    iccid, smdsAddress: address, builtIn, eventId: address ? p.matching_id : null, state: 'none',
    rspServerAddress: address ? config.smdpAddress : null, event: null, deletion: null,
  };
  if (!address || !p.eid || !p.matching_id) return out;
  if (p.state === 'Confirmed') return { ...out, state: 'not-registered' };
  const [d] = await db.query<{ attempts: number; last_error: string | null; next_attempt_at: Date | string }>(
    'SELECT attempts, last_error, next_attempt_at FROM smds_deletions WHERE smds_address = $1 AND eid = $2 AND event_id = $3 ORDER BY id DESC LIMIT 1',
    [address, p.eid, p.matching_id]);
  if (d) out.deletion = { attempts: d.attempts, lastError: d.last_error, nextAttemptAt: new Date(d.next_attempt_at).toISOString() };
  if (builtIn) {
    const e = await findEvent(db, p.matching_id);
    if (e && e.eid === p.eid) out.event = e;
  }
  out.state = d ? 'deleting' : builtIn ? (out.event ? 'registered' : 'deleted') : AFTER_INSTALL.has(p.state) ? 'deleted' : 'registered';
  return out;
}

const orderEventSchema = {
  type: 'object',
  properties: {
    iccid: { type: 'string' },
    smdsAddress: { type: ['string', 'null'], description: 'the SM-DS the order was confirmed with (smdsAddress), or null' },
    builtIn: { type: 'boolean', description: "the SM-DS is this server's own" },
    eventId: { type: ['string', 'null'], description: 'the EventID (the MatchingID)' },
    state: { type: 'string', enum: ['none', 'not-registered', 'registered', 'deleting', 'deleted'], description: 'none: no SM-DS; not-registered: Confirmed, registered at releaseProfile; deleting: DeleteEvent not yet accepted' },
    rspServerAddress: { type: ['string', 'null'] },
    event: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: true }], description: "the built-in SM-DS's record while it has one" },
    deletion: {
      anyOf: [{ type: 'null' }, { type: 'object', properties: { attempts: { type: 'integer' }, lastError: { type: ['string', 'null'] }, nextAttemptAt: { type: 'string', format: 'date-time' } } }],
    },
  },
} as const;

const eventSchema = {
  type: 'object',
  properties: {
    eventId: { type: 'string' },
    eid: { type: 'string' },
    rspServerAddress: { type: 'string', description: 'the SM-DP+ to download from' },
    registeredBy: { type: 'string', description: 'functionRequesterIdentifier of the SM-DP+ that registered it (this one: its SM-DP+ OID)' },
    createdAt: { type: 'string', format: 'date-time' },
  },
} as const;

const eventExample = {
  eventId: 'RBJMB-XUM9S-JP2B2-YXD3W', eid: '89049032000000000000000000000019',
  rspServerAddress: 'smdp.example.com', registeredBy: '2.999.10', createdAt: '2026-01-01T12:00:00.000Z',
};


export async function smdsAdminRoutes(app: FastifyInstance, deps: { db: Database; config: Pick<Config, 'smdpAddress' | 'smdsAddress'> }) {
  const tags = ['admin: SM-DS'];
  app.get<{ Querystring: { eid?: string; limit?: number } }>('/admin/smds/events', {
    schema: {
      tags, summary: 'The SM-DS event records (newest first), optionally of one EID',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { eid: { type: 'string', pattern: '^[0-9]{32}$' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
      },
      response: { 200: jsonReply('The events', { type: 'object', properties: { events: { type: 'array', items: eventSchema } } }, { events: [eventExample] }) },
    },
  }, async (req) => ({ events: await listEvents(deps.db, { ...(req.query.eid ? { eid: req.query.eid } : {}), limit: req.query.limit ?? 100 }) }));

  app.post<{ Body: { requester: string } }>('/admin/smds/clients', {
    schema: {
      tags, summary: 'Allow another SM-DP+ to call ES12 on the built-in SM-DS, by the identity its TLS client certificate names (a new key replaces its old one)',
      body: { type: 'object', additionalProperties: false, required: ['requester'], properties: { requester: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'its functionRequesterIdentifier: the SM-DP+ OID (or a DNS name) its TLS client certificate names' } } },
      response: {
        201: jsonReply('Its key, for X-API-Key on plain HTTP (shown once; over TLS its client certificate authenticates it)', { type: 'object', properties: { requester: { type: 'string' }, apiKey: { type: 'string' } } }, { requester: 'smdp.other.example', apiKey: 'smds_3q2-7wE…' }),
        400: errorReply(400, { error: 'invalid', message: 'body/requester must match pattern "^[\\x21-\\x7e]+$"' }),
      },
    },
  }, async (req, reply) => reply.code(201).send({ requester: req.body.requester, apiKey: await addSmdsClient(deps.db, req.body.requester) }));

  app.get<{ Params: { iccid: string } }>('/admin/smds/orders/:iccid', {
    schema: {
      tags, summary: "An order's SM-DS event, at the built-in or an external SM-DS (registered, DeleteEvent pending, deleted)",
      params: { type: 'object', required: ['iccid'], properties: { iccid: { type: 'string', pattern: '^[0-9]{19}[0-9F]?$' } } },
      response: {
        200: jsonReply("The order's event", orderEventSchema, {
          iccid: '89000123456789012341', smdsAddress: 'smds.example.com', builtIn: false, eventId: 'RBJMB-XUM9S-JP2B2-YXD3W', state: 'deleting',
          rspServerAddress: 'smdp.example.com', event: null, deletion: { attempts: 2, lastError: 'SM-DS smds.example.com unreachable: connect ECONNREFUSED', nextAttemptAt: '2026-01-01T12:00:20.000Z' },
        }),
        404: errorReply(404, { error: 'notFound', message: 'no profile "89000123456789012341"', details: { profile: '89000123456789012341' } }),
      },
    },
  }, async (req) => {
    const e = await orderEvent(deps.db, deps.config, req.params.iccid);
    if (!e) throw ApiError.notFound('profile', req.params.iccid);
    return e;
  });
}
