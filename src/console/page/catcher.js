// The callback catcher: its URL for a bin, and what it received (live).
import { $, h, clear, when, copy, toast, safe } from './dom.js';
import { get, del } from './api.js';

const rows = new Map();
let openId;

const bin = () => $('#catcher-bin').value.trim() || 'default';
const catcherUrl = () => `${location.origin}/catcher/${encodeURIComponent(bin())}`;

export function init() {
  $('#catcher-bin').addEventListener('change', safe(show));
  $('#catcher-copy').addEventListener('click', () => copy(catcherUrl()));
  $('#catcher-clear').addEventListener('click', safe(async () => {
    const r = await del(`/admin/catcher?bin=${encodeURIComponent(bin())}`);
    toast(`${r.deleted} removed`);
    return show();
  }));
}

export async function show() {
  $('#catcher-url').textContent = catcherUrl();
  const { requests } = await get(`/admin/catcher?bin=${encodeURIComponent(bin())}&limit=300`);
  rows.clear();
  for (const r of requests) rows.set(r.id, r);
  render();
}

function render(flash) {
  const body = clear($('#caught-table tbody'));
  const list = [...rows.values()].sort((a, b) => Number(b.id) - Number(a.id));
  for (const r of list) {
    body.append(h('tr', { class: [r.id === openId ? 'selected' : '', flash === r.id ? 'flash' : ''].join(' ').trim() || undefined, onclick: safe(() => openRequest(r.id)) },
      h('td', {}, r.id), h('td', {}, when(r.receivedAt)), h('td', { class: 'mono' }, r.bin), h('td', { class: 'mono' }, `${r.method} ${r.path}`),
      h('td', {}, r.summary ?? `${r.size} bytes`), h('td', {}, h('span', { class: `badge ${r.answered < 300 ? 'ok' : 'bad'}` }, String(r.answered)))));
  }
  $('#caught-empty').hidden = list.length > 0;
  $('#caught-count').textContent = `(${list.length})`;
}

async function openRequest(id) {
  openId = id;
  const r = await get(`/admin/catcher/requests/${id}`);
  rows.set(id, r);
  render();
  const el = clear($('#caught-detail'));
  el.hidden = false;
  el.append(h('h2', {}, `#${r.id} ${r.method} ${r.path}`),
    h('p', { class: 'message' }, `${when(r.receivedAt)} · answered ${r.answered} · ${r.size} bytes`),
    h('h3', {}, 'Headers'), h('pre', {}, Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join('\n')),
    h('h3', {}, 'Body'), h('pre', {}, r.json !== null ? JSON.stringify(r.json, null, 2) : r.body));
}

export async function onLive(event, data, visible) {
  if (event !== 'caught' || data.request.bin !== bin()) return;
  if (!visible) return;
  // The feed sends no bodies: read the request for its summary.
  const r = await get(`/admin/catcher/requests/${data.request.id}`).catch(() => data.request);
  rows.set(r.id, r);
  render(r.id);
}
