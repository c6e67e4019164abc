/**
 * The ES2+ operator functions (paths /gsma/rsp2/es2plus/*, SGP.22 §5.3; docs/protocol.md "ES2+ functions and callbacks"): authentication, request
 * header, schemas and status rendering, in the style of the ES9+ routes (HTTP 200 with
 * header.functionExecutionStatus, also for failures).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FunctionFailed, SC, successHeader, type StatusCode } from '../errors.js';
import { ADMIN_PROTOCOL, checkAdminProtocol, sendFailed, toFunctionFailed } from '../envelope.js';
import { loadSchemas } from '../schemas.js';
import { authenticateOperator, checkRequester, credentialsOf, type Es2Context, type Es2Deps, type Es2RequestHeader } from './auth.js';
import { cancelOrder } from './cancel-order.js';
import { confirmOrder } from './confirm-order.js';
import { downloadOrder } from './download-order.js';
import { releaseProfile } from './release-profile.js';

export const ES2_PREFIX = '/gsma/rsp2/es2plus';

type Validation = Array<{ keyword: string; instancePath?: string; message?: string; params?: { missingProperty?: string } }>;

/** The status of an invalid value of these identifiers: the field's own 2.1 (SGP.22 §5.3, docs/protocol.md "ES2+ functions and callbacks"). */
const FIELD_INVALID: Record<string, StatusCode> = { '/eid': SC.eidInvalid, '/iccid': SC.iccidInvalid, '/matchingId': SC.matchingIdInvalid };

/**
 * A schema failure as an SGP.22 status: 1.3.1/2.2 (missing) or 1.3.1/2.1 (invalid), except
 * cancelOrder without iccid or finalProfileStatusIndicator, 8.2.1/2.2 (SGP.22 §5.3.3, docs/protocol.md), and an invalid
 * EID, ICCID or MatchingID (too long, NUL or an unpaired surrogate in it): 8.1.1/2.1, 8.2.1/2.1, 8.2.6/2.1.
 */
export function es2Failure(fn: string, err: unknown, log: FastifyRequest['log']): FunctionFailed {
  const v = (err as { validation?: Validation }).validation;
  const missing = v?.find((e) => e.keyword === 'required');
  if (fn === 'cancelOrder' && missing && !missing.instancePath && ['iccid', 'finalProfileStatusIndicator'].includes(missing.params?.missingProperty ?? '')) {
    return new FunctionFailed(SC.iccidMissing, `missing ${missing.params?.missingProperty}`);
  }
  const invalid = v?.find((e) => e.keyword !== 'required' && FIELD_INVALID[e.instancePath ?? '']);
  if (invalid) return new FunctionFailed(FIELD_INVALID[invalid.instancePath!]!, `${invalid.instancePath!.slice(1)} ${invalid.message ?? 'is invalid'}`);
  return toFunctionFailed(err, log);
}

/** Parse errors (bad JSON) on an ES2+ path: an SGP.22 answer too; 413/415 keep their HTTP status. */
function es2ErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.statusCode === 413 || err.statusCode === 415 || (err.statusCode ?? 500) >= 500) throw err;
  return sendFailed(reply, toFunctionFailed(err, request.log));
}

export async function es2plusRoutes(app: FastifyInstance, deps: Es2Deps) {
  const schemas = loadSchemas('es2plus');
  const route = <B>(name: string, fn: (ctx: Es2Context, body: B) => Promise<object>) => {
    app.post<{ Body: Record<string, unknown> & { header: Es2RequestHeader } }>(`${ES2_PREFIX}/${name}`, {
      schema: { body: schemas.get(`${name}.request`), response: { 200: schemas.get(`${name}.response`) } },
      attachValidation: true,
      errorHandler: es2ErrorHandler,
      handler: async (request, reply) => {
        try {
          checkAdminProtocol(request.headers['x-admin-protocol']);
          // Credentials first: an unauthenticated caller learns nothing, not even about its body.
          const operator = await authenticateOperator(deps.db, credentialsOf(request));
          if (request.validationError) throw request.validationError;
          const header = request.body.header;
          checkRequester(operator, header);
          const { header: _h, ...body } = request.body;
          const out = await fn({ ...deps, log: request.log, operator, header }, body as unknown as B);
          return reply.code(200).header('x-admin-protocol', ADMIN_PROTOCOL).send({ header: successHeader(), ...out });
        } catch (err) {
          const failed = es2Failure(name, err, request.log);
          request.log.info({ subjectCode: failed.status.subjectCode, reasonCode: failed.status.reasonCode, msg2: failed.message }, `ES2+ ${name} failed`);
          return sendFailed(reply, failed);
        }
      },
    });
  };
  route('downloadOrder', downloadOrder);
  route('confirmOrder', confirmOrder);
  route('cancelOrder', cancelOrder);
  route('releaseProfile', releaseProfile);
}
