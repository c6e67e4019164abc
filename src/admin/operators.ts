/** Admin API for ES2+ callers: create an operator (its API key is shown once) and list them. */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { createOperator, listOperators, OperatorError, publicOperator } from '../operators/store.js';

const operatorBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64, description: 'the functionRequesterIdentifier the operator sends' },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2000, description: 'handleDownloadProgressInfo receiver' },
    clientCertSha256: { type: 'string', description: 'SHA-256 fingerprint of the TLS client certificate (hex, colons allowed)' },
    apiKey: { type: 'boolean', default: true, description: 'issue an API key (false: client certificate only)' },
    ccMaxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    maxDownloadAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    orderTtlSeconds: { type: 'integer', minimum: 1 },
  },
} as const;

interface OperatorBody {
  id: string; name: string; callbackUrl?: string; clientCertSha256?: string; apiKey?: boolean;
  ccMaxAttempts?: number; maxDownloadAttempts?: number; orderTtlSeconds?: number;
}

export async function operatorAdminRoutes(app: FastifyInstance, deps: { db: Database }) {
  app.post<{ Body: OperatorBody }>('/admin/operators', { schema: { body: operatorBody } }, async (req, reply) => {
    try {
      const { operator, apiKey } = await deps.db.tx((q) => createOperator(q, req.body));
      return reply.code(201).send({ ...publicOperator(operator), ...(apiKey ? { apiKey } : {}) });
    } catch (err) {
      if (err instanceof OperatorError) return reply.code(err.code === 'conflict' ? 409 : 400).send({ error: err.code, message: err.message });
      throw err;
    }
  });
  app.get('/admin/operators', async () => ({ operators: (await listOperators(deps.db)).map(publicOperator) }));
}
