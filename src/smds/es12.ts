/**
 * ES12 on the built-in SM-DS (SM-DP+ → SM-DS): RegisterEvent and DeleteEvent, SGP.22 §5.8 of v2.x
 * (docs/smds.md#es12). The same HTTP envelope as ES2+ (docs/protocol.md#transport): POST with a JSON
 * body carrying `header`, HTTP 200 with header.functionExecutionStatus, also for failures. The
 * paths and field names are the common ones and unverified (docs/smds.md#not-verified).
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '../db/db.js';
import { ADMIN_PROTOCOL, checkAdminProtocol, sendFailed, toFunctionFailed } from '../envelope.js';
import { check, FunctionFailed, SC, successHeader, type StatusCode } from '../errors.js';
import type { ServerPki } from '../pki/load.js';
import { loadSchemas } from '../schemas.js';
import { authenticateByCertificate, authenticateSmdp } from './es12-auth.js';
import { documentOnly } from './es11-routes.js';
import { deleteEvent, findEvent, insertEvent } from './store.js';

export const ES12_PREFIX = '/gsma/rsp2/es12';

/** SM-DS status codes (SGP.22 §5.8; subject 8.9.5 is the event record). */
export const SMDS_SC = {
  eventIdInvalid: { subjectCode: '8.9.5', reasonCode: '2.1', message: 'Invalid EventID' },
  eventIdInUse: { subjectCode: '8.9.5', reasonCode: '3.3', message: 'EventID already in use' },
  eventUnknown: { subjectCode: '8.9.5', reasonCode: '3.9', message: 'Unknown event record' },
  rspServerAddressInvalid: { subjectCode: '8.8.1', reasonCode: '2.1', message: 'Invalid RSP server address' },
} satisfies Record<string, StatusCode>;

/** An EventID: 1-64 letters, digits, '.', '_' or '-' (it becomes the MatchingID of the download). */
export const EVENT_ID_RE = /^[0-9A-Za-z._-]{1,64}$/;
const EID_RE = /^\d{32}$/;
const ADDRESS_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*(?::\d{1,5})?$/;

export interface Es12Deps {
  db: Database;
  pki: ServerPki;
}

type Body = Record<string, unknown>;

function field(body: Body, name: string): string {
  const v = body[name];
  check(v !== undefined && v !== null, SC.formatMissing, `missing ${name}`);
  check(typeof v === 'string', SC.formatInvalid, `${name} must be a string`);
  return v;
}

function checkEid(body: Body): string {
  const eid = field(body, 'eid');
  check(EID_RE.test(eid), SC.eidInvalid, 'eid must be 32 digits');
  return eid;
}

function checkEventId(body: Body): string {
  const id = field(body, 'eventId');
  check(EVENT_ID_RE.test(id), SMDS_SC.eventIdInvalid, 'eventId must be 1-64 of A-Z, a-z, 0-9, ".", "_" and "-"');
  return id;
}

/** RegisterEvent: store the event record; the same record registered again by the same SM-DP+ is a success. */
export async function registerEvent(deps: Es12Deps, requester: string, body: Body): Promise<object> {
  const eid = checkEid(body);
  const eventId = checkEventId(body);
  const rspServerAddress = field(body, 'rspServerAddress');
  check(ADDRESS_RE.test(rspServerAddress) && rspServerAddress.length <= 255, SMDS_SC.rspServerAddressInvalid, 'rspServerAddress must be host[:port]');
  if (body.forwardingIndicator !== undefined) check(typeof body.forwardingIndicator === 'boolean', SC.formatInvalid, 'forwardingIndicator must be a boolean');
  if (await insertEvent(deps.db, { eventId, eid, rspServerAddress, registeredBy: requester })) return {};
  const old = await findEvent(deps.db, eventId);
  const same = old && old.eid === eid && old.registeredBy === requester && old.rspServerAddress.toLowerCase() === rspServerAddress.toLowerCase();
  check(same, SMDS_SC.eventIdInUse, `EventID ${eventId} is already registered`);
  return {};
}

/** DeleteEvent: remove the record, only for its EID and by the SM-DP+ that registered it. */
export async function deleteEventFn(deps: Es12Deps, requester: string, body: Body): Promise<object> {
  const eid = checkEid(body);
  const eventId = checkEventId(body);
  const e = await findEvent(deps.db, eventId);
  check(e, SMDS_SC.eventUnknown, `no event ${eventId}`);
  check(e.eid === eid, SC.eidMismatch, `event ${eventId} is not for EID ${eid}`);
  check(e.registeredBy === requester, SC.requesterNotAllowed, `event ${eventId} was registered by another SM-DP+`);
  check(await deleteEvent(deps.db, eventId), SMDS_SC.eventUnknown, `no event ${eventId}`);
  return {};
}

function es12ErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.statusCode === 413 || err.statusCode === 415 || (err.statusCode ?? 500) >= 500) throw err;
  return sendFailed(reply, toFunctionFailed(err, request.log));
}

export async function es12Routes(app: FastifyInstance, deps: Es12Deps) {
  const schemas = loadSchemas('smds');
  const route = (name: string, fn: (deps: Es12Deps, requester: string, body: Body) => Promise<object>) => {
    app.post<{ Body: unknown }>(`${ES12_PREFIX}/${name}`, {
      errorHandler: es12ErrorHandler,
      // The caller is checked before the body (docs/smds.md#es12-authentication), so the body
      // schema documents only (documentOnly: no coercion, the SGP.22 statuses of the checks below).
      schema: { body: schemas.get(`es12.${name}.request`), response: { 200: schemas.get(`es12.${name}.response`) }, security: [{ smdsClientKey: [] }] },
      validatorCompiler: documentOnly,
      handler: async (request, reply) => {
        try {
          checkAdminProtocol(request.headers['x-admin-protocol']);
          const body = request.body;
          const header = body && typeof body === 'object' && !Array.isArray(body) ? (body as Body).header : undefined;
          const named = header && typeof header === 'object' ? (header as Body).functionRequesterIdentifier : undefined;
          // Over TLS the client certificate; on plain HTTP the key (docs/smds.md#es12-authentication).
          const socket = request.raw.socket as TLSSocket;
          const key = request.headers['x-api-key'];
          const requester = socket.encrypted
            ? await authenticateByCertificate(deps.db, deps.pki, socket, named)
            : await authenticateSmdp(deps.db, deps.pki, Array.isArray(key) ? key[0] : key, named);
          check(body && typeof body === 'object' && !Array.isArray(body), SC.formatInvalid, 'the body must be a JSON object');
          const out = await fn(deps, requester, body as Body);
          return reply.code(200).header('x-admin-protocol', ADMIN_PROTOCOL).send({ header: successHeader(), ...out });
        } catch (err) {
          const failed = err instanceof FunctionFailed ? err : toFunctionFailed(err, request.log);
          request.log.info({ subjectCode: failed.status.subjectCode, reasonCode: failed.status.reasonCode }, `ES12 ${name} failed: ${failed.message}`);
          return sendFailed(reply, failed);
        }
      },
    });
  };
  route('registerEvent', registerEvent);
  route('deleteEvent', deleteEventFn);
}
