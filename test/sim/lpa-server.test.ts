/**
 * The LPA against this project's SM-DP+ and virtual eUICC on the generated test PKI: the same
 * behaviours lpa.test.ts checks byte for byte against the lpac captures (when ../shared/interop is
 * there), here on every clone: the ES10 and ES9+ sequence of a download, its result and timings,
 * metadata mismatch, a failed installation, refusal after the metadata, an ES9+ Failed status,
 * confirmation codes, notifications and the ES10c helpers.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { decode } from '../../src/der/tlv.js';
import type { HttpResponse } from '../../src/http/client.js';
import { ApduCard, ApduFront } from '../../src/sim/apdu.js';
import type { Es10Card } from '../../src/sim/es10.js';
import { CANCEL_REASON, Lpa, LpaError, type LpaOptions } from '../../src/sim/lpa.js';
import { device, flipBit, fromB64, toB64, type WireHooks } from '../helpers/wire.js';
import { startWorld, type World } from '../helpers/world.js';

/** Records every ES10 command on its way to the card. */
class Recording implements Es10Card {
  readonly commands: Buffer[] = [];
  constructor(private readonly inner: Es10Card) {}
  transmit(command: Buffer): Promise<Buffer> {
    this.commands.push(Buffer.from(command));
    return this.inner.transmit(command);
  }
  /** The first two bytes of each command, hex (BF2E, BF20, …; BPP pieces by their first byte). */
  get tags(): string[] {
    return this.commands.map((c) => (c[0] === 0xbf ? c.subarray(0, 2) : c.subarray(0, 1)).toString('hex').toUpperCase());
  }
}

/** A device on a Wire, its card behind a recorder (optionally through the APDU layers). */
async function recorded(w: World, hooks: WireHooks = {}, opts: Partial<LpaOptions> & { apdu?: boolean } = {}) {
  const d = await device(w, hooks);
  const rec = new Recording(opts.apdu ? new ApduCard(new ApduFront(d.card)) : d.card);
  const lpa = new Lpa(rec, { http: d.wire.http, ...opts });
  return { ...d, rec, lpa };
}

async function lpaError(p: Promise<unknown>): Promise<LpaError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof LpaError)) throw new Error(`expected an LpaError, got ${String(err)}`);
  return err;
}

/** An ES9+ answer with one base64 field of its JSON body rewritten. */
function rewrite(res: HttpResponse, field: string, f: (b: Buffer) => Buffer): HttpResponse {
  const json = { ...(res.json as Record<string, string>) };
  json[field] = toB64(f(fromB64(json[field]!)));
  return { ...res, json, text: JSON.stringify(json) };
}

const SEQUENCE = ['BF2E', 'BF20', 'BF38', 'BF21'];

t.test('download: ES10 and ES9+ in lpac order, the result, timings and progress', async (t) => {
  const w = await startWorld(t);
  for (const apdu of [false, true]) {
    await t.test(apdu ? 'through the APDU layers' : 'direct', async (t) => {
      const steps: string[] = [];
      const { rec, lpa, wire, card } = await recorded(w, {}, { apdu, progress: (s) => steps.push(s) });
      const order = await w.order();
      const r = await lpa.download(order.activationCode);
      t.same(rec.tags.slice(0, 4), SEQUENCE, 'challenge, info1, AuthenticateServer, PrepareDownload');
      t.equal(rec.tags[4], 'BF36', 'then the BPP, BF36 first');
      t.equal(rec.tags.at(-1), 'BF30', 'the PIR removed last');
      t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification']);
      t.same(JSON.parse(JSON.stringify(wire.exchanges[0]!.sent)).smdpAddress, w.config.smdpAddress.toUpperCase(), 'the AC address as written');
      t.equal(r.iccid, order.iccid);
      t.equal(r.notificationSent, true);
      t.equal(r.notificationAddress, w.config.smdpAddress);
      t.match(r.isdpAid, /^A0000005591010FFFFFFFF89/);
      t.match(r.transactionId, /^[0-9A-F]{32}$/);
      t.equal(r.seqNumber, 1);
      for (const k of ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'es10', 'total'] as const) t.ok(r.timings[k] > 0, `timing ${k}`);
      t.ok(r.timings.total >= r.timings.initiateAuthentication + r.timings.authenticateClient + r.timings.getBoundProfilePackage);
      t.same(steps.slice(0, 3), ['es10b_get_euicc_challenge_and_info', 'es9p_initiate_authentication', 'es10b_authenticate_server']);
      t.ok(steps.includes('es10b_load_bound_profile_package') && steps.at(-1) === 'es9p_handle_notification');
      t.equal(card.notifications.length, 0, 'no notification left on the card');
      t.equal((await w.profile(order.iccid))!.state, 'Installed');
    });
  }
});

t.test('metadata mismatch: cancelled on both sides with reason metadataMismatch, no BPP piece loaded', async (t) => {
  const w = await startWorld(t);
  const { rec, lpa, wire } = await recorded(w, {
    response: {
      // profileMetadata differs from the BPP's StoreMetadataRequest by its last byte
      authenticateClient: (res) => rewrite(res, 'profileMetadata', (b) => flipBit(b)),
    },
  });
  const order = await w.order();
  const err = await lpaError(lpa.download(order.activationCode));
  t.equal(err.code, 'metadataMismatch');
  t.same(err.cancel, { reason: CANCEL_REASON.metadataMismatch, cardOk: true, es9: 'Executed-Success' });
  t.notOk(rec.tags.includes('BF36'), 'no BPP piece loaded');
  t.equal(rec.tags.at(-1), 'BF41', 'CancelSession on the card');
  t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'cancelSession']);
  t.match(err.transactionId, /^[0-9A-F]{32}$/);
});

t.test('install failure: the errorResult PIR is delivered and removed, then installFailed', async (t) => {
  const w = await startWorld(t);
  const { rec, lpa, wire, card } = await recorded(w, {
    // the last byte of the BPP is in the last 86 segment's MAC: the card refuses that segment
    response: { getBoundProfilePackage: (res) => rewrite(res, 'boundProfilePackage', (b) => flipBit(b)) },
  });
  const order = await w.order();
  const err = await lpaError(lpa.download(order.activationCode));
  t.equal(err.code, 'installFailed');
  t.equal(err.bppCommandId, 5, 'loadProfileElements');
  t.equal(err.errorReason, 8, 'scp03tSecurityError');
  t.equal(err.cancel, undefined, 'no cancel after a PIR');
  t.equal(wire.exchanges.at(-1)!.fn, 'handleNotification', 'the PIR was posted');
  t.equal(rec.tags.at(-1), 'BF30', 'and removed from the card');
  t.equal(card.notifications.length, 0);
  t.equal(card.profiles.length, 0, 'nothing installed');
});

t.test('user refusal after the metadata: endUserRejection on both sides, the order can be downloaded again', async (t) => {
  const w = await startWorld(t);
  const { lpa, wire } = await recorded(w);
  const order = await w.order();
  let shown: unknown;
  const err = await lpaError(lpa.download(order.activationCode, { onMetadata: (m) => ((shown = m), false) }));
  t.equal(err.code, 'cancelled');
  t.match(shown, { iccid: order.iccid, profileClass: 'operational' });
  t.same(err.cancel, { reason: CANCEL_REASON.endUserRejection, cardOk: true, es9: 'Executed-Success' });
  t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication', 'authenticateClient', 'cancelSession']);
  const again = await lpa.download(order.activationCode);
  t.equal(again.iccid, order.iccid, 'downloaded after the refusal');
});

t.test('an ES9+ Failed status cancels the session on both sides and reports the codes', async (t) => {
  const w = await startWorld(t);
  const { lpa, wire } = await recorded(w);
  const err = await lpaError(lpa.download(`LPA:1$${w.config.smdpAddress}$NO-SUCH-MATCHING-ID`));
  t.equal(err.code, 'es9Failed');
  t.equal(err.function, 'authenticateClient');
  t.same([err.subjectCode, err.reasonCode], ['8.2.6', '3.8'], 'unknown MatchingID');
  t.match(err.message, /8\.2\.6\/3\.8/);
  t.equal(err.cancel?.cardOk, true, 'the card signed the cancel');
  t.ok(err.cancel?.es9, 'ES9+ cancelSession was called');
  t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication', 'authenticateClient', 'cancelSession']);
  t.match(err.transactionId, /^[0-9A-F]{32}$/);
});

t.test('confirmation code: required before the card is touched, hashCc in PrepareDownload, a wrong one refused', async (t) => {
  const w = await startWorld(t);
  const order = await w.order({ confirmationCode: '12345678' });
  t.match(order.activationCode, /\$\$1$/);

  const idle = await recorded(w);
  const e0 = await lpaError(idle.lpa.download(order.activationCode));
  t.equal(e0.code, 'confirmationCodeRequired');
  t.equal(idle.rec.commands.length, 0, 'no ES10 command');

  // the AC without its $$1: the SM-DP+ asks for the code (ccRequiredFlag), the LPA cancels
  const noFlag = order.activationCode.replace(/\$\$1$/, '');
  const e1 = await lpaError(idle.lpa.download(noFlag));
  t.equal(e1.code, 'confirmationCodeRequired');
  t.equal(e1.cancel?.cardOk, true);

  // the order is now bound to this card's EID: the same card goes on
  const e2 = await lpaError(idle.lpa.download(order.activationCode, { confirmationCode: '00000000' }));
  t.same([e2.code, e2.function, e2.subjectCode, e2.reasonCode], ['es9Failed', 'getBoundProfilePackage', '8.2.7', '3.8'], 'wrong code refused');

  const right = idle;
  const r = await right.lpa.download(order.activationCode, { confirmationCode: '12345678' });
  t.equal(r.iccid, order.iccid);
  const pd = right.rec.commands.filter((c) => c[0] === 0xbf && c[1] === 0x21).at(-1)!;
  const tid = Buffer.from(r.transactionId, 'hex');
  const ccHash = createHash('sha256').update(createHash('sha256').update('12345678').digest()).update(tid).digest();
  t.ok(pd.includes(Buffer.concat([Buffer.from([0x04, 0x20]), ccHash])), 'hashCc = SHA-256(SHA-256(CC) || transactionId) in BF21');
  t.same(decode(pd).children()[0]!.raw, fromB64((right.wire.last('authenticateClient').json as Record<string, string>).smdpSigned2!), 'smdpSigned2 first, as received');
});

t.test('notifications: list, retrieve, post to their address, remove after 2xx', async (t) => {
  const w = await startWorld(t);
  const { lpa, card, wire } = await recorded(w);
  const order = await w.order();
  await lpa.download(order.activationCode, { sendPir: false });
  t.same((await lpa.listNotifications()).map((n) => [n.seqNumber, n.operation, n.iccid]), [[1, 'install', order.iccid]], 'the PIR kept when not sent');
  t.equal((await lpa.retrieveNotification(1)).toString('hex'), card.notifications[0]!.pending.toLowerCase(), 'retrieved as stored');
  await lpa.enableProfile(order.iccid);
  await lpa.disableProfile(order.iccid);
  await lpa.deleteProfile(order.iccid);
  const list = await lpa.listNotifications();
  t.same(list.map((n) => n.operation), ['install', 'enable', 'disable', 'delete']);
  t.ok(list.every((n) => n.notificationAddress === w.config.smdpAddress && n.iccid === order.iccid));
  const out = await lpa.processNotifications();
  t.same(out.map((o) => [o.operation, o.sent, o.removed]), [['install', true, true], ['enable', true, true], ['disable', true, true], ['delete', true, true]]);
  t.equal(wire.of('handleNotification').length, 4);
  t.same(await lpa.listNotifications(), [], 'all removed');
  const p = (await w.profile(order.iccid))!;
  t.equal(p.state, 'Unavailable', 'the verified delete made the profile unavailable');

  // a failing address: kept on the card, its HTTP status reported
  const failing = await recorded(w, { response: { handleNotification: (res) => ({ ...res, status: 500 }) } });
  await failing.lpa.download((await w.order()).activationCode, { sendPir: false });
  const [o] = await failing.lpa.processNotifications();
  t.same([o!.sent, o!.removed, o!.httpStatus], [false, false, 500]);
  t.equal(failing.card.notifications.length, 1, 'kept for a retry');
});

t.test('ES10c helpers: EID, profiles, enable/disable/delete with result codes', async (t) => {
  const w = await startWorld(t);
  const { lpa, card } = await recorded(w);
  t.equal(await lpa.getEid(), card.eid);
  t.same(await lpa.listProfiles(), []);
  const order = await w.order();
  await lpa.download(order.activationCode);
  t.match(await lpa.listProfiles(), [{ iccid: order.iccid, state: 'disabled', profileClass: 'operational' }]);
  await t.rejects(lpa.disableProfile(order.iccid), { code: 'card', cardErrorCode: 2, message: /profileNotInEnabledState/ });
  await lpa.enableProfile(order.iccid);
  t.match(await lpa.listProfiles(), [{ iccid: order.iccid, state: 'enabled' }]);
  await t.rejects(lpa.enableProfile(order.iccid), { code: 'card', cardErrorCode: 2, message: /profileNotInDisabledState/ });
  await t.rejects(lpa.deleteProfile(order.iccid), { code: 'card', cardErrorCode: 2, message: /profileNotInDisabledState/ });
  await lpa.disableProfile(order.iccid);
  await lpa.deleteProfile(order.iccid);
  t.same(await lpa.listProfiles(), []);
  await t.rejects(lpa.deleteProfile(order.iccid), { code: 'card', cardErrorCode: 1, message: /iccidOrAidNotFound/ });
});

