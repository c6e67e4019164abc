// Orders: the order form, the list with live state changes, one order's activation code (text and
// QR, copy, PNG/SVG), history, faults, and a printable sheet of activation codes.
import { $, h, clear, badge, when, copy, toast, safe } from './dom.js';
import { get, post, del, blobUrl, download, ApiFailure } from './api.js';

const STATES = ['Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Installed', 'Error', 'Unavailable', 'Available'];
const FUNCTIONS = ['authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'cancelSession'];

const orders = new Map(); // iccid → order as GET /admin/orders shows it
const selected = new Set();
let lastCreated = [];
let open; // the ICCID whose detail is shown
let loaded = false;

export function init() {
  const stateSel = $('#orders-state');
  for (const s of STATES) stateSel.append(h('option', { value: s }, s));
  stateSel.addEventListener('change', safe(reload));
  $('#orders-search').addEventListener('input', () => render());
  $('#orders-all').addEventListener('change', (e) => {
    for (const o of visible()) e.target.checked ? selected.add(o.iccid) : selected.delete(o.iccid);
    render();
  });
  $('#print-selected').addEventListener('click', safe(() => printSheet([...selected].map((i) => orders.get(i)).filter(Boolean))));
  $('#print-created').addEventListener('click', safe(() => printSheet(lastCreated)));
  $('#order-form').addEventListener('submit', createOrders);
}

export async function show() {
  await Promise.all([loadTypes(), reload()]);
  if (open) openOrder(open);
}

async function loadTypes() {
  const sel = $('#order-type');
  const keep = sel.value;
  const { profileTypes } = await get('/admin/profile-types');
  clear(sel);
  for (const t of profileTypes) {
    const available = t.counts?.Available ?? 0;
    sel.append(h('option', { value: t.name }, `${t.name}${available ? ` (${available} available)` : ''}`));
  }
  if (keep) sel.value = keep;
  if (!sel.value) sel.value = 'default';
}

async function reload() {
  const state = $('#orders-state').value;
  const { orders: list } = await get(`/admin/orders?limit=500${state ? `&state=${encodeURIComponent(state)}` : ''}`);
  orders.clear();
  for (const o of list) orders.set(o.iccid, o);
  loaded = true;
  render();
}

function visible() {
  const q = $('#orders-search').value.trim().toUpperCase();
  const state = $('#orders-state').value;
  return [...orders.values()]
    .filter((o) => (!state || o.state === state) && (!q || [o.iccid, o.eid, o.matchingId].some((v) => v && v.toUpperCase().includes(q))))
    .sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
}

function render(flash) {
  const body = clear($('#orders-table tbody'));
  const list = visible();
  for (const o of list) {
    const row = h('tr', {
      dataset: { iccid: o.iccid },
      class: [o.iccid === open ? 'selected' : '', flash?.has(o.iccid) ? 'flash' : ''].join(' ').trim() || undefined,
      onclick: (e) => { if (!e.target.closest('input')) openOrder(o.iccid); },
    },
    h('td', { class: 'check' }, h('input', {
      type: 'checkbox', checked: selected.has(o.iccid), 'aria-label': `select ${o.iccid}`,
      onchange: (e) => { e.target.checked ? selected.add(o.iccid) : selected.delete(o.iccid); updatePrintButton(); },
    })),
    h('td', { class: 'mono' }, o.iccid),
    h('td', { class: 'state' }, badge(o.state)),
    h('td', {}, o.profileType),
    h('td', { class: 'mono nowrap', title: o.eid ?? '' }, o.eid ? `…${o.eid.slice(-8)}` : '—'),
    h('td', { class: 'mono nowrap', title: o.activationCode ?? '' }, o.matchingId ?? '—'),
    h('td', {}, when(o.updatedAt)));
    body.append(row);
  }
  $('#orders-count').textContent = loaded ? `(${list.length})` : '';
  $('#orders-empty').hidden = list.length > 0;
  updatePrintButton();
}

function updatePrintButton() {
  const n = [...selected].filter((i) => orders.get(i)?.matchingId).length;
  $('#print-selected').disabled = n === 0;
  $('#print-selected').textContent = n ? `Print selected (${n})` : 'Print selected';
}

async function createOrders(e) {
  e.preventDefault();
  const f = new FormData(e.target);
  const out = $('#order-form-result');
  const body = { count: Number(f.get('count') || 1), profileType: f.get('profileType') || undefined };
  const eid = String(f.get('eid') ?? '').trim();
  const cc = String(f.get('confirmationCode') ?? '');
  const expires = Number(f.get('expires') || 0);
  if (eid) body.eid = eid;
  if (cc) body.confirmationCode = cc;
  if (expires > 0) body.expiresIn = Math.round(expires * Number(f.get('expiresUnit')));
  out.className = 'message';
  out.textContent = 'Creating…';
  try {
    const r = await post('/admin/orders', body);
    const created = r.orders ?? [r];
    for (const o of created) orders.set(o.iccid, { ...o, operator: o.operator ?? null });
    lastCreated = created;
    out.textContent = `${created.length} order${created.length > 1 ? 's' : ''} created`;
    showCreated();
    render(new Set(created.map((o) => o.iccid)));
    openOrder(created[0].iccid);
  } catch (err) {
    out.className = 'message error';
    out.textContent = err instanceof ApiFailure ? err.message : String(err);
  }
}

function showCreated() {
  $('#created').hidden = lastCreated.length === 0;
  const list = clear($('#created-list'));
  for (const o of lastCreated.slice(0, 200)) list.append(h('span', { class: 'chip', title: o.activationCode, onclick: () => openOrder(o.iccid) }, o.matchingId));
  if (lastCreated.length > 200) list.append(h('span', { class: 'count' }, `… and ${lastCreated.length - 200} more`));
}

async function openOrder(iccid) {
  open = iccid;
  for (const tr of document.querySelectorAll('#orders-table tbody tr')) tr.classList.toggle('selected', tr.dataset.iccid === iccid);
  const panel = $('#order-detail');
  panel.hidden = false;
  $('#order-hint').hidden = true;
  let profile, callbacks, faults, smds;
  const eid = orders.get(iccid)?.eid;
  try {
    [profile, callbacks, faults, smds] = await Promise.all([
      get(`/admin/profiles/${iccid}`),
      get(`/admin/callbacks?iccid=${iccid}&limit=200`),
      get('/admin/faults?all=true'),
      // The order's SM-DS event, at the built-in SM-DS or an external one (docs/smds.md#an-orders-event).
      eid ? get(`/admin/smds/orders/${iccid}`) : null,
    ]);
  } catch (err) {
    clear(panel).append(h('p', { class: 'message error' }, `Could not load ${iccid}: ${err.message}`));
    return;
  }
  if (open !== iccid) return;
  const o = { ...orders.get(iccid), ...profile, activationCode: orders.get(iccid)?.activationCode ?? null };
  const mine = faults.faults.filter((x) => x.iccid === iccid || (o.matchingId && x.matchingId === o.matchingId) || (o.eid && x.eid === o.eid));
  const qr = h('img', { class: 'qr', id: 'order-qr', alt: 'activation code QR' });
  clear(panel).append(
    h('div', { class: 'card-head' }, h('h2', {}, 'Order ', h('span', { class: 'mono' }, iccid)), h('span', { id: 'order-state' }, badge(o.state))),
    o.matchingId
      ? h('div', { class: 'qr-block' }, qr, h('div', { style: 'min-width:0;flex:1' },
        h('p', { class: 'ac-text mono', id: 'order-ac' }, o.activationCode),
        h('div', { class: 'actions' },
          h('button', { type: 'button', onclick: () => copy(o.activationCode) }, 'Copy'),
          h('button', { type: 'button', onclick: safe(() => download(`/admin/activation-codes/${o.matchingId}.png?scale=10`, `${o.matchingId}.png`)) }, 'PNG'),
          h('button', { type: 'button', onclick: safe(() => download(`/admin/activation-codes/${o.matchingId}.svg`, `${o.matchingId}.svg`)) }, 'SVG'),
          h('button', { type: 'button', onclick: safe(() => printSheet([o])) }, 'Print'))))
      : h('p', { class: 'message' }, 'No activation code: the order is not released.'),
    h('h3', {}, 'Order'),
    h('dl', { class: 'facts' },
      fact('Type', o.profileType), fact('IMSI', o.imsi), fact('EID', o.eid ?? '—'), fact('MatchingID', o.matchingId ?? '—'),
      fact('Device', o.deviceState ?? '—'), fact('Downloads', `${o.downloadAttempts} of ${o.maxDownloadAttempts}`),
      fact('Confirmation code', o.confirmationCodeRequired ? `required (${o.confirmationCodeAttempts} wrong)` : 'none'),
      fact('Expires', o.expiresAt ? when(o.expiresAt) : 'never'), fact('Operator', o.operator ?? '—')),
    smdsSection(o, smds),
    h('h3', {}, 'History'),
    timeline(profile, callbacks.callbacks, mine),
    faultSection(o, mine),
  );
  if (o.matchingId) qrUrl(o.matchingId).then((url) => { qr.src = url; }).catch(() => { qr.alt = 'QR not available'; });
}

/** The QR image of a MatchingID as an object URL, kept for the orders opened lately (re-rendering does not fetch it again). */
const qrCache = new Map();
function qrUrl(matchingId) {
  if (!qrCache.has(matchingId)) {
    const p = blobUrl(`/admin/activation-codes/${matchingId}.png?scale=6`);
    p.catch(() => qrCache.delete(matchingId));
    qrCache.set(matchingId, p);
    if (qrCache.size > 50) {
      const [oldest, url] = qrCache.entries().next().value;
      qrCache.delete(oldest);
      url.then((u) => URL.revokeObjectURL(u)).catch(() => {});
    }
  }
  return qrCache.get(matchingId);
}

const fact = (k, v) => [h('dt', {}, k), h('dd', { class: 'mono' }, v)];

/**
 * The order's SM-DS event (GET /admin/smds/orders/:iccid): where it is registered, the built-in
 * SM-DS's record, or an external SM-DS's state as the SM-DP+ knows it (a DeleteEvent still pending).
 */
function smdsSection(o, e) {
  if (!o.eid || !e) return null;
  const where = e.smdsAddress ? `${e.smdsAddress} (${e.builtIn ? 'the built-in SM-DS' : 'an external SM-DS'})` : null;
  let body;
  if (e.state === 'registered' || (e.state === 'deleting' && e.event)) {
    const r = e.event;
    body = h('dl', { class: 'facts' },
      fact('SM-DS', where), fact('State', e.state === 'deleting' ? 'registered, DeleteEvent pending' : 'registered'),
      fact('EventID', e.eventId), fact('SM-DP+ address', r ? r.rspServerAddress : e.rspServerAddress),
      r ? fact('Registered by', r.registeredBy) : null, r ? fact('Created', when(r.createdAt)) : null,
      e.deletion ? fact('DeleteEvent', deletionText(e.deletion)) : null);
  } else if (e.state === 'deleting') {
    body = h('dl', { class: 'facts' }, fact('SM-DS', where), fact('State', 'DeleteEvent pending'), fact('EventID', e.eventId), fact('DeleteEvent', deletionText(e.deletion)));
  } else if (e.state === 'not-registered') {
    body = h('p', { class: 'message' }, `Not registered yet at ${where}: RegisterEvent is sent at releaseProfile.`);
  } else if (e.state === 'deleted') {
    body = h('p', { class: 'message' }, `No event for this order any more: ${e.eventId} was deleted at ${where}.`);
  } else {
    body = h('p', { class: 'message' }, 'No event for this order: it was confirmed without an SM-DS.');
  }
  // An external SM-DS's deletion has no live message of its own: look again while one is pending.
  if (e.state === 'deleting') setTimeout(() => { if (open === o.iccid) openOrder(o.iccid); }, 2000);
  return h('div', { id: 'order-smds', dataset: { state: e.state } }, h('h3', {}, 'SM-DS event'), body);
}

const deletionText = (d) => `${d.attempts} attempt${d.attempts === 1 ? '' : 's'} so far${d.lastError ? `, last error: ${d.lastError}` : ''}; next at ${when(d.nextAttemptAt)}`;

function timeline(profile, callbacks, faults) {
  const items = [
    ...profile.history.map((e) => ({ at: e.at, cls: 'event', kind: 'event', text: e.event, detail: e.detail })),
    ...profile.notifications.map((n) => ({ at: n.at, cls: 'notification', kind: 'notification', text: `${n.kind} · ${n.outcome}${n.verified ? '' : ' (not verified)'}`, detail: n.seqNumber != null ? { seqNumber: n.seqNumber } : null })),
    ...callbacks.map((c) => ({ at: c.createdAt, cls: 'callback', kind: 'callback', text: `${c.summary} → ${c.state}`, detail: c.lastError ? { lastError: c.lastError, attempts: c.attempts } : { url: c.url } })),
    ...faults.filter((f) => f.lastFiredAt).map((f) => ({ at: f.lastFiredAt, cls: 'fault', kind: 'fault', text: `${f.mode} ${f.function ?? 'any'} fired ${f.fired}×`, detail: null })),
  ].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  return h('ul', { class: 'timeline', id: 'order-history' }, items.map((i) => h('li', { class: i.cls },
    h('span', { class: 'when' }, when(i.at)), h('span', { class: 'kind' }, i.kind), h('b', {}, i.text),
    i.detail && Object.keys(i.detail).length ? h('span', { class: 'detail' }, compact(i.detail)) : null)));
}

function compact(detail) {
  return Object.entries(detail).filter(([, v]) => v !== null && v !== undefined && v !== false)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
}

function faultSection(o, faults) {
  const form = h('form', { class: 'fault-form', onsubmit: (e) => addFault(e, o) },
    h('div', { class: 'grid2' },
      h('label', {}, 'Function', h('select', { name: 'function' }, h('option', { value: '' }, 'any'), FUNCTIONS.map((f) => h('option', { value: f }, f)))),
      h('label', {}, 'Mode', h('select', { name: 'mode' }, ['fail', 'delay', 'drop'].map((m) => h('option', { value: m }, m))))),
    h('div', { class: 'grid2' },
      h('label', {}, 'Status (fail)', h('input', { name: 'status', placeholder: '8.2.6/3.8', pattern: '[0-9.]+/[0-9.]+' })),
      h('label', {}, 'Delay ms (delay)', h('input', { name: 'delayMs', type: 'number', min: 1, placeholder: '2000' }))),
    h('div', { class: 'actions' },
      h('label', { class: 'inline' }, 'times', h('input', { name: 'count', type: 'number', min: 1, value: 1, style: 'width:70px' })),
      h('button', { type: 'submit' }, 'Inject fault'), h('span', { class: 'message', id: 'fault-result' })));
  const list = faults.length
    ? h('table', { class: 'list' }, h('tbody', {}, faults.map((f) => h('tr', {},
      h('td', {}, f.function ?? 'any'),
      h('td', {}, f.mode === 'fail' ? `fail ${f.subjectCode}/${f.reasonCode}` : f.mode === 'delay' ? `delay ${f.delayMs} ms` : 'drop'),
      h('td', {}, `${f.remaining} left, fired ${f.fired}`),
      h('td', {}, f.remaining > 0 ? h('button', { type: 'button', class: 'small danger', onclick: safe(async () => { await del(`/admin/faults/${f.id}`); openOrder(o.iccid); }) }, 'Remove') : '')))))
    : h('p', { class: 'message' }, 'No faults for this order.');
  return h('div', { class: 'faults' }, h('h3', {}, 'Fault injection'), list, form);
}

async function addFault(e, o) {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { iccid: o.iccid, mode: f.get('mode'), count: Number(f.get('count') || 1) };
  if (f.get('function')) body.function = f.get('function');
  if (body.mode === 'fail') {
    const [subjectCode, reasonCode] = String(f.get('status') || '8.2.6/3.8').split('/');
    Object.assign(body, { subjectCode, reasonCode });
  }
  if (body.mode === 'delay') body.delayMs = Number(f.get('delayMs') || 2000);
  try {
    await post('/admin/faults', body);
    toast('Fault added');
    openOrder(o.iccid);
  } catch (err) {
    $('#fault-result').className = 'message error';
    $('#fault-result').textContent = err.message;
  }
}

/** Fills the print sheet with the orders' QR codes and prints it (print CSS shows only the sheet). */
async function printSheet(list) {
  const withCode = list.filter((o) => o?.matchingId);
  if (!withCode.length) return toast('Nothing to print');
  const sheet = clear($('#print-sheet'));
  toast(`Preparing ${withCode.length} code${withCode.length > 1 ? 's' : ''}…`);
  const cards = await Promise.all(withCode.map(async (o) => {
    const img = h('img', { alt: o.matchingId });
    img.src = await blobUrl(`/admin/activation-codes/${o.matchingId}.png?scale=6&ecl=Q`);
    await img.decode().catch(() => {});
    return h('div', { class: 'print-card' },
      img, h('div', { class: 'iccid' }, o.iccid), h('div', { class: 'ac' }, o.activationCode),
      o.confirmationCodeRequired ? h('div', { class: 'cc' }, 'confirmation code required') : null);
  }));
  sheet.append(...cards);
  window.addEventListener('afterprint', () => {
    for (const img of sheet.querySelectorAll('img')) URL.revokeObjectURL(img.src);
  }, { once: true });
  window.print();
}

export function onLive(event, data) {
  // The SM-DS's events changed: the open order's detail shows its event.
  if (event === 'smds') {
    if (!$('#tab-orders').hidden && open && orders.get(open)?.eid) {
      clearTimeout(onLive.smds);
      onLive.smds = setTimeout(() => { if (open) openOrder(open); }, 100);
    }
    return;
  }
  if (event !== 'order') return;
  const o = data.order;
  const state = $('#orders-state').value;
  if (o.state === 'Available' && !state) orders.delete(o.iccid);
  else if (!state || o.state === state) orders.set(o.iccid, o);
  else orders.delete(o.iccid);
  if ($('#tab-orders').hidden) return;
  render(new Set([o.iccid]));
  // The detail again (its QR image comes from the cache, so it does not flicker).
  if (open === o.iccid) openOrder(o.iccid);
}
