/**
 * The console's family tab with the controls (src/console/page/family.js), in headless Chromium as
 * test/console/browser.test.ts runs it: a child's time windows, trusted numbers, spend and roaming
 * usage, the group's time zone and passes, a purchase awaiting approval that leaves the list live
 * once the owner approves it, and no script error. Skipped with MOCK_SMDP_SKIP_BROWSER=1.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { chromium } from 'playwright-core';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { startWorld } from '../helpers/world.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

if (process.env.MOCK_SMDP_SKIP_BROWSER === '1') {
  t.plan(0, 'skipped: MOCK_SMDP_SKIP_BROWSER=1');
} else if (!existsSync(CHROMIUM)) {
  t.fail(`${CHROMIUM} not found: this test needs Debian's chromium package, or set MOCK_SMDP_SKIP_BROWSER=1 to skip it`);
} else {
  t.test("the family tab shows members' controls, roaming usage and purchases awaiting approval, live", async (t) => {
    const w = await startWorld(t);
    const api = await familyOperator(w);
    const fam = await createFamily(api, {
      name: 'The Haddads', plan: { dataMb: 5000, voiceMin: 100, sms: 100 },
      members: [{ name: 'Rana', role: 'owner', lines: [{ device: 'phone' }] }, { name: 'Sami', role: 'child', lines: [{ device: 'watch' }] }],
    });
    const g = fam.groupId;
    const sami = fam.byName.Sami!;
    const rana = fam.byName.Rana!;
    await api.ok('PUT', `/family/groups/${g}/time-zone`, { timeZone: 'Asia/Beirut' });
    await api.ok('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'LB', dataMb: 300 });
    await api.ok('PUT', `/family/groups/${g}/passes`, { currency: 'USD', passes: [{ id: 'roam-day', name: 'Day abroad', kind: 'roaming', dataMb: 500, validityHours: 24, price: 700 }] });
    // Roaming usage first: the school window set next may be on now.
    await api.ok('POST', `/family/groups/${g}/lines/${sami.lines[0]!.id}/usage`, { kind: 'data', amount: 120, visitedCountry: 'CY' });
    await api.ok('PUT', `/family/groups/${g}/members/${sami.id}/controls`, {
      timeWindows: [{ name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:00', to: '14:30' }],
      trustedNumbers: ['9613123456'], spendLimit: 500, roaming: { dataMb: 200 },
    }, 200, rana.token);
    const bought = await api.ok('POST', `/family/groups/${g}/members/${sami.id}/purchases`, { pass: 'roam-day' }, 201, sami.token);
    t.equal(bought.purchase.status, 'pending');

    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
    t.teardown(() => browser.close());
    const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    await page.goto(`${w.url}/console#family`);
    await page.locator('#live.on').waitFor();
    await page.locator('#groups li', { hasText: 'The Haddads' }).click();
    const member = page.locator('#group-detail .member', { hasText: 'Sami' });
    await member.locator('.member-controls').waitFor();
    const text = await member.innerText();
    t.match(text, /school: no data\/voice\/sms mon–fri 08:00–14:30/, 'the time window');
    t.match(text, /Trusted: 9613123456/, 'the trusted number');
    t.match(text, /spent 0\.00 USD of 5\.00 USD, 7\.00 USD awaiting approval/, 'spend, limit and what waits');
    t.match(text, /Roaming data\s*120 MB\s*of 200 MB/, "the child's roaming usage against its own allowance");
    const controls = await page.locator('#group-detail .controls').innerText();
    t.match(controls, /Time zone Asia\/Beirut \(now \w{3} \d{2}:\d{2}\)/);
    t.match(controls, /Roaming: home LB · block at the allowance/);
    t.match(controls, /Day abroad \(roaming\): 500 MB, 24 h, 7\.00 USD/, 'the pass on sale');
    const row = page.locator(`#group-detail tr[data-purchase="${bought.purchase.id}"]`);
    t.match(await row.innerText(), /Sami[\s\S]*Day abroad[\s\S]*7\.00 USD[\s\S]*pending/, 'the purchase awaiting approval');

    // The owner approves: the row goes, the pass shows with the member, without a reload.
    await api.ok('POST', `/family/groups/${g}/purchases/${bought.purchase.id}/approve`, {}, 200, rana.token);
    await row.waitFor({ state: 'detached', timeout: 10_000 });
    await page.locator('#group-detail .controls', { hasText: 'No purchase awaits approval.' }).waitFor();
    await member.locator('.chip.pass', { hasText: 'Day abroad: 500 MB left' }).waitFor();
    t.same(errors, [], 'no script errors in the page');
  });
}
