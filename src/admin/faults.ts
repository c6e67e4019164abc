/**
 * Admin API for fault injection (see src/es9plus/faults.ts): POST /admin/faults, GET /admin/faults
 * (?all=true includes spent ones), DELETE /admin/faults/:id. Authorisation is the /admin hook of
 * src/admin/routes.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { addFault, deleteFault, FAULT_FUNCTIONS, faultView, listFaults, type NewFault } from '../es9plus/faults.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply, noContent } from '../openapi.js';
import { normaliseIccid } from '../rsp/identifiers.js';
import { faultExample, faultSchema, faultsSchema } from './schemas.js';

const faultBody = {
  type: 'object',
  additionalProperties: false,
  required: ['mode'],
  properties: {
    iccid: { type: 'string', pattern: '^[0-9]{19,20}F?$' },
    matchingId: { type: 'string', pattern: '^[0-9A-Za-z-]{1,64}$' },
    eid: { type: 'string', pattern: '^[0-9]{32}$' },
    function: { type: 'string', enum: [...FAULT_FUNCTIONS] },
    mode: { type: 'string', enum: ['fail', 'delay', 'drop'] },
    subjectCode: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$' },
    reasonCode: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$' },
    message: { type: 'string', maxLength: 512 },
    delayMs: { type: 'integer', minimum: 1, maximum: 600000 },
    count: { type: 'integer', minimum: 1, maximum: 1000000, default: 1 },
  },
} as const;

export async function faultAdminRoutes(app: FastifyInstance, deps: { db: Database }) {
  const tags = ['admin: faults'];
  app.post<{ Body: NewFault }>('/admin/faults', {
    schema: {
      tags, summary: "Make an order's (or an eUICC's) next ES9+ call(s) fail, wait or drop", body: faultBody,
      response: {
        201: jsonReply('The fault', faultSchema, faultExample),
        400: errorReply(400, { error: 'invalid', message: 'a fault needs an iccid, a matchingId or an eid' }),
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const row = await deps.db.tx((q) => addFault(q, { ...b, ...(b.iccid ? { iccid: normaliseIccid(b.iccid) } : {}) }));
    return reply.code(201).send(faultView(row));
  });

  app.get<{ Querystring: { all?: boolean } }>('/admin/faults', {
    schema: {
      tags, summary: 'Faults still to fire (?all=true: spent ones too)',
      querystring: { type: 'object', properties: { all: { type: 'boolean', default: false } } },
      response: { 200: jsonReply('The faults', faultsSchema, { faults: [faultExample] }) },
    },
  }, async (req) => ({ faults: (await listFaults(deps.db, req.query.all)).map(faultView) }));

  app.delete<{ Params: { id: string } }>('/admin/faults/:id', {
    schema: {
      tags, summary: 'Delete a fault',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 20, description: 'the fault id (digits)' } } },
      response: {
        204: noContent('Deleted'),
        404: errorReply(404, { error: 'notFound', message: 'no fault "42"', details: { fault: '42' } }),
      },
    },
  }, async (req, reply) => {
    if (!(await deleteFault(deps.db, req.params.id))) throw ApiError.notFound('fault', req.params.id);
    return reply.code(204).send();
  });
}
