/**
 * Activation codes of orders (SGP.22 §4.1, notes §6): GET /admin/activation-codes/:matchingId as
 * text (`LPA:1$…`), and .png / .svg as a QR code (error-correction level ?ecl=L|M|Q|H, default M).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import QRCode from 'qrcode';
import type { AdminDeps } from './routes.js';
import type { ProfileRow } from '../orders/store.js';
import { MATCHING_ID_RE, buildActivationCode } from '../rsp/activation-code.js';
import { loadSchemas } from '../schemas.js';

export type Ecl = 'L' | 'M' | 'Q' | 'H';

export interface ActivationCodeQuery {
  oid?: string;
  ecl?: string;
  scale?: number;
  margin?: number;
}

/** The QR code of `text` as PNG bytes. */
export function qrPng(text: string, o: { ecl?: Ecl; scale?: number; margin?: number } = {}): Promise<Buffer> {
  return QRCode.toBuffer(text, { type: 'png', errorCorrectionLevel: o.ecl ?? 'M', scale: o.scale ?? 8, margin: o.margin ?? 4 });
}

/** The QR code of `text` as an SVG document. */
export function qrSvg(text: string, o: { ecl?: Ecl; margin?: number } = {}): Promise<string> {
  return QRCode.toString(text, { type: 'svg', errorCorrectionLevel: o.ecl ?? 'M', margin: o.margin ?? 4 });
}

export async function activationCodeRoutes(app: FastifyInstance, deps: AdminDeps) {
  const schemas = loadSchemas('admin');
  const querystring = schemas.get('activationCode.query');

  /** The activation code of the order with this MatchingID, or a sent 4xx. */
  async function codeOf(matchingId: string, q: ActivationCodeQuery, reply: FastifyReply): Promise<string | undefined> {
    const id = matchingId.toUpperCase();
    if (!MATCHING_ID_RE.test(id)) {
      await reply.code(400).send({ error: 'invalid', message: `MatchingID must be 1-64 of 0-9 A-Z and '-': ${matchingId}` });
      return undefined;
    }
    const rows = await deps.db.query<ProfileRow>('SELECT * FROM profiles WHERE matching_id = $1', [id]);
    const p = rows[0];
    if (!p) {
      await reply.code(404).send({ error: 'notFound', message: `no order with MatchingID ${id}` });
      return undefined;
    }
    const withOid = q.oid === '1' || q.oid === 'true';
    return buildActivationCode({
      smdpAddress: deps.config.smdpAddress,
      matchingId: p.matching_id!,
      ...(withOid ? { smdpOid: deps.smdpOid } : {}),
      confirmationCodeRequired: p.cc_digest !== null,
    });
  }
  const ecl = (q: ActivationCodeQuery) => (q.ecl ?? 'M').toUpperCase() as Ecl;
  const tags = ['admin: orders'];
  type Req = { Params: { matchingId: string }; Querystring: ActivationCodeQuery };

  app.get<Req>('/admin/activation-codes/:matchingId', {
    schema: {
      tags, summary: 'The activation code of an order, as text (LPA:1$ADDRESS$MATCHINGID[$OID[$1]])', querystring,
      response: { 200: { description: 'the activation code', content: { 'text/plain': { schema: { type: 'string' } } } } },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query, reply);
    if (text !== undefined) return reply.type('text/plain; charset=utf-8').send(text);
    return reply;
  });

  app.get<Req>('/admin/activation-codes/:matchingId.png', {
    schema: {
      tags, summary: 'The activation code of an order as a QR code (PNG)', querystring,
      response: { 200: { description: 'PNG image', content: { 'image/png': { schema: { type: 'string', format: 'binary' } } } } },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query, reply);
    if (text === undefined) return reply;
    return reply.type('image/png').send(await qrPng(text, { ecl: ecl(req.query), scale: req.query.scale, margin: req.query.margin }));
  });

  app.get<Req>('/admin/activation-codes/:matchingId.svg', {
    schema: {
      tags, summary: 'The activation code of an order as a QR code (SVG)', querystring,
      response: { 200: { description: 'SVG image', content: { 'image/svg+xml': { schema: { type: 'string' } } } } },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query, reply);
    if (text === undefined) return reply;
    let svg = await qrSvg(text, { ecl: ecl(req.query), margin: req.query.margin });
    // qrcode's SVG has only a viewBox; give it a pixel size when a scale is asked for.
    if (req.query.scale) {
      const m = svg.match(/viewBox="0 0 (\d+) (\d+)"/);
      if (m) svg = svg.replace('<svg ', `<svg width="${Number(m[1]) * req.query.scale}" height="${Number(m[2]) * req.query.scale}" `);
    }
    return reply.type('image/svg+xml').send(svg);
  });
}
