/**
 * The console's companion-device card (src/console/page/companions.js) in headless Chromium, as the
 * console's browser test runs it: after a companion is subscribed through /ts43, the card of its
 * group lists it with service, number, EID, profile state and subscription state; after an
 * unsubscribe it shows the subscription ended. The module is loaded in the console page itself.
 * Without /usr/bin/chromium (or CHROMIUM_PATH) the test fails naming the package, unless MOCK_SMDP_SKIP_BROWSER=1.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { chromium } from 'playwright-core';
import { XML_TYPE } from '../../src/entitlement/ts43.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (process.env.MOCK_SMDP_SKIP_BROWSER === '1') {
  t.plan(0, 'skipped: MOCK_SMDP_SKIP_BROWSER=1');
} else if (!existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} not found: this test needs Debian's chromium package (apt-get install -y chromium), or MOCK_SMDP_SKIP_BROWSER=1 to skip it`);
} else {
  t.test('the companion card lists a subscribed watch, then shows it unsubscribed', async (t) => {
    const w = await startWorld(t);
    const api = await familyOperator(w, { stock: 2 });
    const fam = await createFamily(api, { plan: { msisdns: ['447700900021'] }, members: [{ name: 'Kim', role: 'owner', lines: [] }] });
    const kim = fam.byName.Kim!;
    await api.ok('POST', `/family/groups/${fam.groupId}/members/${kim.id}/lines`, { device: 'phone', numberMode: 'shared', msisdn: '447700900021' }, 201);
    const watch = await newDevice(w);
    const ts43 = (p: Record<string, string>) => w.http.get(`/ts43?${new URLSearchParams({ app: 'ap2006', vers: '0', terminal_id: '356938035643809', token: kim.token, ...p })}`, { accept: XML_TYPE });
    const sub = await ts43({ operation: 'ManageSubscription', operation_type: '0', companion_terminal_id: 'kim-watch', companion_terminal_eid: watch.card.eid, companion_terminal_service: 'SharedNumber', companion_terminal_friendly_name: "Kim's watch" });
    t.match(sub.text, /name="SubscriptionResult" value="2"/);

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    t.teardown(() => browser.close());
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${w.url}/console#family`);
    const read = (gid: string) => page.evaluate(async ({ id, module }) => {
      const m = (await import(module)) as { appendCompanions(el: HTMLElement, id: string): Promise<HTMLElement> };
      const el = document.createElement('div');
      document.body.append(el);
      const card = await m.appendCompanions(el, id);
      const rows = [...card.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
      return { title: card.querySelector('h2')?.textContent, rows, empty: card.querySelector('p.message')?.textContent ?? null };
    }, { id: gid, module: '/console/companions.js' });

    // The family tab shows the card in the group's detail.
    await page.locator('#groups li', { hasText: 'Test family' }).first().click();
    const inTab = page.locator('#group-detail .card.companions');
    await inTab.waitFor({ timeout: 10_000 });
    t.match(await inTab.locator('h2').textContent(), /Companion devices \(1 active\)/, "the family tab: the group's companions");

    const shown = await read(fam.groupId);
    t.match(shown.title, /Companion devices \(1 active\)/);
    t.equal(shown.rows.length, 1);
    t.match(shown.rows[0], [/Kim's watch.*kim-watch/, 'Kim', /SharedNumber.*447700900021/, watch.card.eid, /\d{19,20} Released/, /active.*since/]);

    await ts43({ operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: 'kim-watch' });
    const after = await read(fam.groupId);
    t.match(after.title, /\(0 active, 1 ended\)/);
    t.match(after.rows[0]![5], /unsubscribed.*ended/);
    t.match((await read('fg_none')).empty, /No companion devices/, 'a group without companions');
    t.same(errors, [], 'no page errors');
  });
}
