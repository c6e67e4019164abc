/**
 * Every signed fact bound to its session: a ProfileInstallationResult changes a profile only when
 * its ICCID and transactionId are the session's (and the session is still the order's download), a
 * delete notification only for the eUICC the profile is installed on, and a getBoundProfilePackage
 * retried in its session gets the package already bound (same bytes), never a second binding.
 *
 * Messages with a changed fact are signed again with the genuine eUICC key (test/helpers/signed-facts.ts):
 * the signature verifies, the fact is what is wrong. Each refusal is checked against the whole state
 * (profiles, events, notifications, outbox, sessions, family events): one notification row and nothing else.
 */
import t from 'tap';
import { generateOtKeyPair } from '../../src/crypto/ecka.js';
import { decodeEuiccSigned2 } from '../../src/rsp/download.js';
import { iccidToEf } from '../../src/rsp/identifiers.js';
import { decodePendingNotification } from '../../src/rsp/notification.js';
import { generateIccid } from '../../src/orders/store.js';
import { PROFILE_DELETED } from '../../src/es2plus/callbacks.js';
import { LpaError } from '../../src/sim/lpa.js';
import type { HttpResponse } from '../../src/http/client.js';
import { addOperator } from '../helpers/operator.js';
import { callbacksOf, fullState, resignOther, resignPir, type FullState } from '../helpers/signed-facts.js';
import { device, failedWith, flipBit, fromB64, lpaFailed, resignEuiccSigned2, retouchPdr, succeeded, toB64, type Asserts, type Body, type Exchange, type Wire } from '../helpers/wire.js';
import { startWorld } from '../helpers/world.js';

const w = await startWorld(t);

/** Never called: no outbox worker runs in this file, the queued rows are what is checked. */
const CALLBACK = 'http://127.0.0.1:9/';

/** A Released order owned by an operator with a callback URL (so callbacks land in the outbox). */
async function order() {
  const o = await w.order();
  await addOperator(w.db, CALLBACK, [o.iccid]);
  return o;
}

const events = async (iccid: string) =>
  (await w.db.query<{ event: string }>('SELECT event FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid])).map((e) => e.event);
const points = async (iccid: string) => (await callbacksOf(w.db, iccid)).map((c) => c.notificationPointId);
const sessionOf = async (tid: string) => (await w.db.query<{ state: string }>('SELECT state FROM rsp_sessions WHERE transaction_id = $1', [tid]))[0];
const tidOf = (pir: Buffer) => {
  const n = decodePendingNotification(pir);
  if (!('pir' in n)) throw new Error('not a PIR');
  return n.pir.data.transactionId;
};
const hex = (b: Buffer) => b.toString('hex').toUpperCase();

/** Sends `fn` with state read around it. */
async function around(wire: Wire, fn: Parameters<Wire['send']>[0], body: unknown): Promise<{ ex: Exchange; before: FullState; after: FullState }> {
  const before = await fullState(w.db);
  const ex = await wire.send(fn, body);
  return { ex, before, after: await fullState(w.db) };
}

/**
 * Nothing but `allowed` changed: the append-only logs (events, notifications, outbox, group events)
 * only by new rows, and of the profiles only the one with ICCID `iccid`.
 */
function onlyChanged(t: Asserts, before: FullState, after: FullState, allowed: Array<keyof FullState> = [], iccid?: string) {
  for (const k of ['events', 'notifications', 'outbox', 'groupEvents'] as const) {
    if (allowed.includes(k)) t.same(after[k].slice(0, before[k].length), before[k], `${k}: earlier rows kept`);
    else t.same(after[k], before[k], `${k} unchanged`);
  }
  const others = (s: FullState) => s.profiles.filter((p) => !allowed.includes('profiles') || p.iccid !== iccid);
  t.same(others(after), others(before), allowed.includes('profiles') ? 'other profiles unchanged' : 'profiles unchanged');
  t.same(after.sessions, before.sessions, 'sessions unchanged');
}

/** A notification that must be logged and do nothing else: 204, one notification row like `row`. */
async function refused(t: Asserts, wire: Wire, raw: Buffer, row: Record<string, unknown>) {
  const { ex, before, after } = await around(wire, 'handleNotification', { pendingNotification: toB64(raw) });
  t.equal(ex.status, 204, 'HTTP 204');
  t.equal(ex.text, '', 'empty body');
  onlyChanged(t, before, after, ['notifications']);
  const added = after.notifications.slice(before.notifications.length);
  t.equal(added.length, 1, 'recorded once');
  t.match(added[0], row, `recorded as ${row.outcome}`);
}

async function deliver(t: Asserts, wire: Wire, raw: Buffer) {
  const ex = await wire.send('handleNotification', { pendingNotification: toB64(raw) });
  t.equal(ex.status, 204);
  return ex.after!.notifications.at(-1)!;
}

// ---------------------------------------------------------------------------------------------
// ProfileInstallationResult

t.test('a PIR naming another ICCID than its session is refused; the genuine PIRs still install', async (t) => {
  const { lpa, wire } = await device(w);
  const a = await order();
  const b = await order();
  // Two downloads by one eUICC, no PIR sent yet: two bound sessions, one per profile.
  const ra = await lpa.download(a.activationCode, { sendPir: false });
  const rb = await lpa.download(b.activationCode, { sendPir: false });
  const pirA = await lpa.retrieveNotification(ra.seqNumber);
  const pirB = await lpa.retrieveNotification(rb.seqNumber);
  const key = wire.euiccKey;

  t.test('session B\'s PIR naming A\'s ICCID', (t) =>
    refused(t, wire, resignPir(pirB, key, { iccid: iccidToEf(a.iccid) }), { kind: 'install', verified: true, iccid: a.iccid, transaction_id: hex(tidOf(pirB)), outcome: 'refused: iccid-mismatch' }));
  t.test('session A\'s PIR naming B\'s ICCID', (t) =>
    refused(t, wire, resignPir(pirA, key, { iccid: iccidToEf(b.iccid) }), { kind: 'install', verified: true, iccid: b.iccid, outcome: 'refused: iccid-mismatch' }));
  t.test('session A\'s PIR naming an ICCID this server never issued', async (t) => {
    const stranger = generateIccid();
    await refused(t, wire, resignPir(pirA, key, { iccid: iccidToEf(stranger) }), { kind: 'install', verified: true, iccid: stranger, outcome: 'refused: iccid-mismatch' });
  });
  t.test('a successful PIR naming no ICCID', (t) =>
    refused(t, wire, resignPir(pirA, key, { iccid: null }), { kind: 'install', verified: true, iccid: a.iccid, outcome: 'refused: iccid-missing' }));

  t.test('the genuine PIRs still complete their sessions', async (t) => {
    t.same([(await w.profile(a.iccid))!.state, (await w.profile(b.iccid))!.state], ['Downloaded', 'Downloaded']);
    t.match(await deliver(t, wire, pirB), { iccid: b.iccid, verified: true, outcome: 'success' });
    t.match(await deliver(t, wire, pirA), { iccid: a.iccid, verified: true, outcome: 'success' });
    for (const [o, pir] of [[a, pirA], [b, pirB]] as const) {
      t.equal((await w.profile(o.iccid))!.state, 'Installed');
      t.same(await events(o.iccid), ['created', 'released', 'authenticated', 'downloaded', 'installed']);
      t.same(await points(o.iccid), [1, 3, 4], 'one callback per point');
      t.same(await sessionOf(hex(tidOf(pir))), { state: 'ended' }, 'session ended');
    }
  });
});

t.test('a PIR with another transactionId is refused; the genuine PIRs still install', async (t) => {
  const x = await device(w);
  const y = await device(w);
  const a = await order();
  const c = await order();
  const ra = await x.lpa.download(a.activationCode, { sendPir: false });
  const rc = await y.lpa.download(c.activationCode, { sendPir: false });
  const pirA = await x.lpa.retrieveNotification(ra.seqNumber);
  const pirC = await y.lpa.retrieveNotification(rc.seqNumber);
  const tidC = tidOf(pirC);

  // The transactionId selects Y's session, whose eUICC certificate does not verify X's signature.
  t.test('X\'s PIR for A under the transactionId of Y\'s session', (t) =>
    refused(t, x.wire, resignPir(pirA, x.wire.euiccKey, { transactionId: tidC }), { kind: 'install', verified: false, iccid: a.iccid, transaction_id: hex(tidC), outcome: 'bad-signature' }));
  t.test('X claiming Y\'s install: transactionId and ICCID of Y\'s session, X\'s signature', (t) =>
    refused(t, x.wire, resignPir(pirA, x.wire.euiccKey, { transactionId: tidC, iccid: iccidToEf(c.iccid) }), { kind: 'install', verified: false, iccid: c.iccid, outcome: 'bad-signature' }));
  t.test('a transactionId of no session', (t) =>
    refused(t, x.wire, resignPir(pirA, x.wire.euiccKey, { transactionId: Buffer.alloc(16, 0x5a) }), { kind: 'install', verified: false, iccid: a.iccid, outcome: 'unknown-transaction' }));

  t.test('the genuine PIRs still complete their sessions', async (t) => {
    t.match(await deliver(t, y.wire, pirC), { iccid: c.iccid, verified: true, outcome: 'success' });
    t.match(await deliver(t, x.wire, pirA), { iccid: a.iccid, verified: true, outcome: 'success' });
    t.same([(await w.profile(a.iccid))!.state, (await w.profile(c.iccid))!.state], ['Installed', 'Installed']);
    t.same([(await w.profile(a.iccid))!.eid, (await w.profile(c.iccid))!.eid], [x.card.eid, y.card.eid]);
  });
});

t.test('the PIR of another session of the same order, after the order was installed, changes nothing', async (t) => {
  const { lpa, wire } = await device(w);
  const d = await order();
  const first = await lpa.download(d.activationCode, { sendPir: false });
  const pir1 = await lpa.retrieveNotification(first.seqNumber);
  // The order is still Downloaded, so the same activation code opens a second session; the card,
  // which already holds the profile, ends that load with an errorResult.
  const err = await lpa.download(d.activationCode, { sendPir: false }).catch((e) => e);
  t.ok(err instanceof LpaError && err.code === 'installFailed', `second load failed on the card (${err?.message})`);
  const pending = (await lpa.listNotifications()).filter((n) => n.operation === 'install');
  const pir2 = await lpa.retrieveNotification(Math.max(...pending.map((n) => n.seqNumber)));
  t.not(hex(tidOf(pir2)), hex(tidOf(pir1)), 'two sessions');
  t.equal((await sessionOf(hex(tidOf(pir2))))?.state, 'bound');

  t.match(await deliver(t, wire, pir1), { outcome: 'success' });
  t.equal((await w.profile(d.iccid))!.state, 'Installed');
  await refused(t, wire, pir2, { kind: 'install', verified: true, iccid: d.iccid, transaction_id: hex(tidOf(pir2)), outcome: 'refused: transaction-mismatch' });
  t.equal((await w.profile(d.iccid))!.state, 'Installed', 'still Installed, no install-failed');
});

// ---------------------------------------------------------------------------------------------
// Delete notifications

/** A device with one installed profile (owned by an operator with a callback URL). */
async function installed() {
  const dev = await device(w);
  const o = await order();
  await dev.lpa.download(o.activationCode);
  return { ...dev, order: o };
}

/** Deletes the profile on the card and returns the queued delete notification (not sent). */
async function deleteNotification(dev: Awaited<ReturnType<typeof installed>>) {
  await dev.lpa.deleteProfile(dev.order.iccid);
  const n = (await dev.lpa.listNotifications()).find((x) => x.operation === 'delete')!;
  return { seqNumber: n.seqNumber, raw: await dev.lpa.retrieveNotification(n.seqNumber) };
}

t.test('a delete notification for a profile installed on another EID changes nothing', async (t) => {
  const x = await installed();
  const y = await installed();
  const yDelete = await deleteNotification(y);
  // Y's genuine certificate and signature, naming the profile installed on X.
  await refused(t, y.wire, resignOther(yDelete.raw, y.wire.euiccKey, { iccid: iccidToEf(x.order.iccid) }), {
    kind: 'delete', verified: true, eid: y.card.eid, iccid: x.order.iccid, outcome: 'no-installed-profile',
  });
  const p = (await w.profile(x.order.iccid))!;
  t.same([p.state, p.device_state, p.eid], ['Installed', 'Disabled', x.card.eid]);
  t.same(await points(x.order.iccid), [1, 3, 4], 'no callback for X\'s profile');
});

t.test('a verified delete: Unavailable and Deleted, a deleted event, a callback in the outbox, shown to the operator', async (t) => {
  const x = await installed();
  const iccid = x.order.iccid;
  await x.lpa.enableProfile(iccid);
  await x.lpa.disableProfile(iccid);
  const pending = await x.lpa.listNotifications();
  const enable = pending.find((n) => n.operation === 'enable')!;
  const disable = pending.find((n) => n.operation === 'disable')!;
  const enableRaw = await x.lpa.retrieveNotification(enable.seqNumber);
  // Only the disable is delivered now; the older enable comes late, after the delete.
  t.ok((await x.lpa.processNotifications({ seqNumbers: [disable.seqNumber] })).every((n) => n.sent));
  t.equal((await w.profile(iccid))!.device_state, 'Disabled', 'enable/disable: device_state only');
  t.equal((await w.profile(iccid))!.state, 'Installed');

  const del = await deleteNotification(x);
  const { ex, before, after } = await around(x.wire, 'handleNotification', { pendingNotification: toB64(del.raw) });
  t.equal(ex.status, 204);
  onlyChanged(t, before, after, ['profiles', 'events', 'notifications', 'outbox'], iccid);
  const p = (await w.profile(iccid))!;
  t.same([p.state, p.device_state, p.eid], ['Unavailable', 'Deleted', x.card.eid], 'Unavailable for good, Deleted on the device, EID kept');
  const newEvents = after.events.slice(before.events.length);
  t.match(newEvents, [{ iccid, event: 'deleted', detail: { from: 'Installed', to: 'Unavailable', eid: x.card.eid, seqNumber: del.seqNumber } }]);
  t.match(after.notifications.slice(before.notifications.length), [{ kind: 'delete', verified: true, eid: x.card.eid, iccid, outcome: 'verified' }]);
  const cb = after.outbox.slice(before.outbox.length);
  t.equal(cb.length, 1, 'one callback queued');
  t.match(cb[0], { iccid, kind: 'handleDownloadProgressInfo' });
  t.match(cb[0]!.payload, {
    iccid,
    eid: x.card.eid,
    notificationPointId: PROFILE_DELETED.point,
    notificationPointStatus: { status: 'Failed', statusCodeData: { subjectCode: '8.2.1', reasonCode: '3.7', message: `profile deleted on the eUICC (seqNumber ${del.seqNumber})` } },
    resultData: toB64(del.raw),
  });
  const pn = decodePendingNotification(fromB64((cb[0]!.payload as { resultData: string }).resultData));
  t.ok('other' in pn && pn.other.tbsOtherNotification.operation === 3, 'resultData decodes as the delete notification');

  // What the operator reads.
  const view = (await w.app.inject({ method: 'GET', url: `/admin/profiles/${iccid}` })).json();
  t.match(view, { iccid, state: 'Unavailable', deviceState: 'Deleted', eid: x.card.eid });
  t.equal(view.history.at(-1).event, 'deleted');
  t.match(view.notifications.at(-1), { kind: 'delete', verified: true, outcome: 'verified', seqNumber: del.seqNumber });
  const list = (await w.app.inject({ method: 'GET', url: '/admin/profiles?state=Unavailable' })).json();
  t.ok(list.profiles.some((q: { iccid: string; deviceState: string }) => q.iccid === iccid && q.deviceState === 'Deleted'), 'listed as Unavailable');

  // Late copies change nothing: the same delete again (duplicate), the older enable (stale).
  await refused(t, x.wire, del.raw, { kind: 'delete', verified: true, iccid, outcome: 'duplicate' });
  await refused(t, x.wire, enableRaw, { kind: 'enable', verified: true, iccid, outcome: 'stale' });

  // The ICCID is never served again.
  const again = await device(w);
  lpaFailed(t, await again.lpa.download(x.order.activationCode).catch((e) => e), 'authenticateClient', '8.1.1', '3.8');
  const same = await x.lpa.download(x.order.activationCode).catch((e) => e);
  lpaFailed(t, same, 'authenticateClient', '8.2.1', '3.3');
  t.same([(await w.profile(iccid))!.state, (await w.profile(iccid))!.device_state], ['Unavailable', 'Deleted']);
});

// ---------------------------------------------------------------------------------------------
// getBoundProfilePackage retried in its session

t.test('getBoundProfilePackage retried in its session: the same BPP for the same euiccOtpk, 8.2/3.7 for another', async (t) => {
  const o = await order();
  const smdpSignature2Do = (wire: Wire) => fromB64(wire.last('authenticateClient').json.smdpSignature2);
  const checks: Array<(t: Asserts) => void> = [];
  let retried = false;

  /** The first answer is "lost"; the LPA retries, and installs from what the retry returns. */
  const retry = async (res: HttpResponse, wire: Wire): Promise<HttpResponse> => {
    if (retried) return res;
    retried = true;
    const first = wire.last('getBoundProfilePackage');
    const body = first.sent as Body;
    const bpp = first.json.boundProfilePackage as string;
    const pdr = (f: Parameters<typeof retouchPdr>[1]) => ({ ...body, prepareDownloadResponse: retouchPdr(body.prepareDownloadResponse!, f) });
    const resign = (change: { euiccOtpk?: Buffer; transactionId?: Buffer }) => pdr((ok) => {
      const { raw: _raw, ...s } = decodeEuiccSigned2(ok.euiccSigned2);
      return resignEuiccSigned2(wire.euiccKey, smdpSignature2Do(wire), { ...s, ...change });
    });

    // Accepted: the same request again, and a new PrepareDownloadResponse (fresh signature) with the same euiccOtpk.
    const resent: Array<[string, Awaited<ReturnType<typeof around>>]> = [
      ['the same request', await around(wire, 'getBoundProfilePackage', body)],
      ['a re-signed PrepareDownloadResponse with the same euiccOtpk', await around(wire, 'getBoundProfilePackage', resign({}))],
    ];
    // Refused: unverified, another euiccOtpk, another transactionId inside.
    const refusedRetries: Array<[string, Awaited<ReturnType<typeof around>>, string, string]> = [
      ['same euiccOtpk, flipped euiccSignature2', await around(wire, 'getBoundProfilePackage', pdr((ok) => ({ ...ok, euiccSignature2: flipBit(ok.euiccSignature2, 7, 2) }))), '8.1', '6.1'],
      ['another euiccOtpk (correctly signed)', await around(wire, 'getBoundProfilePackage', resign({ euiccOtpk: generateOtKeyPair('P-256').publicPoint })), '8.2', '3.7'],
      ['another transactionId inside EUICCSigned2 (correctly signed)', await around(wire, 'getBoundProfilePackage', resign({ transactionId: Buffer.alloc(16, 0x11) })), '8.10.1', '3.9'],
    ];
    checks.push((t) => {
      for (const [what, { ex, before, after }] of resent) {
        succeeded(t, ex);
        t.equal(ex.json.boundProfilePackage, bpp, `${what}: the same BPP bytes`);
        onlyChanged(t, before, after, ['events']);
        t.match(after.events.slice(before.events.length), [{ iccid: o.iccid, event: 'bpp-resent' }], `${what}: one bpp-resent event, no second downloaded`);
      }
      for (const [what, { ex, before, after }, sc, rc] of refusedRetries) {
        failedWith(t, ex, sc, rc);
        t.notOk(ex.json.boundProfilePackage, `${what}: no BPP`);
        onlyChanged(t, before, after);
      }
      const stored = resent[1]![1].after.sessions.find((s) => s.transaction_id === body.transactionId);
      t.equal(stored?.state, 'bound');
      t.equal(Buffer.from(stored!.bound_profile_package as string, 'hex').toString('base64'), bpp, 'the BPP is kept with the session');
    });
    const last = resent[1]![1].ex;
    return { ...res, json: last.json, text: JSON.stringify(last.json) };
  };

  const { lpa, card } = await device(w, { response: { getBoundProfilePackage: retry } });
  const r = await lpa.download(o.activationCode);
  t.ok(retried, 'the retry ran');
  for (const c of checks) c(t);
  t.equal(r.iccid, o.iccid, 'installed from the re-sent package');
  t.ok(card.profiles.some((p) => p.iccid === o.iccid));
  const p = (await w.profile(o.iccid))!;
  t.same([p.state, p.download_attempts], ['Installed', 1]);
  t.same(await events(o.iccid), ['created', 'released', 'authenticated', 'downloaded', 'bpp-resent', 'bpp-resent', 'installed']);
  t.same(await points(o.iccid), [1, 3, 4], 'no second point-3 callback');
  t.same(await w.db.query('SELECT state, bound_profile_package FROM rsp_sessions WHERE iccid = $1', [o.iccid]), [{ state: 'ended', bound_profile_package: null }], 'the PIR ended the session, and its package with it');
});
