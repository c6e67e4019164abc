/**
 * Builds the Fastify application from its dependencies (no listening, no process handling: tests use inject()).
 * One way of assembly: every route module is imported statically and registered below in a fixed
 * order (the OpenAPI plugin first, so that it sees every route); the listener modules are imported
 * for their side effect of registering with the state machine.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import type { Database } from './db/db.js';
import type { ServerPki } from './pki/load.js';
import { adminRoutes } from './admin/routes.js';
import { activationCodeRoutes } from './admin/activation-codes.js';
import { inventoryAdminRoutes } from './admin/inventory.js';
import { registerOpenApi } from './openapi.js';
import { es9plusRoutes } from './es9plus/routes.js';
import { frameworkErrorHandler, installErrorHandlers } from './error-handler.js';
import { consoleRoutes } from './console/routes.js';
import { healthRoutes } from './health.js';
import { faultAdminRoutes } from './admin/faults.js';
import { operatorAdminRoutes } from './admin/operators.js';
import { es2plusRoutes } from './es2plus/routes.js';
import { familyRoutes } from './family/routes.js';
import { familyUsageRoutes } from './family/usage-routes.js';
import { smdsRoutes } from './smds/routes.js';
import { entitlementRoutes } from './entitlement/routes.js';
// What follows from a profile change (listeners of src/orders/state-machine.ts): the operator's
// progress callbacks and the family group events.
import './es2plus/callbacks.js';
import './family/events.js';
// SM-DS events end with a completed download or a cancelled order (docs/smds.md).
import './smds/deletions.js';

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
    // A URL Fastify cannot route (a path that is not valid UTF-8) gets the same error body as any other 4xx.
    frameworkErrors: frameworkErrorHandler,
    ...opts,
  });
  // Only at debug (or trace) is there a line to write: otherwise no hook runs at all.
  if ((app.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('debug')) {
    app.addHook('onResponse', (req, reply, done) => {
      req.log.debug({ method: req.method, url: req.url, statusCode: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request completed');
      done();
    });
  }

  installErrorHandlers(app);

  await registerOpenApi(app); // before any route, so every route is described
  await healthRoutes(app, { db: deps.db, config: deps.config });
  await es9plusRoutes(app, { db: deps.db, pki: deps.pki, config: deps.config, log: app.log });
  const adminDeps = { db: deps.db, config: deps.config, smdpOid: deps.pki.smdpOid };
  await adminRoutes(app, adminDeps);
  await inventoryAdminRoutes(app, adminDeps);
  await activationCodeRoutes(app, adminDeps);
  await faultAdminRoutes(app, { db: deps.db });
  await es2plusRoutes(app, { db: deps.db, config: deps.config, log: app.log });
  await operatorAdminRoutes(app, { db: deps.db });
  await familyRoutes(app, { db: deps.db, config: deps.config });
  await familyUsageRoutes(app, { db: deps.db });
  await consoleRoutes(app, { db: deps.db, config: deps.config });
  await smdsRoutes(app, { db: deps.db, config: deps.config, pki: deps.pki });
  await entitlementRoutes(app, { db: deps.db, config: deps.config });
  return app;
}
