/**
 * The family REST API under /family (JSON, bodies validated against schemas/family/*.json, listed in
 * the OpenAPI document under the tag "family"). Each handler: who is calling (auth.ts, 401 when
 * nobody), the body's validity (400), the addressed group/member/line (404), the permission (403),
 * then the change — all in one transaction, so a refusal changes nothing. Refusals are ApiError
 * (src/http/api-error.ts), rendered by the app's error handler as `{ error, message, details? }`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database, Queryable } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { errorReply, jsonReply, OPERATOR_ONLY, nullableString, type ErrorExample } from '../openapi.js';
import { loadSchemas } from '../schemas.js';
import {
  checkGroupOperator, checkIsOperator, checkMayIssue, checkMayReadGroup, checkMayReadMember, checkMaySetCaps,
  principalLabel, resolvePrincipal, type Principal,
} from './auth.js';
import { issueProfile, moveLine, type IssueRequest } from './issue.js';
import {
  createGroup, createLine, createMember, deleteGroup, deleteLine, deleteMember, getGroup, getLine, getMember,
  listGroups, liveState, listLines, listMembers, normaliseCaps, profilesOf, publicGroup, publicLine, publicMember,
  renameGroup, setCaps, setPlan, updateLine, updateMember, type Caps, type GroupRow, type LineRow, type MemberRow,
  type NewLine, type Plan, type Role,
} from './store.js';

export interface FamilyDeps {
  db: Database;
  config: Config;
}

const FAMILY_PREFIX = '/family';
const tags = ['family'];

const idParam = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const;
const params = (...names: string[]) => ({
  type: 'object',
  required: names,
  properties: Object.fromEntries(names.map((n) => [n, idParam])),
});
const G = params('gid');
const GM = params('gid', 'mid');
const GML = params('gid', 'mid', 'lid');

type P = { gid: string; mid: string; lid: string };


/** Everything a handler gets: the caller, the transaction and the request. */
interface Call<B> {
  principal: Principal;
  by: string;
  q: Queryable;
  body: B;
  params: P;
}

export async function loadGroup(q: Queryable, gid: string, lock = false): Promise<GroupRow> {
  const g = await getGroup(q, gid, { lock });
  if (!g) throw new ApiError(404, 'notFound', `no family group ${gid}`, { group: gid });
  return g;
}

async function loadMember(q: Queryable, g: GroupRow, mid: string, lock = false): Promise<MemberRow> {
  const m = await getMember(q, g.id, mid, { lock });
  if (!m) throw new ApiError(404, 'notFound', `no member ${mid} in group ${g.id}`, { group: g.id, member: mid });
  return m;
}

async function loadLine(q: Queryable, m: MemberRow, lid: string, lock = false): Promise<LineRow> {
  const l = await getLine(q, m.id, lid, { lock });
  if (!l) throw new ApiError(404, 'notFound', `no line ${lid} of member ${m.id}`, { member: m.id, line: lid });
  return l;
}

// ---- response schemas (documented fields; objects allow more, so nothing is dropped by the serialiser)

const open = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: true, required, properties });
const at = '2026-01-01T12:00:00.000Z';
const capsSchema = open({ dataMb: { type: 'integer', nullable: true }, voiceMin: { type: 'integer', nullable: true }, sms: { type: 'integer', nullable: true }, hotspotMb: { type: 'integer', nullable: true }, atCap: { type: 'string', enum: ['block', 'throttle'] } });
const planSchema = open({ profileType: nullableString, dataMb: { type: 'integer' }, voiceMin: { type: 'integer' }, sms: { type: 'integer' }, hotspotMb: { type: 'integer' }, billingCycleDay: { type: 'integer' }, msisdns: { type: 'array', items: { type: 'string' } } });
const groupSchema = open({ id: { type: 'string' }, operatorId: { type: 'string' }, name: { type: 'string' }, plan: planSchema, createdAt: { type: 'string' }, updatedAt: { type: 'string' } }, ['id', 'operatorId', 'name', 'plan']);
const groupExample = {
  id: 'fg_3k9x2', operatorId: 'op-1', name: 'The Smiths',
  plan: { profileType: 'family', dataMb: 50000, voiceMin: 3000, sms: 1000, hotspotMb: 10000, billingCycleDay: 15, msisdns: ['447700900001'] },
  createdAt: at, updatedAt: at,
};
const memberSchema = open({ id: { type: 'string' }, groupId: { type: 'string' }, name: { type: 'string' }, role: { type: 'string', enum: ['owner', 'adult', 'child'] }, caps: capsSchema, createdAt: { type: 'string' } }, ['id', 'groupId', 'name', 'role', 'caps']);
const memberExample = { id: 'fm_7q2', groupId: 'fg_3k9x2', name: 'Kim', role: 'child', caps: { dataMb: 2000, voiceMin: null, sms: 100, hotspotMb: null, atCap: 'throttle' }, createdAt: at };
const lineProfileSchema = { ...open({ iccid: { type: 'string' }, state: { type: 'string' }, orderState: { type: 'string' }, deviceState: nullableString, eid: nullableString, matchingId: nullableString, updatedAt: { type: 'string' } }), nullable: true };
export const lineSchema = open({
  id: { type: 'string' }, groupId: { type: 'string' }, memberId: { type: 'string' }, name: nullableString, device: { type: 'string', enum: ['phone', 'watch', 'tablet'] },
  numberMode: { type: 'string', enum: ['shared', 'own'] }, msisdn: nullableString, eid: nullableString, iccid: nullableString, profile: lineProfileSchema,
}, ['id', 'groupId', 'memberId', 'device', 'numberMode']);
const lineExample = { id: 'fl_9d1', groupId: 'fg_3k9x2', memberId: 'fm_7q2', name: 'Kim phone', device: 'phone', numberMode: 'shared', msisdn: '447700900001', eid: null, iccid: null, profile: null };
const memberViewSchema = { ...memberSchema, properties: { ...memberSchema.properties, lines: { type: 'array', items: lineSchema } } };
const memberViewExample = { ...memberExample, lines: [lineExample] };
const releasedSchema = { type: 'array', items: open({}) };

/** The 4xx a family route can answer besides 400/401 (added to every route's document). */
const E = {
  403: errorReply(403, { error: 'forbidden', message: 'group fg_3k9x2 belongs to another operator' }),
  404: errorReply(404, { error: 'notFound', message: 'no family group fg_nope', details: { group: 'fg_nope' } }),
  409: (example: ErrorExample) => errorReply(409, example),
};

/** A member with its lines and each line's current profile (live state). */
async function memberView(q: Queryable, m: MemberRow) {
  const lines = await listLines(q, { memberId: m.id });
  const profiles = await profilesOf(q, lines.flatMap((l) => (l.iccid ? [l.iccid] : [])));
  return { ...publicMember(m), lines: lines.map((l) => publicLine(l, l.iccid ? profiles.get(l.iccid) : undefined)) };
}

/** The whole group: plan, members, lines, every profile's live state and each line's profile history. */
async function groupView(q: Queryable, g: GroupRow) {
  const members = await listMembers(q, g.id);
  const lines = await listLines(q, { groupId: g.id });
  const history = await q.query<{ line_id: string; iccid: string; eid: string | null; bound_at: Date; released_at: Date | null; reason: string | null }>(
    'SELECT line_id, iccid, eid, bound_at, released_at, reason FROM family_line_profiles WHERE group_id = $1 ORDER BY id',
    [g.id],
  );
  const profiles = await profilesOf(q, [...new Set(history.map((h) => h.iccid).concat(lines.flatMap((l) => (l.iccid ? [l.iccid] : []))))]);
  const states: Record<string, number> = {};
  for (const l of lines) {
    const p = l.iccid ? profiles.get(l.iccid) : undefined;
    if (p) states[liveState(p)] = (states[liveState(p)] ?? 0) + 1;
  }
  return {
    group: publicGroup(g),
    profileStates: states,
    members: members.map((m) => ({
      ...publicMember(m),
      lines: lines.filter((l) => l.member_id === m.id).map((l) => ({
        ...publicLine(l, l.iccid ? profiles.get(l.iccid) : undefined),
        history: history.filter((h) => h.line_id === l.id).map((h) => {
          const p = profiles.get(h.iccid);
          return {
            iccid: h.iccid, eid: h.eid, boundAt: h.bound_at.toISOString(), releasedAt: h.released_at?.toISOString() ?? null,
            reason: h.reason, state: p ? liveState(p) : null,
          };
        }),
      })),
    })),
  };
}

export async function familyRoutes(app: FastifyInstance, deps: FamilyDeps) {
  const schemas = loadSchemas('family');
  const s = (name: string) => {
    const x = schemas.get(name);
    if (!x) throw new Error(`schema family/${name} missing`);
    return x;
  };

  /**
   * One route: authenticate first (an unknown caller learns nothing about its body), then the
   * body's validity, then `fn` in a transaction. A refusal is thrown (ApiError, or a FamilyError of
   * the store) and rendered by the app's error handler.
   */
  function route<B = unknown>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    schema: Record<string, unknown>,
    fn: (c: Call<B>) => Promise<unknown>,
    okStatus = 200,
  ) {
    app.route({
      method,
      url: `${FAMILY_PREFIX}${url}`,
      schema: { tags, ...schema },
      attachValidation: true,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const principal = await resolvePrincipal(deps.db, req);
        if (req.validationError) throw ApiError.fromValidation(req.validationError as never);
        const out = await deps.db.tx((q) => fn({ principal, by: principalLabel(principal), q, body: (req.body ?? {}) as B, params: req.params as P }));
        return reply.code(okStatus).send(out);
      },
    });
  }
  const ok = (status: number, description: string, schema: Record<string, unknown>, example: unknown, more: Record<string, unknown> = {}) =>
    ({ [status]: jsonReply(description, schema, example), ...more });

  // ---- groups
  route<{ name: string }>('POST', '/groups', { ...OPERATOR_ONLY, summary: 'Create a family group (operator)', body: s('group.create'), response: ok(201, 'The group', groupSchema, groupExample, { 403: E[403] }) }, async ({ principal, q, body }) => {
    checkIsOperator(principal, 'create groups');
    return publicGroup(await createGroup(q, principal.operator.id, body.name));
  }, 201);

  route('GET', '/groups', { ...OPERATOR_ONLY, summary: "The operator's family groups", response: ok(200, 'The groups', open({ groups: { type: 'array', items: groupSchema } }, ['groups']), { groups: [groupExample] }, { 403: E[403] }) }, async ({ principal, q }) => {
    checkIsOperator(principal, 'list groups');
    return { groups: (await listGroups(q, principal.operator.id)).map(publicGroup) };
  });

  route('GET', '/groups/:gid', { summary: 'A group with its plan and members (operator, group owner)', params: G, response: ok(200, 'The group', { ...groupSchema, properties: { ...groupSchema.properties, members: { type: 'array', items: memberSchema } } }, { ...groupExample, members: [memberExample] }, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadGroup(principal, g);
    return { ...publicGroup(g), members: (await listMembers(q, g.id)).map(publicMember) };
  });

  route<{ name: string }>('PATCH', '/groups/:gid', { ...OPERATOR_ONLY, summary: 'Rename a group (operator)', params: G, body: s('group.update'), response: ok(200, 'The group', groupSchema, groupExample, { 403: E[403], 404: E[404] }) }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change the group');
    return publicGroup(await renameGroup(q, g.id, body.name));
  });

  route('DELETE', '/groups/:gid', { ...OPERATOR_ONLY, summary: "Delete a group: its members' pending orders are cancelled (operator)", params: G, response: ok(200, 'What was deleted, and what happened to each profile', open({ deleted: { type: 'string' }, profiles: releasedSchema }, ['deleted', 'profiles']), { deleted: 'fg_3k9x2', profiles: [] }, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'delete the group');
    return { deleted: g.id, profiles: await deleteGroup(q, g, by) };
  });

  route<Plan>('PUT', '/groups/:gid/plan', { ...OPERATOR_ONLY, summary: "Set the group's shared plan (operator)", params: G, body: s('plan'), response: ok(200, 'The group', groupSchema, groupExample, { 400: errorReply(400, { error: 'invalid', message: 'unknown profile type nope' }), 403: E[403], 404: E[404] }) }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'set the plan');
    return publicGroup(await setPlan(q, g, body));
  });

  route('GET', '/groups/:gid/view', { summary: "The group with every line's profile and its live state (operator, group owner)", params: G, response: ok(200, 'The group view', open({ group: groupSchema, profileStates: { type: 'object', additionalProperties: { type: 'integer' } }, members: { type: 'array', items: open({}) } }, ['group', 'profileStates', 'members']), { group: groupExample, profileStates: { Installed: 1 }, members: [{ ...memberExample, lines: [{ ...lineExample, history: [] }] }] }, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadGroup(principal, g);
    return groupView(q, g);
  });

  // ---- members
  route<{ name: string; role: Role; caps?: Caps }>('POST', '/groups/:gid/members', {
    ...OPERATOR_ONLY, summary: "Add a member; the answer carries the member's bearer token once (operator)", params: G, body: s('member.create'),
    response: ok(201, 'The member, with its token (shown once)', { ...memberSchema, required: [...memberSchema.required, 'token'], properties: { ...memberSchema.properties, token: { type: 'string' } } }, { ...memberExample, token: 'fam_0123456789abcdefghijABCDEFGHIJ_-xy' }, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: 'group fg_3k9x2 already has an owner' }) }),
  }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'add members');
    const { member, token } = await createMember(q, g.id, body);
    return { ...publicMember(member), token };
  }, 201);

  route('GET', '/groups/:gid/members/:mid', { summary: 'A member with its lines and profiles (operator, group owner, the member itself)', params: GM, response: ok(200, 'The member', memberViewSchema, memberViewExample, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadMember(principal, g, p.mid);
    return memberView(q, await loadMember(q, g, p.mid));
  });

  route<{ name?: string; role?: Role }>('PATCH', '/groups/:gid/members/:mid', { ...OPERATOR_ONLY, summary: 'Rename a member or change its role (operator)', params: GM, body: s('member.update'), response: ok(200, 'The member', memberSchema, memberExample, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: 'group fg_3k9x2 already has an owner' }) }) }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change members');
    return publicMember(await updateMember(q, await loadMember(q, g, p.mid, true), body));
  });

  route('DELETE', '/groups/:gid/members/:mid', { ...OPERATOR_ONLY, summary: "Remove a member: its lines go and their pending orders are cancelled (operator)", params: GM, response: ok(200, 'What was removed', open({ removed: { type: 'string' }, profiles: releasedSchema }, ['removed', 'profiles']), { removed: 'fm_7q2', profiles: [] }, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'remove members');
    const m = await loadMember(q, g, p.mid, true);
    return { removed: m.id, profiles: await deleteMember(q, m, by) };
  });

  route<Caps>('PUT', '/groups/:gid/members/:mid/caps', {
    summary: "Set a member's caps (operator; the owner for children; a member may only lower its own)", params: GM, body: s('caps'),
    response: ok(200, 'The member', memberSchema, memberExample, { 403: E[403], 404: E[404] }),
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid);
    const m = await loadMember(q, g, p.mid, true);
    const caps = normaliseCaps(body);
    checkMaySetCaps(principal, g, m, caps);
    return publicMember(await setCaps(q, m, caps, by));
  });

  // ---- lines
  route<NewLine>('POST', '/groups/:gid/members/:mid/lines', { ...OPERATOR_ONLY, summary: 'Add a line (device) to a member (operator)', params: GM, body: s('line.create'), response: ok(201, 'The line', lineSchema, lineExample, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: '447700900001 is already used by line fl_9d1; an own number belongs to one line' }) }) }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'add lines');
    return publicLine(await createLine(q, g, await loadMember(q, g, p.mid), body));
  }, 201);

  route('GET', '/groups/:gid/members/:mid/lines/:lid', { summary: 'A line with its profile (operator, group owner, the member itself)', params: GML, response: ok(200, 'The line', lineSchema, lineExample, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadMember(principal, g, p.mid);
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid);
    const profiles = await profilesOf(q, l.iccid ? [l.iccid] : []);
    return publicLine(l, l.iccid ? profiles.get(l.iccid) : undefined);
  });

  route<Partial<NewLine>>('PATCH', '/groups/:gid/members/:mid/lines/:lid', { ...OPERATOR_ONLY, summary: 'Change a line (operator)', params: GML, body: s('line.update'), response: ok(200, 'The line', lineSchema, lineExample, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: '447700900001 is the own number of line fl_9d1' }) }) }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return publicLine(await updateLine(q, g, l, body));
  });

  route('DELETE', '/groups/:gid/members/:mid/lines/:lid', { ...OPERATOR_ONLY, summary: "Remove a line; its pending order is cancelled (operator)", params: GML, response: ok(200, 'What was removed', open({ removed: { type: 'string' }, profile: { ...open({}), nullable: true } }, ['removed', 'profile']), { removed: 'fl_9d1', profile: null }, { 403: E[403], 404: E[404] }) }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'remove lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return { removed: l.id, profile: (await deleteLine(q, l, by)) ?? null };
  });

  route<IssueRequest>('POST', '/groups/:gid/members/:mid/lines/:lid/profile', {
    summary: "Issue a profile of the plan's profile type for a line (operator, group owner)",
    description: 'Runs ES2+ downloadOrder + confirmOrder (released) for the group\'s operator; answers the activation code and its QR code URLs.',
    params: GML, body: s('issue.request'),
    response: ok(201, 'The issued profile, its activation code and QR code URLs', s('issue.response'), {
      groupId: 'fg_3k9x2', memberId: 'fm_7q2', lineId: 'fl_9d1', iccid: '89000123456789012341', eid: null, matchingId: 'K3T9Q-2M8XA-7PL4D-QW1ZE',
      activationCode: 'LPA:1$SMDP.EXAMPLE.COM$K3T9Q-2M8XA-7PL4D-QW1ZE', confirmationCodeRequired: false,
      qr: { png: '/admin/activation-codes/K3T9Q-2M8XA-7PL4D-QW1ZE.png', svg: '/admin/activation-codes/K3T9Q-2M8XA-7PL4D-QW1ZE.svg' },
    }, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: 'line fl_9d1 already has a profile' }) }),
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid);
    checkMayIssue(principal, g);
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return issueProfile(q, deps.config, g, l, body, by);
  }, 201);

  route<{ eid?: string }>('POST', '/groups/:gid/members/:mid/lines/:lid/move', {
    ...OPERATOR_ONLY, summary: 'Move a line to a new device (operator); its old profile must be deleted or its order cancelled first',
    params: GML, body: s('move.request'),
    response: ok(200, 'The line, and its previous profile', { ...lineSchema, properties: { ...lineSchema.properties, previous: { ...open({ iccid: { type: 'string' }, state: { type: 'string' } }), nullable: true } } }, { ...lineExample, previous: null }, { 403: E[403], 404: E[404], 409: E[409]({ error: 'conflict', message: 'the line still has a profile on its old device: delete it or cancel its order first' }) }),
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'move lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    const { line, previous } = await moveLine(q, l, body.eid, by);
    return { ...publicLine(line), previous };
  });

  // ---- a member's own view
  route('GET', '/me', { summary: 'The calling member (member token): its record, lines and profiles', security: [{ memberToken: [] }], response: ok(200, 'The member', open({ group: open({ id: { type: 'string' }, name: { type: 'string' } }), member: memberViewSchema }, ['group', 'member']), { group: { id: 'fg_3k9x2', name: 'The Smiths' }, member: memberViewExample }, { 403: E[403] }) }, async ({ principal, q }) => {
    if (principal.kind !== 'member') throw ApiError.forbidden('GET /family/me is for member tokens; operators read /family/groups/:gid');
    const g = await loadGroup(q, principal.member.group_id);
    checkMayReadMember(principal, g, principal.member.id);
    return { group: { id: g.id, name: g.name }, member: await memberView(q, principal.member) };
  });
}
