/**
 * Family controls REST API (under /family, registered by usage-routes.ts; docs/family.md):
 *
 *   GET  /family/groups/:gid/controls                    the group's and every member's controls    operator, owner
 *   PUT  /family/groups/:gid/time-zone                   {timeZone}                                  operator, owner
 *   PUT  /family/groups/:gid/emergency-numbers           {numbers | null}                            operator
 *   PUT  /family/groups/:gid/roaming                     {homeCountry, dataMb, voiceMin, sms, atAllowance}  operator
 *   GET  /family/groups/:gid/passes                      the add-ons on sale                          operator, any member
 *   PUT  /family/groups/:gid/passes                      {currency?, passes: […]}                    operator
 *   GET  /family/groups/:gid/members/:mid/controls       one member's controls                        operator, owner, the member
 *   PUT  /family/groups/:gid/members/:mid/controls       {timeWindows?, trustedNumbers?, roaming?, spendLimit?}  operator; owner: children, itself
 *   PUT  /family/groups/:gid/members/:mid/trusted-numbers {numbers}                                  as controls
 *   POST /family/groups/:gid/members/:mid/purchases      {pass}: buy (201; pending when it waits)     operator, owner, the member
 *   GET  /family/groups/:gid/members/:mid/purchases      the member's purchases                       operator, owner, the member
 *   GET  /family/groups/:gid/purchases[?status=]         every purchase of the group                  operator, owner
 *   POST /family/groups/:gid/purchases/:pid/approve      {note?}                                      operator, owner (never a child)
 *   POST /family/groups/:gid/purchases/:pid/decline      {note?}                                      operator, owner
 *
 * Each handler, as in routes.ts: the caller (401), the body (400), the group/member (404), the
 * permission (403), then the change in one transaction; refusals render as `{ error, message }`.
 */
import type { FastifyInstance } from 'fastify';
import type { Database, Queryable } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply, OPERATOR_ONLY } from '../openapi.js';
import { loadSchemas } from '../schemas.js';
import {
  checkGroupOperator, checkMayBuy, checkMayDecidePurchase, checkMayReadGroup, checkMayReadMember, checkMayReadPasses, checkMaySetControls,
  checkMaySetTimeZone, principalLabel, type Principal,
} from './auth.js';
import { groupClock } from './clock.js';
import { groupRoutes } from './group-route.js';
import {
  groupControlsOf, localTime, memberControlsOf, setEmergencyNumbers, setMemberControls, setPassOffers, setRoamingPlan, setTimeZone,
  type MemberControls, type PassOffer, type RoamingPlan,
} from './controls.js';
import { approvePurchase, buyPass, declinePurchase, listPurchases, publicPurchase, type Buyer, type PurchaseStatus } from './purchases.js';
import { getMember, listMembers, type GroupRow, type MemberRow } from './store.js';

const tags = ['family'];
const idParam = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;
const params = (...names: string[]) => ({ type: 'object', required: names, properties: Object.fromEntries(names.map((n) => [n, idParam])) });
type P = { gid: string; mid: string; pid: string };

const open = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: true, required, properties });
const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const nint = { type: 'integer', nullable: true } as const;
const at = '2026-01-15T12:00:00.000Z';

const E403 = errorReply(403, { error: 'forbidden', message: 'only the group owner (or the operator) approves or declines purchases; a child cannot' });
const E404 = errorReply(404, { error: 'notFound', message: 'no family group fg_nope', details: { group: 'fg_nope' } });
const E409 = (message: string) => errorReply(409, { error: 'conflict', message });

const windowExample = { name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '15:00' };
const memberControlsSchema = open({
  timeWindows: { type: 'array', items: open({ name: str, blocks: { type: 'array', items: str }, days: { type: 'array', items: str }, from: str, to: str }) },
  trustedNumbers: { type: 'array', items: str },
  roaming: open({ dataMb: nint, voiceMin: nint, sms: nint }),
  spendLimit: nint,
}, ['timeWindows', 'trustedNumbers', 'roaming', 'spendLimit']);
const memberControlsExample = { timeWindows: [windowExample, { name: 'night', blocks: ['data'], days: ['sun', 'mon', 'tue', 'wed', 'thu'], from: '21:00', to: '07:00' }], trustedNumbers: ['447700900001'], roaming: { dataMb: 500, voiceMin: null, sms: null }, spendLimit: 1000 };
const memberControlsReply = open({ groupId: str, memberId: str, name: str, role: str, controls: memberControlsSchema }, ['memberId', 'controls']);
const memberControlsReplyExample = { groupId: 'fg_3k9x2', memberId: 'fm_7q2', name: 'Kim', role: 'child', controls: memberControlsExample };

const passSchema = open({ id: str, name: str, kind: { type: 'string', enum: ['roaming', 'data'] }, dataMb: int, voiceMin: int, sms: int, validityHours: int, price: int });
const passExample = { id: 'roam-day', name: 'Roaming day pass', kind: 'roaming', dataMb: 500, voiceMin: 30, sms: 30, validityHours: 24, price: 500 };
const passesSchema = open({ groupId: str, currency: str, passes: { type: 'array', items: passSchema } }, ['currency', 'passes']);
const passesExample = { groupId: 'fg_3k9x2', currency: 'EUR', passes: [passExample, { id: 'data-1gb', name: 'Extra 1 GB', kind: 'data', dataMb: 1024, voiceMin: 0, sms: 0, validityHours: 720, price: 300 }] };

const roamingSchema = open({ homeCountry: { type: 'string', nullable: true }, dataMb: int, voiceMin: int, sms: int, atAllowance: { type: 'string', enum: ['block', 'throttle'] } });
const roamingExample = { homeCountry: 'GB', dataMb: 2048, voiceMin: 100, sms: 100, atAllowance: 'block' };
const groupControlsSchema = open({
  groupId: str, timeZone: str, emergencyNumbers: { type: 'array', items: str }, localTime: str, roaming: roamingSchema, passes: passesSchema,
  members: { type: 'array', items: memberControlsReply },
}, ['groupId', 'timeZone', 'emergencyNumbers', 'roaming', 'members']);
const groupControlsExample = {
  groupId: 'fg_3k9x2', timeZone: 'Europe/London', emergencyNumbers: ['112', '911', '999', '000', '110', '119'], localTime: 'thu 13:00', roaming: roamingExample,
  passes: { currency: 'EUR', passes: [passExample] }, members: [memberControlsReplyExample],
};

const purchaseSchema = open({
  id: str, memberId: str, passId: str, kind: str, price: int, currency: str,
  status: { type: 'string', enum: ['pending', 'active', 'declined'] }, state: { type: 'string', enum: ['pending', 'declined', 'active', 'used-up', 'expired'] },
  requestedBy: str, decidedBy: { type: 'string', nullable: true }, expiresAt: { type: 'string', nullable: true },
}, ['id', 'memberId', 'passId', 'status', 'state']);
const purchaseExample = {
  id: 'fp_5e1c', groupId: 'fg_3k9x2', memberId: 'fm_7q2', passId: 'roam-day', name: 'Roaming day pass', kind: 'roaming',
  allowance: { dataMb: 500, voiceMin: 30, sms: 30 }, used: { dataMb: 0, voiceMin: 0, sms: 0 }, remaining: { dataMb: 500, voiceMin: 30, sms: 30 },
  validityHours: 24, price: 500, currency: 'EUR', status: 'pending', state: 'pending', requestedBy: 'member:fm_7q2', decidedBy: null,
  requestedAt: at, decidedAt: null, activatedAt: null, expiresAt: null, cycle: null,
};
const outcomeSchema = open({ purchase: purchaseSchema, spend: open({ spent: int, limit: nint, currency: str }), overLimit: { type: 'boolean' } }, ['purchase', 'spend', 'overLimit']);
const outcomeExample = { purchase: purchaseExample, spend: { spent: 800, limit: 1000, currency: 'EUR' }, overLimit: true };
const activeExample = { ...purchaseExample, status: 'active', state: 'active', decidedBy: 'member:fm_owner', decidedAt: at, activatedAt: at, expiresAt: '2026-01-16T12:00:00.000Z', cycle: '2026-01-01' };

function buyerOf(p: Principal): Buyer {
  return p.kind === 'operator'
    ? { kind: 'operator', label: principalLabel(p) }
    : { kind: 'member', memberId: p.member.id, role: p.member.role, label: principalLabel(p) };
}

export async function familyControlRoutes(app: FastifyInstance, deps: { db: Database }) {
  const { db } = deps;
  const schemas = loadSchemas('family');
  const s = (name: string) => {
    const x = schemas.get(name);
    if (!x) throw new Error(`schema family/${name} missing`);
    return x;
  };

  const route = groupRoutes<P>(app, db, { tags, tx: true });
  const ok = (description: string, schema: Record<string, unknown>, example: unknown, status = 200, more: Record<string, unknown> = {}) =>
    ({ [status]: jsonReply(description, schema, example), 403: E403, 404: E404, ...more });

  async function loadMember(q: Queryable, g: GroupRow, mid: string, lock = false): Promise<MemberRow> {
    const m = await getMember(q, g.id, mid, { lock });
    if (!m) throw new ApiError(404, 'notFound', `no member ${mid} in group ${g.id}`, { group: g.id, member: mid });
    return m;
  }
  const memberReply = (m: MemberRow) => ({ groupId: m.group_id, memberId: m.id, name: m.name, role: m.role, controls: memberControlsOf(m) });
  const passesReply = (g: GroupRow) => {
    const c = groupControlsOf(g);
    return { groupId: g.id, currency: c.passes.currency, passes: c.passes.offers };
  };
  async function groupControlsReply(q: Queryable, g: GroupRow) {
    const c = groupControlsOf(g);
    const { now } = await groupClock(q, g.id);
    return {
      groupId: g.id, timeZone: c.timeZone, emergencyNumbers: c.emergencyNumbers, localTime: localTime(now, c.timeZone).text, roaming: c.roaming,
      passes: { currency: c.passes.currency, passes: c.passes.offers }, members: (await listMembers(q, g.id)).map(memberReply),
    };
  }

  // ---- the group's settings
  route('GET', '/groups/:gid/controls', {
    summary: "The group's controls (time zone, emergency numbers, roaming plan, passes) and every member's (operator, group owner)",
    params: params('gid'), response: ok('The controls', groupControlsSchema, groupControlsExample),
  }, async ({ principal, q, group }) => {
    checkMayReadGroup(principal, group);
    return groupControlsReply(q, group);
  });

  route<{ timeZone: string }>('PUT', '/groups/:gid/time-zone', {
    summary: "Set the group's time zone, the IANA zone time windows are read in (operator, group owner)", params: params('gid'), body: s('time-zone'),
    response: ok('The controls', groupControlsSchema, groupControlsExample, 200, { 400: errorReply(400, { error: 'invalid', message: 'unknown time zone "Mars/Olympus": give an IANA name such as Europe/Berlin or America/New_York' }) }),
  }, async ({ principal, q, group, body, by }) => {
    checkMaySetTimeZone(principal, group);
    return groupControlsReply(q, await setTimeZone(q, group, body.timeZone, by));
  });

  route<{ numbers: string[] | null }>('PUT', '/groups/:gid/emergency-numbers', {
    ...OPERATOR_ONLY, summary: "Set the group's emergency numbers, always allowed (null: the default set) (operator)", params: params('gid'), body: s('emergency-numbers'),
    response: ok('The controls', groupControlsSchema, groupControlsExample),
  }, async ({ principal, q, group, body, by }) => {
    checkGroupOperator(principal, group, 'set emergency numbers');
    return groupControlsReply(q, await setEmergencyNumbers(q, group, body.numbers, by));
  });

  route<Partial<RoamingPlan>>('PUT', '/groups/:gid/roaming', {
    ...OPERATOR_ONLY, summary: "Set the group's roaming plan: home country, pooled roaming allowance, block or throttle at it (operator)", params: params('gid'), body: s('roaming'),
    response: ok('The controls', groupControlsSchema, groupControlsExample),
  }, async ({ principal, q, group, body, by }) => {
    checkGroupOperator(principal, group, 'set the roaming plan');
    return groupControlsReply(q, await setRoamingPlan(q, group, body, by));
  });

  route('GET', '/groups/:gid/passes', {
    summary: 'The passes (add-ons) the group sells (operator, any member of the group)', params: params('gid'), response: ok('The passes', passesSchema, passesExample),
  }, async ({ principal, group }) => {
    checkMayReadPasses(principal, group);
    return passesReply(group);
  });

  route<{ currency?: string; passes: PassOffer[] }>('PUT', '/groups/:gid/passes', {
    ...OPERATOR_ONLY, summary: 'Set the passes the group sells (operator)', params: params('gid'), body: s('passes'), response: ok('The passes', passesSchema, passesExample),
  }, async ({ principal, q, group, body, by }) => {
    checkGroupOperator(principal, group, 'set the passes');
    return passesReply(await setPassOffers(q, group, { currency: body.currency, offers: body.passes }, by));
  });

  // ---- a member's controls
  route('GET', '/groups/:gid/members/:mid/controls', {
    summary: "A member's controls (operator, group owner, the member)", params: params('gid', 'mid'), response: ok("The member's controls", memberControlsReply, memberControlsReplyExample),
  }, async ({ principal, q, group, params: p }) => {
    checkMayReadMember(principal, group, p.mid);
    return memberReply(await loadMember(q, group, p.mid));
  });

  route<Partial<MemberControls>>('PUT', '/groups/:gid/members/:mid/controls', {
    summary: "Set a member's time windows, trusted numbers, roaming allowance and spend limit; parts left out stay (operator; the owner for its children and itself)",
    params: params('gid', 'mid'), body: s('controls'),
    response: ok("The member's controls", memberControlsReply, memberControlsReplyExample, 200, { 400: errorReply(400, { error: 'invalid', message: 'two time windows are named "school"; a window\'s name names its rule' }) }),
  }, async ({ principal, q, group, body, params: p, by }) => {
    const m = await loadMember(q, group, p.mid, true);
    checkMaySetControls(principal, group, m);
    return memberReply(await setMemberControls(q, m, body, by));
  });

  route<{ numbers: string[] }>('PUT', '/groups/:gid/members/:mid/trusted-numbers', {
    summary: "Set a member's trusted numbers, allowed during its time windows (operator; the owner for its children and itself)",
    params: params('gid', 'mid'), body: s('trusted-numbers'), response: ok("The member's controls", memberControlsReply, memberControlsReplyExample),
  }, async ({ principal, q, group, body, params: p, by }) => {
    const m = await loadMember(q, group, p.mid, true);
    checkMaySetControls(principal, group, m);
    return memberReply(await setMemberControls(q, m, { trustedNumbers: body.numbers }, by));
  });

  // ---- purchases
  route<{ pass: string }>('POST', '/groups/:gid/members/:mid/purchases', {
    summary: "Buy a pass for a member: active at once, or pending when a child's own purchase is over its spend limit (operator, group owner, the member)",
    params: params('gid', 'mid'), body: s('purchase.request'),
    response: ok('The purchase and the spend this cycle', outcomeSchema, outcomeExample, 201, { 409: E409('pass roam-day costs 500 EUR; with 800 spent this cycle that is over your spend limit of 1000') }),
  }, async ({ principal, q, group, body, params: p }) => {
    const m = await loadMember(q, group, p.mid);
    checkMayBuy(principal, group, m);
    return buyPass(q, group, m, body.pass, buyerOf(principal));
  }, { okStatus: 201 });

  route('GET', '/groups/:gid/members/:mid/purchases', {
    summary: "A member's purchases (operator, group owner, the member)", params: params('gid', 'mid'),
    response: ok('The purchases', open({ purchases: { type: 'array', items: purchaseSchema } }, ['purchases']), { purchases: [purchaseExample] }),
  }, async ({ principal, q, group, params: p }) => {
    checkMayReadMember(principal, group, p.mid);
    const m = await loadMember(q, group, p.mid);
    const { now } = await groupClock(q, group.id);
    return { purchases: (await listPurchases(q, group.id, { memberId: m.id })).map((x) => publicPurchase(x, now)) };
  });

  route('GET', '/groups/:gid/purchases', {
    summary: "The group's purchases, ?status=pending for those awaiting approval (operator, group owner)", params: params('gid'),
    querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: ['pending', 'active', 'declined'] } } },
    response: ok('The purchases', open({ purchases: { type: 'array', items: purchaseSchema } }, ['purchases']), { purchases: [purchaseExample] }),
  }, async ({ principal, q, group, query }) => {
    checkMayReadGroup(principal, group);
    const { now } = await groupClock(q, group.id);
    return { purchases: (await listPurchases(q, group.id, { status: query.status as PurchaseStatus | undefined })).map((x) => publicPurchase(x, now)) };
  });

  route<{ note?: string }>('POST', '/groups/:gid/purchases/:pid/approve', {
    summary: 'Approve a pending purchase: active from now, charged to this cycle (group owner, operator; never a child)', params: params('gid', 'pid'), body: s('purchase.decision'),
    response: ok('The purchase and the spend this cycle', outcomeSchema, { ...outcomeExample, purchase: activeExample, spend: { spent: 1300, limit: 1000, currency: 'EUR' } }, 200, { 409: E409('purchase fp_5e1c is active, not pending: it was decided by member:fm_owner') }),
  }, async ({ principal, q, group, params: p, body, by }) => {
    checkMayDecidePurchase(principal, group);
    return approvePurchase(q, group, p.pid, body.note ? `${by} (${body.note})` : by);
  });

  route<{ note?: string }>('POST', '/groups/:gid/purchases/:pid/decline', {
    summary: 'Decline a pending purchase (group owner, operator; never a child)', params: params('gid', 'pid'), body: s('purchase.decision'),
    response: ok('The purchase', purchaseSchema, { ...purchaseExample, status: 'declined', state: 'declined', decidedBy: 'member:fm_owner', decidedAt: at }, 200, { 409: E409('purchase fp_5e1c is declined, not pending: it was decided by member:fm_owner') }),
  }, async ({ principal, q, group, params: p, body, by }) => {
    checkMayDecidePurchase(principal, group);
    return declinePurchase(q, group, p.pid, body.note ? `${by} (${body.note})` : by);
  });
}
