/**
 * Admin API for the inventory: profile types, importing and generating profiles, listing the
 * inventory with counts per state, and listing orders with their history. Behind the same
 * authorisation hook as the rest of /admin (src/admin/routes.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { AdminDeps } from './routes.js';
import { getProfile, profileHistory, publicProfile } from '../orders/store.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { IdentifierError } from '../rsp/identifiers.js';
import { loadSchemas } from '../schemas.js';
import { importInventory, type ImportFormat } from '../inventory/import.js';
import {
  InventoryError, createProfileType, generateProfiles, inventoryView, listInventory, listOrders, listProfileTypes,
  profileTypeTemplate,
} from '../inventory/store.js';
import { TemplateError } from '../saip/template.js';

const STATUS = { invalid: 400, conflict: 409, notFound: 404 } as const;

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

function sendError(reply: FastifyReply, err: unknown) {
  if (err instanceof TemplateError) {
    return reply.code(400).send({ error: 'invalidTemplate', message: `template refused, nothing stored: ${err.message}`, element: err.element ?? null, offset: err.offset ?? null });
  }
  if (err instanceof InventoryError) {
    return reply.code(STATUS[err.code]).send({ error: err.code, message: err.message, ...(err.details.length ? { details: err.details } : {}) });
  }
  if (err instanceof IdentifierError) return reply.code(400).send({ error: 'invalid', message: err.message });
  throw err;
}

export async function inventoryAdminRoutes(app: FastifyInstance, deps: AdminDeps) {
  const schemas = loadSchemas('admin');
  const tags = ['admin: inventory'];

  app.post<{ Body: ProfileTypeBody }>('/admin/profile-types', {
    schema: { tags, summary: 'Create (or with replace, update) a profile type, optionally with a profile template', body: schemas.get('profileType.request') },
  }, async (req, reply) => {
    const { replace, template, ...t } = req.body;
    try {
      const der = template === undefined ? undefined : strictBase64(template);
      if (der === null) return reply.code(400).send({ error: 'invalid', message: 'template must be the profile package (SAIP DER) in base64' });
      const created = await createProfileType(deps.db, { ...t, template: der }, { replace });
      return reply.code(201).send(created);
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.get('/admin/profile-types', {
    schema: { tags, summary: 'Profile types, with how many profiles of each are in each state' },
  }, async () => ({ profileTypes: await listProfileTypes(deps.db) }));

  app.get<{ Params: { name: string } }>('/admin/profile-types/:name/template', {
    schema: { tags, summary: "A profile type's template as it was imported (application/octet-stream)" },
  }, async (req, reply) => {
    const der = await profileTypeTemplate(deps.db, req.params.name);
    if (der === undefined) return reply.code(404).send({ error: 'notFound', message: `no profile type ${req.params.name}` });
    if (der === null) return reply.code(404).send({ error: 'notFound', message: `profile type ${req.params.name} has no template` });
    return reply.type('application/octet-stream').send(der);
  });

  app.post<{ Body: { type: string; operator?: string; format: ImportFormat; data: unknown; luhn?: boolean } }>('/admin/inventory/import', {
    schema: { tags, summary: 'Import profiles from CSV or JSON (all or nothing)', body: schemas.get('inventoryImport.request') },
  }, async (req, reply) => {
    const b = req.body;
    try {
      const r = await importInventory(deps.db, b.format, b.data, { type: b.type, operator: b.operator, luhn: b.luhn });
      return reply.code(201).send({ imported: r.imported, type: b.type, operator: b.operator ?? null, iccids: r.iccids });
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.post<{ Body: { type: string; count: number; prefix?: string; mccMnc?: string; operator?: string } }>('/admin/inventory/generate', {
    schema: { tags, summary: 'Generate profiles with Luhn-valid ICCIDs and random Ki/OPc', body: schemas.get('inventoryGenerate.request') },
  }, async (req, reply) => {
    try {
      const r = await generateProfiles(deps.db, req.body);
      return reply.code(201).send({ generated: r.generated, type: req.body.type, operator: req.body.operator ?? null, iccids: r.iccids });
    } catch (err) {
      return sendError(reply, err);
    }
  });

  app.get<{ Querystring: { type?: string; state?: string; operator?: string; limit?: number; offset?: number } }>('/admin/inventory', {
    schema: { tags, summary: 'Profiles by type/state/operator, with counts per state', querystring: schemas.get('inventoryList.query') },
  }, async (req, reply) => {
    try {
      return await listInventory(deps.db, req.query);
    } catch (err) {
      return sendError(reply, err);
    }
  });

  const orderTags = ['admin: orders'];
  app.get<{ Querystring: { state?: string; operator?: string; limit?: number; offset?: number } }>('/admin/orders', {
    schema: { tags: orderTags, summary: 'Orders (profiles not Available, or in ?state), newest change first', querystring: schemas.get('ordersList.query') },
  }, async (req, reply) => {
    try {
      const rows = await listOrders(deps.db, req.query);
      return {
        orders: rows.map((p) => ({
          ...inventoryView(p),
          activationCode: p.matching_id
            ? buildActivationCode({ smdpAddress: deps.config.smdpAddress, matchingId: p.matching_id, confirmationCodeRequired: p.cc_digest !== null })
            : null,
        })),
      };
    } catch (err) {
      return sendError(reply, err);
    }
  });

  // The full view (profile, history and notifications) is GET /admin/profiles/:iccid; this is the history alone.
  app.get<{ Params: { iccid: string } }>('/admin/orders/:iccid/history', {
    schema: { tags: orderTags, summary: "An order's history (every state change and protocol event)" },
  }, async (req, reply) => {
    try {
      const p = await getProfile(deps.db, req.params.iccid);
      if (!p) return reply.code(404).send({ error: 'notFound', message: `no profile ${req.params.iccid}` });
      const history = await profileHistory(deps.db, p.iccid);
      return {
        iccid: p.iccid,
        state: publicProfile(p).state,
        history: history.map((h) => ({ at: h.at.toISOString(), event: h.event, detail: h.detail })),
      };
    } catch (err) {
      return sendError(reply, err);
    }
  });
}
