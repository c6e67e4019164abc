/**
 * What the QA console's family tab shows of the controls (docs/family.md, docs/console.md): the
 * group's time zone and local time, emergency numbers, roaming plan and passes on sale; each
 * member's controls, roaming usage, spend and usable passes; the purchases awaiting approval.
 * Added to GET /admin/family/groups/:gid (src/console/admin-routes.ts) with the schema parts below.
 */
import type { Queryable } from '../db/db.js';
import { groupClock } from './clock.js';
import { groupControlsOf, localTime, memberControlsOf } from './controls.js';
import { listPurchases, publicPurchase } from './purchases.js';
import type { GroupRow, MemberRow } from './store.js';
import type { UsageSummary } from './usage.js';

const any = { type: 'object', additionalProperties: true } as const;
const list = { type: 'array', items: any } as const;

/** Schema parts: `group` gets these, each member these, beside the console's own. */
export const CONTROLS_GROUP_PROPERTIES = { controls: any, purchasesPending: list } as const;
export const CONTROLS_MEMBER_PROPERTIES = { controls: any, roaming: any, spend: any, passes: list } as const;

export const CONTROLS_GROUP_EXAMPLE = {
  controls: {
    timeZone: 'Europe/London', localTime: 'tue 10:00', emergencyNumbers: ['112', '911', '999', '000', '110', '119'],
    roaming: { homeCountry: 'GB', dataMb: 2048, voiceMin: 100, sms: 100, atAllowance: 'block' },
    passes: { currency: 'EUR', offers: [{ id: 'roam-day', name: 'Roaming day pass', kind: 'roaming', dataMb: 500, voiceMin: 30, sms: 30, validityHours: 24, price: 500 }] },
    roamingUsage: { data: { limit: 2048, used: 300, remaining: 1748 }, voice: { limit: 100, used: 0, remaining: 100 }, sms: { limit: 100, used: 0, remaining: 100 }, throttledMb: 0 },
  },
  purchasesPending: [{ id: 'fp_5e1c', memberId: 'fm_0a1b2c3d4e5f6a7b', memberName: 'Kim', passId: 'roam-day', name: 'Roaming day pass', price: 500, currency: 'EUR', status: 'pending', state: 'pending', requestedAt: '2026-12-01T09:40:00.000Z' }],
};

export const CONTROLS_MEMBER_EXAMPLE = {
  controls: { timeWindows: [{ name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '15:00' }], trustedNumbers: ['447700900001'], roaming: { dataMb: 500, voiceMin: null, sms: null }, spendLimit: 1000 },
  roaming: { data: { limit: 500, used: 300, remaining: 200 }, voice: { limit: null, used: 0, remaining: null }, sms: { limit: null, used: 0, remaining: null }, throttledMb: 0 },
  spend: { limit: 1000, spent: 300, pending: 500 },
  passes: [],
};

/** The controls parts of the console's group detail. */
export async function controlsView(q: Queryable, g: GroupRow, members: MemberRow[], usage: UsageSummary) {
  const c = groupControlsOf(g);
  const { now } = await groupClock(q, g.id);
  const names = new Map(members.map((m) => [m.id, m.name]));
  const pending = (await listPurchases(q, g.id, { status: 'pending' })).map((p) => ({ ...publicPurchase(p, now), memberName: names.get(p.member_id) ?? null }));
  const byMember = new Map(usage.members.map((m) => [m.memberId, m]));
  return {
    group: {
      controls: {
        timeZone: c.timeZone, localTime: localTime(now, c.timeZone).text, emergencyNumbers: c.emergencyNumbers, roaming: c.roaming, passes: c.passes,
        roamingUsage: usage.pool.roaming,
      },
      purchasesPending: pending,
    },
    member: (m: MemberRow) => {
      const u = byMember.get(m.id);
      return { controls: memberControlsOf(m), roaming: u?.roaming, spend: u?.spend, passes: u?.passes ?? [] };
    },
  };
}
