// The console's entry point: tabs, the live feed, and the views of src/console/page/*.js.
import { $, toast } from './dom.js';
import { token } from './api.js';
import { connectLive } from './live.js';
import * as orders from './orders.js';
import * as inventory from './inventory.js';
import * as family from './family.js';
import * as callbacks from './callbacks.js';
import * as catcher from './catcher.js';
import * as smds from './smds.js';

const views = { orders, inventory, family, callbacks, catcher, smds };
let current;

function showTab() {
  const name = (location.hash.slice(1) || 'orders').split('/')[0];
  const tab = views[name] ? name : 'orders';
  for (const a of document.querySelectorAll('.tabs a')) a.setAttribute('aria-selected', String(a.dataset.tab === tab));
  for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== `tab-${tab}`;
  current = tab;
  refresh();
}

/** Reloads what the current tab shows; a failure is shown, not thrown. */
function refresh() {
  Promise.resolve(views[current].show()).catch((err) => {
    console.warn(err);
    toast(`Could not load: ${err.message}`);
  });
}

function setLive(state) {
  const el = $('#live');
  el.className = `live ${state === 'live' ? 'on' : 'off'}`;
  el.textContent = state === 'live' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline, retrying';
}

for (const v of Object.values(views)) v.init();
$('#token-button').hidden = !token();
$('#token-button').addEventListener('click', async () => {
  const { askToken } = await import('./api.js');
  await askToken('Enter the admin token (ADMIN_TOKEN) to use from now on.');
  refresh();
});
window.addEventListener('hashchange', showTab);
showTab();

connectLive({
  onStatus: setLive,
  onMessage(event, data) {
    // hello: (re)connected, and anything may have changed while we were not: reload what is shown.
    if (event === 'hello') return refresh();
    for (const v of Object.values(views)) v.onLive?.(event, data, v === views[current]);
  },
});
