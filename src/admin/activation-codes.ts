/**
 * Activation codes of orders (SGP.22 §4.1, docs/protocol.md "Activation codes"): GET /admin/activation-codes/:matchingId as
 * text (`LPA:1$…`), and .png / .svg as a QR code (error-correction level ?ecl=L|M|Q|H, default M).
 */
import type { FastifyInstance } from 'fastify';
import QRCode from 'qrcode';
import { ApiError } from '../http/api-error.js';
import { errorReply } from '../openapi.js';
import type { AdminDeps } from './routes.js';
import { activationCodeExample, EXAMPLE_MATCHING_ID } from './schemas.js';
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

  /** The activation code of the order with this MatchingID (400: not a MatchingID, 404: no such order). */
  async function codeOf(matchingId: string, q: ActivationCodeQuery): Promise<string> {
    const id = matchingId.toUpperCase();
    if (!MATCHING_ID_RE.test(id)) throw ApiError.badRequest(`MatchingID must be 1-64 of 0-9 A-Z and '-': ${matchingId}`, { field: 'params.matchingId' });
    const rows = await deps.db.query<ProfileRow>('SELECT * FROM profiles WHERE matching_id = $1', [id]);
    const p = rows[0];
    if (!p) throw new ApiError(404, 'notFound', `no order with MatchingID ${id}`, { matchingId: id });
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
  const params = { type: 'object', required: ['matchingId'], properties: { matchingId: { type: 'string', maxLength: 64, description: "the order's MatchingID" } } };
  const errors = {
    400: errorReply(400, { error: 'invalid', message: "MatchingID must be 1-64 of 0-9 A-Z and '-': a_b", details: { field: 'params.matchingId' } }),
    404: errorReply(404, { error: 'notFound', message: `no order with MatchingID ${EXAMPLE_MATCHING_ID}`, details: { matchingId: EXAMPLE_MATCHING_ID } }),
  };

  app.get<Req>('/admin/activation-codes/:matchingId', {
    schema: {
      tags, summary: 'The activation code of an order, as text (LPA:1$ADDRESS$MATCHINGID[$OID[$1]])', querystring,
      params, response: { 200: { description: 'the activation code', content: { 'text/plain': { schema: { type: 'string' }, example: activationCodeExample } } }, ...errors },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query);
    return reply.type('text/plain; charset=utf-8').send(text);
  });

  app.get<Req>('/admin/activation-codes/:matchingId.png', {
    schema: {
      tags, summary: 'The activation code of an order as a QR code (PNG)', querystring,
      params, response: { 200: { description: 'PNG image', content: { 'image/png': { schema: { type: 'string', format: 'binary' }, example: '(binary PNG)' } } }, ...errors },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query);
    return reply.type('image/png').send(await qrPng(text, { ecl: ecl(req.query), scale: req.query.scale, margin: req.query.margin }));
  });

  app.get<Req>('/admin/activation-codes/:matchingId.svg', {
    schema: {
      tags, summary: 'The activation code of an order as a QR code (SVG)', querystring,
      params, response: { 200: { description: 'SVG image', content: { 'image/svg+xml': { schema: { type: 'string' }, example: '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 33 33">…</svg>' } } }, ...errors },
    },
  }, async (req, reply) => {
    const text = await codeOf(req.params.matchingId, req.query);
    let svg = await qrSvg(text, { ecl: ecl(req.query), margin: req.query.margin });
    // qrcode's SVG has only a viewBox; give it a pixel size when a scale is asked for.
    if (req.query.scale) {
      const m = svg.match(/viewBox="0 0 (\d+) (\d+)"/);
      if (m) svg = svg.replace('<svg ', `<svg width="${Number(m[1]) * req.query.scale}" height="${Number(m[2]) * req.query.scale}" `);
    }
    return reply.type('image/svg+xml').send(svg);
  });
}
