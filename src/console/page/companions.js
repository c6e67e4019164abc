// Companion devices of a family group (docs/entitlement.md): each watch or tablet subscribed through
// the TS.43 entitlement endpoint, with its service (SharedNumber / DiffNumber), number, EID, the
// profile issued for it and that profile's state, and whether the subscription is active, was
// unsubscribed or transferred. Read from GET /admin/entitlement/companions?group=ID.
//
// Used by the family view: appendCompanions(el, groupId) adds the card to the group's detail.
import { h, badge, when } from './dom.js';
import { get } from './api.js';

/** The card of the group's companion devices (a message card when the list cannot be read). */
export async function companionsCard(groupId) {
  let companions;
  try {
    ({ companions } = await get(`/admin/entitlement/companions?group=${encodeURIComponent(groupId)}`));
  } catch (err) {
    return h('div', { class: 'card companions' }, h('h2', {}, 'Companion devices'), h('p', { class: 'message error' }, err.message));
  }
  const active = companions.filter((c) => c.state === 'active').length;
  return h('div', { class: 'card companions', dataset: { group: groupId } },
    h('h2', {}, 'Companion devices', h('span', { class: 'count' }, ` (${active} active${companions.length > active ? `, ${companions.length - active} ended` : ''})`)),
    companions.length
      ? h('table', { class: 'list companions' },
        h('thead', {}, h('tr', {}, ['Device', 'Member', 'Service', 'EID', 'Profile', 'Subscription'].map((c) => h('th', {}, c)))),
        h('tbody', {}, companions.map((c) => h('tr', { dataset: { terminalId: c.terminalId, iccid: c.iccid ?? '' } },
          h('td', {}, h('b', {}, c.friendlyName ?? c.terminalId), h('span', { class: 'sub' }, [c.terminalId, c.model].filter(Boolean).join(' · '))),
          h('td', {}, c.memberName ?? c.memberId),
          h('td', {}, c.service, h('span', { class: 'sub' }, c.msisdn ?? '')),
          h('td', { class: 'mono' }, c.eid),
          h('td', {}, h('span', { class: 'mono' }, c.iccid ?? '—'), ' ', c.profileState ? badge(c.profileState) : null),
          h('td', {}, badge(c.state), h('span', { class: 'sub' }, c.endedAt ? `ended ${when(c.endedAt)}` : `since ${when(c.createdAt)}`))))))
      : h('p', { class: 'message' }, 'No companion devices. A member adds one from the phone with TS.43 ManageSubscription (mock-smdp sim companion).'));
}

/**
 * Appends the card to `el` (the group's detail) unless another group was opened meanwhile; resolves
 * with the card, or undefined when it was not appended.
 */
export async function appendCompanions(el, groupId) {
  el.dataset.companionsFor = groupId;
  const card = await companionsCard(groupId);
  if (el.dataset.companionsFor !== groupId) return undefined;
  el.querySelector('.card.companions')?.remove();
  el.append(card);
  return card;
}
