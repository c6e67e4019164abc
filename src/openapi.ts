/**
 * OpenAPI description of the HTTP API, built by @fastify/swagger from the routes' own JSON Schemas
 * and served at GET /openapi.json (and as Swagger UI at /docs). Register before any route.
 *
 * Security schemes (docs/api.md): the admin token (bearer, ADMIN_TOKEN), an operator's API key
 * (X-API-Key, or the same key as a bearer token) for ES2+ and the family API, a family member's
 * token (bearer fam_…, or the `token` query parameter of GET /ts43, the TS.43 entitlement endpoint), the
 * key of an SM-DP+ allowed on the built-in SM-DS's ES12 (X-API-Key).
 * Each route gets its requirement from its path unless its schema sets one,
 * and the 4xx answers every route of its kind can give (400 on a schema failure, 401, 415) are added
 * to what the route itself documents. Helpers below build response entries with an example each.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ES9_PREFIX } from './rsp/es9plus.js';

const TAGS = [
  { name: 'ES9+', description: 'SGP.22 §5.6 / §6.5: LPA ↔ SM-DP+ (JSON over HTTPS, X-Admin-Protocol)' },
  { name: 'ES2+', description: 'SGP.22 §5.3: operator ↔ SM-DP+' },
  {
    name: 'SM-DS',
    description: 'The built-in SM-DS (docs/smds.md): ES11 (SGP.22 §5.7, LPA ↔ SM-DS, no credential: the eUICC authenticates inside the protocol) ' +
      'and ES12 (SGP.22 §5.8, SM-DP+ → SM-DS, the key of an SM-DP+ allowed on ES12). Function failures are HTTP 200 with a Failed header. ' +
      "lpac's ES11 calls to the ES9+ paths on the SM-DS's own address (SMDS_ADDRESS) are answered as these ES11 routes.",
  },
  { name: 'admin: orders', description: 'Orders, their history and activation codes' },
  { name: 'admin: inventory', description: 'Profile types and the pools of profiles' },
  { name: 'admin: operators', description: 'ES2+ callers: API keys, client certificates, callback URLs' },
  { name: 'admin: SM-DS', description: 'The built-in SM-DS: its event records, the SM-DP+ servers allowed on ES12 (docs/smds.md)' },
  { name: 'admin: faults', description: 'Fault injection into ES9+ calls' },
  { name: 'admin', description: 'Other admin functions' },
  { name: 'family', description: 'Family groups: members, lines, caps, usage' },
  {
    name: 'entitlement',
    description: 'The TS.43 entitlement endpoint for companion devices (ODSA, app ap2006; docs/entitlement.md): a family member adds, moves or removes ' +
      'a watch or tablet. Answers are the WAP provisioning document (text/vnd.wap.connectivity-xml) or, with Accept: application/json, its JSON form; ' +
      'an ODSA refusal is HTTP 200 with its OperationResult, a refusal of the request itself a 4xx JSON error. Also the admin list of companion records.',
  },
  { name: 'meta', description: 'Health' },
];

export const SECURITY_SCHEMES = {
  adminToken: {
    type: 'http', scheme: 'bearer',
    description: 'The ADMIN_TOKEN of the server, as `Authorization: Bearer <token>`. Without ADMIN_TOKEN the admin API serves loopback callers only, with no token.',
  },
  operatorApiKey: {
    type: 'apiKey', in: 'header', name: 'X-API-Key',
    description: "An operator's API key (POST /admin/operators shows it once). An operator may instead present its registered TLS client certificate (mutual TLS, SHA-256 fingerprint; OpenAPI 3.0 cannot express it): both must then name the same operator.",
  },
  operatorBearer: {
    type: 'http', scheme: 'bearer',
    description: "An operator's API key sent as `Authorization: Bearer <key>` (the same key as X-API-Key).",
  },
  smdsClientKey: {
    type: 'apiKey', in: 'header', name: 'X-API-Key',
    description: "ES12 on plain HTTP only (TLS=0): the key of an SM-DP+ allowed on the built-in SM-DS (this server's own SM-DP+, or one added by POST /admin/smds/clients, which shows its key once); header.functionRequesterIdentifier must name that SM-DP+. Over HTTPS, ES12 is mutual TLS: the SM-DP+'s TLS client certificate, which OpenAPI 3.0 cannot describe, and a key alone is refused (docs/smds.md#es12-authentication).",
  },
  memberToken: {
    type: 'http', scheme: 'bearer', bearerFormat: 'fam_…',
    description: 'A family member token (`fam_…`, handed out once by POST /family/groups/{gid}/members).',
  },
  memberTokenQuery: {
    type: 'apiKey', in: 'query', name: 'token',
    description: 'GET /ts43 only (docs/entitlement.md): the family member token (`fam_…`) as the TS.43 `token` query parameter, where a TS.43 client sends its token. POST /ts43 takes it as `token` in the JSON body or as a bearer token.',
  },
} as const;

type Security = Array<Record<string, string[]>>;
const OPERATOR: Security = [{ operatorApiKey: [] }, { operatorBearer: [] }];

/** Spread into a family route's schema that only the group's operator may call (no member token). */
export const OPERATOR_ONLY = { security: OPERATOR };

/** The security requirement of a route by its path (a route's schema.security overrides it). */
export function securityOf(url: string): Security {
  if (url.startsWith('/admin')) return [{ adminToken: [] }];
  if (url.startsWith('/gsma/rsp2/es2plus')) return OPERATOR;
  if (url.startsWith('/family')) return [...OPERATOR, { memberToken: [] }];
  return []; // ES9+ (the LPA authenticates in the protocol itself), health, the documents
}

/** The tag of a route without one, from its path. */
function defaultTag(url: string): string {
  if (url.startsWith(ES9_PREFIX)) return 'ES9+';
  if (url.startsWith('/gsma/rsp2/es2plus')) return 'ES2+';
  if (url.startsWith('/gsma/rsp2/es11') || url.startsWith('/gsma/rsp2/es12')) return 'SM-DS';
  if (url.startsWith('/admin/orders') || url.startsWith('/admin/profiles') || url.startsWith('/admin/activation-codes')) return 'admin: orders';
  if (url.startsWith('/admin/inventory') || url.startsWith('/admin/profile-types')) return 'admin: inventory';
  if (url.startsWith('/admin/operators')) return 'admin: operators';
  if (url.startsWith('/admin/faults')) return 'admin: faults';
  if (url.startsWith('/admin')) return 'admin';
  if (url.startsWith('/family')) return 'family';
  return 'meta';
}

// ---------------------------------------------------------------- response helpers

/** The body of every 4xx of the admin, family and console routes (ApiError, src/http/api-error.ts). */
export const apiErrorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'machine-readable code: invalid, unauthorised, forbidden, notFound, conflict, tooLarge, unsupportedMediaType, …' },
    message: { type: 'string', description: 'what went wrong, naming the field or the missing reference' },
    details: { type: 'object', additionalProperties: true, description: 'e.g. { field } for a schema failure, { profileType } for a reference that does not exist' },
  },
} as const;

export type ErrorExample = { error: string; message: string; details?: Record<string, unknown> };

const ERROR_DESCRIPTION: Record<number, string> = {
  400: 'Invalid input: details.field names the field (strings may not hold NUL or unpaired surrogates)',
  401: 'Missing or wrong credentials',
  403: 'Authenticated, but not allowed to do this',
  404: 'Something named in the path or the body does not exist (details names it)',
  409: 'Conflicts with the current state (a duplicate, a profile in the wrong state)',
  413: 'Body too large',
  415: 'Unsupported Content-Type (send application/json)',
};

/** A documented 4xx: the ApiError body with one example. */
export function errorReply(status: number, example: ErrorExample, description = ERROR_DESCRIPTION[status]) {
  return { description: description ?? `HTTP ${status}`, ...apiErrorSchema, examples: [example] };
}

/** A documented JSON answer: its schema with one example. */
export function jsonReply<S extends Record<string, unknown>>(description: string, schema: S, example: unknown) {
  return { description, ...schema, examples: [example] };
}

/** A documented answer without a body (204). */
export const noContent = (description: string) => ({ description, type: 'null' });

/** Schema of a string that may be null. */
export const nullableString = { type: 'string', nullable: true } as const;

const STANDARD_ERRORS: Record<number, ErrorExample> = {
  400: { error: 'invalid', message: 'body.name must NOT have fewer than 1 characters', details: { field: 'body.name', rule: 'minLength', problem: 'must NOT have fewer than 1 characters' } },
  401: { error: 'unauthorised', message: 'admin API needs a valid bearer token (or a loopback caller when no ADMIN_TOKEN is set)' },
  415: { error: 'unsupportedMediaType', message: 'Unsupported Media Type: text/plain' },
};

/**
 * What every route of its kind can answer besides its own documented answers: a 400 when it has a
 * request schema, 401 when it needs credentials, 415 when it takes a JSON body. SGP.22 routes keep
 * their own answers (function failures are HTTP 200 with a Failed header).
 */
function standardResponses(url: string, method: string, schema: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (url.startsWith('/gsma/')) {
    // handleNotification answers 204 whatever the outcome (SGP.22 §5.6.4); its route declares no response.
    if (url.endsWith('/handleNotification')) out['204'] = noContent('Received (whatever the outcome, SGP.22 §5.6.4)');
    out['415'] = errorReply(415, STANDARD_ERRORS[415]!);
    return out;
  }
  if (schema.body || schema.querystring || schema.params) out['400'] = errorReply(400, STANDARD_ERRORS[400]!);
  if (url.startsWith('/admin')) out['401'] = errorReply(401, STANDARD_ERRORS[401]!, 'No valid admin token (ADMIN_TOKEN set), or a remote caller while no ADMIN_TOKEN is set');
  if (url.startsWith('/family')) out['401'] = errorReply(401, { error: 'unauthorised', message: 'unknown member token' }, 'No operator API key or member token, or an unknown one');
  if (schema.body && ['POST', 'PUT', 'PATCH'].includes(method)) out['415'] = errorReply(415, STANDARD_ERRORS[415]!);
  return out;
}

export async function registerOpenApi(app: FastifyInstance, opts: { version?: string; docsUi?: boolean } = {}) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'mock-smdp',
        description: 'GSMA SGP.22 SM-DP+ test server: ES9+ (LPA), ES2+ (operator), the admin API and the family API.\n\n' +
          'Authorize with the scheme a route names: the admin token for /admin, an operator API key for ES2+ and /family ' +
          '(or a member token for /family, and for the TS.43 entitlement endpoint /ts43). Errors of the admin and family routes are `{ error, message, details? }` ' +
          'with a 4xx status; ES9+ and ES2+ answer SGP.22 function statuses (HTTP 200, header.functionExecutionStatus). ' +
          'No string of any request may hold NUL (U+0000) or an unpaired surrogate.',
        version: opts.version ?? '0.1.0',
      },
      tags: TAGS,
      components: { securitySchemes: SECURITY_SCHEMES as never },
    },
    transform: ({ schema, url, route }) => {
      const s = { ...(schema ?? {}) } as Record<string, unknown>;
      if (!s.tags) s.tags = [defaultTag(url)];
      if (!s.security) s.security = securityOf(url);
      const method = String(Array.isArray(route.method) ? route.method[0] : route.method).toUpperCase();
      s.response = { ...standardResponses(url, method, s), ...((s.response as object | undefined) ?? {}) };
      return { schema: s as never, url };
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  if (opts.docsUi !== false) await app.register(swaggerUi, { routePrefix: '/docs' });
}
