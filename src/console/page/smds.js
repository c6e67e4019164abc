// The built-in SM-DS (docs/smds.md): its event records as GET /admin/smds/events answers them,
// newest first. A record exists from ES12 RegisterEvent until DeleteEvent removes it, so a deleted
// event is one that is no longer listed. Live: the feed sends `smds` when the records change.
import { $, h, clear, when, safe } from './dom.js';
import { get } from './api.js';

let events = [];
let loaded = false;

export function init() {
  $('#smds-eid').addEventListener('input', () => render());
}

export async function show() {
  ({ events } = await get('/admin/smds/events?limit=1000'));
  loaded = true;
  render();
}

function render(flash) {
  const q = $('#smds-eid').value.trim().toUpperCase();
  const list = events.filter((e) => !q || [e.eid, e.eventId].some((v) => v.toUpperCase().includes(q)));
  const body = clear($('#smds-table tbody'));
  for (const e of list) {
    body.append(h('tr', { dataset: { eventId: e.eventId }, class: flash?.has(e.eventId) ? 'flash' : undefined },
      h('td', { class: 'mono' }, e.eid), h('td', { class: 'mono' }, e.eventId), h('td', { class: 'mono' }, e.rspServerAddress),
      h('td', { class: 'mono' }, e.registeredBy), h('td', {}, when(e.createdAt))));
  }
  $('#smds-count').textContent = loaded ? `(${list.length}${list.length === events.length ? '' : ` of ${events.length}`})` : '';
  $('#smds-empty').hidden = list.length > 0;
}

export function onLive(event, data, visible) {
  if (event !== 'smds' || !visible) return;
  // One reload per burst of changes.
  clearTimeout(onLive.timer);
  onLive.timer = setTimeout(safe(async () => {
    const before = new Set(events.map((e) => e.eventId));
    await show();
    render(new Set(events.map((e) => e.eventId).filter((id) => !before.has(id))));
  }), 100);
}
