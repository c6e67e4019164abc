/**
 * Admin API for fault injection (see src/es9plus/faults.ts): POST /admin/faults, GET /admin/faults
 * (?all=true includes spent ones), DELETE /admin/faults/:id. Authorisation is the /admin hook of
 * src/admin/routes.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { addFault, deleteFault, FAULT_FUNCTIONS, FaultError, faultView, listFaults, type NewFault } from '../es9plus/faults.js';
import { IdentifierError, normaliseIccid } from '../rsp/identifiers.js';

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
  app.post<{ Body: NewFault }>('/admin/faults', { schema: { body: faultBody } }, async (req, reply) => {
    try {
      const b = req.body;
      const row = await deps.db.tx((q) => addFault(q, { ...b, ...(b.iccid ? { iccid: normaliseIccid(b.iccid) } : {}) }));
      return reply.code(201).send(faultView(row));
    } catch (err) {
      if (err instanceof FaultError || err instanceof IdentifierError) return reply.code(400).send({ error: 'invalid', message: err.message });
      throw err;
    }
  });

  app.get<{ Querystring: { all?: boolean } }>('/admin/faults', {
    schema: { querystring: { type: 'object', properties: { all: { type: 'boolean', default: false } } } },
  }, async (req) => ({ faults: (await listFaults(deps.db, req.query.all)).map(faultView) }));

  app.delete<{ Params: { id: string } }>('/admin/faults/:id', async (req, reply) => {
    if (!(await deleteFault(deps.db, req.params.id))) return reply.code(404).send({ error: 'notFound', message: `no fault ${req.params.id}` });
    return reply.code(204).send();
  });
}
