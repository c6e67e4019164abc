/**
 * Add-on purchases (docs/family.md): the group's passes, a spend limit per member and cycle, a
 * child's purchase over it pending until the owner approves or declines it (a child cannot), an
 * adult's refused, the owner's and operator's purchases active at once; a data pass carrying data
 * past the child's cap; the spend starting again next cycle; every purchase step in the event log and
 * at the operator's callback, in order.
 */
import t from 'tap';
import { FAMILY_EVENT_PATH } from '../../src/family/events.js';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { createFamily, familyOperator } from '../helpers/family-usage.js';
import { receiver, until } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

t.test('spend limit, pending, approve and decline, and the callback in order', async (t) => {
  const w = await startWorld(t);
  const rx = await receiver(t);
  const api = await familyOperator(w, { callbackUrl: rx.url });
  const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20, baseDelayMs: 100 });
  t.teardown(() => outbox.stop());

  const fam = await createFamily(api, {
    plan: { dataMb: 10_000, voiceMin: 100, sms: 100 },
    members: [
      { name: 'Olga', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'Adam', role: 'adult', lines: [{ device: 'phone' }] },
      { name: 'Kid', role: 'child', caps: { dataMb: 100 }, lines: [{ device: 'phone' }] },
    ],
  });
  const g = fam.groupId;
  const [olga, adam, kid] = [fam.byName.Olga!, fam.byName.Adam!, fam.byName.Kid!];
  const buy = (m: { id: string }, pass: string, token?: string) => api.call('POST', `/family/groups/${g}/members/${m.id}/purchases`, { pass }, token);

  t.equal((await buy(kid, 'data-1gb', kid.token)).status, 404, 'nothing on sale yet');
  for (const [body, why] of [
    [{ passes: [{ id: 'x', name: 'X', kind: 'roaming', validityHours: 24, price: 100 }] }, 'a pass that gives nothing'],
    [{ passes: [{ id: 'x', name: 'X', kind: 'cruise', dataMb: 1, validityHours: 24, price: 100 }] }, 'an unknown kind'],
    [{ passes: [{ id: 'x', name: 'X', kind: 'data', dataMb: 1, validityHours: 0, price: 100 }] }, 'no validity'],
    [{ passes: [{ id: 'x', name: 'X', kind: 'data', dataMb: 1, validityHours: 1, price: 1 }, { id: 'x', name: 'Y', kind: 'data', dataMb: 2, validityHours: 1, price: 1 }] }, 'two passes of one id'],
    [{ currency: 'euro', passes: [] }, 'a currency code'],
  ] as const) {
    t.equal((await api.call('PUT', `/family/groups/${g}/passes`, body)).status, 400, `passes 400: ${why}`);
  }
  t.equal((await api.call('PUT', `/family/groups/${g}/passes`, { passes: [] }, olga.token)).status, 403, "what is sold is the operator's");
  await api.ok('PUT', `/family/groups/${g}/passes`, {
    currency: 'EUR',
    passes: [
      { id: 'data-1gb', name: 'Extra 1 GB', kind: 'data', dataMb: 1024, validityHours: 720, price: 300 },
      { id: 'roam-week', name: 'Roaming week', kind: 'roaming', dataMb: 2048, voiceMin: 60, sms: 60, validityHours: 168, price: 800 },
    ],
  });
  const onSale = await api.ok('GET', `/family/groups/${g}/passes`, undefined, 200, kid.token);
  t.same(onSale.passes.map((p: any) => `${p.id}:${p.price}`), ['data-1gb:300', 'roam-week:800'], 'a child sees what is on sale');

  // Limits: the owner sets the child's; an adult's is the operator's.
  t.equal((await api.call('PUT', `/family/groups/${g}/members/${kid.id}/controls`, { spendLimit: 5000 }, kid.token)).status, 403, 'a child cannot raise its limit');
  await api.ok('PUT', `/family/groups/${g}/members/${kid.id}/controls`, { spendLimit: 1000 }, 200, olga.token);
  await api.ok('PUT', `/family/groups/${g}/members/${adam.id}/controls`, { spendLimit: 500 });

  // Within the limit: active at once.
  let r = await buy(kid, 'data-1gb', kid.token);
  t.equal(r.status, 201);
  t.match(r.body, { purchase: { status: 'active', state: 'active', passId: 'data-1gb', requestedBy: `member:${kid.id}` }, spend: { spent: 300, limit: 1000, currency: 'EUR' }, overLimit: false });
  const dataPass = r.body.purchase.id as string;

  // Over the limit: the child's purchase waits.
  r = await buy(kid, 'roam-week', kid.token);
  t.equal(r.status, 201);
  t.match(r.body, { purchase: { status: 'pending', state: 'pending', expiresAt: null }, spend: { spent: 300, limit: 1000 }, overLimit: true }, '300 + 800 > 1000: pending');
  const pending = r.body.purchase.id as string;
  t.equal((await buy(adam, 'roam-week', adam.token)).status, 409, "an adult's purchase over its limit is refused");
  t.equal((await buy(olga, 'roam-week', kid.token)).status, 403, 'a child buys for itself only');
  t.equal((await buy(kid, 'no-such-pass', kid.token)).status, 404);
  t.equal((await api.call('POST', `/family/groups/${g}/members/${kid.id}/purchases`, { pass: 'data 1gb' }, kid.token)).status, 400, 'not a pass id');
  t.equal((await api.call('POST', `/family/groups/${g}/members/${kid.id}/purchases`, {}, kid.token)).status, 400, 'no pass');

  const waiting = await api.ok('GET', `/family/groups/${g}/purchases?status=pending`, undefined, 200, olga.token);
  t.same(waiting.purchases.map((p: any) => p.id), [pending], 'the owner sees what waits');
  t.equal((await api.call('GET', `/family/groups/${g}/purchases?status=pending`, undefined, kid.token)).status, 403, "a child does not read the group's purchases");
  t.equal((await api.call('GET', `/family/groups/${g}/purchases?status=later`)).status, 400);
  const own = await api.ok('GET', `/family/groups/${g}/members/${kid.id}/purchases`, undefined, 200, kid.token);
  t.same(own.purchases.map((p: any) => p.status), ['active', 'pending'], 'the child sees its own');

  // The console's group view shows it waiting, and each member's controls and spend.
  const view = (await w.app.inject({ url: `/admin/family/groups/${g}` })).json();
  t.match(view.purchasesPending, [{ id: pending, memberName: 'Kid', passId: 'roam-week', price: 800, currency: 'EUR', state: 'pending' }], 'the console: awaiting approval');
  t.match(view.controls, { timeZone: 'UTC', emergencyNumbers: ['112', '911', '999', '000', '110', '119'], passes: { currency: 'EUR', offers: [{ id: 'data-1gb' }, { id: 'roam-week' }] } });
  t.match(view.members.find((m: any) => m.name === 'Kid'), { controls: { spendLimit: 1000 }, spend: { limit: 1000, spent: 300, pending: 800 }, passes: [{ id: dataPass }], roaming: { data: { used: 0 } } });

  // Only the owner (or the operator) decides.
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${pending}/approve`, {}, kid.token)).status, 403, 'a child cannot approve');
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${pending}/approve`, {}, adam.token)).status, 403, 'nor can an adult');
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/fp_nope/approve`, {}, olga.token)).status, 404);
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${pending}/approve`, { note: 'x'.repeat(201) }, olga.token)).status, 400);
  r = await api.call('POST', `/family/groups/${g}/purchases/${pending}/approve`, { note: 'holiday' }, olga.token);
  t.equal(r.status, 200);
  t.match(r.body, { purchase: { id: pending, status: 'active', state: 'active', decidedBy: `member:${olga.id} (holiday)` }, spend: { spent: 1100, limit: 1000 }, overLimit: true }, 'approved: active, over the limit by the owner\'s word');
  t.ok(r.body.purchase.expiresAt, 'valid from its approval');
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${pending}/approve`, {}, olga.token)).status, 409, 'approved once');
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${pending}/decline`, {}, olga.token)).status, 409, 'and not declined after');

  // Another over the limit, declined.
  r = await buy(kid, 'data-1gb', kid.token);
  t.equal(r.body.purchase.status, 'pending');
  const declined = r.body.purchase.id as string;
  t.equal((await api.call('POST', `/family/groups/${g}/purchases/${declined}/decline`, undefined, kid.token)).status, 403, 'a child cannot decline either');
  r = await api.call('POST', `/family/groups/${g}/purchases/${declined}/decline`, undefined, olga.token);
  t.equal(r.status, 200, 'a decision with no body');
  t.match(r.body, { id: declined, status: 'declined', state: 'declined' });

  // The owner and the operator buy for the child: active at once, even over the limit.
  r = await buy(kid, 'data-1gb', olga.token);
  t.match(r.body, { purchase: { status: 'active', requestedBy: `member:${olga.id}` }, overLimit: true });
  r = await buy(kid, 'data-1gb');
  t.match(r.body, { purchase: { status: 'active', requestedBy: `operator:${api.operatorId}` }, spend: { spent: 1700 } });

  // A data pass carries data past the child's cap (the oldest-expiring pass first).
  const use = async (body: Record<string, unknown>) => api.ok('POST', `/family/groups/${g}/lines/${kid.lines[0]!.id}/usage`, body);
  t.match(await use({ kind: 'data', amount: 100 }), { decision: 'allowed', rule: 'pool' });
  t.match(await use({ kind: 'data', amount: 1000 }), { decision: 'allowed', rule: 'data-pass', purchaseId: dataPass, remaining: { pass: 24 } }, 'over the cap: the data pass');
  t.match(await use({ kind: 'voice', amount: 1 }), { decision: 'allowed', rule: 'pool' }, 'a data pass is for data');
  const s = await api.ok('GET', `/family/groups/${g}/members/${kid.id}/usage`, undefined, 200, kid.token);
  t.match(s.members[0], { data: { used: 100, limit: 100 }, spend: { limit: 1000, spent: 1700, pending: 0 } });
  t.same(s.members[0].passes.map((p: any) => p.passId).sort(), ['data-1gb', 'data-1gb', 'data-1gb', 'roam-week'], 'its usable passes');

  // Next cycle: the spend starts again.
  await api.ok('POST', `/family/groups/${g}/rollover`);
  r = await buy(kid, 'roam-week', kid.token);
  t.match(r.body, { purchase: { status: 'active' }, spend: { spent: 800, limit: 1000 }, overLimit: false }, 'a new cycle, a new budget');

  // Every step in the log and, in the same order, at the operator's callback.
  const log = (await api.ok('GET', `/family/groups/${g}/events?type=purchase-requested,purchase-approved,purchase-declined,purchase-activated`)).events;
  const story = log.map((e: any) => `${e.type}:${e.detail.pass}:${e.detail.memberName}`);
  t.same(story, [
    'purchase-requested:data-1gb:Kid', 'purchase-activated:data-1gb:Kid',
    'purchase-requested:roam-week:Kid',
    'purchase-approved:roam-week:Kid', 'purchase-activated:roam-week:Kid',
    'purchase-requested:data-1gb:Kid', 'purchase-declined:data-1gb:Kid',
    'purchase-requested:data-1gb:Kid', 'purchase-activated:data-1gb:Kid',
    'purchase-requested:data-1gb:Kid', 'purchase-activated:data-1gb:Kid',
    'purchase-requested:roam-week:Kid', 'purchase-activated:roam-week:Kid',
  ]);
  t.match(log[2].detail, { status: 'pending', overLimit: true, spent: 300, limit: 1000, price: 800, currency: 'EUR', by: `member:${kid.id}` });
  t.match(log[3].detail, { by: `member:${olga.id} (holiday)` });

  const queued = await w.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox WHERE kind = 'familyEvent'`);
  await until(() => rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).length >= queued[0]!.n, 20_000);
  const seen = rx.calls.filter((c) => c.path === FAMILY_EVENT_PATH).map((c) => c.body);
  t.same(seen.map((b) => Number(b.eventId)), [...seen.map((b) => Number(b.eventId))].sort((a, b) => a - b), 'delivered in event order');
  const heard = seen.filter((b) => b.type.startsWith('purchase-'));
  t.same(heard.map((b) => `${b.type}:${b.detail.pass}:${b.detail.memberName}`), story, 'the operator heard every purchase step, in order');
  t.same(heard.map((b) => b.eventId), log.map((e: any) => e.id), 'the same events as the log');
});

t.test('concurrent purchases and roaming events never overspend the limit, the allowance or a pass', async (t) => {
  const w = await startWorld(t);
  const api = await familyOperator(w);
  const fam = await createFamily(api, {
    plan: { dataMb: 1000, billingCycleDay: Math.min(new Date().getUTCDate(), 28) },
    members: [
      { name: 'Olga', role: 'owner', lines: [{ device: 'phone' }] },
      { name: 'Kid', role: 'child', lines: [{ device: 'phone' }, { device: 'watch' }] },
    ],
  });
  const g = fam.groupId;
  const kid = fam.byName.Kid!;
  await api.ok('PUT', `/family/groups/${g}/passes`, { passes: [{ id: 'roam', name: 'Roam', kind: 'roaming', dataMb: 100, validityHours: 24, price: 300 }] });
  await api.ok('PUT', `/family/groups/${g}/members/${kid.id}/controls`, { spendLimit: 1000 });
  await api.ok('PUT', `/family/groups/${g}/roaming`, { homeCountry: 'SE', dataMb: 250 });

  const N = 8;
  const bought = await Promise.all(Array.from({ length: N }, () => api.ok('POST', `/family/groups/${g}/members/${kid.id}/purchases`, { pass: 'roam' }, 201, kid.token)));
  t.equal(bought.filter((b) => b.purchase.status === 'active').length, 3, '3 × 300 fit in 1000: three active');
  t.equal(bought.filter((b) => b.purchase.status === 'pending').length, N - 3, 'the rest wait');
  const s = await api.ok('GET', `/family/groups/${g}/members/${kid.id}/usage`);
  t.match(s.members[0].spend, { limit: 1000, spent: 900, pending: (N - 3) * 300 });

  // 3 passes of 100 MB and a pool of 250 MB: 55 events of 10 MB, 550 MB of room.
  const lines = kid.lines.map((l) => l.id);
  const used = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    api.ok('POST', `/family/groups/${g}/lines/${lines[i % 2]}/usage`, { kind: 'data', amount: 10, visitedCountry: 'NO' })));
  const by = (rule: string, decision = 'allowed') => used.filter((u) => u.rule === rule && u.decision === decision).length;
  t.equal(by('roaming-pass'), 30, 'the passes carry 300 MB');
  t.equal(by('roaming-allowance'), 25, 'the pooled allowance 250 MB');
  t.equal(by('roaming-allowance', 'blocked'), 5, 'then blocked');
  const after = await api.ok('GET', `/family/groups/${g}/usage`);
  t.match(after.pool.roaming.data, { limit: 250, used: 250, remaining: 0 });
  t.equal(after.pool.data.used, 0, 'nothing from the home pool');
  const mine = await api.ok('GET', `/family/groups/${g}/members/${kid.id}/purchases`);
  t.same(mine.purchases.filter((p: any) => p.status === 'active').map((p: any) => p.used.dataMb), [100, 100, 100], 'each pass used exactly up to its allowance');
});
