/**
 * The same ES9+ call twice at once (an LPA retrying before the first answer came back), on one
 * server: the functions read without locks and write guarded (applyChange), so whatever the
 * interleaving, the result is what one call after the other would give. authenticateClient: one
 * succeeds, the other is 8.10.1/3.9, one attempt counted. getBoundProfilePackage: both get the same
 * package, bound once. The install result: installed once, the copy logged as unknown-transaction.
 * Each case runs several times so that both orders of the reads and writes occur.
 */
import t from 'tap';
import type { HttpResponse } from '../../src/http/client.js';
import { LPA_HEADERS } from '../../src/sim/lpa.js';
import { device, ES9, type Body } from '../helpers/wire.js';
import { startWorld } from '../helpers/world.js';

const w = await startWorld(t);
const ROUNDS = 6;

const events = async (iccid: string) =>
  (await w.db.query<{ event: string }>('SELECT event FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid])).map((e) => e.event);
const status = (r: HttpResponse) => ((r.json as { header?: { functionExecutionStatus?: object } } | undefined)?.header?.functionExecutionStatus ?? {}) as { status?: string; statusCodeData?: { subjectCode: string; reasonCode: string } };

/**
 * A device whose LPA sends `fn` once more, at the same time, with the same body; the copy's answer
 * is kept, and the LPA goes on only once both are answered (so the copy races the original, not
 * the LPA's next call).
 */
async function withCopy(fn: 'authenticateClient' | 'getBoundProfilePackage' | 'handleNotification') {
  const copies: Array<Promise<HttpResponse>> = [];
  const d = await device(w, {
    request: {
      [fn]: (body: Body) => {
        copies.push(w.http.post(`${ES9}/${fn}`, body, { ...LPA_HEADERS }));
        return body;
      },
    },
    response: {
      [fn]: async (res: HttpResponse) => {
        await copies.at(-1);
        return res;
      },
    },
  });
  return { ...d, copies };
}

t.test('authenticateClient twice at once: one succeeds, the other is 8.10.1/3.9, one attempt', async (t) => {
  for (let i = 0; i < ROUNDS; i++) {
    const o = await w.order();
    const { lpa, wire, copies } = await withCopy('authenticateClient');
    await lpa.download(o.activationCode).catch(() => {});
    const answers = [wire.last('authenticateClient'), await copies[0]!].map((r) => status(r as HttpResponse));
    t.equal(answers.filter((a) => a.status === 'Executed-Success').length, 1, `round ${i}: one success`);
    t.match(answers.find((a) => a.status !== 'Executed-Success'), { status: 'Failed', statusCodeData: { subjectCode: '8.10.1', reasonCode: '3.9' } }, `round ${i}: the other refused`);
    const p = (await w.profile(o.iccid))!;
    t.equal(p.download_attempts, 1, `round ${i}: one attempt counted`);
    t.equal((await events(o.iccid)).filter((e) => e === 'authenticated').length, 1, `round ${i}: one authenticated event`);
  }
});

t.test('getBoundProfilePackage twice at once: the same package for both, bound once', async (t) => {
  for (let i = 0; i < ROUNDS; i++) {
    const o = await w.order();
    const { lpa, wire, copies } = await withCopy('getBoundProfilePackage');
    const r = await lpa.download(o.activationCode);
    t.equal(r.notificationSent, true, `round ${i}: the download completed`);
    const first = wire.last('getBoundProfilePackage');
    const copy = await copies[0]!;
    t.equal(status(copy).status, 'Executed-Success', `round ${i}: the copy succeeded too`);
    t.equal((copy.json as { boundProfilePackage?: string }).boundProfilePackage, first.json.boundProfilePackage, `round ${i}: the very same package`);
    const ev = await events(o.iccid);
    t.same([ev.filter((e) => e === 'downloaded').length, ev.filter((e) => e === 'bpp-resent').length], [1, 1], `round ${i}: downloaded once, re-sent once`);
    t.equal((await w.profile(o.iccid))!.state, 'Installed');
  }
});

t.test('the install result twice at once: installed once, the copy logged as unknown-transaction', async (t) => {
  for (let i = 0; i < ROUNDS; i++) {
    const o = await w.order();
    const { lpa, copies } = await withCopy('handleNotification');
    await lpa.download(o.activationCode);
    t.equal((await copies[0]!).status, 204, `round ${i}: the copy is answered 204`);
    t.equal((await w.profile(o.iccid))!.state, 'Installed');
    t.equal((await events(o.iccid)).filter((e) => e === 'installed').length, 1, `round ${i}: one installed event`);
    const outcomes = (await w.db.query<{ outcome: string }>(
      `SELECT n.outcome FROM notifications n WHERE n.kind = 'install' AND n.transaction_id IN
         (SELECT e.detail->>'transactionId' FROM profile_events e WHERE e.iccid = $1 AND e.event = 'installed') ORDER BY n.outcome`, [o.iccid])).map((n) => n.outcome);
    t.same(outcomes, ['success', 'unknown-transaction'], `round ${i}: both recorded, one applied`);
  }
});
