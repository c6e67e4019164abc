// Inventory: profile types with their counts per state, and the profiles by type and state.
import { $, h, clear, badge, when, safe } from './dom.js';
import { get } from './api.js';

const STATES = ['Available', 'Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Installed', 'Error', 'Unavailable'];
const CLASSES = ['test', 'provisioning', 'operational'];

export function init() {
  for (const s of STATES) $('#inventory-state').append(h('option', { value: s }, s));
  $('#inventory-type').addEventListener('change', safe(loadInventory));
  $('#inventory-state').addEventListener('change', safe(loadInventory));
}

export async function show() {
  await Promise.all([loadTypes(), loadInventory()]);
}

async function loadTypes() {
  const { profileTypes } = await get('/admin/profile-types');
  const head = clear($('#types-table thead'));
  head.append(h('tr', {}, h('th', {}, 'Type'), h('th', {}, 'Service provider'), h('th', {}, 'Profile name'), h('th', {}, 'Class'), h('th', {}, 'Template'),
    STATES.map((s) => h('th', {}, s))));
  const body = clear($('#types-table tbody'));
  const sel = $('#inventory-type');
  const keep = sel.value;
  clear(sel).append(h('option', { value: '' }, 'all types'));
  for (const t of profileTypes) {
    sel.append(h('option', { value: t.name }, t.name));
    body.append(h('tr', { onclick: safe(() => { sel.value = t.name; return loadInventory(); }) },
      h('td', {}, h('b', {}, t.name)), h('td', {}, t.serviceProviderName), h('td', {}, t.profileName), h('td', {}, CLASSES[t.profileClass] ?? t.profileClass),
      h('td', { class: 'mono' }, t.template ? `${t.template.bytes} B, ${t.template.algorithm}` : 'generated'),
      STATES.map((s) => h('td', {}, t.counts?.[s] ? String(t.counts[s]) : '·'))));
  }
  sel.value = keep;
}

async function loadInventory() {
  const type = $('#inventory-type').value;
  const state = $('#inventory-state').value;
  const qs = new URLSearchParams({ limit: '200' });
  if (type) qs.set('type', type);
  if (state) qs.set('state', state);
  const inv = await get(`/admin/inventory?${qs}`);
  $('#inventory-total').textContent = `(${inv.total} profiles${type ? ` of ${type}` : ''})`;
  const counts = clear($('#inventory-counts'));
  for (const s of STATES) if (inv.counts[s]) counts.append(h('span', { class: `badge ${s}` }, s, h('span', { class: 'n' }, String(inv.counts[s]))));
  const body = clear($('#inventory-table tbody'));
  for (const p of inv.profiles) {
    body.append(h('tr', {}, h('td', { class: 'mono' }, p.iccid), h('td', { class: 'mono' }, p.imsi), h('td', {}, p.profileType),
      h('td', {}, p.operator ?? '—'), h('td', {}, badge(p.state)), h('td', {}, when(p.updatedAt))));
  }
}

export function onLive(event, _data, visible) {
  if (event !== 'order') return;
  if (!visible) return;
  clearTimeout(onLive.timer);
  onLive.timer = setTimeout(safe(show), 300); // a burst of changes: one reload
}
