/**
 * The GSMA RSP HTTP envelope that ES9+ and ES2+ share (SGP.22 §6.5.1; docs/protocol.md#transport): the
 * X-Admin-Protocol header, function-level failures as HTTP 200 with a Failed header, and the mapping
 * of anything thrown while parsing or running a function to an SGP.22 status, never a 500.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FunctionFailed, SC, failedHeader } from './errors.js';

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

