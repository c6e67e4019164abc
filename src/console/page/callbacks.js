// Callbacks sent to operators (the outbox) with their delivery state, live; and the operators.
import { $, h, clear, badge, when, showPayload, safe } from './dom.js';
import { get } from './api.js';

const rows = new Map();
let counts = { pending: 0, retrying: 0, delivered: 0 };

export function init() {
  $('#callbacks-state').addEventListener('change', safe(show));
}

export async function show() {
  const state = $('#callbacks-state').value;
  const [ops, cb] = await Promise.all([get('/admin/operators'), get(`/admin/callbacks?limit=300${state ? `&state=${state}` : ''}`)]);
  const body = clear($('#operators-table tbody'));
  for (const o of ops.operators) body.append(h('tr', {}, h('td', { class: 'mono' }, o.id), h('td', {}, o.name), h('td', { class: 'mono' }, o.callbackUrl ?? '—'), h('td', {}, when(o.createdAt))));
  rows.clear();
  for (const c of cb.callbacks) rows.set(c.id, c);
  counts = cb.counts;
  render();
}

function render(flash) {
  const body = clear($('#callbacks-table tbody'));
  const list = [...rows.values()].sort((a, b) => Number(b.id) - Number(a.id));
  for (const c of list) {
    body.append(h('tr', { dataset: { id: c.id }, class: flash === c.id ? 'flash' : undefined, onclick: () => showPayload(`Callback #${c.id} → ${c.url}`, c.payload) },
      h('td', {}, c.id), h('td', {}, when(c.createdAt)), h('td', { class: 'mono' }, c.operatorId),
      h('td', { class: 'mono' }, c.iccid ?? (c.groupId ? `group ${c.groupId}` : '—')), h('td', {}, c.summary),
      h('td', {}, badge(c.state), c.deliveredAt ? h('span', { class: 'count' }, ` ${when(c.deliveredAt)}`) : null),
      h('td', {}, String(c.attempts)), h('td', { class: 'mono' }, c.lastError ?? '')));
  }
  $('#callbacks-empty').hidden = list.length > 0;
  $('#callbacks-counts').textContent = `(${counts.pending} pending · ${counts.retrying} retrying · ${counts.delivered} delivered)`;
}

export function onLive(event, data, visible) {
  if (event !== 'callback') return;
  const c = data.callback;
  const state = $('#callbacks-state').value;
  if (!state || c.state === state) rows.set(c.id, c);
  else rows.delete(c.id);
  if (!visible) return;
  render(c.id);
  // The counts per state, once per burst.
  clearTimeout(onLive.timer);
  onLive.timer = setTimeout(safe(async () => {
    counts = (await get('/admin/callbacks?limit=1')).counts;
    render();
  }), 300);
}
