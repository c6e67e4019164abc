/** The five ES9+ routes (SGP.22 §6.5, paths /gsma/rsp2/es9plus/*): schemas, headers, status rendering. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FunctionFailed, SC, failedHeader, successHeader } from '../errors.js';
import { loadSchemas } from '../schemas.js';
import type { Es9Deps } from './context.js';
import { authenticateClient } from './authenticate-client.js';
import { cancelSession } from './cancel-session.js';
import { getBoundProfilePackage } from './get-bound-profile-package.js';
import { handleNotification } from './handle-notification.js';
import { initiateAuthentication } from './initiate-authentication.js';
import { injectFault } from './faults.js';

export const ES9_PREFIX = '/gsma/rsp2/es9plus';
/** What this server answers in X-Admin-Protocol (a v2 string: pySim's client insists on it). */
export const ADMIN_PROTOCOL = 'gsma/rsp/v2.5.0';
const ADMIN_PROTOCOL_RE = /^gsma\/rsp\/v(\d+)\.\d+\.\d+$/;

/** Verify X-Admin-Protocol names an RSP version this server speaks (v2 or v3), otherwise 1.3.2/3.1. */
export function checkAdminProtocol(value: string | string[] | undefined): void {
  if (value === undefined) return;
  const m = String(value).trim().match(ADMIN_PROTOCOL_RE);
  if (!m || !['2', '3'].includes(m[1]!)) throw new FunctionFailed(SC.protocolVersionUnsupported, `X-Admin-Protocol ${value} unsupported`);
}

/** A function-level failure: HTTP 200 with header.functionExecutionStatus = Failed (SGP.22 §6.5.1). */
export function sendFailed(reply: FastifyReply, err: FunctionFailed) {
  return reply.code(200).header('x-admin-protocol', ADMIN_PROTOCOL).send({ header: failedHeader(err) });
}

/** Maps anything thrown by a function or by request parsing to an SGP.22 answer; never a 500. */
export function toFunctionFailed(err: unknown, log: FastifyRequest['log']): FunctionFailed {
  if (err instanceof FunctionFailed) return err;
  const e = err as { validation?: Array<{ keyword: string; params?: { missingProperty?: string }; instancePath?: string; message?: string }>; code?: string; name?: string; message?: string };
  if (e.validation) {
    const missing = e.validation.find((v) => v.keyword === 'required');
    if (missing) return new FunctionFailed(SC.formatMissing, `missing ${missing.params?.missingProperty}`);
    const v = e.validation[0]!;
    return new FunctionFailed(SC.formatInvalid, `${v.instancePath || 'body'} ${v.message}`);
  }
  if (e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || e.name === 'SyntaxError') {
    return new FunctionFailed(SC.formatInvalid, 'request body is not valid JSON');
  }
  if (e.name === 'DerError' || e.name === 'RspError' || e.name === 'CryptoError' || e.name === 'SaipError') {
    return new FunctionFailed(SC.formatInvalid, e.message);
  }
  log.error({ err }, 'ES9+ function failed unexpectedly');
  return new FunctionFailed(SC.providerError, 'internal error');
}

/**
 * handleNotification answers 204 even when its body cannot be parsed (SGP.22 §5.6.4: whatever the
 * outcome). An unsupported media type or an oversized body keeps its HTTP status (the app's handler).
 */
export function notificationErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.statusCode === 413 || err.statusCode === 415) throw err;
  request.log.warn({ err }, 'notification not processed');
  return reply.code(204).header('x-admin-protocol', ADMIN_PROTOCOL).send();
}

export async function es9plusRoutes(app: FastifyInstance, deps: Es9Deps) {
  const schemas = loadSchemas('es9plus');
  const route = <B>(name: string, fn: (deps: Es9Deps, body: B) => Promise<object | void>, noContent = false) => {
    app.post<{ Body: B }>(`${ES9_PREFIX}/${name}`, {
      schema: {
        body: schemas.get(`${name}.request`),
        ...(noContent ? {} : { response: { 200: schemas.get(`${name}.response`) } }),
      },
      attachValidation: true,
      ...(noContent ? { errorHandler: notificationErrorHandler } : {}),
      handler: async (request, reply) => {
        try {
          if (request.validationError) throw request.validationError;
          checkAdminProtocol(request.headers['x-admin-protocol']);
          const fault = await injectFault({ ...deps, log: request.log }, name, request.body);
          if (fault && 'drop' in fault) {
            reply.hijack(); // an injected fault: the connection drops with no answer
            request.raw.socket.destroy();
            return;
          }
          if (fault) return sendFailed(reply, fault.fail);
          const out = await fn({ ...deps, log: request.log }, request.body as B);
          reply.header('x-admin-protocol', ADMIN_PROTOCOL);
          if (noContent) return reply.code(204).send();
          return reply.code(200).send({ header: successHeader(), ...(out ?? {}) });
        } catch (err) {
          if (noContent) {
            // handleNotification answers 204 whatever the outcome (SGP.22 §5.6.4).
            request.log.warn({ err }, 'notification not processed');
            return reply.code(204).header('x-admin-protocol', ADMIN_PROTOCOL).send();
          }
          const failed = toFunctionFailed(err, request.log);
          request.log.info({ subjectCode: failed.status.subjectCode, reasonCode: failed.status.reasonCode, msg2: failed.message }, `${name} failed`);
          return sendFailed(reply, failed);
        }
      },
    });
  };
  route('initiateAuthentication', initiateAuthentication);
  route('authenticateClient', authenticateClient);
  route('getBoundProfilePackage', getBoundProfilePackage);
  route('handleNotification', handleNotification, true);
  route('cancelSession', cancelSession);
}
