/**
 * handleNotification with notifications that arrive twice or out of order (an LPA's retry, lpac's
 * `notification process` without -r, `notification replay`): each is recorded, but only one newer
 * (by the eUICC's seqNumber) than those already applied changes the profile's device state.
 */
import t from 'tap';
import { startWorld } from '../helpers/world.js';
import { device, snapshot, toB64 } from '../helpers/wire.js';

const w = await startWorld(t);

t.test('an older or repeated notification is recorded but does not undo a newer one', async (t) => {
  const { lpa, wire } = await device(w);
  const order = await w.order();
  await lpa.download(order.activationCode);
  await lpa.enableProfile(order.iccid);
  await lpa.disableProfile(order.iccid);
  const pending = await lpa.listNotifications();
  const enable = pending.find((x) => x.operation === 'enable')!;
  const disable = pending.find((x) => x.operation === 'disable')!;
  t.ok(enable.seqNumber < disable.seqNumber, 'enable numbered before disable');
  const enableRaw = await lpa.retrieveNotification(enable.seqNumber);
  const disableRaw = await lpa.retrieveNotification(disable.seqNumber);

  // The newer one arrives first; the older enable that follows must not re-enable the profile.
  const first = await wire.send('handleNotification', { pendingNotification: toB64(disableRaw) });
  t.equal(first.status, 204);
  t.equal((await w.profile(order.iccid))!.device_state, 'Disabled');
  const eventsBefore = (await snapshot(w.db)).events;

  for (const [what, raw, outcome] of [['older enable', enableRaw, 'stale'], ['repeated disable', disableRaw, 'duplicate']] as const) {
    const ex = await wire.send('handleNotification', { pendingNotification: toB64(raw) });
    t.equal(ex.status, 204, `${what}: 204`);
    t.match(ex.after!.notifications.at(-1), { verified: true, iccid: order.iccid, outcome }, `${what}: recorded as ${outcome}`);
  }
  t.equal((await w.profile(order.iccid))!.device_state, 'Disabled', 'device state still Disabled');
  t.same((await snapshot(w.db)).events, eventsBefore, 'no new profile event');
});
