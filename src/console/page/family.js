// Family groups: members, lines, each profile's live state, and the pool's and members' usage against
// plan and caps (GET /admin/family/groups[/:gid]); the controls (docs/family.md): the group's time
// zone, emergency numbers, roaming plan and passes, each member's time windows, trusted numbers,
// roaming usage, spend and passes, and the purchases awaiting the owner's approval.
import { $, h, clear, badge, when, safe } from './dom.js';
import { get } from './api.js';
import { appendCompanions } from './companions.js';

let groups = [];
let openId;

export function init() {}

export async function show() {
  ({ groups } = await get('/admin/family/groups'));
  renderGroups();
  if (!openId && groups[0]) openId = groups[0].id;
  if (openId) await openGroup(openId);
}

function renderGroups() {
  const ul = clear($('#groups'));
  $('#groups-empty').hidden = groups.length > 0;
  for (const g of groups) {
    ul.append(h('li', { class: g.id === openId ? 'selected' : undefined, onclick: safe(() => openGroup(g.id)) },
      h('b', {}, g.name), h('span', { class: 'sub' }, `${g.operatorId} · ${g.members} members · ${g.lines} lines`)));
  }
}

function meter(name, l, unit = '') {
  if (!l) return null;
  const pct = l.limit ? Math.min(100, Math.round((l.used / l.limit) * 100)) : 0;
  return h('div', { class: 'meter' },
    h('div', { class: 'label' }, h('span', {}, name), h('span', {}, h('b', {}, `${l.used}${unit}`), l.limit === null ? ' (no cap)' : ` of ${l.limit}${unit}`)),
    h('div', { class: `bar${pct >= 100 ? ' full' : pct >= 80 ? ' high' : ''}` }, h('span', { style: `width:${l.limit === null ? 0 : pct}%` })));
}

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** 'mon–fri' for consecutive days, else the list. */
function dayRange(days) {
  const idx = days.map((d) => DAYS.indexOf(d)).sort((a, b) => a - b);
  const consecutive = idx.length > 2 && idx.every((d, i) => i === 0 || d === idx[i - 1] + 1);
  return consecutive ? `${DAYS[idx[0]]}–${DAYS[idx[idx.length - 1]]}` : idx.map((d) => DAYS[d]).join(' ');
}

const money = (n, currency) => `${(n / 100).toFixed(2)} ${currency ?? ''}`.trim();

function allowance(p) {
  return [p.dataMb ? `${p.dataMb} MB` : null, p.voiceMin ? `${p.voiceMin} min` : null, p.sms ? `${p.sms} SMS` : null].filter(Boolean).join(' · ') || 'nothing';
}

/** The group's settings: time zone and local time, emergency numbers, roaming plan and its pool, passes on sale, purchases awaiting approval. */
function groupControls(g) {
  const c = g.controls;
  if (!c) return null;
  const r = c.roaming;
  const currency = c.passes?.currency;
  return h('div', { class: 'card controls' },
    h('h2', {}, 'Controls'),
    h('p', { class: 'message' }, `Time zone ${c.timeZone} (now ${c.localTime}) · emergency numbers ${c.emergencyNumbers.join(', ')}`),
    h('p', { class: 'message' }, `Roaming: home ${r.homeCountry ?? '(not set: any visited country roams)'} · ${r.atAllowance} at the allowance`),
    c.roamingUsage ? h('div', { class: 'meters roaming' }, meter('Roaming data', c.roamingUsage.data, ' MB'), meter('Roaming voice', c.roamingUsage.voice, ' min'), meter('Roaming SMS', c.roamingUsage.sms)) : null,
    c.roamingUsage?.throttledMb ? h('p', { class: 'message' }, `${c.roamingUsage.throttledMb} MB roaming data throttled`) : null,
    h('h3', {}, 'Passes on sale'),
    c.passes.offers.length
      ? h('div', { class: 'chips passes' }, c.passes.offers.map((p) => h('span', { class: 'chip', title: p.id }, `${p.name} (${p.kind}): ${allowance(p)}, ${p.validityHours} h, ${money(p.price, currency)}`)))
      : h('p', { class: 'message' }, 'None.'),
    h('h3', {}, 'Awaiting approval'),
    g.purchasesPending?.length
      ? h('table', { class: 'list pending' }, h('tbody', {}, g.purchasesPending.map((p) => h('tr', { dataset: { purchase: p.id } },
        h('td', {}, h('b', {}, p.memberName ?? p.memberId), h('span', { class: 'sub' }, `${p.name} · ${allowance(p.allowance)}`)),
        h('td', {}, money(p.price, p.currency)),
        h('td', {}, when(p.requestedAt)),
        h('td', {}, badge('pending'))))))
      : h('p', { class: 'message' }, 'No purchase awaits approval.'));
}

/** A member's controls: time windows, trusted numbers, spend and limit, roaming usage, usable passes. */
function memberControls(m, currency) {
  const c = m.controls;
  if (!c) return null;
  const windows = c.timeWindows.map((w) => h('span', { class: 'chip window', title: `time-window:${w.name}` }, `${w.name}: no ${w.blocks.join('/')} ${dayRange(w.days)} ${w.from}–${w.to}`));
  const spend = m.spend ? `spent ${money(m.spend.spent, currency)}${m.spend.limit === null ? ' (no limit)' : ` of ${money(m.spend.limit, currency)}`}${m.spend.pending ? `, ${money(m.spend.pending, currency)} awaiting approval` : ''}` : null;
  return h('div', { class: 'member-controls' },
    h('h3', {}, 'Controls'),
    windows.length ? h('div', { class: 'chips' }, windows) : h('p', { class: 'message' }, 'No time windows.'),
    h('p', { class: 'message' }, c.trustedNumbers.length ? `Trusted: ${c.trustedNumbers.join(', ')}` : 'No trusted numbers.', spend ? ` · ${spend}` : ''),
    m.roaming ? h('div', { class: 'meters roaming' }, meter('Roaming data', m.roaming.data, ' MB'), meter('Roaming voice', m.roaming.voice, ' min'), meter('Roaming SMS', m.roaming.sms)) : null,
    m.passes?.length
      ? h('div', { class: 'chips passes' }, m.passes.map((p) => h('span', { class: 'chip pass', title: p.id }, `${p.name}: ${allowance(p.remaining)} left, until ${when(p.expiresAt)}`)))
      : null);
}

async function openGroup(id) {
  openId = id;
  renderGroups();
  const el = $('#group-detail');
  let g;
  try {
    g = await get(`/admin/family/groups/${encodeURIComponent(id)}`);
  } catch (err) {
    clear(el).append(h('div', { class: 'card' }, h('p', { class: 'message error' }, err.message)));
    return;
  }
  if (openId !== id) return;
  const plan = g.group.plan;
  clear(el).append(
    h('div', { class: 'card' },
      h('div', { class: 'card-head' }, h('h2', {}, g.group.name, h('span', { class: 'count' }, ` · ${g.group.id} · ${g.group.operatorId}`)),
        h('div', { class: 'counts' }, Object.entries(g.profileStates).map(([s, n]) => h('span', { class: `badge ${s}` }, s, h('span', { class: 'n' }, String(n)))))),
      h('p', { class: 'message' }, `Plan ${plan.profileType ?? '(none)'} · cycle ${g.cycle.start} → ${g.cycle.end}, ${g.cycle.daysLeft} days left`,
        plan.msisdns?.length ? ` · numbers ${plan.msisdns.join(', ')}` : ''),
      h('h3', {}, 'Pool'),
      h('div', { class: 'meters' }, meter('Data', g.pool.data, ' MB'), meter('Hotspot', g.pool.hotspot, ' MB'), meter('Voice', g.pool.voice, ' min'), meter('SMS', g.pool.sms)),
      g.pool.data.throttledMb || g.pool.blocked ? h('p', { class: 'message' }, `${g.pool.data.throttledMb} MB throttled, ${g.pool.blocked} events blocked`) : null),
    groupControls(g),
    h('div', { class: 'members' }, g.members.map((m) => h('div', { class: 'member card' },
      h('div', { class: 'member-head' }, h('div', {}, h('b', {}, m.name), h('span', { class: 'role' }, m.role)), h('span', { class: 'count' }, `at cap: ${m.caps.atCap}`)),
      m.usage ? h('div', { class: 'meters' }, meter('Data', m.usage.data, ' MB'), meter('Hotspot', m.usage.hotspot, ' MB'), meter('Voice', m.usage.voice, ' min'), meter('SMS', m.usage.sms)) : null,
      memberControls(m, g.controls?.passes?.currency),
      h('h3', {}, 'Lines'),
      m.lines.length
        ? h('table', { class: 'list lines' }, h('tbody', {}, m.lines.map((l) => h('tr', { dataset: { iccid: l.iccid ?? '' } },
          h('td', {}, h('b', {}, l.name ?? l.device),
            h('span', { class: 'sub' }, [l.device, l.msisdn ?? `${l.numberMode} number`].join(' · ')),
            l.usage ? h('span', { class: 'sub' }, `${l.usage.dataMb} MB · ${l.usage.voiceMin} min · ${l.usage.sms} SMS`) : null),
          h('td', { class: 'mono' }, l.iccid ?? 'no profile'),
          h('td', {}, l.profile ? badge(l.profile.state) : '—')))))
        : h('p', { class: 'message' }, 'No lines.')))),
    h('div', { class: 'card' }, h('h2', {}, 'Latest events'),
      h('ul', { class: 'timeline' }, g.events.map((e) => h('li', { class: 'event' }, h('span', { class: 'when' }, when(e.at)), h('b', {}, e.type),
        e.detail ? h('span', { class: 'detail' }, Object.entries(e.detail).filter(([, v]) => v !== null && typeof v !== 'object').map(([k, v]) => `${k}: ${v}`).join(' · ')) : null)))),
  );
  // The group's companion devices (TS.43, docs/entitlement.md), in a card of their own.
  await appendCompanions(el, id);
}

export function onLive(event, data, visible) {
  if (!visible) return;
  const refresh = () => { clearTimeout(onLive.timer); onLive.timer = setTimeout(safe(show), 250); };
  if (event === 'family') return refresh();
  // A profile of a line of the open group changed.
  if (event === 'order' && document.querySelector(`#group-detail tr[data-iccid="${data.order.iccid}"]`)) refresh();
}
