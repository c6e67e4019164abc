/**
 * Admin API of the built-in SM-DS (docs/smds.md#admin-api): the event records it holds, and the
 * SM-DP+ servers allowed to register events. Authorisation is the /admin hook of src/admin/routes.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { errorReply, jsonReply } from '../openapi.js';
import { addSmdsClient } from './es12-auth.js';
import { listEvents } from './store.js';

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


export async function smdsAdminRoutes(app: FastifyInstance, deps: { db: Database }) {
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
      tags, summary: 'Allow another SM-DP+ to call ES12 on the built-in SM-DS (a new key replaces its old one)',
      body: { type: 'object', additionalProperties: false, required: ['requester'], properties: { requester: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$', description: 'its functionRequesterIdentifier' } } },
      response: {
        201: jsonReply('Its key, for X-API-Key (shown once)', { type: 'object', properties: { requester: { type: 'string' }, apiKey: { type: 'string' } } }, { requester: 'smdp.other.example', apiKey: 'smds_3q2-7wE…' }),
        400: errorReply(400, { error: 'invalid', message: 'body/requester must match pattern "^[\\x21-\\x7e]+$"' }),
      },
    },
  }, async (req, reply) => reply.code(201).send({ requester: req.body.requester, apiKey: await addSmdsClient(deps.db, req.body.requester) }));
}
