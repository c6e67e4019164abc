/**
 * The built-in SM-DS and the SM-DP+'s ES12 calls, assembled for the app (docs/smds.md): the ES12
 * and ES11 routes, the admin routes, the caller ES2+ confirmOrder uses, and the deleter of finished events.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import type { ServerPki } from '../pki/load.js';
import { smdsAdminRoutes } from './admin.js';
import { startDeleter } from './deletions.js';
import { installEs12Caller } from './es12-client.js';
import { es11Routes } from './es11-routes.js';
import { es12Routes } from './es12.js';

export interface SmdsDeps {
  db: Database;
  config: Config;
  pki: ServerPki;
}

export async function smdsRoutes(app: FastifyInstance, deps: SmdsDeps) {
  await es12Routes(app, { db: deps.db, pki: deps.pki });
  await es11Routes(app, deps);
  if (!deps.pki.smds) app.log.info(`SM-DS: no CERT.DSauth in ${deps.pki.dir}, so ES11 (discovery) is off; ES12 works (docs/smds.md#its-certificates)`);
  await smdsAdminRoutes(app, { db: deps.db, config: deps.config });
  const caller = installEs12Caller(app, deps.config, deps.pki);
  startDeleter(app, deps.db, caller);
}
