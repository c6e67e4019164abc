/**
 * Admin API (JSON, under /admin): create downloadable orders, read a profile with its history and
 * notifications. With ADMIN_TOKEN set it needs `Authorization: Bearer <token>`; without, only
 * loopback callers are served.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import { createReleasedOrder, getProfile, OrderError, profileHistory, publicProfile } from '../orders/store.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { IdentifierError } from '../rsp/identifiers.js';
import { profileTypeTemplate } from '../inventory/store.js';
import { orderProfilePackage, securityDomainKeys } from '../saip/template.js';

export interface AdminDeps {
  db: Database;
  config: Config;
  smdpOid: string;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

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
    profileType: { type: 'string', minLength: 1, maxLength: 64 },
    imsi: { type: 'string', pattern: '^[0-9]{6,15}$' },
    ki: { type: 'string', pattern: '^[0-9A-Fa-f]{32}$' },
    opc: { type: 'string', pattern: '^[0-9A-Fa-f]{32}$' },
    expiresIn: { type: 'integer', minimum: 1 },
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
  app.addHook('onRequest', async (req, reply) => {
    if (req.url.startsWith('/admin') && !authorised(req, deps.config.adminToken)) {
      return reply.code(401).send({ error: 'unauthorised', message: 'admin API needs a valid bearer token (or a loopback caller when no ADMIN_TOKEN is set)' });
    }
  });

  const view = (p: Awaited<ReturnType<typeof createReleasedOrder>>) => ({
    ...publicProfile(p),
    activationCode: buildActivationCode({
      smdpAddress: deps.config.smdpAddress,
      matchingId: p.matching_id!,
      confirmationCodeRequired: p.cc_digest !== null,
    }),
  });

  app.post<{ Body: OrderBody }>('/admin/orders', { schema: { body: orderBody } }, async (req, reply) => {
    const b = req.body;
    const count = b.count ?? 1;
    if (count > 1 && (b.iccid || b.matchingId)) return reply.code(400).send({ error: 'invalid', message: 'count cannot be combined with iccid or matchingId' });
    try {
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
    } catch (err) {
      if (err instanceof OrderError) return reply.code(err.code === 'conflict' ? 409 : 400).send({ error: err.code, message: err.message });
      if (err instanceof IdentifierError) return reply.code(400).send({ error: 'invalid', message: err.message });
      throw err;
    }
  });

  /** The profile named in the URL, or undefined after answering 400 (not an ICCID) or 404. */
  const profileOr4xx = async (iccid: string, reply: FastifyReply) => {
    try {
      const p = await getProfile(deps.db, iccid);
      if (!p) reply.code(404).send({ error: 'notFound', message: `no profile ${iccid}` });
      return p;
    } catch (err) {
      if (err instanceof IdentifierError) return void reply.code(400).send({ error: 'invalid', message: err.message });
      throw err;
    }
  };

  app.get<{ Params: { iccid: string } }>('/admin/profiles/:iccid', async (req, reply) => {
    const p = await profileOr4xx(req.params.iccid, reply);
    if (!p) return reply;
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
  app.get<{ Params: { iccid: string } }>('/admin/profiles/:iccid/keys', async (req, reply) => {
    const p = await profileOr4xx(req.params.iccid, reply);
    if (!p) return reply;
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
    schema: { querystring: { type: 'object', properties: { state: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } } },
  }, async (req) => {
    const rows = await deps.db.query<Parameters<typeof publicProfile>[0]>(
      `SELECT * FROM profiles WHERE ($1::text IS NULL OR state = $1) ORDER BY updated_at DESC LIMIT $2`,
      [req.query.state ?? null, req.query.limit ?? 100],
    );
    return { profiles: rows.map(publicProfile) };
  });
}
