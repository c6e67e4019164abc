/**
 * The family REST API under /family (JSON, bodies validated against schemas/family/*.json, listed in
 * the OpenAPI document under the tag "family"). Each handler: who is calling (auth.ts, 401 when
 * nobody), the body's validity (400), the addressed group/member/line (404), the permission (403),
 * then the change — all in one transaction, so a refusal changes nothing.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database, Queryable } from '../db/db.js';
import { loadSchemas } from '../schemas.js';
import {
  checkGroupOperator, checkIsOperator, checkMayIssue, checkMayReadGroup, checkMayReadMember, checkMaySetCaps,
  principalLabel, resolvePrincipal, type Principal,
} from './auth.js';
import { issueProfile, moveLine, type IssueRequest } from './issue.js';
import {
  createGroup, createLine, createMember, deleteGroup, deleteLine, deleteMember, FamilyError, getGroup, getLine, getMember,
  HTTP_STATUS, listGroups, liveState, listLines, listMembers, normaliseCaps, profilesOf, publicGroup, publicLine, publicMember,
  renameGroup, setCaps, setPlan, updateLine, updateMember, type Caps, type GroupRow, type LineRow, type MemberRow,
  type NewLine, type Plan, type Role,
} from './store.js';

export interface FamilyDeps {
  db: Database;
  config: Config;
}

export const FAMILY_PREFIX = '/family';
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

async function loadGroup(q: Queryable, gid: string, lock = false): Promise<GroupRow> {
  const g = await getGroup(q, gid, { lock });
  if (!g) throw new FamilyError('notFound', `no family group ${gid}`);
  return g;
}

async function loadMember(q: Queryable, g: GroupRow, mid: string, lock = false): Promise<MemberRow> {
  const m = await getMember(q, g.id, mid, { lock });
  if (!m) throw new FamilyError('notFound', `no member ${mid} in group ${g.id}`);
  return m;
}

async function loadLine(q: Queryable, m: MemberRow, lid: string, lock = false): Promise<LineRow> {
  const l = await getLine(q, m.id, lid, { lock });
  if (!l) throw new FamilyError('notFound', `no line ${lid} of member ${m.id}`);
  return l;
}

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
   * body's validity, then `fn` in a transaction; FamilyError → its HTTP status with {error, message}.
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
        try {
          const principal = await resolvePrincipal(deps.db, req);
          if (req.validationError) throw new FamilyError('invalid', req.validationError.message);
          const out = await deps.db.tx((q) => fn({ principal, by: principalLabel(principal), q, body: (req.body ?? {}) as B, params: req.params as P }));
          return reply.code(okStatus).send(out);
        } catch (err) {
          if (err instanceof FamilyError) {
            if (err.code === 'forbidden') req.log.info({ msg2: err.message }, 'family request refused');
            return reply.code(HTTP_STATUS[err.code]).send({ error: err.code, message: err.message });
          }
          throw err;
        }
      },
    });
  }

  // ---- groups
  route<{ name: string }>('POST', '/groups', { summary: 'Create a family group (operator)', body: s('group.create') }, async ({ principal, q, body }) => {
    checkIsOperator(principal, 'create groups');
    return publicGroup(await createGroup(q, principal.operator.id, body.name));
  }, 201);

  route('GET', '/groups', { summary: "The operator's family groups" }, async ({ principal, q }) => {
    checkIsOperator(principal, 'list groups');
    return { groups: (await listGroups(q, principal.operator.id)).map(publicGroup) };
  });

  route('GET', '/groups/:gid', { summary: 'A group with its plan and members (operator, group owner)', params: G }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadGroup(principal, g);
    return { ...publicGroup(g), members: (await listMembers(q, g.id)).map(publicMember) };
  });

  route<{ name: string }>('PATCH', '/groups/:gid', { summary: 'Rename a group (operator)', params: G, body: s('group.update') }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change the group');
    return publicGroup(await renameGroup(q, g.id, body.name));
  });

  route('DELETE', '/groups/:gid', { summary: "Delete a group: its members' pending orders are cancelled (operator)", params: G }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'delete the group');
    return { deleted: g.id, profiles: await deleteGroup(q, g, by) };
  });

  route<Plan>('PUT', '/groups/:gid/plan', { summary: "Set the group's shared plan (operator)", params: G, body: s('plan') }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'set the plan');
    return publicGroup(await setPlan(q, g, body));
  });

  route('GET', '/groups/:gid/view', { summary: "The group with every line's profile and its live state (operator, group owner)", params: G }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadGroup(principal, g);
    return groupView(q, g);
  });

  // ---- members
  route<{ name: string; role: Role; caps?: Caps }>('POST', '/groups/:gid/members', {
    summary: "Add a member; the answer carries the member's bearer token once (operator)", params: G, body: s('member.create'),
  }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'add members');
    const { member, token } = await createMember(q, g.id, body);
    return { ...publicMember(member), token };
  }, 201);

  route('GET', '/groups/:gid/members/:mid', { summary: 'A member with its lines and profiles (operator, group owner, the member itself)', params: GM }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadMember(principal, g, p.mid);
    return memberView(q, await loadMember(q, g, p.mid));
  });

  route<{ name?: string; role?: Role }>('PATCH', '/groups/:gid/members/:mid', { summary: 'Rename a member or change its role (operator)', params: GM, body: s('member.update') }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change members');
    return publicMember(await updateMember(q, await loadMember(q, g, p.mid, true), body));
  });

  route('DELETE', '/groups/:gid/members/:mid', { summary: "Remove a member: its lines go and their pending orders are cancelled (operator)", params: GM }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'remove members');
    const m = await loadMember(q, g, p.mid, true);
    return { removed: m.id, profiles: await deleteMember(q, m, by) };
  });

  route<Caps>('PUT', '/groups/:gid/members/:mid/caps', {
    summary: "Set a member's caps (operator; the owner for children; a member may only lower its own)", params: GM, body: s('caps'),
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid);
    const m = await loadMember(q, g, p.mid, true);
    const caps = normaliseCaps(body);
    checkMaySetCaps(principal, g, m, caps);
    return publicMember(await setCaps(q, m, caps, by));
  });

  // ---- lines
  route<NewLine>('POST', '/groups/:gid/members/:mid/lines', { summary: 'Add a line (device) to a member (operator)', params: GM, body: s('line.create') }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'add lines');
    return publicLine(await createLine(q, g, await loadMember(q, g, p.mid), body));
  }, 201);

  route('GET', '/groups/:gid/members/:mid/lines/:lid', { summary: 'A line with its profile (operator, group owner, the member itself)', params: GML }, async ({ principal, q, params: p }) => {
    const g = await loadGroup(q, p.gid);
    checkMayReadMember(principal, g, p.mid);
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid);
    const profiles = await profilesOf(q, l.iccid ? [l.iccid] : []);
    return publicLine(l, l.iccid ? profiles.get(l.iccid) : undefined);
  });

  route<Partial<NewLine>>('PATCH', '/groups/:gid/members/:mid/lines/:lid', { summary: 'Change a line (operator)', params: GML, body: s('line.update') }, async ({ principal, q, body, params: p }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'change lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return publicLine(await updateLine(q, g, l, body));
  });

  route('DELETE', '/groups/:gid/members/:mid/lines/:lid', { summary: "Remove a line; its pending order is cancelled (operator)", params: GML }, async ({ principal, q, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'remove lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return { removed: l.id, profile: (await deleteLine(q, l, by)) ?? null };
  });

  route<IssueRequest>('POST', '/groups/:gid/members/:mid/lines/:lid/profile', {
    summary: "Issue a profile of the plan's profile type for a line (operator, group owner)",
    description: 'Runs ES2+ downloadOrder + confirmOrder (released) for the group\'s operator; answers the activation code and its QR code URLs.',
    params: GML, body: s('issue.request'), response: { 201: s('issue.response') },
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid);
    checkMayIssue(principal, g);
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    return issueProfile(q, deps.config, g, l, body, by);
  }, 201);

  route<{ eid?: string }>('POST', '/groups/:gid/members/:mid/lines/:lid/move', {
    summary: 'Move a line to a new device (operator); its old profile must be deleted or its order cancelled first',
    params: GML, body: s('move.request'),
  }, async ({ principal, q, body, params: p, by }) => {
    const g = await loadGroup(q, p.gid, true);
    checkGroupOperator(principal, g, 'move lines');
    const l = await loadLine(q, await loadMember(q, g, p.mid), p.lid, true);
    const { line, previous } = await moveLine(q, l, body.eid, by);
    return { ...publicLine(line), previous };
  });

  // ---- a member's own view
  route('GET', '/me', { summary: 'The calling member (member token): its record, lines and profiles' }, async ({ principal, q }) => {
    if (principal.kind !== 'member') throw new FamilyError('forbidden', 'GET /family/me is for member tokens; operators read /family/groups/:gid');
    const g = await loadGroup(q, principal.member.group_id);
    checkMayReadMember(principal, g, principal.member.id);
    return { group: { id: g.id, name: g.name }, member: await memberView(q, principal.member) };
  });
}
