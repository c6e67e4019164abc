/**
 * Who is calling the family API, and what each caller may do.
 *
 * Principals: an operator (API key in X-API-Key or `Authorization: Bearer`, or its TLS client
 * certificate, as for ES2+) or a group member (`Authorization: Bearer fam_…`, the token handed out
 * once when the member was created). Every permission is one small named check that throws
 * ApiError forbidden — a 403 — before anything is changed; no caller is a 401.
 *
 *   operator        everything on its own groups, nothing on other operators' groups
 *   owner token     read its group; change children's caps; lower its own caps; issue profiles for the group's lines
 *   member token    read its own member record, lines, profiles (and usage); lower its own caps, never raise them
 *
 * Controls (docs/family.md): the owner sets its children's controls and its own and sets the time
 * zone; every member buys passes for itself (the owner for anyone); only the owner or the operator
 * approves or declines a pending purchase.
 */
import type { FastifyRequest } from 'fastify';
import type { Queryable } from '../db/db.js';
import { FunctionFailed } from '../errors.js';
import { authenticateOperator, credentialsOf } from '../es2plus/auth.js';
import type { OperatorRow } from '../operators/store.js';
import { ApiError } from '../http/api-error.js';
import { capsOf, findMemberByToken, MEMBER_TOKEN_PREFIX, type Caps, type GroupRow, type MemberRow } from './store.js';

export type Principal =
  | { kind: 'operator'; operator: OperatorRow }
  | { kind: 'member'; member: MemberRow };

/** Short name of a principal for event details: `operator:<id>` or `member:<id>`. */
export function principalLabel(p: Principal): string {
  return p.kind === 'operator' ? `operator:${p.operator.id}` : `member:${p.member.id}`;
}

const forbidden = (message: string) => ApiError.forbidden(message);

/** The caller of a request: a member by its fam_ bearer token, else an operator; 401 when neither. */
export async function resolvePrincipal(q: Queryable, req: Pick<FastifyRequest, 'headers' | 'raw'>): Promise<Principal> {
  const auth = req.headers.authorization;
  const bearer = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : undefined;
  if (bearer?.startsWith(MEMBER_TOKEN_PREFIX) && req.headers['x-api-key'] === undefined) {
    const member = await findMemberByToken(q, bearer);
    if (!member) throw ApiError.unauthorised('unknown member token');
    return { kind: 'member', member };
  }
  try {
    return { kind: 'operator', operator: await authenticateOperator(q, credentialsOf(req)) };
  } catch (err) {
    if (err instanceof FunctionFailed) throw ApiError.unauthorised(`${err.message} (send an operator API key, or a member token as Authorization: Bearer fam_…)`);
    throw err;
  }
}

/** Verify the caller is an operator (member tokens cannot create groups or list them). */
export function checkIsOperator(p: Principal, action: string): asserts p is Extract<Principal, { kind: 'operator' }> {
  if (p.kind !== 'operator') throw forbidden(`a member token cannot ${action}; this needs the operator's API key`);
}

/** Verify the caller is the operator owning the group (every change of the group's structure and plan). */
export function checkGroupOperator(p: Principal, g: GroupRow, action: string): void {
  if (p.kind === 'member') throw forbidden(`a member token cannot ${action}; only the group's operator can`);
  if (p.operator.id !== g.operator_id) throw forbidden(`group ${g.id} belongs to another operator`);
}

/** Verify the caller is the group's operator or a member of the same group (the common ground of every check). */
function checkSameGroup(p: Principal, g: GroupRow): void {
  if (p.kind === 'operator' && p.operator.id !== g.operator_id) throw forbidden(`group ${g.id} belongs to another operator`);
  if (p.kind === 'member' && p.member.group_id !== g.id) throw forbidden(`this member token belongs to another group`);
}

const isOwner = (p: Principal): boolean => p.kind === 'member' && p.member.role === 'owner';

/** Verify the caller may read the whole group: its operator or its owner. */
export function checkMayReadGroup(p: Principal, g: GroupRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p)) throw forbidden(`a ${p.member.role} reads only its own lines and usage (GET /family/me), not the whole group`);
}

/** Verify the caller may read this member's record, lines, profiles and usage: operator, group owner, or the member itself. */
export function checkMayReadMember(p: Principal, g: GroupRow, memberId: string): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p) && p.member.id !== memberId) throw forbidden(`a member cannot read another member's lines or usage`);
}

/** Verify the caller may issue a profile for a line of the group: its operator or its owner. */
export function checkMayIssue(p: Principal, g: GroupRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p)) throw forbidden(`only the group owner or the operator can issue profiles; a ${p.member.role} cannot`);
}

const CAP_FIELDS = ['dataMb', 'voiceMin', 'sms', 'hotspotMb'] as const;

/** The caps that `next` raises over `prev`: a higher limit, no limit where there was one, or throttle instead of block. */
function raisedCaps(prev: Required<Caps>, next: Required<Caps>): string[] {
  const raised: string[] = CAP_FIELDS.filter((f) => {
    const a = prev[f];
    const b = next[f];
    if (a === null || a === undefined) return false; // no cap before: any cap is a lowering
    return b === null || b === undefined || b > a;
  });
  if (prev.atCap === 'block' && next.atCap === 'throttle') raised.push('atCap');
  return raised;
}

/**
 * Verify the caller may set these caps on the target: the operator may set any; the owner may set a
 * child's; any member may lower its own caps but never raise them; nothing else.
 */
export function checkMaySetCaps(p: Principal, g: GroupRow, target: MemberRow, next: Required<Caps>): void {
  checkSameGroup(p, g);
  if (p.kind === 'operator') return;
  if (p.member.id === target.id) {
    const raised = raisedCaps(capsOf(target), next);
    if (raised.length) throw forbidden(`a ${target.role} cannot raise its own caps (${raised.join(', ')}); ask the ${target.role === 'child' ? 'group owner' : 'operator'}`);
    return;
  }
  if (!isOwner(p)) throw forbidden(`a ${p.member.role} cannot change another member's caps`);
  if (target.role !== 'child') throw forbidden(`the group owner changes children's caps only; ${target.name} is ${target.role === 'owner' ? 'an owner' : 'an adult'}`);
}

// ---- controls and purchases (docs/family.md)

/** Verify the caller may read the group's passes: its operator or any member of the group. */
export function checkMayReadPasses(p: Principal, g: GroupRow): void {
  checkSameGroup(p, g);
}

/** Verify the caller may set the group's time zone: its operator or its owner. */
export function checkMaySetTimeZone(p: Principal, g: GroupRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p)) throw forbidden(`only the group owner or the operator sets the group's time zone; a ${p.member.role} cannot`);
}

/**
 * Verify the caller may set a member's controls (time windows, trusted numbers, roaming allowance,
 * spend limit): the operator any member's; the owner its children's and its own; nobody else,
 * so no member loosens its own controls.
 */
export function checkMaySetControls(p: Principal, g: GroupRow, target: MemberRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'operator') return;
  if (!isOwner(p)) throw forbidden(`a ${p.member.role} cannot change controls; ask the ${p.member.role === 'child' ? 'group owner' : 'operator'}`);
  if (target.id !== p.member.id && target.role !== 'child') throw forbidden(`the group owner sets children's controls (and its own); ${target.name} is an adult: ask the operator`);
}

/** Verify the caller may buy a pass for the target: the operator, the group owner, or the member itself. */
export function checkMayBuy(p: Principal, g: GroupRow, target: MemberRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p) && p.member.id !== target.id) throw forbidden(`a ${p.member.role} buys passes for itself only`);
}

/** Verify the caller may approve or decline a pending purchase: the group owner or the operator, never a child. */
export function checkMayDecidePurchase(p: Principal, g: GroupRow): void {
  checkSameGroup(p, g);
  if (p.kind === 'member' && !isOwner(p)) throw forbidden(`only the group owner (or the operator) approves or declines purchases; a ${p.member.role} cannot`);
}
