/**
 * End to end: the device simulator (LPA + virtual eUICC) downloads, installs and reports a profile
 * through the real server over HTTP, on both curves, and the server records every step.
 */
import t from 'tap';
import { sampleEid } from '../../src/pki/generate.js';
import { Lpa, LpaError } from '../../src/sim/lpa.js';
import { profileHistory } from '../../src/orders/store.js';
import { secondInstance, startWorld } from '../helpers/world.js';
import { newDevice } from '../helpers/device.js';

for (const curve of ['P-256', 'brainpoolP256r1'] as const) {
  t.test(`download, install and notification on ${curve}`, async (t) => {
    const w = await startWorld(t);
    const { card, lpa } = await newDevice(w, curve);
    const order = await w.order();
    const result = await lpa.download(order.activationCode);
    t.equal(result.iccid, order.iccid);
    t.equal(result.notificationSent, true, 'PIR delivered');

    const p = await w.profile(order.iccid);
    t.equal(p!.state, 'Installed');
    t.equal(p!.eid, card.eid, 'order bound to the EID of the eUICC certificate');
    t.equal(p!.download_attempts, 1);
    const events = (await profileHistory(w.db, order.iccid)).map((e) => e.event);
    t.same(events, ['created', 'released', 'authenticated', 'downloaded', 'installed']);
    const notes = await w.db.query<{ kind: string; verified: boolean; outcome: string }>('SELECT kind, verified, outcome FROM notifications WHERE iccid = $1', [order.iccid]);
    t.same(notes, [{ kind: 'install', verified: true, outcome: 'success' }]);
    const sessions = await w.db.query<{ state: string; euicc_certificate: Buffer | null; bound_profile_package: Buffer | null }>('SELECT state, euicc_certificate, bound_profile_package FROM rsp_sessions');
    t.same(sessions, [{ state: 'ended', euicc_certificate: null, bound_profile_package: null }], 'session ended after the install result, its row kept without the eUICC and package');

    // The card holds the profile with what the server generated for this ICCID.
    const installed = card.profiles.find((x) => x.iccid === order.iccid);
    t.ok(installed, 'profile installed on the card');
    t.equal(installed!.imsi, p!.imsi);

    // Enable, disable, delete: verified notifications change the server's view of the profile.
    for (const [op, state] of [['enableProfile', 'Enabled'], ['disableProfile', 'Disabled'], ['deleteProfile', 'Deleted']] as const) {
      await lpa[op](order.iccid);
      const sent = await lpa.processNotifications();
      t.ok(sent.length >= 1 && sent.every((n) => n.sent && n.removed), `${op} notification delivered`);
      t.equal((await w.profile(order.iccid))!.device_state, state, `server shows ${state}`);
    }
    const kinds = await w.db.query<{ kind: string; verified: boolean }>('SELECT kind, verified FROM notifications WHERE iccid = $1 ORDER BY id', [order.iccid]);
    t.same(kinds.map((k) => `${k.kind}:${k.verified}`), ['install:true', 'enable:true', 'disable:true', 'delete:true']);
  });
}

t.test('an order with a confirmation code and an EID binding', async (t) => {
  const w = await startWorld(t);
  const { card, lpa } = await newDevice(w);
  const order = await w.order({ confirmationCode: '12345678', eid: card.eid });
  t.match(order.activationCode, /\$\$1$/);
  const r = await lpa.download(order.activationCode, { confirmationCode: '12345678' });
  t.equal(r.iccid, order.iccid);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
});

t.test('an installed profile is not served again, to any eUICC', async (t) => {
  const w = await startWorld(t);
  const a = await newDevice(w);
  const order = await w.order();
  await a.lpa.download(order.activationCode);
  const again = await a.lpa.download(order.activationCode).catch((e) => e);
  t.ok(again instanceof LpaError);
  t.match(again, { subjectCode: '8.2.1', reasonCode: '3.3' }, 'same eUICC: already installed');
  const b = await newDevice(w);
  const other = await b.lpa.download(order.activationCode).catch((e) => e);
  t.match(other, { subjectCode: '8.1.1', reasonCode: '3.8' }, 'other eUICC: bound to another EID');
  t.equal((await w.profile(order.iccid))!.download_attempts, 1, 'refused attempts are not counted');
  // The LPA cancelled each refused session: every session ended, and only the download's held an eUICC.
  const sessions = await w.db.query<{ state: string; eid: string | null; euicc_certificate: Buffer | null }>('SELECT state, eid, euicc_certificate FROM rsp_sessions');
  t.same([...new Set(sessions.map((s) => s.state))], ['ended'], 'every session ended');
  t.same(sessions.filter((s) => s.eid !== null || s.euicc_certificate !== null).map((s) => s.eid), [a.card.eid], 'refused sessions hold no eUICC');
});

t.test('a second server process continues a session the first one started', async (t) => {
  const w1 = await startWorld(t);
  // A second app on the same database (PostgreSQL: its own connection pool).
  const c2 = await secondInstance(t, w1);
  // Alternate instances call by call.
  let n = 0;
  const served: number[] = [];
  const alternating = {
    post: (path: string, body: unknown, headers?: Record<string, string>) => {
      const i = n++ % 2;
      served.push(i);
      return (i === 0 ? w1.http : c2).post(path, body, headers);
    },
  } as unknown as typeof w1.http;
  const { card } = await newDevice(w1);
  const lpa = new Lpa(card, { http: alternating });
  const order = await w1.order();
  await lpa.download(order.activationCode);
  t.same(served, [0, 1, 0, 1], 'the four ES9+ calls alternated between the instances');
  t.equal((await w1.profile(order.iccid))!.state, 'Installed');
});
