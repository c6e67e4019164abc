/**
 * Never a 500 on input: every admin, family and entitlement route (as the OpenAPI document lists
 * them, so new routes are covered too) gets bad path parameters, bad query values (NUL, a lone
 * surrogate's bytes, huge numbers, very long text, a repeated parameter) and bodies with each field
 * replaced by NUL, a lone surrogate, huge and negative numbers, wrong types and references to
 * things that do not exist — on top of a world where the good references do exist. The TS.43
 * endpoint (GET, HEAD and POST /ts43, docs/entitlement.md) gets them in every parameter of each of
 * its operations, on top of a good request of that operation, so the bad value reaches the
 * operation. Each answer is below 500, and a 4xx is the ApiError JSON body.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import type { InjectOptions } from 'fastify';
import { eidWithCheckDigits, withLuhn } from '../../src/rsp/identifiers.js';
import { familyOperator, PROFILE_TYPE } from '../helpers/family.js';
import { startWorld } from '../helpers/world.js';

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; enum?: unknown[]; minimum?: number; items?: Schema; nullable?: boolean };
type Op = { responses?: Record<string, { content?: Record<string, unknown> }>; parameters?: Array<{ in: string; name: string; schema?: Schema }>; requestBody?: { content?: Record<string, { schema?: Schema }> } };

const BAD_VALUES: unknown[] = ['a\u0000b', 'a\uDC00b', '\uD83D', 1e308, -1, 2 ** 53, 1.5, '', 'x'.repeat(5000), [], {}, null, true, [1, 'a\u0000']];
const BAD_PATH = ['%00', 'a%00b', 'x'.repeat(300), '99999999999999999999999999', '%F0%9F%93%B6', 'ghost', '-1', '%25'];
const BAD_QUERY = ['%00', 'a%00b', '%ED%B0%80', '%ED%A0%BD', '1e308', '-1', 'abc', '99999999999999999999', '', '%FF', 'x'.repeat(5000)];

let seq = 0;
/** A plausible value for a field, by its name and schema (good enough to get past the first checks). */
function sample(name: string, s: Schema, ctx: { matchingId: string }): unknown {
  if (s.enum?.length) return s.enum[0];
  const byName: Record<string, () => unknown> = {
    iccid: () => withLuhn(`8944${String(Date.now()).slice(-10)}${String(seq++ % 100).padStart(2, '0')}0`.slice(0, 19)),
    eid: () => '89049032123451234512345678901235',
    matchingId: () => ctx.matchingId,
    confirmationCode: () => '1234',
    profileType: () => PROFILE_TYPE,
    type: () => 'default',
    id: () => `op-fz-${seq++}`,
    name: () => `fuzz ${seq++}`,
    msisdn: () => '447700900001',
    msisdns: () => ['447700900001'],
    callbackUrl: () => 'http://127.0.0.1:9/cb',
    imsi: () => `00101${String(seq++).padStart(10, '0')}`,
    ki: () => '00112233445566778899aabbccddeeff',
    opc: () => '00112233445566778899aabbccddeeff',
    data: () => [],
  };
  if (byName[name]) return byName[name]!();
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === 'string') return 'x';
  if (type === 'integer' || type === 'number') return s.minimum !== undefined && s.minimum > 0 ? s.minimum : 1;
  if (type === 'boolean') return true;
  if (type === 'array') return [];
  if (type === 'object') return body(s, ctx);
  return 'x';
}

function body(s: Schema, ctx: { matchingId: string }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(s.properties ?? {})) out[k] = sample(k, p, ctx);
  return out;
}

/** Good TS.43 requests, one per operation (docs/entitlement.md): each parameter is then made bad in turn on top of them. */
function ts43Requests(token: string): Array<Record<string, string>> {
  const common = { app: 'ap2006', vers: '0', entitlement_version: '2.0', terminal_id: '356938035643809', terminal_vendor: 'Fuzz', terminal_model: 'Phone', token };
  const watch = { companion_terminal_id: 'watch-fz-1', companion_terminal_eid: eidWithCheckDigits('890490320000000000000000000101'), companion_terminal_model: 'Watch', companion_terminal_friendly_name: 'Fuzz watch' };
  const next = { companion_terminal_id: 'watch-fz-2', companion_terminal_eid: eidWithCheckDigits('890490320000000000000000000202') };
  return [
    { ...common, operation: 'CheckEligibility', companion_terminal_id: watch.companion_terminal_id },
    { ...common, operation: 'ManageSubscription', operation_type: '0', ...watch, companion_terminal_service: 'DiffNumber' },
    { ...common, operation: 'AcquireConfiguration' },
    { ...common, operation: 'ManageSubscription', operation_type: '3', old_terminal_id: watch.companion_terminal_id, ...next },
    { ...common, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: next.companion_terminal_id },
  ];
}

/** Tokens with the member-token prefix that hold what the database must not see. */
const TS43_BAD_TOKENS = ['fam_\u0000', 'fam_a\u0000b', 'fam_\uDC00', 'fam_\uD83D', `fam_${'x'.repeat(5000)}`];
/** The same in a query (a lone surrogate as its UTF-8 bytes, which are no valid UTF-8). */
const TS43_BAD_TOKENS_QUERY = ['fam_%00', 'fam_a%00b', 'fam_%ED%B0%80', 'fam_%ED%A0%BD', `fam_${'x'.repeat(5000)}`, 'fam_%FF'];

const query = (params: Record<string, string>, raw: Record<string, string> = {}) =>
  [...Object.entries(params).filter(([k]) => !(k in raw)).map(([k, v]) => `${k}=${encodeURIComponent(v)}`), ...Object.entries(raw).map(([k, v]) => `${k}=${v}`)].join('&');

t.test('never a 500 on input: every admin, family and entitlement route', async (t) => {
  const w = await startWorld(t);
  const op = await familyOperator(w, 8);
  const key = { 'x-api-key': op.apiKey };
  const order = (await w.app.inject({ method: 'POST', url: '/admin/orders', payload: {} })).json();
  const fault = (await w.app.inject({ method: 'POST', url: '/admin/faults', payload: { matchingId: order.matchingId, mode: 'drop' } })).json();
  const fam = async (method: string, url: string, payload?: object) => (await w.app.inject({ method: method as 'POST', url: `/family${url}`, headers: key, ...(payload ? { payload } : {}) })).json();
  const group = await fam('POST', '/groups', { name: 'Fuzz family' });
  await fam('PUT', `/groups/${group.id}/plan`, { profileType: PROFILE_TYPE, dataMb: 1000, msisdns: ['447700900001', '447700900002'] });
  const owner = await fam('POST', `/groups/${group.id}/members`, { name: 'Owner', role: 'owner' });
  const member = await fam('POST', `/groups/${group.id}/members`, { name: 'Kid', role: 'child' });
  const line = await fam('POST', `/groups/${group.id}/members/${member.id}/lines`, { device: 'phone', numberMode: 'shared' });
  const good: Record<string, string> = {
    gid: group.id, mid: member.id, lid: line.id, iccid: order.iccid, matchingId: order.matchingId, name: 'default', id: fault.id,
  };
  const ctx = { matchingId: order.matchingId as string };
  const creds = [key, { authorization: `Bearer ${owner.token}` }, { authorization: `Bearer ${member.token}` }];
  // Odd credentials: long, empty, a member-token prefix alone (or with a very long rest), non-ASCII bytes, an odd scheme.
  const BAD_HEADERS: Record<string, Record<string, string>> = {
    longBearer: { authorization: `Bearer ${'x'.repeat(8000)}` },
    emptyBearer: { authorization: 'Bearer ' },
    prefixOnly: { authorization: 'Bearer fam_' },
    longMemberToken: { authorization: `Bearer fam_${'x'.repeat(8000)}` },
    latin1Key: { 'x-api-key': '\u00ff\u00fe' },
    emptyKey: { 'x-api-key': '' },
    basic: { authorization: 'Basic Zm9vOmJhcg==' },
  };

  const doc = w.app.swagger() as unknown as { paths: Record<string, Record<string, Op>> };
  const rank = (o: { method: string; path: string }) => (o.path === '/ts43' ? -1 : Number(o.method === 'DELETE' || o.path === '/admin/reset'));
  const ops = Object.entries(doc.paths)
    .filter(([p]) => p.startsWith('/admin') || p.startsWith('/family') || p === '/ts43')
    .flatMap(([p, o]) => Object.entries(o).map(([m, op]) => ({ method: m.toUpperCase(), path: p, op })))
    // A stream (the console's Server-Sent Events) answers for as long as it is read: not a request/answer route.
    .filter(({ op }) => !Object.values(op.responses ?? {}).some((r) => r.content?.['text/event-stream']))
    // The TS.43 endpoint first, while the plan still has free numbers (the other routes add lines);
    // deletions (and the reset) last, so the other routes meet the references alive.
    .sort((a, b) => rank(a) - rank(b));
  t.ok(ops.length > 40, `${ops.length} admin, family and entitlement routes`);
  t.same(ops.filter((o) => o.path === '/ts43').map((o) => o.method).sort(), ['GET', 'POST'], 'the TS.43 endpoint is among them');
  t.ok(ops.some((o) => o.path === '/admin/entitlement/companions'), 'and the admin list of companions');

  let sent = 0;
  let ts43Sent = 0;
  const worst: string[] = [];
  const byStatus: Record<number, number> = {};
  async function send(name: string, o: InjectOptions) {
    sent++;
    if (name.includes('/ts43')) ts43Sent++;
    const r = await w.app.inject(o);
    byStatus[r.statusCode] = (byStatus[r.statusCode] ?? 0) + 1;
    if (r.statusCode >= 500) worst.push(`${name}: ${r.statusCode} ${r.body.slice(0, 200)}`);
    else if (r.statusCode >= 400 && o.method !== 'HEAD' && String(r.headers['content-type']).startsWith('application/json')) {
      const b = r.json();
      if (typeof b.error !== 'string' || typeof b.message !== 'string') worst.push(`${name}: ${r.statusCode} not an ApiError body: ${r.body.slice(0, 200)}`);
    }
    return r;
  }

  const ts43 = ts43Requests(member.token);
  for (const { method, path, op } of ops) {
    if (path === '/ts43') {
      // Every parameter of the schema (the POST body's: the GET query's, with the token the OpenAPI
      // document lists as a security scheme), bad in turn, on top of a good request of each operation.
      const names = Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {});
      const queryNames = [...new Set([...(op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name), 'token'])];
      for (const [i, good] of ts43.entries()) {
        const { token: _token, ...noToken } = good;
        if (method === 'GET') {
          const methods = i === 0 ? ['GET', 'HEAD'] : ['GET'];
          for (const m of methods) {
            const r = await send(`${m} /ts43 ${good.operation} good`, { method: m as 'GET', url: `/ts43?${query(good)}`, headers: { accept: 'application/json' } });
            if (m === 'GET') t.equal(r.statusCode === 200 && r.json().ap2006?.OperationResult, '1', `GET /ts43 ${good.operation} ${good.operation_type ?? ''}: a good request succeeds, so bad values meet a working operation ${r.body.slice(0, 300)}`);
            for (const q of queryNames) {
              for (const v of q === 'token' ? [...BAD_QUERY, ...TS43_BAD_TOKENS_QUERY] : BAD_QUERY) await send(`${m} /ts43 ${good.operation} ${q}=${v.slice(0, 20)}`, { method: m as 'GET', url: `/ts43?${query(good, { [q]: v })}` });
              // A repeated parameter (an array to the schema).
              await send(`${m} /ts43 ${good.operation} ${q} twice`, { method: m as 'GET', url: `/ts43?${query(good)}&${q}=${encodeURIComponent(good[q] ?? 'x')}` });
            }
            for (const [k, v] of Object.entries(BAD_HEADERS)) await send(`${m} /ts43 ${good.operation} header ${k}`, { method: m as 'GET', url: `/ts43?${query(noToken)}`, headers: v });
            // Bad parameter names (NUL, a lone surrogate's bytes, very long).
            for (const k of ['%00', 'a%00b', '%ED%B0%80', 'x'.repeat(5000)]) await send(`${m} /ts43 ${good.operation} name ${k.slice(0, 20)}`, { method: m as 'GET', url: `/ts43?${query(good)}&${k}=1` });
          }
        } else {
          const post = (payload: unknown, headers: Record<string, string> = {}): InjectOptions => ({ method: 'POST', url: '/ts43', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(payload) });
          const r = await send(`POST /ts43 ${good.operation} good`, post(good, { accept: 'application/json' }));
          t.equal(r.statusCode === 200 && r.json().ap2006?.OperationResult, '1', `POST /ts43 ${good.operation} ${good.operation_type ?? ''}: a good request succeeds ${r.body.slice(0, 300)}`);
          for (const field of names) {
            for (const v of field === 'token' ? [...BAD_VALUES, ...TS43_BAD_TOKENS] : BAD_VALUES) await send(`POST /ts43 ${good.operation} ${field}=${JSON.stringify(v).slice(0, 20)}`, post({ ...good, [field]: v }));
          }
          for (const b of [[], 'text', 42, null, { [randomUUID()]: 'x' }]) {
            await send(`POST /ts43 body ${JSON.stringify(b)}`, post(b));
            await send(`POST /ts43 body ${JSON.stringify(b)} with a bearer token`, post(b, { authorization: `Bearer ${member.token}` }));
          }
          for (const [k, v] of Object.entries(BAD_HEADERS)) await send(`POST /ts43 ${good.operation} header ${k}`, post(noToken, v));
          for (const k of ['\u0000', 'a\u0000b', '\uDC00', '\uD83D', 'x'.repeat(5000)]) await send(`POST /ts43 ${good.operation} name ${JSON.stringify(k).slice(0, 20)}`, post({ ...good, [k]: 'x' }));
        }
      }
      continue;
    }
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
    const url = (over: Record<string, string> = {}) => path.replace(/\{(\w+)\}/g, (_m, n: string) => over[n] ?? good[n] ?? 'x');
    const schema = op.requestBody?.content?.['application/json']?.schema;
    const hasBody = method !== 'GET' && method !== 'DELETE';
    const base = schema ? body(schema, ctx) : {};
    const headers = path.startsWith('/family') ? key : {};
    const req = (u: string, payload?: unknown, h: Record<string, string> = headers): InjectOptions => ({
      method: method as 'POST', url: u, headers: h, ...(hasBody ? { payload: payload === undefined ? base : (payload as object) } : {}),
    });

    // Path parameters: each one bad in turn.
    for (const p of params) for (const v of BAD_PATH) await send(`${method} ${path} ${p}=${v}`, req(url({ [p]: v })));
    // Query parameters: each one bad in turn.
    for (const q of (op.parameters ?? []).filter((x) => x.in === 'query')) {
      for (const v of BAD_QUERY) await send(`${method} ${path}?${q.name}=${v}`, req(`${url()}?${q.name}=${v}`));
    }
    if (hasBody) {
      // Whole bodies of the wrong kind, and each field replaced by each bad value.
      for (const b of [[], 'text', 42, null, { [randomUUID()]: 'x' }]) await send(`${method} ${path} body ${JSON.stringify(b)}`, { ...req(url(), b), headers: { ...headers, 'content-type': 'application/json' }, payload: JSON.stringify(b) });
      for (const field of Object.keys(schema?.properties ?? {})) {
        for (const v of BAD_VALUES) await send(`${method} ${path} ${field}=${JSON.stringify(v)}`, req(url(), { ...base, [field]: v }));
        // A reference that does not exist.
        if (typeof base[field] === 'string') await send(`${method} ${path} ${field}=unknown`, req(url(), { ...base, [field]: `ghost-${field}` }));
      }
      await send(`${method} ${path} sample body`, req(url(), base));
    }
    // Odd credentials: long, empty, a member-token prefix alone, non-ASCII bytes, both kinds at once.
    const odd: Array<Record<string, string>> = [...Object.values(BAD_HEADERS), { authorization: `Bearer ${member.token}`, ...key }];
    for (const h of odd) {
      await send(`${method} ${path} with ${JSON.stringify(h).slice(0, 40)}`, req(url(), undefined, h));
    }
    // Each credential on the good path (the family routes answer 401/403/404 by who calls).
    if (path.startsWith('/family')) for (const c of creds) await send(`${method} ${path} as ${Object.keys(c)[0]}`, req(url(), undefined, c));
    else await send(`${method} ${path}`, req(url()));
  }
  t.ok(sent > 1000, `${sent} requests sent`);
  t.ok(ts43Sent > 2000, `${ts43Sent} of them to /ts43`);
  t.comment(`answers by status: ${JSON.stringify(byStatus)}`);
  t.ok(Object.keys(byStatus).some((s) => /^2/.test(s)), 'some calls get through to the handlers');
  t.same(worst, [], 'no answer of 500 or more, every 4xx an ApiError body');
});
