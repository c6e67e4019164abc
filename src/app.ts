/** Builds the Fastify application from its dependencies (no listening, no process handling: tests use inject()). */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import type { Database } from './db/db.js';
import type { ServerPki } from './pki/load.js';
import { adminRoutes } from './admin/routes.js';
import { activationCodeRoutes } from './admin/activation-codes.js';
import { inventoryAdminRoutes } from './admin/inventory.js';
import { registerOpenApi } from './openapi.js';
import { ES9_PREFIX, es9plusRoutes } from './es9plus/routes.js';
import { sendFailed, toFunctionFailed } from './envelope.js';
import { healthRoutes } from './health.js';
// What follows from a profile change (listeners of src/orders/state-machine.ts): the operator's
// progress callbacks and the family group events.
import './es2plus/callbacks.js';
import './family/events.js';

export interface AppDeps {
  config: Config;
  db: Database;
  pki: ServerPki;
}

export async function buildApp(deps: AppDeps, opts: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: opts.logger ?? { level: deps.config.logLevel },
    bodyLimit: 4 * 1024 * 1024,
    // One line per request costs more than some ES9+ functions: requests are logged at debug only.
    logController: new LogController({ disableRequestLogging: true }),
    ...opts,
  });
  app.addHook('onResponse', async (req, reply) => {
    if ((req.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug')) {
      req.log.debug({ method: req.method, url: req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed');
    }
  });

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

  await registerOpenApi(app); // before any route, so every route is described
  await healthRoutes(app, { db: deps.db, config: deps.config });
  await es9plusRoutes(app, { db: deps.db, pki: deps.pki, config: deps.config, log: app.log });
  const adminDeps = { db: deps.db, config: deps.config, smdpOid: deps.pki.smdpOid };
  await adminRoutes(app, adminDeps);
  await inventoryAdminRoutes(app, adminDeps);
  await activationCodeRoutes(app, adminDeps);
  await (await import('./admin/faults.js')).faultAdminRoutes(app, { db: deps.db });
  await (await import('./es2plus/routes.js')).es2plusRoutes(app, { db: deps.db, config: deps.config, log: app.log });
  await (await import('./admin/operators.js')).operatorAdminRoutes(app, { db: deps.db });
  await (await import('./family/routes.js')).familyRoutes(app, { db: deps.db, config: deps.config });
  await (await import('./family/usage-routes.js')).familyUsageRoutes(app, { db: deps.db });
  return app;
}
