/**
 * The profile state machine, entry by entry: every action from every state it allows reaches each
 * state it may lead to and records its event; from every other state it is refused with 8.2.1/3.5
 * and changes nothing. Listeners: their columns come with the locked read, their parts are written in
 * the change's statement only when the change is, and their `after` work runs once.
 */
import t from 'tap';
import { PROFILE_STATES } from '../../src/inventory/store.js';
import {
  PROFILE_EVENT, TRANSITIONS, canTransition, eventOf, lockProfile, onProfileChange, profileColumns, profileEventSql, transition,
  type Action, type ProfileChange,
} from '../../src/orders/state-machine.js';
import { insertProfile, profileHistory, type ProfileState } from '../../src/orders/store.js';
import { openTestDb } from '../helpers/db.js';

const seen: ProfileChange[] = [];
onProfileChange({
  columns: [`(SELECT count(*)::integer FROM profile_events e WHERE e.iccid = p.iccid) AS test_event_count`],
  parts: (c) => (c.action === 'released' ? [{ sql: `INSERT INTO profile_events (iccid, event) SELECT t.iccid, $1::text FROM t`, params: ['test-listener-part'] }] : []),
  after: async (_q, c) => void seen.push(c),
});

const EVENT_OF: Record<Action, (to: ProfileState) => string> = {
  downloadOrder: (to) => (to === 'Linked' ? 'linked' : 'allocated'), released: () => 'released',
  confirmOrder: (to) => (to === 'Released' ? 'released' : 'confirmed'), releaseProfile: () => 'released',
  cancelOrder: (to) => (to === 'Available' ? 'cancelled' : 'cancelled-unavailable'), authenticated: () => 'authenticated',
  confirmationCodeRefused: () => 'confirmation-code-refused', orderKilled: () => 'confirmation-code-limit',
  bppDownloaded: () => 'downloaded', bppResent: () => 'bpp-resent', sessionCancelled: () => 'session-cancelled',
  installed: () => 'installed', installFailed: () => 'install-failed', deviceStateChanged: () => 'enabled', deleted: () => 'deleted',
};
const IN_PLACE: Action[] = ['authenticated', 'confirmationCodeRefused', 'bppResent', 'deviceStateChanged'];

t.test('every entry of the table, on the database', async (t) => {
  const db = await openTestDb(t);
  let n = 0;
  for (const action of Object.keys(TRANSITIONS) as Action[]) {
    for (const from of PROFILE_STATES) {
      for (const to of PROFILE_STATES) {
        const allowed = TRANSITIONS[action].from.includes(from) && TRANSITIONS[action].to.includes(to) && (!IN_PLACE.includes(action) || from === to);
        t.equal(canTransition(action, from, to), allowed, `canTransition ${action} ${from} -> ${to}`);
        if (!allowed && !(TRANSITIONS[action].from.includes(from) && to === TRANSITIONS[action].to[0])) continue;
        const p = await db.tx((q) => insertProfile(q, { iccid: `8900000000000${String(++n).padStart(6, '0')}` }));
        await db.query('UPDATE profiles SET state = $2 WHERE iccid = $1', [p.iccid, from]);
        const before = await profileHistory(db, p.iccid);
        const set = action === 'deviceStateChanged' ? { device_state: 'Enabled' as const } : undefined;
        const r = await db.tx(async (q) => {
          const row = (await lockProfile(q, p.iccid))!;
          return transition(q, row, { action, to, ...(set ? { set } : {}) });
        }).then((row) => ({ row }), (err: { status?: { subjectCode: string; reasonCode: string } }) => ({ err }));
        const after = await profileHistory(db, p.iccid);
        const state = (await db.query<{ state: string }>('SELECT state FROM profiles WHERE iccid = $1', [p.iccid]))[0]!.state;
        if (allowed) {
          t.ok('row' in r, `${action} ${from} -> ${to} applied`);
          t.equal(state, to);
          t.equal(after.at(-1)?.event === 'test-listener-part' ? after.at(-2)!.event : after.at(-1)!.event, EVENT_OF[action](to), `${action}: event`);
          t.match(after.find((e) => e.event === EVENT_OF[action](to))!.detail, { from, to });
        } else {
          t.same('err' in r && r.err.status, { subjectCode: '8.2.1', reasonCode: '3.5', message: r && 'err' in r ? (r.err.status as { message?: string }).message : '' }, `${action} ${from} -> ${to} refused with 8.2.1/3.5`);
          t.equal(state, from, 'state unchanged');
          t.equal(after.length, before.length, 'no event');
        }
      }
    }
  }
});

t.test('listeners: columns in the locked read, parts only with the change, after once per change', async (t) => {
  const db = await openTestDb(t);
  t.match(profileColumns(), /AS test_event_count/);
  const p = await db.tx((q) => insertProfile(q, {}));
  const row = (await db.tx((q) => lockProfile(q, p.iccid)))!;
  t.equal(row.test_event_count, 1, "the listener's column was read with the row (the 'created' event)");
  seen.length = 0;
  await db.tx((q) => transition(q, row, { action: 'released', to: 'Released', set: { matching_id: 'TEST-1' } }));
  const events = async () => (await profileHistory(db, p.iccid)).map((e) => e.event).sort();
  t.same(await events(), ['created', 'released', 'test-listener-part'], "the change's event and the listener's part");
  t.equal(seen.length, 1);
  t.match(seen[0], { action: 'released', from: 'Available', to: 'Released', iccid: p.iccid });

  // A stale row (the profile moved on since it was read): nothing is written, not even the parts.
  seen.length = 0;
  await t.rejects(db.tx((q) => transition(q, row, { action: 'released', to: 'Released' })), { name: 'FunctionFailed', status: { subjectCode: '8.2.1', reasonCode: '3.5' } });
  t.same(await events(), ['created', 'released', 'test-listener-part'], 'no second event, no part');
  t.equal(seen.length, 0, 'no after work');
});

t.test('event names: the strings the database holds, one list for producers and the SQL that matches them', async (t) => {
  // These strings are the history API (GET /admin/orders/:iccid/history) and what older rows hold.
  t.same(Object.values(PROFILE_EVENT).sort(), [
    'allocated', 'authenticated', 'bpp-resent', 'cancelled', 'cancelled-unavailable', 'confirmation-code-limit',
    'confirmation-code-refused', 'confirmed', 'created', 'deleted', 'disabled', 'downloaded', 'enabled', 'fault-injected',
    'fault-set', 'install-failed', 'installed', 'linked', 'released', 'session-cancelled',
  ]);
  const row = { device_state: 'Enabled' } as ProfileChange['row'];
  for (const action of Object.keys(TRANSITIONS) as Action[]) {
    for (const to of TRANSITIONS[action].to) {
      if (action !== 'deviceStateChanged') t.equal(eventOf({ action, to, row }), EVENT_OF[action](to), `${action} -> ${to}`);
    }
  }
  t.equal(eventOf({ action: 'deviceStateChanged', to: 'Installed', row, set: { device_state: 'Disabled' } }), 'disabled', 'by the device state set');
  t.equal(eventOf({ action: 'deviceStateChanged', to: 'Installed', row }), 'enabled', 'else by the row');

  const db = await openTestDb(t);
  const p = await db.tx((q) => insertProfile(q, {}));
  const match = async (sql: string) => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM profile_events WHERE iccid = $1 AND event = ${sql}`, [p.iccid]))[0]!.n;
  t.equal(profileEventSql(PROFILE_EVENT.bppResent), "'bpp-resent'");
  t.equal(await match(profileEventSql(PROFILE_EVENT.created)), 1, 'the creation event found by its constant');
  t.equal(await match(profileEventSql(PROFILE_EVENT.released)), 0);
});
