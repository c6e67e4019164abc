/**
 * The app's error handlers. On an SGP.22 route (ES9+; ES2+ has its own route handler) an error raised
 * before or in a handler gets an SGP.22 answer (src/envelope.ts). Everywhere else — the admin,
 * family and console routes — every 4xx is one shape, `{ error, message, details? }` (ApiError,
 * src/http/api-error.ts; the codes are listed in docs/api.md): the routes throw ApiError or let a
 * domain error (OrderError, FamilyError, …) through, and `toApiError` maps it here, in one place.
 * Never a 500 page for what a client sent.
 */
import type { FastifyError, FastifyInstance, FastifyRequest, FastifySchemaCompiler } from 'fastify';
import { sendFailed, toFunctionFailed } from './envelope.js';
import { ES9_PREFIX } from './rsp/es9plus.js';
import { FaultError } from './es9plus/faults.js';
import { FamilyError, HTTP_STATUS as FAMILY_STATUS } from './family/store.js';
import { UsageError } from './family/usage.js';
import { ApiError, type ValidationItem } from './http/api-error.js';
import { InventoryError } from './inventory/store.js';
import { OperatorError } from './operators/store.js';
import { OrderError } from './orders/store.js';
import { IdentifierError } from './rsp/identifiers.js';
import { TemplateError } from './saip/template.js';
import { textSafeValidatorCompiler } from './schemas.js';

const DOMAIN_STATUS = { invalid: 400, notFound: 404, conflict: 409 } as const;

/** A PostgreSQL error (pg or PGlite): SQLSTATE code and the server's detail. */
interface PgError { code: string; severity?: string; detail?: string; constraint?: string; message: string }
const isPgError = (e: unknown): e is PgError =>
  !!e && typeof e === 'object' && typeof (e as PgError).code === 'string' && /^[0-9A-Z]{5}$/.test((e as PgError).code) && 'severity' in e;

/**
 * What a client is told about an error of a non-SGP.22 route: an ApiError, or undefined when the
 * error is the server's own (a 500, logged).
 */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  const e = err as FastifyError & { validation?: ValidationItem[]; validationContext?: string };
  if (Array.isArray(e?.validation)) return ApiError.fromValidation({ validation: e.validation, validationContext: e.validationContext, message: e.message });
  if (err instanceof FamilyError) return new ApiError(FAMILY_STATUS[err.code], err.code, err.message);
  if (err instanceof UsageError) return new ApiError(DOMAIN_STATUS[err.code], err.code, err.message);
  if (err instanceof OrderError || err instanceof OperatorError) return new ApiError(DOMAIN_STATUS[err.code], err.code, err.message, (err as OrderError).details);
  if (err instanceof InventoryError) {
    const details = { ...(err.details.length ? { rows: err.details } : {}), ...err.refs };
    return new ApiError(DOMAIN_STATUS[err.code], err.code, err.message, Object.keys(details).length ? details : undefined);
  }
  if (err instanceof FaultError) return ApiError.badRequest(err.message);
  if (err instanceof IdentifierError) return ApiError.badRequest(err.message);
  if (err instanceof TemplateError) {
    return new ApiError(400, 'invalidTemplate', `template refused, nothing stored: ${err.message}`, { element: err.element ?? null, offset: err.offset ?? null });
  }
  if (e?.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (e?.name === 'SyntaxError' && e.statusCode === 400)) return ApiError.badRequest('request body is not valid JSON', { field: 'body' });
  if (e?.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return ApiError.badRequest('empty body with Content-Type application/json', { field: 'body' });
  if (isPgError(err)) return pgApiError(err);
  const status = e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = status === 413 ? 'tooLarge' : status === 415 ? 'unsupportedMediaType' : status === 404 ? 'notFound' : status === 401 ? 'unauthorised' : status === 403 ? 'forbidden' : 'invalid';
    return new ApiError(status, code, e.message);
  }
  return undefined;
}

/**
 * The safety net for a value that only the database refused (a route's own checks name the field
 * first): class 22 (data exception: out of range, bad encoding) is a 400, class 23 (a constraint:
 * a missing reference, a duplicate) a 409, with PostgreSQL's detail, which names the key.
 */
function pgApiError(err: PgError): ApiError | undefined {
  const detail = { sqlstate: err.code, ...(err.constraint ? { constraint: err.constraint } : {}) };
  if (err.code.startsWith('22')) return new ApiError(400, 'invalid', `a value was refused by the database: ${err.message}`, detail);
  if (err.code === '23503') return new ApiError(409, 'conflict', `a referenced record does not exist or is still referenced: ${err.detail ?? err.message}`, detail);
  if (err.code.startsWith('23')) return new ApiError(409, 'conflict', `${err.detail ?? err.message}`, detail);
  return undefined;
}

/** The route the request was routed to (its pattern, e.g. `/admin/orders/:iccid/history`): never the raw URL. */
export const routeUrl = (req: FastifyRequest): string | undefined => req.routeOptions?.url;

export function installErrorHandlers(app: FastifyInstance) {
  // Every schema of every route refuses NUL and lone surrogates in its strings (src/schemas.ts).
  app.setValidatorCompiler(textSafeValidatorCompiler(() => app.getSchemas()) as unknown as FastifySchemaCompiler<unknown>);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const url = routeUrl(req) ?? '';
    if (url.startsWith(ES9_PREFIX) && (err.statusCode ?? 500) < 500 && err.statusCode !== 415 && err.statusCode !== 413) {
      return sendFailed(reply, toFunctionFailed(err, req.log));
    }
    const api = toApiError(err);
    if (api) {
      if (isPgError(err)) req.log.warn({ err }, 'input refused by the database (a missing check)');
      return reply.code(api.statusCode).send(api.toJSON());
    }
    req.log.error({ err }, 'unexpected error');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(new ApiError(404, 'notFound', `no route ${req.method} ${req.url}`).toJSON()));
}

/**
 * Fastify's `frameworkErrors` option (errors before routing: a URL that is not valid UTF-8 after
 * percent-decoding): the same `{ error, message, details }` 400. Fastify answers these itself
 * unless the option is set where the app is built (src/app.ts).
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: import('fastify').FastifyReply) {
  const api = err.code === 'FST_ERR_BAD_URL' ? ApiError.badRequest(err.message, { field: 'url' }) : (toApiError(err) ?? ApiError.badRequest(err.message));
  return reply.code(api.statusCode).send(api.toJSON());
}
