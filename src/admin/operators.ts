/** Admin API for ES2+ callers: create an operator (its API key is shown once) and list them. */
import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/db.js';
import { errorReply, jsonReply } from '../openapi.js';
import { createOperator, listOperators, MAX_SECONDS, publicOperator } from '../operators/store.js';
import { operatorCreatedExample, operatorCreatedSchema, operatorExample, operatorsSchema } from './schemas.js';

const operatorBody = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64, description: 'the functionRequesterIdentifier the operator sends' },
    name: { type: 'string', minLength: 1, maxLength: 200 },
    callbackUrl: { type: 'string', minLength: 1, maxLength: 2000, description: 'handleDownloadProgressInfo receiver' },
    clientCertSha256: { type: 'string', maxLength: 128, description: 'SHA-256 fingerprint of the TLS client certificate (hex, colons allowed)' },
    apiKey: { type: 'boolean', default: true, description: 'issue an API key (false: client certificate only)' },
    ccMaxAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    maxDownloadAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    orderTtlSeconds: { type: 'integer', minimum: 1, maximum: MAX_SECONDS },
  },
} as const;

interface OperatorBody {
  id: string; name: string; callbackUrl?: string; clientCertSha256?: string; apiKey?: boolean;
  ccMaxAttempts?: number; maxDownloadAttempts?: number; orderTtlSeconds?: number;
}

export async function operatorAdminRoutes(app: FastifyInstance, deps: { db: Database }) {
  const tags = ['admin: operators'];
  app.post<{ Body: OperatorBody }>('/admin/operators', {
    schema: {
      tags, summary: 'Create an ES2+ operator; the answer shows its API key once', body: operatorBody,
      response: {
        201: jsonReply('The operator, with its API key', operatorCreatedSchema, operatorCreatedExample),
        400: errorReply(400, { error: 'invalid', message: 'callback URL must be http(s)' }),
        409: errorReply(409, { error: 'conflict', message: 'operator op-1 (or its certificate) already exists' }),
      },
    },
  }, async (req, reply) => {
    const { operator, apiKey } = await deps.db.tx((q) => createOperator(q, req.body));
    return reply.code(201).send({ ...publicOperator(operator), ...(apiKey ? { apiKey } : {}) });
  });
  app.get('/admin/operators', {
    schema: { tags, summary: 'The operators (never their keys)', response: { 200: jsonReply('The operators', operatorsSchema, { operators: [operatorExample] }) } },
  }, async () => ({ operators: (await listOperators(deps.db)).map(publicOperator) }));
}
