/**
 * The QA console end to end in headless Chromium (Debian's `chromium` package, driven by
 * playwright-core): an order created in the page, its QR code shown (and decoded back to the
 * activation code), a simulator download against the same server, and the order's state turning
 * Installed in the page without a reload; the printable sheet; the admin token prompt.
 *
 * Without /usr/bin/chromium this test fails, naming the package, unless MOCK_SMDP_SKIP_BROWSER=1.
 * MOCK_SMDP_SCREENSHOT=docs/console.png also writes a screenshot of the console with data in it.
 */
import { existsSync } from 'node:fs';
import t, { type Test } from 'tap';
import jsqrModule from 'jsqr';
import { PNG } from 'pngjs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { newDevice, until } from '../helpers/operator.js';
import { startWorld, type World } from '../helpers/world.js';

const jsQR = ((jsqrModule as unknown as { default?: unknown }).default ?? jsqrModule) as unknown as typeof import('jsqr').default;

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (process.env.MOCK_SMDP_SKIP_BROWSER === '1') {
  t.plan(0, 'skipped: MOCK_SMDP_SKIP_BROWSER=1');
} else if (!existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} not found: the console's browser test needs Debian's chromium package (apt-get install -y chromium; .ci/run installs it), or set MOCK_SMDP_SKIP_BROWSER=1 to skip it`);
} else {
  let browser: Browser;
  t.before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  });
  t.teardown(() => browser?.close());

  const pageErrors = new WeakMap<Page, string[]>();
  /** Every test ends with this: no script error in its page. */
  const noErrors = (t: Test, page: Page) => t.same(pageErrors.get(page), [], 'no script errors in the page');

  /** A page on the world's console that records script errors (noErrors). */
  const open = async (t: Test, w: World, viewport = { width: 1400, height: 900 }) => {
    const context = await browser.newContext({ viewport });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    page.on('response', (r) => {
      if (r.status() === 404) errors.push(`404 ${r.url()}`);
    });
    pageErrors.set(page, errors);
    await page.goto(`${w.url}/console`);
    return page;
  };

  const decodeQr = (png: Buffer) => {
    const img = PNG.sync.read(png);
    return jsQR(new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength), img.width, img.height)?.data;
  };

  /** The text of the order detail's QR image, once loaded (the detail may be re-rendered meanwhile: tried again). */
  const qrInPage = async (page: Page) => {
    for (let attempt = 1; ; attempt++) {
      try {
        await page.waitForFunction(() => {
          const img = document.querySelector<HTMLImageElement>('#order-qr');
          return !!img && img.complete && img.naturalWidth > 0;
        });
        return decodeQr(await page.locator('#order-qr').screenshot({ timeout: 5000 }));
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  };

  const stateOf = (page: Page, iccid: string) => page.locator(`#orders-table tr[data-iccid="${iccid}"] td.state`).innerText();

  t.test('an order created in the page, its QR, a download, Installed without a reload', async (t) => {
    const w = await startWorld(t);
    const page = await open(t, w);
    await page.locator('#live.on').waitFor();
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));

    await page.locator('#order-form [name=count]').fill('1');
    await page.locator('#order-form [name=confirmationCode]').fill('2468');
    await page.locator('#order-form button[type=submit]').click();
    await page.locator('#order-form-result', { hasText: '1 order created' }).waitFor();
    const ac = (await page.locator('#order-ac').innerText()).trim();
    t.match(ac, /^LPA:1\$LOCALHOST:8443\$[0-9A-Z-]+\$\$1$/, 'activation code shown, confirmation code flag set');
    const [row] = await w.db.query<{ iccid: string; state: string }>('SELECT iccid, state FROM profiles WHERE matching_id = $1', [ac.split('$')[2]]);
    t.equal(row?.state, 'Released', 'the order exists in the database');
    const iccid = row!.iccid;

    // The QR image loads and decodes to exactly the activation code.
    t.equal(await qrInPage(page), ac, 'the QR in the page is the activation code');
    t.equal((await stateOf(page, iccid)).trim(), 'Released');

    // A device downloads it; the page learns of it through the live feed.
    const { lpa } = await newDevice(w);
    const r = await lpa.download(ac, { confirmationCode: '2468' });
    t.equal(r.iccid, iccid);
    await page.locator(`#orders-table tr[data-iccid="${iccid}"] td.state`, { hasText: 'Installed' }).waitFor({ timeout: 15_000 });
    t.equal((await stateOf(page, iccid)).trim(), 'Installed', 'Installed in the list');
    await page.locator('#order-state', { hasText: 'Installed' }).waitFor();
    const history = await page.locator('#order-history').innerText();
    for (const e of ['released', 'authenticated', 'downloaded', 'installed']) t.match(history, e, `history shows ${e}`);
    t.match(history, /install · success/, 'and the install notification');
    t.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'without a reload');
    noErrors(t, page);
  });

  t.test('several orders, a printable sheet of their codes, copy, download and a fault injected', async (t) => {
    const w = await startWorld(t);
    const page = await open(t, w);
    await page.locator('#live.on').waitFor();
    await page.locator('#order-form [name=count]').fill('3');
    await page.locator('#order-form [name=expires]').fill('2');
    await page.locator('#order-form button[type=submit]').click();
    await page.locator('#order-form-result', { hasText: '3 orders created' }).waitFor();
    t.equal(await page.locator('#orders-table tbody tr').count(), 3);
    const rows = await w.db.query<{ expires_at: Date }>('SELECT expires_at FROM profiles WHERE state = $1', ['Released']);
    t.ok(rows.every((x) => Math.abs(x.expires_at.getTime() - Date.now() - 2 * 3600_000) < 120_000), 'expiry 2 h from now');

    await page.evaluate(() => {
      (window as unknown as { printed: number }).printed = 0;
      window.print = () => void (window as unknown as { printed: number }).printed++;
    });
    await page.locator('#print-created').click();
    await page.waitForFunction(() => (window as unknown as { printed: number }).printed === 1);
    t.equal(await page.locator('#print-sheet .print-card').count(), 3, 'one card per order');
    await page.emulateMedia({ media: 'print' });
    t.ok(await page.locator('#print-sheet').isVisible(), 'printing shows the sheet');
    t.notOk(await page.locator('header.topbar').isVisible(), 'and nothing else');
    const cards = await page.locator('#print-sheet .print-card img').all();
    for (const img of cards) t.ok(decodeQr(await img.screenshot())?.startsWith('LPA:1$'), 'each card has a readable QR');
    await page.emulateMedia({ media: 'screen' });

    // Selected rows print too.
    const boxes = page.locator('#orders-table tbody td.check input');
    await boxes.nth(0).check();
    await boxes.nth(2).check();
    await page.locator('#print-selected', { hasText: 'Print selected (2)' }).click();
    await page.waitForFunction(() => (window as unknown as { printed: number }).printed === 2);
    t.equal(await page.locator('#print-sheet .print-card').count(), 2);

    // Copy puts the activation code on the clipboard.
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: w.url });
    await page.locator('#order-detail button', { hasText: 'Copy' }).click();
    await page.locator('#toast.show', { hasText: 'Copied' }).waitFor();
    t.equal(await page.evaluate(() => navigator.clipboard.readText()), (await page.locator('#order-ac').innerText()).trim(), 'copied');

    // Download: the PNG is the QR of the open order.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#order-detail button', { hasText: 'PNG' }).click()]);
    const path = await dl.path();
    const { readFileSync } = await import('node:fs');
    t.equal(decodeQr(readFileSync(path)), (await page.locator('#order-ac').innerText()).trim(), 'downloaded PNG');
    t.match(dl.suggestedFilename(), /^[0-9A-Z-]+\.png$/);

    // A fault injected from the page fires on the next download of that order.
    const ac = (await page.locator('#order-ac').innerText()).trim();
    const detail = page.locator('#order-detail');
    await detail.locator('select[name=function]').selectOption('authenticateClient');
    await detail.locator('select[name=mode]').selectOption('fail');
    await detail.locator('input[name=status]').fill('8.2.6/3.8');
    await detail.locator('button', { hasText: 'Inject fault' }).click();
    await detail.locator('.faults td', { hasText: 'fail 8.2.6/3.8' }).waitFor();
    t.match(await detail.locator('.faults').innerText(), /1 left, fired 0/);
    const failed = await (await newDevice(w)).lpa.download(ac).catch((e: unknown) => e);
    t.match(failed, { subjectCode: '8.2.6', reasonCode: '3.8' }, 'the device gets the injected status');
    await detail.locator('.faults td', { hasText: '0 left, fired 1' }).waitFor({ timeout: 10_000 });
    t.match(await page.locator('#order-history').innerText(), /fault/i, 'the fault is in the history');
    noErrors(t, page);
  });

  t.test('with ADMIN_TOKEN the page asks for the token, keeps it for the tab, and asks again when refused', async (t) => {
    const w = await startWorld(t, { config: { adminToken: 'console-secret' } });
    const page = await open(t, w);
    const dialog = page.locator('#token-dialog');
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#token-input').fill('wrong-one');
    await page.locator('#token-input').press('Enter');
    await page.locator('#token-reason', { hasText: 'refused' }).waitFor();
    await dialog.waitFor({ state: 'visible' });
    await page.locator('#token-input').fill('console-secret');
    await page.locator('#token-input').press('Enter');
    await page.locator('#live.on').waitFor();
    t.match(await page.locator('#order-type').innerText(), /default/, 'profile types loaded with the token');
    t.equal(await page.evaluate(() => sessionStorage.getItem('mock-smdp-admin-token')), 'console-secret');
    await page.reload();
    await page.locator('#live.on').waitFor();
    t.notOk(await dialog.isVisible(), 'not asked again in the same tab');
    await page.locator('.tabs a[data-tab=smds]').click();
    await page.locator('#smds-empty').waitFor({ state: 'visible' });
    t.match(await page.locator('#smds-count').innerText(), '(0)', 'the SM-DS events loaded with the token');
    noErrors(t, page);
  });

  t.test('SM-DS: an order confirmed with smdsAddress shows its event; after discovery and download it is gone, without a reload', async (t) => {
    const SMDS = 'smds.localhost:8443';
    const w = await startWorld(t, { config: { smdsAddress: SMDS } });
    const page = await open(t, w);
    await page.locator('#live.on').waitFor();
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    await page.locator('.tabs a[data-tab=smds]').click();
    await page.locator('#smds-empty').waitFor({ state: 'visible' });

    // ES2+ downloadOrder for the card's EID, confirmOrder with smdsAddress: ES12 RegisterEvent at the built-in SM-DS.
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card, lpa } = await newDevice(w);
    const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
    const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
    t.equal(c.status, 'Executed-Success');
    const eventId = c.body.matchingId as string;
    const row = page.locator(`#smds-table tbody tr[data-event-id="${eventId}"]`);
    await row.waitFor({ timeout: 10_000 });
    const cells = await row.locator('td').allInnerTexts();
    t.same(cells.slice(0, 3), [card.eid, eventId, w.config.smdpAddress], 'EID, EventID (the MatchingID), SM-DP+ address');
    t.match(cells[3], /^[0-9.]+$/, "registered by this SM-DP+ (its OID)");
    t.match(await page.locator('#smds-count').innerText(), '(1)');

    // The order's detail shows its event.
    await page.locator('.tabs a[data-tab=orders]').click();
    await page.locator('#orders-search').fill(card.eid.slice(-8));
    t.equal(await page.locator('#orders-table tbody tr').count(), 1, 'the orders searched by EID');
    await page.locator(`#orders-table tr[data-iccid="${d.iccid}"]`).click();
    await page.locator('#order-smds dl', { hasText: eventId }).waitFor();
    t.match(await page.locator('#order-smds').innerText(), w.config.smdpAddress);

    // The device finds it through the SM-DS and installs it with no activation code; the SM-DP+ deletes the event.
    const found = await lpa.discover(SMDS);
    t.same(found, [{ eventId, rspServerAddress: w.config.smdpAddress }]);
    await lpa.download(`1$${found[0]!.rspServerAddress}$${found[0]!.eventId}`);
    await page.locator('#order-state', { hasText: 'Installed' }).waitFor({ timeout: 15_000 });
    await page.locator('#order-smds', { hasText: 'No event for this order' }).waitFor({ timeout: 15_000 });
    await page.locator('.tabs a[data-tab=smds]').click();
    await page.locator('#smds-empty').waitFor({ state: 'visible' });
    t.equal(await row.count(), 0, 'the event is gone from the SM-DS view');

    // And gone while the SM-DS view is the one shown: a second order, registered and deleted (cancelOrder) live.
    await op.stock(1);
    const { card: card2 } = await newDevice(w);
    const d2 = (await op.call('downloadOrder', { profileType: 'default', eid: card2.eid })).body;
    const c2 = await op.call('confirmOrder', { iccid: d2.iccid, smdsAddress: SMDS, releaseFlag: true });
    const row2 = page.locator(`#smds-table tbody tr[data-event-id="${c2.body.matchingId}"]`);
    await row2.waitFor({ timeout: 10_000 });
    // The search by EID (the page's own filter; noErrors below also covers its input handler).
    await page.locator('#smds-eid').fill(card.eid);
    await page.locator('#smds-empty').waitFor({ state: 'visible' });
    await page.locator('#smds-eid').fill(card2.eid.slice(-10));
    await row2.waitFor();
    t.match(await page.locator('#smds-count').innerText(), '(1)');
    await page.locator('#smds-eid').fill('');
    t.equal((await op.call('cancelOrder', { iccid: d2.iccid, finalProfileStatusIndicator: 'Available' })).status, 'Executed-Success');
    await row2.waitFor({ state: 'detached', timeout: 15_000 });
    await page.locator('#smds-empty').waitFor({ state: 'visible' });
    t.equal(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded), true, 'without a reload');
    noErrors(t, page);
  });

  t.test('family, callbacks and catcher tabs show their data live', async (t) => {
    const w = await startWorld(t);
    const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20 });
    t.teardown(() => outbox.stop());
    const page = await open(t, w);
    await page.locator('#live.on').waitFor();

    // An operator whose callback URL is the catcher (as a test would set one up), and a download of its order.
    await page.goto(`${w.url}/console#catcher`);
    await page.locator('#catcher-bin').fill('acme');
    await page.locator('#catcher-bin').press('Enter');
    const catcherUrl = (await page.locator('#catcher-url').innerText()).trim();
    t.equal(catcherUrl, `${w.url}/catcher/acme`);
    const op = await addEs2Operator(w, { callbackUrl: catcherUrl });
    const [iccid] = await op.stock(1);
    await op.call('downloadOrder', { iccid });
    const c = await op.call('confirmOrder', { iccid: iccid!, releaseFlag: true });
    await (await newDevice(w)).lpa.download(`LPA:1$${w.config.smdpAddress}$${c.body.matchingId}`);
    await page.locator('#caught-table tbody tr', { hasText: 'point 4 Executed-Success' }).waitFor({ timeout: 15_000 });
    t.equal(await page.locator('#caught-table tbody tr').count(), 3, 'points 1, 3, 4 caught');

    await page.locator('.tabs a[data-tab=callbacks]').click();
    await page.locator('#callbacks-table tbody tr').first().waitFor();
    t.equal(await page.locator('#callbacks-table tbody tr', { hasText: 'delivered' }).count(), 3, 'three delivered callbacks');
    t.match(await page.locator('#operators-table').innerText(), catcherUrl);

    const api = await familyOperator(w, { stock: 2 });
    const fam = await createFamily(api, {
      name: 'The Nakamuras', plan: { dataMb: 8000, voiceMin: 600, sms: 200, hotspotMb: 1000 },
      members: [{ name: 'Hana', role: 'owner', lines: [{ device: 'phone' }] }, { name: 'Ken', role: 'child', caps: { dataMb: 500 }, lines: [{ device: 'watch' }] }],
    });
    await page.locator('.tabs a[data-tab=family]').click();
    await page.locator('#groups li', { hasText: 'The Nakamuras' }).waitFor();
    await page.locator('#group-detail .member', { hasText: 'Ken' }).waitFor();
    const ken = fam.byName.Ken!;
    await api.ok('POST', `/family/groups/${fam.groupId}/lines/${ken.lines[0]!.id}/usage`, { kind: 'data', amount: 400 });
    await page.locator('#group-detail .member', { hasText: '400 MB' }).waitFor({ timeout: 10_000 });
    t.match(await page.locator('#group-detail .member', { hasText: 'Ken' }).innerText(), /400 MB\s*of 500 MB/, "Ken's usage against his cap, live");
    noErrors(t, page);
  });

  const shot = process.env.MOCK_SMDP_SCREENSHOT;
  t.test('screenshot of the console with data', { skip: shot ? false : 'set MOCK_SMDP_SCREENSHOT=docs/console.png to write it' }, async (t) => {
    const w = await startWorld(t);
    const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20 });
    t.teardown(() => outbox.stop());
    // Orders of an operator whose callbacks go to the catcher, three of them downloaded; and admin orders.
    const op = await addEs2Operator(w, { id: 'acme-mobile', name: 'ACME Mobile', callbackUrl: `${w.url}/catcher/acme` });
    const made = [];
    for (const iccid of await op.stock(3)) {
      await op.call('downloadOrder', { iccid });
      const c = await op.call('confirmOrder', { iccid, releaseFlag: true });
      made.push({ iccid, activationCode: `LPA:1$${w.config.smdpAddress}$${c.body.matchingId}` });
    }
    for (let i = 0; i < 3; i++) await w.order(i === 1 ? { confirmationCode: '1234' } : {});
    for (const o of made) await (await newDevice(w)).lpa.download(o.activationCode);
    await until(async () => (await w.db.query('SELECT 1 FROM outbox WHERE delivered_at IS NOT NULL')).length === 9);
    const page = await open(t, w, { width: 1600, height: 1000 });
    await page.locator('#live.on').waitFor();
    await page.locator('#order-form [name=count]').fill('2');
    await page.locator('#order-form [name=confirmationCode]').fill('8642');
    await page.locator('#order-form button[type=submit]').click();
    await page.locator('#order-form-result', { hasText: '2 orders created' }).waitFor();
    await page.locator(`#orders-table tr[data-iccid="${made[0]!.iccid}"]`).click();
    await page.locator('#order-state', { hasText: 'Installed' }).waitFor();
    await page.waitForFunction(() => (document.querySelector<HTMLImageElement>('#order-qr')?.naturalWidth ?? 0) > 0);
    await page.screenshot({ path: shot!, fullPage: false });
    t.ok(existsSync(shot!), `wrote ${shot}`);
    noErrors(t, page);
  });
}
