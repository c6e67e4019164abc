/**
 * The OpenAPI document matches the server: every route names its security requirement (schemes
 * Swagger UI can send), documents each answer with a schema and an example, and a representative
 * call of every route — made the way Swagger UI's Try-it-out makes it (bearer admin token with
 * ADMIN_TOKEN set, X-API-Key for operators and for the SM-DP+ on ES12, bearer member tokens, the
 * `token` query parameter of GET /ts43) — answers a documented status with a body that validates
 * against the documented schema of the content type it answers: JSON against its JSON schema, the
 * TS.43 provisioning XML (text/vnd.wap.connectivity-xml) as a string holding the document.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Ajv } from 'ajv';
import t from 'tap';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { parseAnswer, XML_TYPE } from '../src/entitlement/ts43.js';
import { eidWithCheckDigits, withLuhn } from '../src/rsp/identifiers.js';
import { buildProfile } from '../src/saip/profile.js';
import { smdsAddressOf } from '../src/config.js';
import { ownEs12Key } from '../src/smds/es12-auth.js';
import { familyOperator, PROFILE_TYPE } from './helpers/family.js';
import { startWorld, type World } from './helpers/world.js';

const ADMIN_TOKEN = 'openapi-test-admin-token';

type Op = {
  summary?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: object; example?: unknown; examples?: Record<string, { value: unknown }> }> }>;
};
type Doc = { paths: Record<string, Record<string, Op>>; components: { securitySchemes: Record<string, { type: string; scheme?: string; in?: string; name?: string }> } };

/** A stream answers for as long as it is read (the console's Server-Sent Events): no request/answer call here. */
const isStream = (op: Op) => Object.values(op.responses ?? {}).some((r) => r.content?.['text/event-stream']);

const ajv = new Ajv({ strict: false, allErrors: true });

function examplesOf(media: { example?: unknown; examples?: Record<string, { value: unknown }> }): unknown[] {
  if (media.example !== undefined) return [media.example];
  return Object.values(media.examples ?? {}).map((e) => e.value);
}

t.test('every route: a security requirement, documented answers with schemas and examples', async (t) => {
  const w = await startWorld(t, { config: { adminToken: ADMIN_TOKEN } });
  const doc = w.app.swagger() as unknown as Doc;
  const schemes = doc.components.securitySchemes;
  t.match(schemes, {
    adminToken: { type: 'http', scheme: 'bearer' },
    operatorApiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
    operatorBearer: { type: 'http', scheme: 'bearer' },
    memberToken: { type: 'http', scheme: 'bearer' },
    smdsClientKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
  }, 'security schemes Swagger UI can send');
  for (const p of ['/gsma/rsp2/es11/initiateAuthentication', '/gsma/rsp2/es11/authenticateClient', '/gsma/rsp2/es12/registerEvent', '/gsma/rsp2/es12/deleteEvent']) {
    t.same(doc.paths[p]?.post?.tags, ['SM-DS'], `POST ${p}: documented under SM-DS`);
  }

  let routes = 0;
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      routes++;
      const name = `${method.toUpperCase()} ${path}`;
      t.ok(Array.isArray(op.security), `${name}: a security requirement`);
      for (const req of op.security ?? []) for (const s of Object.keys(req)) t.ok(schemes[s], `${name}: scheme ${s} defined`);
      if (path.startsWith('/admin')) t.same(op.security, [{ adminToken: [] }], `${name}: admin token`);
      if (path.startsWith('/gsma/rsp2/es2plus')) t.same(op.security, [{ operatorApiKey: [] }, { operatorBearer: [] }], `${name}: operator key`);
      if (path.startsWith('/gsma/rsp2/es9plus')) t.same(op.security, [], `${name}: ES9+ needs no credential`);
      if (path.startsWith('/gsma/rsp2/es11')) t.same(op.security, [], `${name}: ES11 needs no credential`);
      if (path.startsWith('/gsma/rsp2/es12')) t.same(op.security, [{ smdsClientKey: [] }], `${name}: the key of an SM-DP+ allowed on ES12`);
      if (path.startsWith('/family')) t.ok(op.security?.length, `${name}: family credentials`);

      const responses = op.responses ?? {};
      const codes = Object.keys(responses);
      if (path === '/ts43') {
        t.same(op.security, method === 'get' ? [{ memberToken: [] }, { memberTokenQuery: [] }] : [{ memberToken: [] }], `${name}: the member token (bearer, or the token query parameter of GET)`);
        t.same(op.tags, ['entitlement'], `${name}: documented under entitlement`);
        t.ok(op.summary, `${name}: a summary`);
        t.same(Object.keys(responses['200']?.content ?? {}).sort(), ['application/json', XML_TYPE].sort(), `${name} 200: both forms of the answer`);
        for (const code of ['400', '401']) t.ok(responses[code]?.content?.['application/json'], `${name}: ${code} documented`);
      }
      t.ok(codes.some((c) => /^2/.test(c)), `${name}: a success answer documented`);
      if (!path.startsWith('/gsma/')) t.notOk(codes.includes('200') && /^(post|put|patch|delete)$/.test(method) && codes.includes('201'), `${name}: not both 200 and 201`);
      for (const [code, r] of Object.entries(responses)) {
        if (code === '204') {
          t.notOk(r.content, `${name} 204: no body`);
          continue;
        }
        const media = Object.entries(r.content ?? {});
        t.ok(media.length, `${name} ${code}: has content`);
        for (const [type, m] of media) {
          t.ok(m.schema, `${name} ${code} ${type}: schema`);
          const examples = examplesOf(m);
          t.ok(examples.length, `${name} ${code} ${type}: an example`);
          if (type === 'application/json' && m.schema) {
            const validate = ajv.compile(m.schema);
            for (const ex of examples) t.ok(validate(ex), `${name} ${code}: the example fits the schema ${ajv.errorsText(validate.errors)}`);
          } else if ((m.schema as { type?: string } | undefined)?.type === 'string') {
            for (const ex of examples) t.type(ex, 'string', `${name} ${code} ${type}: the example is text`);
          }
          if (type === XML_TYPE) {
            for (const ex of examples) {
              const sections = parseAnswer(String(ex), false);
              t.ok(sections.has('VERS') && sections.has('TOKEN') && sections.get('APPLICATION')?.OperationResult, `${name} ${code}: the XML example is a provisioning document with VERS, TOKEN and an OperationResult`);
            }
          }
        }
        if (/^4/.test(code) && !path.startsWith('/gsma/') && r.content?.['application/json']?.schema) {
          t.match(r.content['application/json'].schema, { required: ['error', 'message'] }, `${name} ${code}: the ApiError body`);
        }
      }
    }
  }
  t.ok(routes > 60, `${routes} routes described`);
});

t.test('a representative call of every route answers a documented status and schema', async (t) => {
  const w = await startWorld(t, { config: { adminToken: ADMIN_TOKEN, resetEnabled: true } });
  const doc = w.app.swagger() as unknown as Doc;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const op = await familyOperator(w, 6);
  const opKey = { 'x-api-key': op.apiKey };
  const es2 = (fn: string, body: object) => ({ method: 'POST', url: `/gsma/rsp2/es2plus/${fn}`, headers: opKey, payload: { header: { functionRequesterIdentifier: op.id, functionCallIdentifier: randomUUID() }, ...body } });
  const es12 = (fn: string, body: object) => ({ method: 'POST', url: `/gsma/rsp2/es12/${fn}`, headers: { 'x-api-key': ownEs12Key(w.pki) }, payload: { header: { functionRequesterIdentifier: w.pki.smdpOid, functionCallIdentifier: randomUUID() }, ...body } });
  const call = async (o: InjectOptions) => w.app.inject(o);
  const json = (r: LightMyRequestResponse) => r.json() as Record<string, any>;

  // What the calls below refer to.
  const order = json(await call({ method: 'POST', url: '/admin/orders', headers: admin, payload: {} }));
  const gid = json(await call({ method: 'POST', url: '/family/groups', headers: opKey, payload: { name: 'Doc family' } })).id as string;
  await call({ method: 'PUT', url: `/family/groups/${gid}/plan`, headers: opKey, payload: { profileType: PROFILE_TYPE, dataMb: 1000, msisdns: ['447700900001'] } });
  const owner = json(await call({ method: 'POST', url: `/family/groups/${gid}/members`, headers: opKey, payload: { name: 'Olivia', role: 'owner' } }));
  const kid = json(await call({ method: 'POST', url: `/family/groups/${gid}/members`, headers: opKey, payload: { name: 'Kim', role: 'child' } }));
  const line = json(await call({ method: 'POST', url: `/family/groups/${gid}/members/${kid.id}/lines`, headers: opKey, payload: { device: 'phone', numberMode: 'shared' } }));
  const spare = json(await call({ method: 'POST', url: `/family/groups/${gid}/members/${kid.id}/lines`, headers: opKey, payload: { device: 'watch', numberMode: 'shared' } }));
  const ownerToken = { authorization: `Bearer ${owner.token}` };
  const kidToken = { authorization: `Bearer ${kid.token}` };
  const hex = () => randomBytes(16).toString('hex');
  const template = buildProfile({ iccid: '89000123456789012341', imsi: '001010123456789', ki: Buffer.alloc(16, 1), opc: Buffer.alloc(16, 2), spn: 'Doc', profileType: 'doc' });
  const iccid = withLuhn(`8944${String(Date.now()).slice(-12)}000`);
  let es2Iccid = '';
  let faultId = '';
  let caught = '';
  let purchase = '';
  const m = `/family/groups/${gid}/members/${kid.id}`;
  const l = `${m}/lines/${line.id}`;
  // The TS.43 entitlement endpoint: the kid's phone is the primary device; its line has no number, the plan's number is free (DiffNumber).
  const ts43 = { app: 'ap2006', vers: '0', terminal_id: '356938035643809', entitlement_version: '2.0' };
  const ts43Url = (p: Record<string, string>) => `/ts43?${new URLSearchParams({ ...ts43, ...p })}`;
  const watchEid = eidWithCheckDigits('890490320000000000000000004242');
  const xmlApp = (r: LightMyRequestResponse) => parseAnswer(r.body, false).get('APPLICATION') ?? {};

  /** In the order they run: creations before reads, deletions last. */
  const calls: Array<[string, () => InjectOptions | Promise<InjectOptions>, ((r: LightMyRequestResponse) => void)?]> = [
    ['POST /gsma/rsp2/es9plus/initiateAuthentication', () => ({ method: 'POST', url: '/gsma/rsp2/es9plus/initiateAuthentication', payload: { euiccChallenge: 'AAAA', euiccInfo1: 'AAAA', smdpAddress: w.config.smdpAddress } })],
    ['POST /gsma/rsp2/es9plus/authenticateClient', () => ({ method: 'POST', url: '/gsma/rsp2/es9plus/authenticateClient', payload: { transactionId: '00', authenticateServerResponse: 'AAAA' } })],
    ['POST /gsma/rsp2/es9plus/getBoundProfilePackage', () => ({ method: 'POST', url: '/gsma/rsp2/es9plus/getBoundProfilePackage', payload: { transactionId: '00', prepareDownloadResponse: 'AAAA' } })],
    ['POST /gsma/rsp2/es9plus/handleNotification', () => ({ method: 'POST', url: '/gsma/rsp2/es9plus/handleNotification', payload: { pendingNotification: 'AAAA' } })],
    ['POST /gsma/rsp2/es9plus/cancelSession', () => ({ method: 'POST', url: '/gsma/rsp2/es9plus/cancelSession', payload: { transactionId: '00', cancelSessionResponse: 'AAAA' } })],
    ['POST /gsma/rsp2/es11/initiateAuthentication', () => ({ method: 'POST', url: '/gsma/rsp2/es11/initiateAuthentication', payload: { euiccChallenge: 'AAAA', euiccInfo1: 'AAAA', smdpAddress: smdsAddressOf(w.config) } })],
    ['POST /gsma/rsp2/es11/authenticateClient', () => ({ method: 'POST', url: '/gsma/rsp2/es11/authenticateClient', payload: { transactionId: '534D4453', authenticateServerResponse: 'AAAA' } })],
    ['POST /gsma/rsp2/es12/registerEvent', () => es12('registerEvent', { eid: '89049032123451234512345678901235', eventId: 'DOC-EVENT-1', rspServerAddress: w.config.smdpAddress }), (r) => t.equal(json(r).header.functionExecutionStatus.status, 'Executed-Success', 'registerEvent: registered')],
    ['POST /gsma/rsp2/es12/deleteEvent', () => es12('deleteEvent', { eid: '89049032123451234512345678901235', eventId: 'DOC-EVENT-1' }), (r) => t.equal(json(r).header.functionExecutionStatus.status, 'Executed-Success', 'deleteEvent: deleted')],
    ['POST /gsma/rsp2/es2plus/downloadOrder', () => es2('downloadOrder', { profileType: PROFILE_TYPE }), (r) => (es2Iccid = json(r).iccid)],
    ['POST /gsma/rsp2/es2plus/confirmOrder', () => es2('confirmOrder', { iccid: es2Iccid, releaseFlag: false })],
    ['POST /gsma/rsp2/es2plus/releaseProfile', () => es2('releaseProfile', { iccid: es2Iccid })],
    ['POST /gsma/rsp2/es2plus/cancelOrder', () => es2('cancelOrder', { iccid: es2Iccid, finalProfileStatusIndicator: 'Available' })],

    ['POST /admin/profile-types', () => ({ method: 'POST', url: '/admin/profile-types', headers: admin, payload: { name: 'doc-type', serviceProviderName: 'Doc', profileName: 'Doc profile', template: template.toString('base64') } })],
    ['GET /admin/profile-types', () => ({ method: 'GET', url: '/admin/profile-types', headers: admin })],
    ['GET /admin/profile-types/{name}/template', () => ({ method: 'GET', url: '/admin/profile-types/doc-type/template', headers: admin })],
    ['POST /admin/operators', () => ({ method: 'POST', url: '/admin/operators', headers: admin, payload: { id: 'doc-op', name: 'Doc operator', callbackUrl: 'http://127.0.0.1:9/cb' } })],
    ['GET /admin/operators', () => ({ method: 'GET', url: '/admin/operators', headers: admin })],
    ['POST /admin/inventory/import', () => ({ method: 'POST', url: '/admin/inventory/import', headers: admin, payload: { type: 'doc-type', operator: 'doc-op', format: 'json', data: [{ iccid, imsi: '001019876543210', ki: hex(), opc: hex() }] } })],
    ['POST /admin/inventory/generate', () => ({ method: 'POST', url: '/admin/inventory/generate', headers: admin, payload: { type: 'doc-type', count: 2 } })],
    ['GET /admin/inventory', () => ({ method: 'GET', url: '/admin/inventory?type=doc-type', headers: admin })],
    ['POST /admin/orders', () => ({ method: 'POST', url: '/admin/orders', headers: admin, payload: { iccid, confirmationCode: '1234' } })],
    ['GET /admin/orders', () => ({ method: 'GET', url: '/admin/orders', headers: admin })],
    ['GET /admin/orders/{iccid}/history', () => ({ method: 'GET', url: `/admin/orders/${order.iccid}/history`, headers: admin })],
    ['GET /admin/profiles', () => ({ method: 'GET', url: '/admin/profiles?state=Released', headers: admin })],
    ['GET /admin/profiles/{iccid}', () => ({ method: 'GET', url: `/admin/profiles/${order.iccid}`, headers: admin })],
    ['GET /admin/profiles/{iccid}/keys', () => ({ method: 'GET', url: `/admin/profiles/${order.iccid}/keys`, headers: admin })],
    ['GET /admin/activation-codes/{matchingId}', () => ({ method: 'GET', url: `/admin/activation-codes/${order.matchingId}`, headers: admin })],
    ['GET /admin/activation-codes/{matchingId}.png', () => ({ method: 'GET', url: `/admin/activation-codes/${order.matchingId}.png`, headers: admin })],
    ['GET /admin/activation-codes/{matchingId}.svg', () => ({ method: 'GET', url: `/admin/activation-codes/${order.matchingId}.svg`, headers: admin })],
    ['POST /admin/faults', () => ({ method: 'POST', url: '/admin/faults', headers: admin, payload: { matchingId: order.matchingId, mode: 'fail', subjectCode: '8.2.6', reasonCode: '3.8' } }), (r) => (faultId = json(r).id)],
    ['GET /admin/faults', () => ({ method: 'GET', url: '/admin/faults', headers: admin })],
    ['DELETE /admin/faults/{id}', () => ({ method: 'DELETE', url: `/admin/faults/${faultId}`, headers: admin })],

    ['GET /family/groups', () => ({ method: 'GET', url: '/family/groups', headers: opKey })],
    ['GET /family/groups/{gid}', () => ({ method: 'GET', url: `/family/groups/${gid}`, headers: ownerToken })],
    ['PATCH /family/groups/{gid}', () => ({ method: 'PATCH', url: `/family/groups/${gid}`, headers: opKey, payload: { name: 'Doc family 2' } })],
    ['PUT /family/groups/{gid}/plan', () => ({ method: 'PUT', url: `/family/groups/${gid}/plan`, headers: opKey, payload: { profileType: PROFILE_TYPE, dataMb: 2000, msisdns: ['447700900001'] } })],
    ['POST /family/groups/{gid}/members', () => ({ method: 'POST', url: `/family/groups/${gid}/members`, headers: opKey, payload: { name: 'Adam', role: 'adult' } })],
    ['GET /family/groups/{gid}/members/{mid}', () => ({ method: 'GET', url: m, headers: kidToken })],
    ['PATCH /family/groups/{gid}/members/{mid}', () => ({ method: 'PATCH', url: m, headers: opKey, payload: { name: 'Kimberly' } })],
    ['PUT /family/groups/{gid}/members/{mid}/caps', () => ({ method: 'PUT', url: `${m}/caps`, headers: ownerToken, payload: { dataMb: 500, atCap: 'throttle' } })],
    ['POST /family/groups/{gid}/members/{mid}/lines', () => ({ method: 'POST', url: `${m}/lines`, headers: opKey, payload: { device: 'tablet', numberMode: 'shared' } })],
    ['GET /family/groups/{gid}/members/{mid}/lines/{lid}', () => ({ method: 'GET', url: l, headers: kidToken })],
    ['PATCH /family/groups/{gid}/members/{mid}/lines/{lid}', () => ({ method: 'PATCH', url: l, headers: opKey, payload: { name: 'Kim phone' } })],
    ['POST /family/groups/{gid}/members/{mid}/lines/{lid}/profile', () => ({ method: 'POST', url: `${l}/profile`, headers: ownerToken, payload: {} })],
    ['GET /family/groups/{gid}/view', () => ({ method: 'GET', url: `/family/groups/${gid}/view`, headers: opKey })],
    ['GET /family/me', () => ({ method: 'GET', url: '/family/me', headers: kidToken })],
    ['POST /family/groups/{gid}/lines/{lid}/usage', () => ({ method: 'POST', url: `/family/groups/${gid}/lines/${line.id}/usage`, headers: opKey, payload: { kind: 'data', amount: 100 } })],
    ['GET /family/groups/{gid}/usage', () => ({ method: 'GET', url: `/family/groups/${gid}/usage`, headers: ownerToken })],
    ['GET /family/groups/{gid}/members/{mid}/usage', () => ({ method: 'GET', url: `${m}/usage`, headers: kidToken })],
    ['GET /family/groups/{gid}/usage/events', () => ({ method: 'GET', url: `/family/groups/${gid}/usage/events`, headers: opKey })],
    ['GET /family/groups/{gid}/clock', () => ({ method: 'GET', url: `/family/groups/${gid}/clock`, headers: opKey })],
    ['POST /family/groups/{gid}/clock/advance', () => ({ method: 'POST', url: `/family/groups/${gid}/clock/advance`, headers: opKey, payload: { days: 1 } })],
    ['POST /family/groups/{gid}/rollover', () => ({ method: 'POST', url: `/family/groups/${gid}/rollover`, headers: opKey })],
    ['GET /family/groups/{gid}/events', () => ({ method: 'GET', url: `/family/groups/${gid}/events?limit=5`, headers: opKey })],
    ['POST /family/groups/{gid}/members/{mid}/lines/{lid}/move', () => ({ method: 'POST', url: `${m}/lines/${spare.id}/move`, headers: opKey, payload: {} })],
    ['GET /health', () => ({ method: 'GET', url: '/health' })],
    ['POST /catcher/{bin}', () => ({ method: 'POST', url: '/catcher/doc', payload: { header: { functionRequesterIdentifier: 'x' } } }), (r) => (caught = json(r).caught)],
    ['PUT /catcher/{bin}', () => ({ method: 'PUT', url: '/catcher/doc', headers: { 'content-type': 'text/plain' }, payload: 'hello' })],
    ['PATCH /catcher/{bin}', () => ({ method: 'PATCH', url: '/catcher/doc', payload: {} })],
    ['DELETE /catcher/{bin}', () => ({ method: 'DELETE', url: '/catcher/doc' })],
    ['GET /admin/catcher', () => ({ method: 'GET', url: '/admin/catcher?bin=doc', headers: admin })],
    ['GET /admin/catcher/requests/{id}', () => ({ method: 'GET', url: `/admin/catcher/requests/${caught}`, headers: admin })],
    ['DELETE /admin/catcher', () => ({ method: 'DELETE', url: '/admin/catcher?bin=doc', headers: admin })],
    ['GET /admin/callbacks', () => ({ method: 'GET', url: '/admin/callbacks', headers: admin })],
    ['GET /admin/smds/events', () => ({ method: 'GET', url: '/admin/smds/events?limit=5', headers: admin })],
    ['POST /admin/smds/clients', () => ({ method: 'POST', url: '/admin/smds/clients', headers: admin, payload: { requester: 'smdp.other.example' } })],
    ['GET /admin/family/groups', () => ({ method: 'GET', url: '/admin/family/groups', headers: admin })],
    ['GET /admin/family/groups/{gid}', () => ({ method: 'GET', url: `/admin/family/groups/${gid}`, headers: admin })],
    ['PUT /family/groups/{gid}/time-zone', () => ({ method: 'PUT', url: `/family/groups/${gid}/time-zone`, headers: ownerToken, payload: { timeZone: 'Europe/London' } })],
    ['PUT /family/groups/{gid}/emergency-numbers', () => ({ method: 'PUT', url: `/family/groups/${gid}/emergency-numbers`, headers: opKey, payload: { numbers: ['112', '999'] } })],
    ['PUT /family/groups/{gid}/roaming', () => ({ method: 'PUT', url: `/family/groups/${gid}/roaming`, headers: opKey, payload: { homeCountry: 'GB', dataMb: 500, atAllowance: 'block' } })],
    ['PUT /family/groups/{gid}/passes', () => ({ method: 'PUT', url: `/family/groups/${gid}/passes`, headers: opKey, payload: { currency: 'EUR', passes: [{ id: 'roam-day', name: 'Day pass', kind: 'roaming', dataMb: 500, validityHours: 24, price: 500 }] } })],
    ['GET /family/groups/{gid}/passes', () => ({ method: 'GET', url: `/family/groups/${gid}/passes`, headers: kidToken })],
    ['PUT /family/groups/{gid}/members/{mid}/controls', () => ({ method: 'PUT', url: `${m}/controls`, headers: ownerToken, payload: { timeWindows: [{ name: 'school', blocks: ['data'], days: ['mon'], from: '08:00', to: '15:00' }], spendLimit: 100 } })],
    ['PUT /family/groups/{gid}/members/{mid}/trusted-numbers', () => ({ method: 'PUT', url: `${m}/trusted-numbers`, headers: ownerToken, payload: { numbers: ['447700900001'] } })],
    ['GET /family/groups/{gid}/members/{mid}/controls', () => ({ method: 'GET', url: `${m}/controls`, headers: kidToken })],
    ['GET /family/groups/{gid}/controls', () => ({ method: 'GET', url: `/family/groups/${gid}/controls`, headers: ownerToken })],
    ['POST /family/groups/{gid}/members/{mid}/purchases', () => ({ method: 'POST', url: `${m}/purchases`, headers: kidToken, payload: { pass: 'roam-day' } }), (r) => { purchase = r.json().purchase.id; }],
    ['GET /family/groups/{gid}/members/{mid}/purchases', () => ({ method: 'GET', url: `${m}/purchases`, headers: kidToken })],
    ['GET /family/groups/{gid}/purchases', () => ({ method: 'GET', url: `/family/groups/${gid}/purchases?status=pending`, headers: ownerToken })],
    ['POST /family/groups/{gid}/purchases/{pid}/approve', () => ({ method: 'POST', url: `/family/groups/${gid}/purchases/${purchase}/approve`, headers: ownerToken, payload: { note: 'ok' } })],
    ['POST /family/groups/{gid}/purchases/{pid}/decline', async () => {
      const r = await call({ method: 'POST', url: `${m}/purchases`, headers: kidToken, payload: { pass: 'roam-day' } });
      return { method: 'POST', url: `/family/groups/${gid}/purchases/${json(r).purchase.id}/decline`, headers: ownerToken };
    }],
    ['GET /ts43', () => ({ method: 'GET', url: ts43Url({ operation: 'CheckEligibility', token: kid.token }), headers: { accept: XML_TYPE } }), (r) => {
      t.match(xmlApp(r), { AppID: 'ap2006', OperationResult: '1', CompanionAppEligibility: '1', CompanionDeviceServices: 'DiffNumber' }, 'GET /ts43 (XML, token in the query): eligible for DiffNumber');
    }],
    ['GET /ts43', () => ({ method: 'GET', url: ts43Url({ operation: 'CheckEligibility' }), headers: { ...kidToken, accept: 'application/json' } }), (r) => {
      t.match(json(r), { Vers: { version: '1', validity: '0' }, Token: { token: kid.token }, ap2006: { OperationResult: '1', CompanionAppEligibility: '1' } }, 'GET /ts43 (JSON, bearer token): the same answer');
    }],
    ['POST /ts43', () => ({
      method: 'POST', url: '/ts43', headers: { ...kidToken, accept: 'application/json' },
      payload: { ...ts43, vers: 0, operation: 'ManageSubscription', operation_type: 0, companion_terminal_id: 'doc-watch', companion_terminal_eid: watchEid, companion_terminal_service: 'DiffNumber', companion_terminal_model: 'Watch 4' },
    }), (r) => {
      t.match(json(r).ap2006, { OperationResult: '1', SubscriptionResult: '2', GeneralErrorText: undefined, DownloadInfo: { ProfileIccid: /^\d{19,20}$/, ProfileSmdpAddress: w.config.smdpAddress } }, 'POST /ts43 (JSON): subscribed, with the download information');
      t.match(Buffer.from(String(json(r).ap2006.DownloadInfo?.ProfileActivationCode), 'base64').toString(), /^LPA:1\$/, 'POST /ts43: the activation code, base64');
    }],
    ['POST /ts43', () => ({ method: 'POST', url: '/ts43', headers: { accept: XML_TYPE }, payload: { ...ts43, token: kid.token, operation: 'AcquireConfiguration' } }), (r) => {
      t.match(parseAnswer(r.body, false).get('APPLICATION|CompanionConfigurations|CompanionConfiguration'), { CompanionTerminalId: 'doc-watch', CompanionTerminalEid: watchEid, ServiceStatus: '2' }, 'POST /ts43 (XML, token in the body): the watch, activating');
    }],
    ['GET /admin/entitlement/companions', () => ({ method: 'GET', url: `/admin/entitlement/companions?group=${gid}&limit=10`, headers: admin }), (r) => {
      t.match(json(r).companions, [{ groupId: gid, memberId: kid.id, terminalId: 'doc-watch', eid: watchEid, service: 'DiffNumber', msisdn: '447700900001', state: 'active' }], 'the admin list: the watch');
    }],
    ['GET /admin/smds/orders/{iccid}', () => ({ method: 'GET', url: `/admin/smds/orders/${order.iccid}`, headers: admin })],
    ['DELETE /family/groups/{gid}/members/{mid}/lines/{lid}', () => ({ method: 'DELETE', url: `${m}/lines/${spare.id}`, headers: opKey })],
    ['DELETE /family/groups/{gid}/members/{mid}', () => ({ method: 'DELETE', url: m, headers: opKey })],
    ['DELETE /family/groups/{gid}', () => ({ method: 'DELETE', url: `/family/groups/${gid}`, headers: opKey })],
    ['POST /family/groups', () => ({ method: 'POST', url: '/family/groups', headers: opKey, payload: { name: 'Another family' } })],
    ['POST /admin/reset', () => ({ method: 'POST', url: '/admin/reset', headers: admin })],
  ];

  const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.entries(ops).filter(([, op]) => !isStream(op)).map(([k]) => `${k.toUpperCase()} ${p}`));
  for (const name of documented) t.ok(calls.some(([n]) => n === name), `${name}: has a representative call`);

  // The TS.43 refusals of the request itself (while the kid's token is valid): the documented 4xx with the ApiError body.
  const refusals: Array<[string, InjectOptions, number]> = [
    ['GET /ts43', { method: 'GET', url: ts43Url({ operation: 'CheckEligibility' }), headers: { accept: XML_TYPE } }, 401],
    ['GET /ts43', { method: 'GET', url: ts43Url({ operation: 'CheckEligibility', token: 'fam_unknown' }) }, 401],
    ['GET /ts43', { method: 'GET', url: ts43Url({ operation: 'CheckEligibility', app: 'ap2009' }), headers: kidToken }, 400],
    ['POST /ts43', { method: 'POST', url: '/ts43', headers: kidToken, payload: { ...ts43, vers: 'zero', operation: 'CheckEligibility' } }, 400],
    ['POST /ts43', { method: 'POST', url: '/ts43', headers: { ...kidToken, 'content-type': 'application/json' }, payload: '[1]' }, 400],
  ];
  for (const [name, o, status] of refusals) {
    const [method, path] = name.split(' ') as [string, string];
    const r = await call(o);
    t.equal(r.statusCode, status, `${name} refused: ${status} ${r.body}`);
    const schema = doc.paths[path]?.[method.toLowerCase()]?.responses?.[String(status)]?.content?.['application/json']?.schema;
    if (!t.ok(schema, `${name}: ${status} documented as JSON`)) continue;
    t.match(String(r.headers['content-type']), /^application\/json/, `${name} ${status}: JSON`);
    const validate = ajv.compile(schema!);
    t.ok(validate(r.json()), `${name} ${status}: the body fits the documented schema ${ajv.errorsText(validate.errors)}`);
  }

  for (const [name, make, after] of calls) {
    const [method, path] = name.split(' ') as [string, string];
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!t.ok(op, `${name} is documented`)) continue;
    const r = await call(await make());
    const documentedAnswer = op!.responses?.[String(r.statusCode)] ?? op!.responses?.[`${String(r.statusCode)[0]}XX`];
    if (!t.ok(documentedAnswer, `${name}: ${r.statusCode} is documented (${Object.keys(op!.responses ?? {}).join(', ')}) ${r.statusCode >= 400 ? r.body : ''}`)) continue;
    t.ok(r.statusCode < 400, `${name}: the representative call succeeds (${r.statusCode} ${r.statusCode >= 400 ? r.body : ''})`);
    if (r.statusCode === 204) {
      t.equal(r.body, '', `${name}: 204 without a body`);
      continue;
    }
    const type = String(r.headers['content-type'] ?? '').split(';')[0]!;
    const media = documentedAnswer!.content?.[type];
    if (!t.ok(media, `${name}: answers ${type}, documented as ${Object.keys(documentedAnswer!.content ?? {}).join(', ')}`)) continue;
    if (type === 'application/json') {
      const validate = ajv.compile(media!.schema!);
      t.ok(validate(r.json()), `${name}: ${r.statusCode} body fits the documented schema ${ajv.errorsText(validate.errors)}`);
    } else if ((media!.schema as { type?: string } | undefined)?.type === 'string' && !/^(image|application\/octet-stream)/.test(type)) {
      // A text answer (the TS.43 provisioning XML, an activation code, an SVG): the documented string schema.
      const validate = ajv.compile(media!.schema!);
      t.ok(r.body.length > 0 && validate(r.body), `${name}: ${r.statusCode} ${type} body fits the documented schema ${ajv.errorsText(validate.errors)}`);
    }
    if (type === XML_TYPE) {
      t.match(r.body, /^<\?xml version="1\.0" encoding="utf-8"\?>\n<wap-provisioningdoc version="1\.1">/, `${name}: a WAP provisioning document`);
      const sections = parseAnswer(r.body, false);
      t.ok(sections.has('VERS') && sections.has('TOKEN') && sections.get('APPLICATION')?.OperationResult, `${name}: VERS, TOKEN and APPLICATION with an OperationResult`);
    }
    after?.(r);
  }
});

t.test('the 4xx answers fit their documented schema: a call without credentials, and one with a bad value', async (t) => {
  const w = await startWorld(t, { config: { adminToken: ADMIN_TOKEN } });
  const doc = w.app.swagger() as unknown as Doc;
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (!path.startsWith('/admin') && !path.startsWith('/family') && path !== '/ts43') continue;
    for (const [method, op] of Object.entries(ops)) {
      const name = `${method.toUpperCase()} ${path}`;
      const url = path.replace(/\{[^}]+\}/g, 'x1');
      const payload = /^(post|put|patch)$/.test(method) ? {} : undefined;
      const tries: Array<[string, InjectOptions]> = [
        ['no credentials', { method: method.toUpperCase() as 'GET', url, ...(payload ? { payload } : {}) }],
      ];
      // A NUL in the first query parameter, with credentials: the 400 of the schema.
      const q = (op as { parameters?: Array<{ in: string; name: string }> }).parameters?.find((p) => p.in === 'query');
      if (q && path.startsWith('/admin')) tries.push(['NUL in a query parameter', { method: method.toUpperCase() as 'GET', url: `${url}?${q.name}=%00`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, ...(payload ? { payload } : {}) }]);
      for (const [what, o] of tries) {
        const r = await w.app.inject(o);
        const documented = op.responses?.[String(r.statusCode)];
        if (!t.ok(documented, `${name}, ${what}: ${r.statusCode} documented`)) continue;
        const schema = documented!.content?.['application/json']?.schema;
        if (!t.ok(schema, `${name}, ${what}: a JSON schema`)) continue;
        const validate = ajv.compile(schema!);
        t.ok(validate(r.json()), `${name}, ${what}: ${r.statusCode} body fits ${ajv.errorsText(validate.errors)}`);
      }
    }
  }
});
