/**
 * GET /health: the server answers and its database does. 200 with the database's round-trip time,
 * or 503 when the database does not answer within two seconds (a load balancer then takes this
 * instance out), so that a health check never hangs on a dead database.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import type { Database } from './db/db.js';
import { jsonReply } from './openapi.js';

const DB_TIMEOUT_MS = 2000;

const healthResponse = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    smdpAddress: { type: 'string' },
    database: { type: 'string', enum: ['pglite', 'postgres'] },
    databaseOk: { type: 'boolean' },
    databaseMs: { type: 'number', description: 'round trip of SELECT 1' },
    message: { type: 'string', description: 'why the database check failed' },
    pid: { type: 'integer' },
    rss: { type: 'integer', description: 'resident memory of this process, bytes' },
  },
} as const;

/** Runs SELECT 1, rejecting after `ms`. */
export async function pingDatabase(db: Database, ms = DB_TIMEOUT_MS): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      db.query('SELECT 1'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return Math.round((performance.now() - started) * 100) / 100;
}

export async function healthRoutes(app: FastifyInstance, deps: { db: Database; config: Config }) {
  app.get('/health', {
    schema: {
      tags: ['meta'],
      summary: 'Liveness and database check',
      response: {
        200: jsonReply('The server and its database answer', healthResponse,
          { status: 'ok', smdpAddress: 'localhost:8443', database: 'pglite', databaseOk: true, databaseMs: 0.4, pid: 4242, rss: 123456789 }),
        503: jsonReply('The database does not answer (within 2 s)', healthResponse,
          { status: 'unavailable', smdpAddress: 'localhost:8443', database: 'postgres', databaseOk: false, message: 'database: no answer within 2000 ms', pid: 4242, rss: 123456789 }),
      },
    },
  }, async (_req, reply) => {
    const base = { smdpAddress: deps.config.smdpAddress, database: deps.db.kind, pid: process.pid, rss: process.memoryUsage.rss() };
    try {
      const databaseMs = await pingDatabase(deps.db);
      return { status: 'ok', ...base, databaseOk: true, databaseMs };
    } catch (err) {
      return reply.code(503).send({ status: 'unavailable', ...base, databaseOk: false, message: `database: ${(err as Error).message}` });
    }
  });
}
