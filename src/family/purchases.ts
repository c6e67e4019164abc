/**
 * Add-on purchases (docs/family.md, "Passes and the spend limit"): a member buys one of the group's
 * passes (a roaming pass or a data pass: an allowance and a validity). Each member may have a spend
 * limit per billing cycle; a child's own purchase over it waits (pending) for the group owner (or
 * the operator) to approve or decline it. Another member's purchase over its own limit is refused.
 * A purchase the owner or the operator makes for a member is active at once: they are the ones who
 * would approve it. Every step is a group event (purchase-requested, -approved, -declined,
 * -activated), so it reaches the operator's callback in order with the rest of the group's log.
 *
 * Purchases take the group's usage lock (its family_cycles row, see usage.ts), so the spend of a
 * cycle is read and charged consistently, and usage never draws from a pass being changed.
 */
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { GROUP_EVENT, recordGroupEvent } from './events.js';
import { groupControlsOf, type PassOffer } from './controls.js';
import { FamilyError, type GroupRow, type MemberRow } from './store.js';
import { syncCycle } from './usage.js';

export type PurchaseStatus = 'pending' | 'active' | 'declined';

export interface PurchaseRow {
  id: string;
  group_id: string;
  member_id: string;
  pass_id: string;
  name: string;
  kind: PassOffer['kind'];
  data_mb: number;
  voice_min: number;
  sms: number;
  validity_hours: number;
  price: number;
  currency: string;
  status: PurchaseStatus;
  requested_by: string;
  decided_by: string | null;
  requested_at: Date;
  decided_at: Date | null;
  activated_at: Date | null;
  expires_at: Date | null;
  cycle_start: string | null;
  used_data_mb: string | number;
  used_voice_min: string | number;
  used_sms: string | number;
}

const COLUMNS = `id, group_id, member_id, pass_id, name, kind, data_mb, voice_min, sms, validity_hours, price, currency, status, requested_by,
  decided_by, requested_at, decided_at, activated_at, expires_at, cycle_start::text AS cycle_start, used_data_mb, used_voice_min, used_sms`;

/** Who buys: the member itself, the group owner (for anyone of the group) or the operator. */
export interface Buyer {
  kind: 'operator' | 'member';
  memberId?: string;
  role?: MemberRow['role'];
  label: string;
}

/**
 * What a purchase is now: pending, declined, active (valid, something left), used-up, expired.
 * `now` is the group's clock.
 */
export function purchaseState(p: PurchaseRow, now: Date): 'pending' | 'declined' | 'active' | 'used-up' | 'expired' {
  if (p.status !== 'active') return p.status;
  if (p.expires_at && new Date(p.expires_at).getTime() <= now.getTime()) return 'expired';
  const left = Number(p.data_mb) - Number(p.used_data_mb) + Number(p.voice_min) - Number(p.used_voice_min) + Number(p.sms) - Number(p.used_sms);
  return left > 0 ? 'active' : 'used-up';
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function publicPurchase(p: PurchaseRow, now: Date) {
  const used = { dataMb: Number(p.used_data_mb), voiceMin: Number(p.used_voice_min), sms: Number(p.used_sms) };
  return {
    id: p.id,
    groupId: p.group_id,
    memberId: p.member_id,
    passId: p.pass_id,
    name: p.name,
    kind: p.kind,
    allowance: { dataMb: p.data_mb, voiceMin: p.voice_min, sms: p.sms },
    used,
    remaining: { dataMb: Math.max(0, p.data_mb - used.dataMb), voiceMin: Math.max(0, p.voice_min - used.voiceMin), sms: Math.max(0, p.sms - used.sms) },
    validityHours: p.validity_hours,
    price: p.price,
    currency: p.currency,
    status: p.status,
    state: purchaseState(p, now),
    requestedBy: p.requested_by,
    decidedBy: p.decided_by,
    requestedAt: iso(p.requested_at),
    decidedAt: iso(p.decided_at),
    activatedAt: iso(p.activated_at),
    expiresAt: iso(p.expires_at),
    cycle: p.cycle_start,
  };
}

export type PublicPurchase = ReturnType<typeof publicPurchase>;

/** What the member's active purchases of cycle `start` cost (minor units). */
async function spentIn(q: Queryable, memberId: string, start: string): Promise<number> {
  const [r] = await q.query<{ spent: string | number | null }>(
    `SELECT COALESCE(sum(price), 0) AS spent FROM family_purchases WHERE member_id = $1 AND status = 'active' AND cycle_start = $2`, [memberId, start]);
  return Number(r?.spent ?? 0);
}

async function activate(q: Queryable, p: PurchaseRow, now: Date, cycleStart: string, set: { decidedBy?: string } = {}): Promise<PurchaseRow> {
  const expires = new Date(now.getTime() + p.validity_hours * 3_600_000);
  const [row] = await q.query<PurchaseRow>(
    `UPDATE family_purchases SET status = 'active', activated_at = $2, expires_at = $3, cycle_start = $4,
       decided_by = COALESCE($5, decided_by), decided_at = CASE WHEN $5::text IS NULL THEN decided_at ELSE $2 END
      WHERE id = $1 RETURNING ${COLUMNS}`,
    [p.id, now, expires, cycleStart, set.decidedBy ?? null],
  );
  return row!;
}

function eventDetail(p: PurchaseRow, member: Pick<MemberRow, 'id' | 'name'>, extra: Record<string, unknown> = {}) {
  return {
    purchase: p.id, memberId: member.id, memberName: member.name, pass: p.pass_id, kind: p.kind, price: p.price, currency: p.currency,
    allowance: { dataMb: p.data_mb, voiceMin: p.voice_min, sms: p.sms }, validityHours: p.validity_hours, ...extra,
  };
}

export interface PurchaseOutcome {
  purchase: PublicPurchase;
  /** The member's spend this cycle (active purchases) after this one, and its limit. */
  spend: { spent: number; limit: number | null; currency: string };
  overLimit: boolean;
}

/** Buys pass `passId` of the group for `member`. Call in a transaction; takes the group's usage lock. */
export async function buyPass(q: Queryable, g: GroupRow, member: MemberRow, passId: string, buyer: Buyer): Promise<PurchaseOutcome> {
  const cycle = await syncCycle(q, g);
  const controls = groupControlsOf(g);
  const offer = controls.passes.offers.find((o) => o.id === passId);
  if (!offer) {
    throw new FamilyError('notFound', `group ${g.id} sells no pass ${passId}${controls.passes.offers.length ? ` (it sells ${controls.passes.offers.map((o) => o.id).join(', ')})` : ' (none yet: PUT …/passes)'}`);
  }
  const [m] = await q.query<MemberRow & { spend_limit: number | null }>('SELECT * FROM family_members WHERE id = $1 FOR UPDATE', [member.id]);
  if (!m) throw new FamilyError('notFound', `no member ${member.id}`);
  const limit = m.spend_limit;
  const spent = await spentIn(q, m.id, cycle.start);
  const overLimit = limit !== null && spent + offer.price > limit;
  const self = buyer.kind === 'member' && buyer.memberId === m.id;
  if (overLimit && self && m.role !== 'child') {
    throw new FamilyError('conflict', `pass ${offer.id} costs ${offer.price} ${controls.passes.currency}; with ${spent} spent this cycle that is over your spend limit of ${limit}`);
  }
  const [row] = await q.query<PurchaseRow>(
    `INSERT INTO family_purchases (id, group_id, member_id, pass_id, name, kind, data_mb, voice_min, sms, validity_hours, price, currency, status, requested_by, requested_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14) RETURNING ${COLUMNS}`,
    [`fp_${randomBytes(8).toString('hex')}`, g.id, m.id, offer.id, offer.name, offer.kind, offer.dataMb, offer.voiceMin, offer.sms, offer.validityHours,
      offer.price, controls.passes.currency, buyer.label, cycle.now],
  );
  const needsApproval = overLimit && self; // a child's own purchase over its limit
  await recordGroupEvent(q, g.id, GROUP_EVENT.purchaseRequested, eventDetail(row!, m, {
    by: buyer.label, spent, limit, overLimit, status: needsApproval ? 'pending' : 'active',
  }));
  if (needsApproval) {
    return { purchase: publicPurchase(row!, cycle.now), spend: { spent, limit, currency: controls.passes.currency }, overLimit };
  }
  const active = await activate(q, row!, cycle.now, cycle.start);
  await recordGroupEvent(q, g.id, GROUP_EVENT.purchaseActivated, eventDetail(active, m, { expiresAt: iso(active.expires_at), cycle: cycle.start, by: buyer.label }));
  return { purchase: publicPurchase(active, cycle.now), spend: { spent: spent + offer.price, limit, currency: controls.passes.currency }, overLimit };
}

async function loadPending(q: Queryable, g: GroupRow, purchaseId: string): Promise<{ p: PurchaseRow; m: MemberRow }> {
  const [p] = await q.query<PurchaseRow>(`SELECT ${COLUMNS} FROM family_purchases WHERE id = $1 AND group_id = $2 FOR UPDATE`, [purchaseId, g.id]);
  if (!p) throw new FamilyError('notFound', `no purchase ${purchaseId} in group ${g.id}`);
  if (p.status !== 'pending') throw new FamilyError('conflict', `purchase ${p.id} is ${p.status}, not pending: it was decided ${p.decided_by ? `by ${p.decided_by}` : 'when it was made'}`);
  const [m] = await q.query<MemberRow>('SELECT * FROM family_members WHERE id = $1', [p.member_id]);
  return { p, m: m! };
}

/** Approves a pending purchase: it is active from now, charged to the current cycle. */
export async function approvePurchase(q: Queryable, g: GroupRow, purchaseId: string, by: string): Promise<PurchaseOutcome> {
  const cycle = await syncCycle(q, g);
  const { p, m } = await loadPending(q, g, purchaseId);
  const spentBefore = await spentIn(q, m.id, cycle.start);
  const limit = (m as MemberRow & { spend_limit: number | null }).spend_limit;
  await recordGroupEvent(q, g.id, GROUP_EVENT.purchaseApproved, eventDetail(p, m, { by, spent: spentBefore, limit }));
  const active = await activate(q, p, cycle.now, cycle.start, { decidedBy: by });
  await recordGroupEvent(q, g.id, GROUP_EVENT.purchaseActivated, eventDetail(active, m, { expiresAt: iso(active.expires_at), cycle: cycle.start, by }));
  return {
    purchase: publicPurchase(active, cycle.now),
    spend: { spent: spentBefore + p.price, limit, currency: p.currency },
    overLimit: limit !== null && spentBefore + p.price > limit,
  };
}

export async function declinePurchase(q: Queryable, g: GroupRow, purchaseId: string, by: string): Promise<PublicPurchase> {
  const cycle = await syncCycle(q, g);
  const { p, m } = await loadPending(q, g, purchaseId);
  const [row] = await q.query<PurchaseRow>(
    `UPDATE family_purchases SET status = 'declined', decided_by = $2, decided_at = $3 WHERE id = $1 RETURNING ${COLUMNS}`, [p.id, by, cycle.now]);
  await recordGroupEvent(q, g.id, GROUP_EVENT.purchaseDeclined, eventDetail(row!, m, { by }));
  return publicPurchase(row!, cycle.now);
}

export async function getPurchase(q: Queryable, groupId: string, id: string): Promise<PurchaseRow | undefined> {
  return (await q.query<PurchaseRow>(`SELECT ${COLUMNS} FROM family_purchases WHERE id = $1 AND group_id = $2`, [id, groupId]))[0];
}

export async function listPurchases(q: Queryable, groupId: string, f: { memberId?: string; status?: PurchaseStatus } = {}): Promise<PurchaseRow[]> {
  const params: unknown[] = [groupId];
  let where = 'group_id = $1';
  if (f.memberId) where += ` AND member_id = $${params.push(f.memberId)}`;
  if (f.status) where += ` AND status = $${params.push(f.status)}`;
  return q.query<PurchaseRow>(`SELECT ${COLUMNS} FROM family_purchases WHERE ${where} ORDER BY requested_at, id`, params);
}

/**
 * The member's usable passes of a kind at `now` (active, not expired), soonest to expire first:
 * usage draws from the first that can carry the whole event.
 */
export async function usablePasses(q: Queryable, memberId: string, kind: PassOffer['kind'], now: Date): Promise<PurchaseRow[]> {
  return q.query<PurchaseRow>(
    `SELECT ${COLUMNS} FROM family_purchases WHERE member_id = $1 AND kind = $2 AND status = 'active' AND expires_at > $3 ORDER BY expires_at, id FOR UPDATE`,
    [memberId, kind, now],
  );
}

/** The member's spend in cycle `start`: active purchases and what waits for approval. */
export async function spendOf(q: Queryable, memberId: string, start: string): Promise<{ spent: number; pending: number }> {
  const [r] = await q.query<{ spent: string | number; pending: string | number }>(
    `SELECT COALESCE(sum(price) FILTER (WHERE status = 'active' AND cycle_start = $2), 0) AS spent,
            COALESCE(sum(price) FILTER (WHERE status = 'pending'), 0) AS pending
       FROM family_purchases WHERE member_id = $1`, [memberId, start]);
  return { spent: Number(r?.spent ?? 0), pending: Number(r?.pending ?? 0) };
}
