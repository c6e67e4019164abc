/**
 * The operator's whole story as a carrier backend runs it: ES2+ downloadOrder → confirmOrder (with
 * and without EID, with and without confirmation code) → the activation code from the admin API →
 * the simulator downloads → the callback receiver sees points 1, 3 and 4 in order → Installed.
 */
import t from 'tap';
import { startOutboxWorker } from '../../src/outbox/worker.js';
import { decodePendingNotification } from '../../src/rsp/notification.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { newDevice, receiver, until } from '../helpers/operator.js';
import { startWorld } from '../helpers/world.js';

const TS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

for (const withEid of [false, true]) {
  for (const withCc of [false, true]) {
    t.test(`carrier flow: ${withEid ? 'with' : 'without'} EID, ${withCc ? 'with' : 'without'} confirmation code`, async (t) => {
      const w = await startWorld(t);
      const rx = await receiver(t);
      const op = await addEs2Operator(w, { callbackUrl: rx.url });
      await op.stock(2);
      const outbox = startOutboxWorker(w.db, { pollIntervalMs: 20, baseDelayMs: 100, requesterIdentifier: w.config.smdpAddress });
      t.teardown(() => outbox.stop());
      const { card, lpa } = await newDevice(w);

      const d = await op.call('downloadOrder', { profileType: 'default', ...(withEid ? { eid: card.eid } : {}) });
      t.equal(d.status, 'Executed-Success', 'downloadOrder');
      const iccid: string = d.body.iccid;
      t.equal((await w.profile(iccid))!.state, withEid ? 'Linked' : 'Allocated');

      const c = await op.call('confirmOrder', { iccid, releaseFlag: true, ...(withCc ? { confirmationCode: '4711' } : {}) });
      t.equal(c.status, 'Executed-Success', 'confirmOrder');
      t.equal((await w.profile(iccid))!.state, 'Released');

      const acr = await w.http.get(`/admin/activation-codes/${c.body.matchingId}`);
      t.equal(acr.status, 200);
      const activationCode = acr.text.trim();
      t.match(activationCode, withCc ? /\$\$1$/ : new RegExp(`\\$${c.body.matchingId}$`));

      await lpa.download(activationCode, withCc ? { confirmationCode: '4711' } : {});
      await until(() => rx.calls.length >= 3);
      const calls = rx.calls.map((c) => c.body);
      t.same(calls.map((b) => b.notificationPointId), [1, 3, 4], 'points 1, 3, 4 in order');
      for (const b of calls) {
        t.equal(b.iccid, iccid);
        t.equal(b.eid, card.eid);
        t.equal(b.profileType, 'default');
        t.match(b.timestamp, TS_RE);
        t.equal(b.notificationPointStatus.status, 'Executed-Success');
        t.ok(b.header?.functionCallIdentifier, 'each callback has its own call identifier');
      }
      t.ok(rx.calls.every((c) => c.path.endsWith('/gsma/rsp2/es2plus/handleDownloadProgressInfo')));
      const pir = decodePendingNotification(Buffer.from(calls[2]!.resultData, 'base64'));
      t.ok('pir' in pir, 'point 4 carries the install result (BF37) as received');
      t.equal((await w.profile(iccid))!.state, 'Installed');
    });
  }
}
