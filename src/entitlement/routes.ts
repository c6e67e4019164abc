/**
 * The TS.43 entitlement endpoint for companion devices (docs/entitlement.md): GET /ts43 with the
 * request parameters in the query, or POST /ts43 with the same names in a JSON body. The answer is
 * the WAP provisioning XML document, or JSON when the Accept header asks for it.
 *
 * Order of checks: the caller (the family member's token, as `token` or `Authorization: Bearer`;
 * 401 JSON when missing or unknown), then the protocol parameters (app must name ap2006; vers and
 * terminal_id present: 400 JSON), then the ODSA parameters (a bad one is OperationResult 102 in a
 * 200 answer, as TS.43 reports it), then the operation in one transaction: a refusal rolls it back
 * and answers its OperationResult.
 *
 * Also GET /admin/entitlement/companions, the companion records for the console. Both are in the
 * OpenAPI document (src/entitlement/openapi.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import { FamilyError, findMemberByToken, MEMBER_TOKEN_PREFIX } from '../family/store.js';
import { ApiError } from '../http/api-error.js';
import { loadSchemas } from '../schemas.js';
import { fromFamilyError, OdsaFailure, runOperation } from './odsa.js';
import { companionsDocs, ts43Docs } from './openapi.js';
import { listCompanions, publicCompanion } from './store.js';
import { APP_ODSA_COMPANION, failure, normaliseParams, PROTOCOL_PARAMS, renderJson, renderXml, tokenCharacteristic, versCharacteristic, wantsJson, XML_TYPE, type Characteristic } from './ts43.js';

export interface EntitlementDeps {
  db: Database;
  config: Config;
}

export const TS43_PATH = '/ts43';

type ValidationItem = { instancePath?: string; keyword?: string; message?: string; params?: Record<string, unknown> };

/** The parameter a schema failure is about (`/companion_terminal_eid` → companion_terminal_eid). */
function failedParam(v: ValidationItem): string {
  if (v.keyword === 'required' && v.params?.missingProperty) return String(v.params.missingProperty);
  return (v.instancePath ?? '').split('/')[1] ?? '';
}

function tokenOf(req: FastifyRequest, params: Record<string, string>): string | undefined {
  if (params.token) return params.token;
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  return undefined;
}

export async function entitlementRoutes(app: FastifyInstance, deps: EntitlementDeps) {
  const schemas = loadSchemas('entitlement');
  const schema = schemas.get('request');
  const companionsSchema = schemas.get('companions');
  if (!schema || !companionsSchema) throw new Error('schemas entitlement/request and entitlement/companions missing');

  const send = (req: FastifyRequest, reply: FastifyReply, token: string, appChar: Characteristic) => {
    const tree = [versCharacteristic(), tokenCharacteristic(token), appChar];
    reply.header('cache-control', 'no-store');
    if (wantsJson(req.headers.accept)) return reply.code(200).type('application/json').send(renderJson(tree));
    return reply.code(200).type(`${XML_TYPE}; charset=utf-8`).send(renderXml(tree));
  };

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = (req.method === 'POST' ? req.body : req.query) as Record<string, unknown> | undefined;
    const isObject = raw !== null && typeof raw === 'object' && !Array.isArray(raw);
    const params = normaliseParams(isObject ? raw : {});

    const token = tokenOf(req, params);
    if (!token) throw ApiError.unauthorised(`send the family member's token as token=${MEMBER_TOKEN_PREFIX}… or Authorization: Bearer`);
    const member = token.startsWith(MEMBER_TOKEN_PREFIX) ? await findMemberByToken(deps.db, token) : undefined;
    if (!member) throw ApiError.unauthorised('unknown member token');
    if (!isObject) throw ApiError.badRequest('the body must be a JSON object of TS.43 parameters');

    const validation = req.validationError as (Error & { validation?: ValidationItem[]; validationContext?: string }) | undefined;
    if (validation?.validation?.length) {
      const v = validation.validation[0]!;
      const name = failedParam(v);
      if (PROTOCOL_PARAMS.has(name) || !name) throw ApiError.fromValidation({ validation: validation.validation as never, validationContext: req.method === 'POST' ? 'body' : 'query' });
      return send(req, reply, token, failure(102, `${name} ${v.keyword === 'required' ? 'is required' : (v.message ?? 'is invalid')}`));
    }
    if (!params.app!.split(',').includes(APP_ODSA_COMPANION)) {
      throw ApiError.badRequest(`this entitlement server serves app ${APP_ODSA_COMPANION} (ODSA for companion devices) only; got ${params.app}`, { field: 'app' });
    }

    let answer: Characteristic;
    try {
      answer = await deps.db.tx((q) => runOperation({ q, config: deps.config, member, params, by: `member:${member.id}` }));
    } catch (err) {
      if (err instanceof OdsaFailure) answer = failure(err.result, err.message);
      else if (err instanceof FamilyError) {
        const f = fromFamilyError(err);
        answer = failure(f.result, f.message);
      } else throw err;
    }
    return send(req, reply, token, answer);
  };

  // Documented in the OpenAPI document with both answer forms (src/entitlement/openapi.ts, docs/entitlement.md).
  app.get(TS43_PATH, { schema: { ...ts43Docs('GET'), querystring: schema }, attachValidation: true }, handler);
  app.post(TS43_PATH, {
    schema: { ...ts43Docs('POST'), body: schema },
    attachValidation: true,
    // A JSON body may carry numbers (vers, operation_type): validated, like a query, as their text.
    preValidation: async (req) => {
      const b = req.body;
      if (b !== null && typeof b === 'object' && !Array.isArray(b)) {
        for (const [k, v] of Object.entries(b as Record<string, unknown>)) if (typeof v === 'number') (b as Record<string, unknown>)[k] = String(v);
      }
    },
  }, handler);

  app.get('/admin/entitlement/companions', {
    schema: {
      ...companionsDocs(companionsSchema as Record<string, unknown>),
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          group: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', description: 'only the records of this family group' },
          limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'at most this many records (default 500)' },
        },
      },
    },
  }, async (req) => {
    const qs = req.query as { group?: string; limit?: number };
    const rows = await listCompanions(deps.db, { ...(qs.group ? { groupId: qs.group } : {}), ...(qs.limit ? { limit: qs.limit } : {}) });
    return { companions: rows.map(publicCompanion) };
  });
}
