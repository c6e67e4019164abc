/**
 * Admin API for the inventory: profile types, importing and generating profiles, listing the
 * inventory with counts per state, and listing orders with their history. Behind the same
 * authorisation hook as the rest of /admin (src/admin/routes.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from './routes.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply } from '../openapi.js';
import { getProfile, profileHistory, publicProfile } from '../orders/store.js';
import { loadSchemas } from '../schemas.js';
import { importInventory, type ImportFormat } from '../inventory/import.js';
import {
  createProfileType, generateProfiles, listInventory, listOrders, listProfileTypes, orderView, profileTypeTemplate,
} from '../inventory/store.js';
import {
  EXAMPLE_ICCID, generateExample, generateSchema, historyResponseExample, historyResponseSchema, iccidParams, importExample, importSchema,
  inventoryExample, inventorySchema, ordersListExample, ordersListSchema, profileTypeExample, profileTypeSchema, profileTypesExample,
  profileTypesSchema,
} from './schemas.js';

interface ProfileTypeBody {
  name: string;
  serviceProviderName?: string;
  profileName?: string;
  profileClass?: 0 | 1 | 2;
  template?: string;
  replace?: boolean;
}

/** Standard base64 (RFC 4648 §4, whitespace allowed); null when the text is not. */
function strictBase64(text: string): Buffer | null {
  const compact = text.replace(/\s+/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(compact)) return null;
  return Buffer.from(compact, 'base64');
}

const unknownType = errorReply(404, { error: 'notFound', message: 'unknown profile type(s): ghost (create them with POST /admin/profile-types)', details: { profileTypes: ['ghost'] } });
const unknownOperator = errorReply(404, { error: 'notFound', message: 'unknown operator op-9', details: { operator: 'op-9' } });

export async function inventoryAdminRoutes(app: FastifyInstance, deps: AdminDeps) {
  const schemas = loadSchemas('admin');
  const tags = ['admin: inventory'];

  app.post<{ Body: ProfileTypeBody }>('/admin/profile-types', {
    schema: {
      tags, summary: 'Create (or with replace, update) a profile type, optionally with a profile template', body: schemas.get('profileType.request'),
      response: {
        201: jsonReply('The profile type', profileTypeSchema, profileTypeExample),
        400: errorReply(400, { error: 'invalidTemplate', message: 'template refused, nothing stored: ProfileHeader missing', details: { element: 'header', offset: 0 } }),
        409: errorReply(409, { error: 'conflict', message: 'profile type lab already exists' }),
      },
    },
  }, async (req, reply) => {
    const { replace, template, ...t } = req.body;
    const der = template === undefined ? undefined : strictBase64(template);
    if (der === null) throw ApiError.badRequest('template must be the profile package (SAIP DER) in base64', { field: 'body.template' });
    const created = await createProfileType(deps.db, { ...t, template: der }, { replace });
    return reply.code(201).send(created);
  });

  app.get('/admin/profile-types', {
    schema: { tags, summary: 'Profile types, with how many profiles of each are in each state', response: { 200: jsonReply('The profile types', profileTypesSchema, profileTypesExample) } },
  }, async () => ({ profileTypes: await listProfileTypes(deps.db) }));

  app.get<{ Params: { name: string } }>('/admin/profile-types/:name/template', {
    schema: {
      tags, summary: "A profile type's template as it was imported (application/octet-stream)",
      params: { type: 'object', required: ['name'], properties: { name: { type: 'string', maxLength: 64 } } },
      response: {
        200: { description: 'The template (SAIP DER)', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' }, example: '(binary)' } } },
        404: errorReply(404, { error: 'notFound', message: 'profile type lab has no template', details: { profileType: 'lab' } }),
      },
    },
  }, async (req, reply) => {
    const der = await profileTypeTemplate(deps.db, req.params.name);
    if (der === undefined) throw ApiError.notFound('profile type', req.params.name);
    if (der === null) throw new ApiError(404, 'notFound', `profile type ${req.params.name} has no template`, { profileType: req.params.name });
    return reply.type('application/octet-stream').send(der);
  });

  app.post<{ Body: { type: string; operator?: string; format: ImportFormat; data: unknown; luhn?: boolean } }>('/admin/inventory/import', {
    schema: {
      tags, summary: 'Import profiles from CSV or JSON (all or nothing)', body: schemas.get('inventoryImport.request'),
      response: {
        201: jsonReply('What was imported', importSchema, importExample),
        400: errorReply(400, { error: 'invalid', message: 'import rejected, nothing imported: 1 of 4 row(s) invalid: row 4: OPc must be 32 hex digits', details: { rows: ['row 4: OPc must be 32 hex digits'] } }),
        404: unknownType,
        409: errorReply(409, { error: 'conflict', message: `import rejected, nothing imported: 1 duplicate(s) of existing profiles: ICCID ${EXAMPLE_ICCID} already exists`, details: { rows: [`ICCID ${EXAMPLE_ICCID} already exists`] } }),
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const r = await importInventory(deps.db, b.format, b.data, { type: b.type, operator: b.operator, luhn: b.luhn });
    return reply.code(201).send({ imported: r.imported, type: b.type, operator: b.operator ?? null, iccids: r.iccids });
  });

  app.post<{ Body: { type: string; count: number; prefix?: string; mccMnc?: string; operator?: string } }>('/admin/inventory/generate', {
    schema: {
      tags, summary: 'Generate profiles with Luhn-valid ICCIDs and random Ki/OPc', body: schemas.get('inventoryGenerate.request'),
      response: {
        201: jsonReply('What was generated', generateSchema, generateExample),
        400: errorReply(400, { error: 'invalid', message: 'prefix 891234567890123456 leaves room for only 10 ICCIDs; use a shorter prefix' }),
        404: unknownOperator,
        409: errorReply(409, { error: 'conflict', message: 'could not find free ICCIDs/IMSIs; use another prefix or MCC+MNC' }),
      },
    },
  }, async (req, reply) => {
    const r = await generateProfiles(deps.db, req.body);
    return reply.code(201).send({ generated: r.generated, type: req.body.type, operator: req.body.operator ?? null, iccids: r.iccids });
  });

  app.get<{ Querystring: { type?: string; state?: string; operator?: string; limit?: number; offset?: number } }>('/admin/inventory', {
    schema: {
      tags, summary: 'Profiles by type/state/operator, with counts per state', querystring: schemas.get('inventoryList.query'),
      response: { 200: jsonReply('The profiles and the counts', inventorySchema, inventoryExample) },
    },
  }, async (req) => listInventory(deps.db, req.query));

  const orderTags = ['admin: orders'];
  app.get<{ Querystring: { state?: string; operator?: string; limit?: number; offset?: number } }>('/admin/orders', {
    schema: {
      tags: orderTags, summary: 'Orders (profiles not Available, or in ?state), newest change first', querystring: schemas.get('ordersList.query'),
      response: { 200: jsonReply('The orders with their activation codes', ordersListSchema, ordersListExample) },
    },
  }, async (req) => {
    const rows = await listOrders(deps.db, req.query);
    return { orders: rows.map((p) => orderView(p, deps.config)) };
  });

  // The full view (profile, history and notifications) is GET /admin/profiles/:iccid; this is the history alone.
  app.get<{ Params: { iccid: string } }>('/admin/orders/:iccid/history', {
    schema: {
      tags: orderTags, summary: "An order's history (every state change and protocol event)", params: iccidParams,
      response: {
        200: jsonReply('The history', historyResponseSchema, historyResponseExample),
        404: errorReply(404, { error: 'notFound', message: `no profile "${EXAMPLE_ICCID}"`, details: { profile: EXAMPLE_ICCID } }),
      },
    },
  }, async (req) => {
    const p = await getProfile(deps.db, req.params.iccid);
    if (!p) throw ApiError.notFound('profile', req.params.iccid);
    const history = await profileHistory(deps.db, p.iccid);
    return {
      iccid: p.iccid,
      state: publicProfile(p).state,
      history: history.map((h) => ({ at: h.at.toISOString(), event: h.event, detail: h.detail })),
    };
  });
}
