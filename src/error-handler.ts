/**
 * The app's error handlers: an error raised before or in a handler on an SGP.22 path gets an SGP.22
 * answer (src/envelope.ts); elsewhere a 4xx JSON error. Never a 500 page.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { sendFailed, toFunctionFailed } from './envelope.js';
import { ES9_PREFIX } from './es9plus/routes.js';

export function installErrorHandlers(app: FastifyInstance) {
  // Errors raised before a handler runs (malformed JSON, wrong content type) on an SGP.22 path still
  // get an SGP.22 answer; elsewhere a 4xx JSON error. Never a 500 page.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (req.url.startsWith(ES9_PREFIX) && (err.statusCode ?? 500) < 500 && err.statusCode !== 415 && err.statusCode !== 413) {
      return sendFailed(reply, toFunctionFailed(err, req.log));
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'unexpected error');
    return reply.code(status).send({ error: status === 500 ? 'internal' : 'badRequest', message: status === 500 ? 'internal error' : err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'notFound', message: `no route ${req.method} ${req.url}` }));
}
