/**
 * OpenAPI description of the HTTP API, built by @fastify/swagger from the routes' own JSON Schemas
 * and served at GET /openapi.json (and as Swagger UI at /docs). Register before any route.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';

const TAGS = [
  { name: 'ES9+', description: 'SGP.22 §5.6 / §6.5: LPA ↔ SM-DP+ (JSON over HTTPS, X-Admin-Protocol)' },
  { name: 'ES2+', description: 'SGP.22 §5.3: operator ↔ SM-DP+' },
  { name: 'admin: orders', description: 'Orders, their history and activation codes' },
  { name: 'admin: inventory', description: 'Profile types and the pools of profiles' },
  { name: 'admin: operators', description: 'ES2+ callers: API keys, client certificates, callback URLs' },
  { name: 'admin: faults', description: 'Fault injection into ES9+ calls' },
  { name: 'admin', description: 'Other admin functions' },
  { name: 'meta', description: 'Health' },
];

/** The tag of a route without one, from its path. */
function defaultTag(url: string): string {
  if (url.startsWith('/gsma/rsp2/es9plus')) return 'ES9+';
  if (url.startsWith('/gsma/rsp2/es2plus')) return 'ES2+';
  if (url.startsWith('/admin/orders') || url.startsWith('/admin/profiles') || url.startsWith('/admin/activation-codes')) return 'admin: orders';
  if (url.startsWith('/admin/inventory') || url.startsWith('/admin/profile-types')) return 'admin: inventory';
  if (url.startsWith('/admin/operators')) return 'admin: operators';
  if (url.startsWith('/admin/faults')) return 'admin: faults';
  if (url.startsWith('/admin')) return 'admin';
  return 'meta';
}

export async function registerOpenApi(app: FastifyInstance, opts: { version?: string; docsUi?: boolean } = {}) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'mock-smdp',
        description: 'GSMA SGP.22 SM-DP+ test server: ES9+ (LPA), ES2+ (operator) and the admin API. ' +
          'Admin routes need `Authorization: Bearer <ADMIN_TOKEN>` (or a loopback caller when no token is set).',
        version: opts.version ?? '0.1.0',
      },
      tags: TAGS,
    },
    transform: ({ schema, url }) => {
      const s = { ...(schema ?? {}) } as Record<string, unknown>;
      if (!s.tags) s.tags = [defaultTag(url)];
      return { schema: s, url };
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  if (opts.docsUi !== false) await app.register(swaggerUi, { routePrefix: '/docs' });
}
