/**
 * The callback catcher (docs/console.md): `<server>/catcher/<bin>` accepts any request and stores it
 * in the database (migration 010), so a test can give an operator that URL as its callback URL and
 * read back what the outbox worker sent, from any instance. `?status=NNN` in the URL makes it answer
 * with that status (e.g. 503, to watch the worker retry). It needs no token, as the outbox worker
 * sends none; reading and clearing what it caught are admin routes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { caughtView, type CaughtRow } from './views.js';
import { errorReply, jsonReply } from '../openapi.js';
import { BIN, CAUGHT_EXAMPLE, caughtListQuery, caughtRequestSchema, errorSchema } from './schemas.js';

/** Requests kept per bin and in all. */
const KEEP_PER_BIN = 1000;
const KEEP_TOTAL = 10_000;
const BODY_LIMIT = 1024 * 1024;
/** Bodies in the list are cut to this many bytes (GET /admin/catcher/requests/:id has the whole body). */
const LIST_BODY_LIMIT = 64 * 1024;
const HEADERS_KEPT = ['content-type', 'user-agent', 'x-admin-protocol', 'authorization', 'x-api-key', 'content-length'];

const CATCHER_PREFIX = '/catcher';

export async function catcherRoutes(app: FastifyInstance, deps: { db: Database }) {
  const tags = ['console: callback catcher'];

  // Its own scope: every content type is taken as raw bytes, stored as received.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

    const handler = async (req: FastifyRequest<{ Params: { bin: string }; Querystring: { status?: number } }>, reply: import('fastify').FastifyReply) => {
      const answered = req.query.status ?? 200;
      const headers: Record<string, string> = {};
      for (const h of HEADERS_KEPT) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = h === 'authorization' || h === 'x-api-key' ? '(present)' : v;
      }
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const path = req.url.slice(0, 2000);
      const [row] = await deps.db.query<{ id: string | number }>(
        'INSERT INTO caught_requests (bin, method, path, headers, body, answered) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
        [req.params.bin, req.method, path, JSON.stringify(headers), body, answered],
      );
      // Bounded: the newest KEEP_PER_BIN of this bin and KEEP_TOTAL overall (both by index).
      await deps.db.query(
        `DELETE FROM caught_requests WHERE bin = $1 AND id < (SELECT id FROM caught_requests WHERE bin = $1 ORDER BY id DESC OFFSET ${KEEP_PER_BIN - 1} LIMIT 1)`,
        [req.params.bin],
      );
      await deps.db.query('DELETE FROM caught_requests WHERE id <= $1::bigint', [String(BigInt(row!.id) - BigInt(KEEP_TOTAL))]);
      if (answered >= 200 && answered < 300) {
        // What an ES2+ function answers on success (SGP.22 §6.5.1.4's header), harmless for anything else.
        return reply.code(answered).send({ header: { functionExecutionStatus: { status: 'Executed-Success' } }, caught: String(row!.id) });
      }
      return reply.code(answered).send({ error: 'caught', message: `the catcher answers ${answered} as its URL asks`, caught: String(row!.id) });
    };
    const schema = {
      tags,
      summary: 'Catch a request (any method but GET, any body): stored for GET /admin/catcher; use as an operator callback URL',
      params: { type: 'object', required: ['bin'], properties: { bin: BIN } },
      querystring: {
        type: 'object', // other parameters of an operator's callback URL are kept with the path
        properties: { status: { type: 'integer', minimum: 200, maximum: 599, description: 'answer with this status (default 200)' } },
      },
      response: {
        '2xx': jsonReply('Caught (200 unless ?status= asks for another)', {
          type: 'object', properties: { header: { type: 'object', additionalProperties: true }, caught: { type: 'string', description: 'its id in GET /admin/catcher' } },
        }, { header: { functionExecutionStatus: { status: 'Executed-Success' } }, caught: '7' }),
        '4xx': { ...errorReply(400, { error: 'caught', message: 'the catcher answers 404 as its URL asks', caught: '8' } as never, 'Caught, answered with the 4xx status ?status= asked for; or a bad bin name, a body over 1 MB'), properties: { ...errorSchema.properties, caught: { type: 'string' } } },
        '5xx': { ...errorReply(503, { error: 'caught', message: 'the catcher answers 503 as its URL asks', caught: '9' } as never, 'Caught, answered with the 5xx status ?status= asked for (to watch the outbox worker retry)'), properties: { ...errorSchema.properties, caught: { type: 'string' } } },
      },
    };
    for (const url of [`${CATCHER_PREFIX}/:bin`, `${CATCHER_PREFIX}/:bin/*`]) {
      scope.route({ method: ['POST', 'PUT', 'PATCH', 'DELETE'], url, schema: url.endsWith('*') ? { ...schema, hide: true } : schema, handler });
    }
  });

  app.get<{ Querystring: { bin?: string; after?: string; limit?: number } }>('/admin/catcher', {
    schema: {
      tags, summary: 'What the callback catcher received, newest first (?bin= one bin, ?after= id)',
      querystring: caughtListQuery,
      response: {
        200: jsonReply('The requests (at most ?limit=, default 100) and every bin with its count', {
          type: 'object', required: ['requests', 'bins'],
          properties: {
            requests: { type: 'array', items: caughtRequestSchema },
            bins: { type: 'array', items: { type: 'object', properties: { bin: { type: 'string' }, count: { type: 'integer' }, last: { type: 'string' } } } },
          },
        }, { requests: [CAUGHT_EXAMPLE], bins: [{ bin: 'acme', count: 1, last: CAUGHT_EXAMPLE.receivedAt }] }),
      },
    },
  }, async (req) => {
    const q = req.query;
    const rows = await deps.db.query<CaughtRow>(
      `SELECT * FROM caught_requests WHERE ($1::text IS NULL OR bin = $1) AND ($2::bigint IS NULL OR id > $2::bigint) ORDER BY id DESC LIMIT $3`,
      [q.bin ?? null, q.after ?? null, q.limit ?? 100],
    );
    const bins = await deps.db.query<{ bin: string; count: string | number; last: Date }>(
      'SELECT bin, count(*) AS count, max(received_at) AS last FROM caught_requests GROUP BY bin ORDER BY bin',
    );
    return {
      requests: rows.map((r) => caughtView(r, LIST_BODY_LIMIT)),
      bins: bins.map((b) => ({ bin: b.bin, count: Number(b.count), last: new Date(b.last).toISOString() })),
    };
  });

  app.get<{ Params: { id: string } }>('/admin/catcher/requests/:id', {
    schema: {
      tags, summary: 'One caught request with its headers and body',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9]{1,18}$' } } },
      response: {
        200: jsonReply('The request', caughtRequestSchema, CAUGHT_EXAMPLE),
        404: errorReply(404, { error: 'notFound', message: 'no request "99"', details: { request: '99' } }),
      },
    },
  }, async (req) => {
    const [row] = await deps.db.query<CaughtRow>('SELECT * FROM caught_requests WHERE id = $1::bigint', [req.params.id]);
    if (!row) throw ApiError.notFound('request', req.params.id);
    return caughtView(row);
  });

  app.delete<{ Querystring: { bin?: string } }>('/admin/catcher', {
    schema: {
      tags, summary: 'Forget what the catcher received (?bin= one bin only)',
      querystring: { type: 'object', additionalProperties: false, properties: { bin: BIN } },
      response: { 200: jsonReply('How many requests were deleted', { type: 'object', required: ['deleted'], properties: { deleted: { type: 'integer' } } }, { deleted: 3 }) },
    },
  }, async (req) => {
    const rows = await deps.db.query('DELETE FROM caught_requests WHERE ($1::text IS NULL OR bin = $1) RETURNING id', [req.query.bin ?? null]);
    return { deleted: rows.length };
  });
}
