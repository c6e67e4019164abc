/**
 * The ES11 routes of the built-in SM-DS (docs/smds.md#es11): `/gsma/rsp2/es11/<function>`, and the
 * ES9+ paths that lpac posts its ES11 calls to, on the SM-DS's address. An ES9+ path serves the
 * SM-DS only when the SM-DS has an address of its own (SMDS_ADDRESS other than the SM-DP+'s): an
 * initiateAuthentication that names that address, and an authenticateClient whose transactionId
 * is an SM-DS one (SMDS_TID_PREFIX); everything else goes on to the SM-DP+ untouched.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { smdsAddressOf, type Config } from '../config.js';
import type { Database } from '../db/db.js';
import { ADMIN_PROTOCOL, checkAdminProtocol, sendFailed, toFunctionFailed } from '../envelope.js';
import { check, SC, successHeader } from '../errors.js';
import type { ServerPki } from '../pki/load.js';
import { ES9_PREFIX } from '../rsp/es9plus.js';
import { loadSchemas } from '../schemas.js';
import { es11AuthenticateClient, es11InitiateAuthentication, SMDS_TID_PREFIX_HEX, type Es11Deps } from './es11.js';

export { ES11_PREFIX } from '../rsp/es9plus.js';
import { ES11_PREFIX } from '../rsp/es9plus.js';

type Fn = (deps: Es11Deps, body: Record<string, unknown>) => Promise<object>;
const FUNCTIONS: Record<string, Fn> = {
  initiateAuthentication: es11InitiateAuthentication,
  authenticateClient: es11AuthenticateClient,
};

async function answer(deps: Es11Deps, name: string, request: FastifyRequest, reply: FastifyReply) {
  try {
    checkAdminProtocol(request.headers['x-admin-protocol']);
    const body = request.body;
    check(body && typeof body === 'object' && !Array.isArray(body), SC.formatInvalid, 'the body must be a JSON object');
    const out = await FUNCTIONS[name]!(deps, body as Record<string, unknown>);
    // Serialised here: on an ES9+ path the route's response schema (the SM-DP+'s fields) must not apply.
    return reply.code(200).header('x-admin-protocol', ADMIN_PROTOCOL).type('application/json; charset=utf-8')
      .send(JSON.stringify({ header: successHeader(), ...out }));
  } catch (err) {
    const failed = toFunctionFailed(err, request.log);
    request.log.info({ subjectCode: failed.status.subjectCode, reasonCode: failed.status.reasonCode }, `ES11 ${name} failed: ${failed.message}`);
    return sendFailed(reply, failed);
  }
}

/**
 * Fastify's validator would coerce types and drop fields before the functions' own checks, which
 * answer the SGP.22 statuses of docs/smds.md#es11: the body schemas (schemas/smds/) document only.
 */
export const documentOnly = () => () => true;

function es11ErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (err.statusCode === 413 || err.statusCode === 415 || (err.statusCode ?? 500) >= 500) throw err;
  return sendFailed(reply, toFunctionFailed(err, request.log));
}

export async function es11Routes(app: FastifyInstance, deps: { db: Database; pki: ServerPki; config: Config }) {
  const smdsAddress = smdsAddressOf(deps.config);
  const es11: Es11Deps = { db: deps.db, pki: deps.pki, smdsAddress, sessionTtlSeconds: deps.config.sessionTtlSeconds };
  const schemas = loadSchemas('smds');
  for (const name of Object.keys(FUNCTIONS)) {
    app.post(`${ES11_PREFIX}/${name}`, {
      errorHandler: es11ErrorHandler,
      // ES11 needs no credential: the eUICC authenticates inside the protocol (SGP.22 §5.7), as on ES9+.
      schema: { body: schemas.get(`es11.${name}.request`), response: { 200: schemas.get(`es11.${name}.response`) }, security: [] },
      validatorCompiler: documentOnly,
      handler: (request, reply) => answer(es11, name, request, reply),
    });
  }

  // lpac's ES11 on the ES9+ paths: only with an SM-DS address of its own and CERT.DSauth.
  if (!deps.pki.smds || smdsAddress.toLowerCase() === deps.config.smdpAddress.toLowerCase()) return;
  const initiate = `${ES9_PREFIX}/initiateAuthentication`;
  const authenticate = `${ES9_PREFIX}/authenticateClient`;
  const own = smdsAddress.toLowerCase();
  app.addHook('preValidation', async (request, reply) => {
    const url = request.url;
    if (url !== initiate && url !== authenticate) return;
    const body = request.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object') return;
    if (url === initiate && typeof body.smdpAddress === 'string' && body.smdpAddress.toLowerCase() === own) {
      return answer(es11, 'initiateAuthentication', request, reply);
    }
    if (url === authenticate && typeof body.transactionId === 'string' && body.transactionId.toUpperCase().startsWith(SMDS_TID_PREFIX_HEX)) {
      return answer(es11, 'authenticateClient', request, reply);
    }
  });
}
