/**
 * The adversarial inputs of issue 9, each with its answer: NUL and lone surrogates in text fields
 * (400 naming the field on REST routes, the SGP.22 format error on ES2+ and ES9+), references to
 * things that do not exist (4xx naming them), numbers past what the database holds, and the admin
 * token checked on the routed path whatever the path's encoding. Every 4xx is { error, message, details? }.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import t, { type Test } from 'tap';
import type { InjectOptions } from 'fastify';
import { withLuhn } from '../../src/rsp/identifiers.js';
import { statusOf } from '../helpers/es2plus.js';
import { familyOperator, PROFILE_TYPE } from '../helpers/family.js';
import { startWorld } from '../helpers/world.js';

const NUL = 'a\u0000b';
const LONE = 'a\uD800b';
const hex = () => randomBytes(16).toString('hex');

/** An ApiError answer: status, code, and the field or reference its details name. */
function apiError(t: Test, r: { statusCode: number; json(): any }, status: number, code: string, details?: Record<string, unknown>, what = '') {
  t.equal(r.statusCode, status, `${what}: HTTP ${status}`);
  const b = r.json();
  t.equal(b.error, code, `${what}: error ${code}`);
  t.type(b.message, 'string', `${what}: a message`);
  t.same(Object.keys(b).filter((k) => !['error', 'message', 'details'].includes(k)), [], `${what}: only error, message, details`);
  if (details) t.match(b.details, details, `${what}: details name it`);
}

t.test('NUL and lone surrogates: 400 naming the field on admin and family routes', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 0);
  const inject = (o: InjectOptions) => w.app.inject(o);
  const before = await w.db.query<{ n: number }>('SELECT count(*)::int AS n FROM profiles');

  for (const [label, bad] of [['NUL', NUL], ['lone surrogate', LONE]] as const) {
    const inUrl = encodeURIComponent(NUL);
    const cases: Array<[string, InjectOptions, string]> = [
      ['admin order confirmationCode', { method: 'POST', url: '/admin/orders', payload: { confirmationCode: bad } }, 'body.confirmationCode'],
      ['admin order profileType', { method: 'POST', url: '/admin/orders', payload: { profileType: bad } }, 'body.profileType'],
      ['operator name', { method: 'POST', url: '/admin/operators', payload: { id: 'op-x', name: bad } }, 'body.name'],
      ['operator id', { method: 'POST', url: '/admin/operators', payload: { id: bad, name: 'x' } }, 'body.id'],
      ['operator callbackUrl', { method: 'POST', url: '/admin/operators', payload: { id: 'op-y', name: 'x', callbackUrl: `http://h/${bad}` } }, 'body.callbackUrl'],
      ['profile type names', { method: 'POST', url: '/admin/profile-types', payload: { name: 'ok', serviceProviderName: bad, profileName: 'p' } }, 'body.serviceProviderName'],
      ['inventory import CSV text', { method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', format: 'csv', data: `iccid,imsi,ki,opc\n${withLuhn('898820000000000001')},001019990000001,${hex()},${hex()}${bad}\n` } }, 'body.data'],
      ['inventory import JSON row', { method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', format: 'json', data: [{ iccid: withLuhn('898820000000000002'), imsi: '001019990000002', ki: hex(), opc: hex(), type: bad }] } }, 'body.data.0.type'],
      ['inventory import JSON text', { method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', format: 'json', data: `[{"iccid":"${bad}"}]` } }, 'body.data'],
      ['inventory import operator', { method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', operator: bad, format: 'json', data: [] } }, 'body.operator'],
      ['fault message', { method: 'POST', url: '/admin/faults', payload: { eid: '8'.repeat(32), mode: 'drop', message: bad } }, 'body.message'],
      // A URL carries NUL percent-encoded; a lone surrogate has no UTF-8 form (below).
      ...(bad === NUL ? [
        ['inventory query', { method: 'GET', url: `/admin/inventory?operator=${inUrl}` }, 'querystring.operator'],
        ['profile path', { method: 'GET', url: `/admin/profiles/${inUrl}` }, 'params.iccid'],
        ['profile type path', { method: 'GET', url: `/admin/profile-types/${inUrl}/template` }, 'params.name'],
      ] as Array<[string, InjectOptions, string]> : []),
      ['a property name', { method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', format: 'json', data: [{ [bad]: 1 }] } }, 'body.data.0'],
    ];
    for (const [what, o, field] of cases) {
      apiError(t, await inject(o), 400, 'invalid', { field: new RegExp(`^${field.replace(/\./g, '\\.')}`), rule: 'text' }, `${label} in ${what}`);
    }
    const fam = (method: string, url: string, payload?: object) => inject({ method: method as 'POST', url: `/family${url}`, headers: { 'x-api-key': op.apiKey }, ...(payload ? { payload } : {}) });
    apiError(t, await fam('POST', '/groups', { name: bad }), 400, 'invalid', { field: 'body.name', rule: 'text' }, `${label} in a family group name`);
    const gid = (await fam('POST', '/groups', { name: 'ok' })).json().id;
    apiError(t, await fam('POST', `/groups/${gid}/members`, { name: bad, role: 'adult' }), 400, 'invalid', { field: 'body.name' }, `${label} in a member name`);
    if (bad === NUL) apiError(t, await fam('GET', `/groups/${gid}/events?type=${inUrl}`), 400, 'invalid', { field: 'querystring.type' }, `${label} in an event filter`);
  }
  // The bytes a lone surrogate would have (CESU-8) are not UTF-8: a path with them is refused by the
  // router (400), a query string decodes them to U+FFFD, which is text like any other.
  const bad = await inject({ method: 'GET', url: '/admin/profiles/a%ED%A0%80b' });
  t.equal(bad.statusCode, 400, 'a lone surrogate in a path: 400');
  t.match(bad.json(), { error: 'invalid', message: String }, 'with the ApiError body');
  t.equal((await inject({ method: 'GET', url: '/admin/inventory?operator=a%ED%A0%80b' })).statusCode, 200, 'in a query string: U+FFFD, no such operator');
  t.same(await w.db.query('SELECT count(*)::int AS n FROM profiles'), before, 'nothing was created');
  t.same(await w.db.query(`SELECT id FROM operators WHERE id <> $1`, [op.id]), [], 'no operator was created');

  // A well-formed surrogate pair (an emoji) is text like any other.
  const r = await inject({ method: 'POST', url: '/admin/operators', payload: { id: 'op-emoji', name: 'Opérateur 📶' } });
  t.equal(r.statusCode, 201, 'a surrogate pair is accepted');
  t.equal(r.json().name, 'Opérateur 📶');
});

t.test('NUL and lone surrogates on ES2+ and ES9+: the SGP.22 format error, not 1.2/4.2', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 2);
  const es2 = async (fn: string, body: Record<string, unknown>, header?: Record<string, unknown>) => {
    const r = await w.app.inject({
      method: 'POST', url: `/gsma/rsp2/es2plus/${fn}`, headers: { 'x-api-key': op.apiKey },
      payload: { header: header ?? { functionRequesterIdentifier: op.id, functionCallIdentifier: randomUUID() }, ...body },
    });
    t.equal(r.statusCode, 200, `${fn}: HTTP 200 (an SGP.22 function status)`);
    return statusOf(r.json());
  };
  for (const bad of [NUL, LONE]) {
    const label = bad === NUL ? 'NUL' : 'lone surrogate';
    t.equal(await es2('downloadOrder', { profileType: `${PROFILE_TYPE}${bad}` }), 'Failed 1.3.1/2.1', `${label} in downloadOrder profileType`);
    t.equal(await es2('downloadOrder', { profileType: PROFILE_TYPE, eid: `8904${bad}` }), 'Failed 8.1.1/2.1', `${label} in downloadOrder eid: the EID's 2.1`);
    t.equal(await es2('downloadOrder', { iccid: `8900${bad}` }), 'Failed 8.2.1/2.1', `${label} in downloadOrder iccid: the ICCID's 2.1`);
    t.equal(await es2('downloadOrder', { profileType: PROFILE_TYPE }, { functionRequesterIdentifier: op.id, functionCallIdentifier: bad }), 'Failed 1.3.1/2.1', `${label} in the request header`);
    t.equal(await es2('confirmOrder', { iccid: withLuhn('890001234567890123'), releaseFlag: true, matchingId: `AB${bad}` }), 'Failed 8.2.6/2.1', `${label} in confirmOrder matchingId`);
    t.equal(await es2('confirmOrder', { iccid: withLuhn('890001234567890123'), releaseFlag: true, confirmationCode: bad }), 'Failed 1.3.1/2.1', `${label} in a confirmation code`);

    const r = await w.app.inject({ method: 'POST', url: '/gsma/rsp2/es9plus/initiateAuthentication', payload: { euiccChallenge: 'AAAA', euiccInfo1: 'AAAA', smdpAddress: `${w.config.smdpAddress}${bad}` } });
    t.equal(r.statusCode, 200);
    t.equal(statusOf(r.json()), 'Failed 1.3.1/2.1', `${label} in an ES9+ smdpAddress`);
  }
  t.equal(await es2('downloadOrder', { profileType: PROFILE_TYPE }), 'Executed-Success', 'the operator still orders normally');
  // An unauthenticated caller learns nothing about its body, even a bad one.
  const anon = await w.app.inject({ method: 'POST', url: '/gsma/rsp2/es2plus/downloadOrder', payload: { header: { functionRequesterIdentifier: 'x', functionCallIdentifier: NUL } } });
  t.equal(statusOf(anon.json()), 'Failed 1.1/1.1', 'credentials are checked before the body');
});

t.test('references to things that do not exist: a 4xx naming them', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 0);
  const inject = (o: InjectOptions) => w.app.inject(o);
  const profiles = async () => (await w.db.query<{ n: number }>('SELECT count(*)::int AS n FROM profiles'))[0]!.n;
  const n = await profiles();

  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { profileType: 'no-such-type' } }), 404, 'notFound', { profileType: 'no-such-type' }, 'an order of an unknown profile type');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { count: 3, profileType: 'no-such-type' } }), 404, 'notFound', { profileType: 'no-such-type' }, 'many orders of an unknown profile type');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { iccid: withLuhn('894400000000000001'), profileType: 'nope' } }), 404, 'notFound', { profileType: 'nope' }, 'a new ICCID of an unknown profile type');
  t.equal(await profiles(), n, 'no profile was created');
  t.match((await inject({ method: 'POST', url: '/admin/orders', payload: { profileType: 'no-such-type' } })).json().message, /no-such-type/, 'the message names it');

  const row = { iccid: withLuhn('898820000000000003'), imsi: '001019990000003', ki: hex(), opc: hex() };
  apiError(t, await inject({ method: 'POST', url: '/admin/inventory/import', payload: { type: 'ghost', format: 'json', data: [row] } }), 404, 'notFound', { profileTypes: ['ghost'] }, 'an import of an unknown type');
  apiError(t, await inject({ method: 'POST', url: '/admin/inventory/import', payload: { type: 'default', operator: 'op-ghost', format: 'json', data: [row] } }), 404, 'notFound', { operator: 'op-ghost' }, 'an import for an unknown operator');
  apiError(t, await inject({ method: 'POST', url: '/admin/inventory/generate', payload: { type: 'default', count: 1, operator: 'op-ghost' } }), 404, 'notFound', { operator: 'op-ghost' }, 'generation for an unknown operator');
  apiError(t, await inject({ method: 'POST', url: '/admin/inventory/generate', payload: { type: 'ghost', count: 1 } }), 404, 'notFound', { profileTypes: ['ghost'] }, 'generation of an unknown type');
  apiError(t, await inject({ method: 'DELETE', url: '/admin/faults/424242' }), 404, 'notFound', { fault: '424242' }, 'an unknown fault');
  apiError(t, await inject({ method: 'DELETE', url: '/admin/faults/not-a-number' }), 404, 'notFound', { fault: 'not-a-number' }, 'a fault id that cannot exist');
  apiError(t, await inject({ method: 'GET', url: `/admin/profiles/${withLuhn('894400000000000002')}` }), 404, 'notFound', { profile: withLuhn('894400000000000002') }, 'an unknown profile');
  apiError(t, await inject({ method: 'GET', url: `/admin/orders/${withLuhn('894400000000000002')}/history` }), 404, 'notFound', { profile: withLuhn('894400000000000002') }, "an unknown profile's history");
  apiError(t, await inject({ method: 'GET', url: '/admin/profile-types/ghost/template' }), 404, 'notFound', { profileType: 'ghost' }, 'an unknown profile type');
  apiError(t, await inject({ method: 'GET', url: '/admin/activation-codes/NO-SUCH-ORDER' }), 404, 'notFound', { matchingId: 'NO-SUCH-ORDER' }, 'an unknown MatchingID');

  const fam = (method: string, url: string, payload?: object) => inject({ method: method as 'POST', url: `/family${url}`, headers: { 'x-api-key': op.apiKey }, ...(payload ? { payload } : {}) });
  apiError(t, await fam('GET', '/groups/fg_ghost'), 404, 'notFound', { group: 'fg_ghost' }, 'an unknown group');
  apiError(t, await fam('GET', '/groups/fg_ghost/usage'), 404, 'notFound', { group: 'fg_ghost' }, "an unknown group's usage");
  const gid = (await fam('POST', '/groups', { name: 'G' })).json().id as string;
  apiError(t, await fam('GET', `/groups/${gid}/members/fm_ghost`), 404, 'notFound', { member: 'fm_ghost' }, 'an unknown member');
  apiError(t, await fam('GET', `/groups/${gid}/members/fm_ghost/usage`), 404, 'notFound', { member: 'fm_ghost' }, "an unknown member's usage");
  const mid = (await fam('POST', `/groups/${gid}/members`, { name: 'M', role: 'adult' })).json().id as string;
  apiError(t, await fam('GET', `/groups/${gid}/members/${mid}/lines/fl_ghost`), 404, 'notFound', { line: 'fl_ghost' }, 'an unknown line');
  const plan = await fam('PUT', `/groups/${gid}/plan`, { profileType: 'ghost' });
  t.ok(plan.statusCode >= 400 && plan.statusCode < 500, 'a plan of an unknown profile type: 4xx');
  t.match(plan.json().message, /ghost/, 'naming it');
});

t.test('numbers and dates past what the database holds: 400 naming the field', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 0);
  const inject = (o: InjectOptions) => w.app.inject(o);
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { expiresIn: 1e300 } }), 400, 'invalid', { field: 'body.expiresIn' }, 'expiresIn 1e300');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { count: 2 ** 53 } }), 400, 'invalid', { field: 'body.count' }, 'count 2^53');
  apiError(t, await inject({ method: 'POST', url: '/admin/operators', payload: { id: 'op-big', name: 'x', orderTtlSeconds: 1e15 } }), 400, 'invalid', { field: 'body.orderTtlSeconds' }, 'orderTtlSeconds 1e15');
  apiError(t, await inject({ method: 'GET', url: '/admin/inventory?offset=100000000000000000000' }), 400, 'invalid', { field: 'querystring.offset' }, 'offset 1e20');
  apiError(t, await inject({ method: 'GET', url: '/admin/orders?limit=abc' }), 400, 'invalid', { field: 'querystring.limit' }, 'limit abc');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: { eid: 12 } }), 400, 'invalid', { field: 'body.eid' }, 'a number for a string');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', payload: [] }), 400, 'invalid', { field: 'body' }, 'an array for the body');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', headers: { 'content-type': 'application/json' }, payload: '{"count":' }), 400, 'invalid', { field: 'body' }, 'malformed JSON');
  const deep = `{"type":"default","format":"json","data":${'['.repeat(500_000)}${']'.repeat(500_000)}}`;
  apiError(t, await inject({ method: 'POST', url: '/admin/inventory/import', headers: { 'content-type': 'application/json' }, payload: deep }), 400, 'invalid', undefined, 'an import nested half a million deep');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', headers: { 'content-type': 'application/xml' }, payload: '<x/>' }), 415, 'unsupportedMediaType', undefined, 'application/xml');
  apiError(t, await inject({ method: 'POST', url: '/admin/orders', headers: { 'content-type': 'text/plain' }, payload: 'x' }), 400, 'invalid', { field: 'body' }, 'text for the body');

  const fam = (method: string, url: string, payload?: object) => inject({ method: method as 'POST', url: `/family${url}`, headers: { 'x-api-key': op.apiKey }, ...(payload ? { payload } : {}) });
  const gid = (await fam('POST', '/groups', { name: 'G' })).json().id as string;
  apiError(t, await fam('GET', `/groups/${gid}/events?after=99999999999999999999`), 400, 'invalid', { field: 'querystring.after' }, 'an event id past bigint');
  apiError(t, await fam('GET', `/groups/${gid}/usage?cycle=2026-13-45`), 400, 'invalid', { field: 'querystring.cycle' }, 'a date that does not exist');
  apiError(t, await fam('POST', `/groups/${gid}/clock/advance`, { seconds: 1e18 }), 400, 'invalid', { field: 'body.seconds' }, 'seconds 1e18');
  apiError(t, await fam('PUT', `/groups/${gid}/plan`, { profileType: PROFILE_TYPE, dataMb: 1e12 }), 400, 'invalid', { field: 'body.dataMb' }, 'dataMb 1e12');
});

t.test('with ADMIN_TOKEN, the token is checked on the routed path, whatever its encoding', async (t) => {
  const token = 'admin-token-for-encoding-test';
  const w = await startWorld(t, { config: { adminToken: token } });
  const inject = (o: InjectOptions) => w.app.inject(o);
  const orders = async () => (await w.db.query<{ n: number }>('SELECT count(*)::int AS n FROM profiles'))[0]!.n;

  apiError(t, await inject({ method: 'GET', url: '/%61dmin/operators' }), 401, 'unauthorised', undefined, 'GET /%61dmin/operators');
  apiError(t, await inject({ method: 'POST', url: '/%61dmin/orders', payload: {} }), 401, 'unauthorised', undefined, 'POST /%61dmin/orders');
  apiError(t, await inject({ method: 'POST', url: '/%61%64%6d%69%6e/orders', payload: {} }), 401, 'unauthorised', undefined, 'POST fully encoded');
  apiError(t, await inject({ method: 'GET', url: '/admin/%6fperators' }), 401, 'unauthorised', undefined, 'GET /admin/%6fperators');
  apiError(t, await inject({ method: 'GET', url: '/admin%2Fno-such-route' }), 401, 'unauthorised', undefined, 'an encoded slash: no route, still an admin path');
  apiError(t, await inject({ method: 'GET', url: '/admin/no-such-route' }), 401, 'unauthorised', undefined, 'an unknown admin path: 401 before 404');
  t.equal(await orders(), 0, 'no order was created without the token');
  t.equal((await inject({ method: 'GET', url: '/%61dmin/operators', headers: { authorization: `Bearer ${token}` } })).statusCode, 200, 'with the token, served');
  t.equal((await inject({ method: 'GET', url: '/admin/no-such-route', headers: { authorization: `Bearer ${token}` } })).statusCode, 404, 'with the token, an unknown path is a 404');

  // Every route under /admin — whoever registered it — refuses a caller without the token, plainly or encoded.
  const doc = w.app.swagger() as unknown as { paths: Record<string, Record<string, unknown>> };
  const adminOps = Object.entries(doc.paths).filter(([p]) => p.startsWith('/admin')).flatMap(([p, ops]) => Object.keys(ops).map((m) => [m.toUpperCase(), p] as const));
  t.ok(adminOps.length > 20, `${adminOps.length} admin routes`);
  for (const [method, path] of adminOps) {
    const url = path.replace(/\{[^}]+\}/g, 'x1');
    for (const u of [url, url.replace('/admin', '/%61dmin')]) {
      const r = await inject({ method: method as 'GET', url: u, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
      t.equal(r.statusCode, 401, `${method} ${u} without the token: 401`);
      const wrong = await inject({ method: method as 'GET', url: u, headers: { authorization: 'Bearer wrong' }, ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }) });
      t.equal(wrong.statusCode, 401, `${method} ${u} with a wrong token: 401`);
    }
  }
});
