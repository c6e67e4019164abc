/**
 * Admin API (JSON, under /admin): create downloadable orders, read a profile with its history and
 * notifications. With ADMIN_TOKEN set it needs `Authorization: Bearer <token>`; without, only
 * loopback callers are served.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply } from '../openapi.js';
import { createReleasedOrder, getProfile, MAX_EXPIRES_IN, profileHistory, publicProfile } from '../orders/store.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { profileTypeTemplate } from '../inventory/store.js';
import { orderProfilePackage, securityDomainKeys } from '../saip/template.js';
import { resetRoutes } from './reset.js';
import {
  EXAMPLE_ICCID, iccidParams, keysExample, keysSchema, orderExample, orderSchema, ordersSchema, profileDetailExample, profileDetailSchema,
  profileExample, profilesSchema,
} from './schemas.js';

export interface AdminDeps {
  db: Database;
  config: Config;
  smdpOid: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/**
 * Whether a request is for the admin API: by the route it was routed to (the router decodes the
 * path, so `/%61dmin/…` is an admin route too), or, when no route matched, by its decoded path (an
 * unauthorised caller does not learn which admin paths exist).
 */
function isAdminRequest(req: FastifyRequest): boolean {
  const routed = req.routeOptions?.url;
  if (routed !== undefined) return routed === '/admin' || routed.startsWith('/admin/');
  let path = req.url.split('?')[0] ?? '';
  try {
    path = decodeURIComponent(path);
  } catch {
    // malformed escapes: judge the raw path
  }
  return /^\/+admin(\/|$)/i.test(path);
}

function authorised(req: FastifyRequest, token?: string): boolean {
  if (!token) return LOOPBACK.has(req.socket.remoteAddress ?? '');
  const given = Buffer.from(String(req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

const orderBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    iccid: { type: 'string', pattern: '^[0-9]{19,20}F?$' },
    matchingId: { type: 'string', pattern: '^[0-9A-Za-z-]{1,64}$' },
    eid: { type: 'string', pattern: '^[0-9]{32}$' },
    confirmationCode: { type: 'string', minLength: 1, maxLength: 64 },
    profileType: { type: 'string', minLength: 1, maxLength: 64, description: 'an existing profile type (default: default)' },
    imsi: { type: 'string', pattern: '^[0-9]{6,15}$' },
    ki: { type: 'string', pattern: '^[0-9A-Fa-f]{32}$' },
    opc: { type: 'string', pattern: '^[0-9A-Fa-f]{32}$' },
    expiresIn: { type: 'integer', minimum: 1, maximum: MAX_EXPIRES_IN, description: 'seconds until the order expires' },
    maxDownloadAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    maxConfirmationCodeAttempts: { type: 'integer', minimum: 1, maximum: 1000 },
    count: { type: 'integer', minimum: 1, maximum: 10000, description: 'create this many orders (no iccid/matchingId then)' },
  },
} as const;

interface OrderBody {
  iccid?: string; matchingId?: string; eid?: string; confirmationCode?: string; profileType?: string;
  imsi?: string; ki?: string; opc?: string; expiresIn?: number; maxDownloadAttempts?: number;
  maxConfirmationCodeAttempts?: number; count?: number;
}

export async function adminRoutes(app: FastifyInstance, deps: AdminDeps) {
  // Every route under /admin, whoever registers it and whatever the encoding of its path.
  // A callback hook, not an async one: every request of the server passes here.
  app.addHook('onRequest', (req, _reply, done) => {
    if (isAdminRequest(req) && !authorised(req, deps.config.adminToken)) {
      return done(ApiError.unauthorised('admin API needs a valid bearer token (or a loopback caller when no ADMIN_TOKEN is set)'));
    }
    done();
  });

  const view = (p: Awaited<ReturnType<typeof createReleasedOrder>>) => ({
    ...publicProfile(p),
    activationCode: buildActivationCode({
      smdpAddress: deps.config.smdpAddress,
      matchingId: p.matching_id!,
      confirmationCodeRequired: p.cc_digest !== null,
    }),
  });
  const tags = ['admin: orders'];
  const noProfile = errorReply(404, { error: 'notFound', message: `no profile "${EXAMPLE_ICCID}"`, details: { profile: EXAMPLE_ICCID } });
  const badIccid = errorReply(400, { error: 'invalid', message: 'ICCID must be 19 or 20 digits: 12' });

  app.post<{ Body: OrderBody }>('/admin/orders', {
    schema: {
      tags, summary: 'Create released (downloadable) orders: one, or `count` of them',
      body: orderBody,
      response: {
        201: jsonReply('The order (or with count, `{ orders: [...] }`), with its activation code', { anyOf: [orderSchema, ordersSchema] }, orderExample),
        400: errorReply(400, { error: 'invalid', message: 'count cannot be combined with iccid or matchingId', details: { field: 'body.count' } }),
        404: errorReply(404, { error: 'notFound', message: 'unknown profile type "nope" (create it with POST /admin/profile-types)', details: { profileType: 'nope' } }),
        409: errorReply(409, { error: 'conflict', message: 'MatchingID ABC-1 already in use', details: { matchingId: 'ABC-1' } }),
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const count = b.count ?? 1;
    if (count > 1 && (b.iccid || b.matchingId)) throw ApiError.badRequest('count cannot be combined with iccid or matchingId', { field: 'body.count' });
    const created = [];
    for (let i = 0; i < count; i++) {
      created.push(
        await deps.db.tx((q) =>
          createReleasedOrder(q, {
            ...b,
            ki: b.ki ? Buffer.from(b.ki, 'hex') : undefined,
            opc: b.opc ? Buffer.from(b.opc, 'hex') : undefined,
          }),
        ),
      );
    }
    return reply.code(201).send(count === 1 && b.count === undefined ? view(created[0]!) : { orders: created.map(view) });
  });

  /** The profile named in the URL (400 when it is not an ICCID, 404 when there is none). */
  const profileOr404 = async (iccid: string) => {
    const p = await getProfile(deps.db, iccid);
    if (!p) throw ApiError.notFound('profile', iccid);
    return p;
  };

  app.get<{ Params: { iccid: string } }>('/admin/profiles/:iccid', {
    schema: {
      tags, summary: 'A profile with its history and notifications', params: iccidParams,
      response: { 200: jsonReply('The profile', profileDetailSchema, profileDetailExample), 400: badIccid, 404: noProfile },
    },
  }, async (req) => {
    const p = await profileOr404(req.params.iccid);
    const history = await profileHistory(deps.db, p.iccid);
    const notifications = await deps.db.query<{ received_at: Date; kind: string; verified: boolean; outcome: string; seq_number: number | null }>(
      'SELECT received_at, kind, verified, outcome, seq_number FROM notifications WHERE iccid = $1 ORDER BY id',
      [p.iccid],
    );
    return {
      ...publicProfile(p),
      history: history.map((h) => ({ at: h.at.toISOString(), event: h.event, detail: h.detail })),
      notifications: notifications.map((n) => ({ at: n.received_at.toISOString(), kind: n.kind, verified: n.verified, outcome: n.outcome, seqNumber: n.seq_number })),
    };
  });

  // The secrets of one profile, for the operator that loads them into its network and its OTA platform:
  // Ki/OPc and the MNO-SD keys, read from the profile package the order produces (docs/profiles.md).
  app.get<{ Params: { iccid: string } }>('/admin/profiles/:iccid/keys', {
    schema: {
      tags, summary: "A profile's secrets: Ki, OPc and its security domains' keys", params: iccidParams,
      response: { 200: jsonReply('The keys', keysSchema, keysExample), 400: badIccid, 404: noProfile },
    },
  }, async (req) => {
    const p = await profileOr404(req.params.iccid);
    const template = (await profileTypeTemplate(deps.db, p.profile_type)) ?? null;
    const upp = orderProfilePackage({ iccid: p.iccid, imsi: p.imsi, ki: p.ki, opc: p.opc, scp03Keys: p.scp03_keys }, template);
    const hex = (b: Buffer) => b.toString('hex').toUpperCase();
    const byte = (n: number) => n.toString(16).padStart(2, '0').toUpperCase();
    return {
      iccid: p.iccid,
      imsi: p.imsi,
      ki: hex(p.ki),
      opc: hex(p.opc),
      source: template ? 'template' : 'generated',
      securityDomains: securityDomainKeys(upp).map((sd) => ({
        instanceAid: hex(sd.instanceAid),
        keys: sd.keys.map((k) => ({ usage: byte(k.usage), id: byte(k.id), kvn: byte(k.kvn), type: k.type === 0x88 ? 'aes' : k.type === 0x80 ? 'des' : byte(k.type), key: hex(k.key) })),
      })),
    };
  });

  app.get<{ Querystring: { state?: string; limit?: number } }>('/admin/profiles', {
    schema: {
      tags, summary: 'Profiles, most recently changed first (?state, ?limit)',
      querystring: {
        type: 'object',
        properties: {
          state: { type: 'string', enum: ['Available', 'Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Installed', 'Error', 'Unavailable'] },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
        },
      },
      response: { 200: jsonReply('The profiles', profilesSchema, { profiles: [profileExample] }) },
    },
  }, async (req) => {
    const rows = await deps.db.query<Parameters<typeof publicProfile>[0]>(
      `SELECT * FROM profiles WHERE ($1::text IS NULL OR state = $1) ORDER BY updated_at DESC LIMIT $2`,
      [req.query.state ?? null, req.query.limit ?? 100],
    );
    return { profiles: rows.map(publicProfile) };
  });

  await resetRoutes(app, deps);
}
