/** The five ES9+ routes (SGP.22 §6.5, paths /gsma/rsp2/es9plus/*): schemas, headers, status rendering. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { successHeader } from '../errors.js';
import { ADMIN_PROTOCOL, checkAdminProtocol, sendFailed, toFunctionFailed } from '../envelope.js';
import { loadSchemas } from '../schemas.js';
import type { Es9Deps } from './context.js';
import { authenticateClient } from './authenticate-client.js';
import { cancelSession } from './cancel-session.js';
import { getBoundProfilePackage } from './get-bound-profile-package.js';
import { handleNotification } from './handle-notification.js';
import { initiateAuthentication } from './initiate-authentication.js';
import { FaultsPending, injectFault } from './faults.js';
import { ES9_PREFIX } from '../rsp/es9plus.js';
import { Snapshots } from './snapshots.js';
import { TransactionIds, transactionIdKey } from './transaction-ids.js';

/**
 * handleNotification answers 204 even when its body cannot be parsed (SGP.22 §5.6.4: whatever the
 * outcome). An unsupported media type or an oversized body keeps its HTTP status (the app's handler).
 */
export function notificationErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.statusCode === 413 || err.statusCode === 415) throw err;
  request.log.warn({ err }, 'notification not processed');
  return reply.code(204).header('x-admin-protocol', ADMIN_PROTOCOL).send();
}

export async function es9plusRoutes(app: FastifyInstance, given: Omit<Es9Deps, 'tids'> & Partial<Pick<Es9Deps, 'tids'>>) {
  const tids = given.tids ?? new TransactionIds(() => transactionIdKey(given.db), given.pki.byCiSkiHex.keys());
  tids.warm();
  const deps: Es9Deps = { ...given, tids, snapshots: given.snapshots ?? new Snapshots() };
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
          const d: Es9Deps = { ...deps, log: request.log };
          let out: object | void;
          try {
            out = await fn(d, request.body as B);
          } catch (err) {
            if (!(err instanceof FaultsPending)) throw err;
            // Some fault injection is set: match it against this call, then run the function for real.
            const fault = await injectFault(d, name, request.body);
            if (fault && 'drop' in fault) {
              reply.hijack(); // an injected fault: the connection drops with no answer
              request.raw.socket.destroy();
              return;
            }
            if (fault) return sendFailed(reply, fault.fail);
            out = await fn({ ...d, faultsChecked: true }, request.body as B);
          }
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
