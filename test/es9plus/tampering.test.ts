/**
 * Each tampering case gives its documented status (docs/protocol.md#es9-functions) and leaves no
 * trace in state.
 *
 * The simulated LPA drives a real download; the request is changed on the wire (Wire, in
 * test/helpers) or replayed afterwards, and the server's profiles, profile_events and notifications
 * are compared right before and right after the refused request. The only trace the spec asks for
 * is that of a wrong confirmation code (cc_attempts + 1 and an event).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signRaw } from '../../src/crypto/ecdsa.js';
import { decodeServerSigned1, encodeServerSigned1 } from '../../src/rsp/authentication.js';
import { decodeEuiccCancelSessionSigned, encodeEuiccCancelSessionSigned } from '../../src/rsp/cancel.js';
import { decodeEuiccSigned2 } from '../../src/rsp/download.js';
import { decodePendingNotification, encodeOtherSignedNotification, encodeProfileInstallationResult } from '../../src/rsp/notification.js';
import { Lpa, LpaError } from '../../src/sim/lpa.js';
import type { HttpResponse } from '../../src/http/client.js';
import { startWorld } from '../helpers/world.js';
import {
  device,
  failedWith,
  flipBit,
  fromB64,
  lpaFailed,
  resignEuiccSigned1,
  resignEuiccSigned2,
  retouchAsr,
  retouchCancel,
  retouchPdr,
  snapshot,
  succeeded,
  toB64,
  untouched,
  Wire,
  type Asserts,
  type Body,
  type StateSnapshot,
} from '../helpers/wire.js';

const w = await startWorld(t);

const events = async (iccid: string) =>
  (await w.db.query<{ event: string }>('SELECT event FROM profile_events WHERE iccid = $1 ORDER BY id', [iccid])).map((e) => e.event);

/** The smdpSignature2 DO the server sent in this session's authenticateClient answer. */
const smdpSignature2Do = (wire: Wire) => fromB64(wire.last('authenticateClient').json.smdpSignature2);

/** A response that never reaches the LPA (the server did the work; the connection dropped). */
const lose = (): HttpResponse => {
  throw new Error('connection reset by peer');
};

t.test('control: a re-signed, unchanged euiccSigned1 is accepted; the card then notices its own euiccSignature1 was replaced', async (t) => {
  const { lpa, wire, card } = await device(w, {
    request: {
      authenticateClient: (b, wire) => ({ ...b, authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => resignEuiccSigned1(ok, wire.euiccKey, {})) }),
    },
  });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  const ac = wire.tampered;
  t.not((ac.sent as Body).authenticateServerResponse, (ac.original as Body).authenticateServerResponse, 'a fresh signature was sent');
  succeeded(t, ac);
  // smdpSignature2 covers the euiccSignature1 the server received, not the one the card made.
  t.ok(err instanceof LpaError);
  t.same([err.code, err.cardErrorCode], ['prepareDownload', 2], 'PrepareDownload: invalidSignature');
  t.equal(card.profiles.length, 0);
});

t.test('control: a re-signed, unchanged EUICCSigned2 is accepted and the download completes', async (t) => {
  const { lpa, wire, card } = await device(w, {
    request: {
      getBoundProfilePackage: (b, wire) => ({
        ...b,
        prepareDownloadResponse: retouchPdr(b.prepareDownloadResponse!, (ok) => {
          const { raw: _raw, ...s } = decodeEuiccSigned2(ok.euiccSigned2);
          return resignEuiccSigned2(wire.euiccKey, smdpSignature2Do(wire), s);
        }),
      }),
    },
  });
  const order = await w.order();
  const r = await lpa.download(order.activationCode);
  t.equal(r.iccid, order.iccid);
  succeeded(t, wire.tampered);
  t.not((wire.tampered.sent as Body).prepareDownloadResponse, (wire.tampered.original as Body).prepareDownloadResponse, 'a fresh signature was sent');
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  t.equal(card.profiles.length, 1);
});

t.test('flipped bit in euiccSignature1 → 8.1/6.1', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b) => ({ ...b, authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => ({ ...ok, euiccSignature1: flipBit(ok.euiccSignature1) })) }),
    },
  });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  lpaFailed(t, err, 'authenticateClient', '8.1', '6.1');
  failedWith(t, wire.tampered, '8.1', '6.1');
  untouched(t, wire.tampered);
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.eid, p.download_attempts], ['Released', null, 0], 'the order is neither bound nor counted, even after the LPA cancelled');
});

t.test('flipped bit in euiccSignature2 → 8.1/6.1', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      getBoundProfilePackage: (b) => ({ ...b, prepareDownloadResponse: retouchPdr(b.prepareDownloadResponse!, (ok) => ({ ...ok, euiccSignature2: flipBit(ok.euiccSignature2, 5, 3) })) }),
    },
  });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  lpaFailed(t, err, 'getBoundProfilePackage', '8.1', '6.1');
  failedWith(t, wire.tampered, '8.1', '6.1');
  untouched(t, wire.tampered);
  t.equal(wire.tampered.before!.profiles[order.iccid]!.state, 'Released', 'no BPP was bound');
  t.equal((await w.profile(order.iccid))!.state, 'Released');
});

t.test('serverChallenge in euiccSigned1 differs from the session (correctly re-signed) → 8.1/6.1', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b, wire) => ({
        ...b,
        authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => resignEuiccSigned1(ok, wire.euiccKey, { serverChallenge: randomBytes(16) })),
      }),
    },
  });
  const order = await w.order();
  const err = await lpa.download(order.activationCode).catch((e) => e);
  lpaFailed(t, err, 'authenticateClient', '8.1', '6.1');
  failedWith(t, wire.tampered, '8.1', '6.1');
  untouched(t, wire.tampered);
});

t.test('serverAddress in euiccSigned1 differs from the session (correctly re-signed) → 8.1/6.1', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b, wire) => ({
        ...b,
        authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => resignEuiccSigned1(ok, wire.euiccKey, { serverAddress: 'evil.example.com' })),
      }),
    },
  });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.1', '6.1');
  failedWith(t, wire.tampered, '8.1', '6.1');
  untouched(t, wire.tampered);
});

t.test('the eUICC refuses a serverSigned1 with another euiccChallenge', async (t) => {
  /** initiateAuthentication's answer with serverSigned1.euiccChallenge replaced, optionally re-signed with the DPauth key. */
  const swapChallenge = (resign: boolean) => (res: HttpResponse) => {
    const json = res.json as Body;
    const s1 = decodeServerSigned1(fromB64(json.serverSigned1!));
    const serverSigned1 = encodeServerSigned1({ ...s1, euiccChallenge: flipBit(s1.euiccChallenge, 0, 7) });
    const out: Body = { ...json, serverSigned1: toB64(serverSigned1) };
    if (resign) {
      const ciSki = fromB64(json.euiccCiPKIdToBeUsed!).subarray(2).toString('hex').toUpperCase();
      out.serverSignature1 = toB64(Buffer.concat([Buffer.from([0x5f, 0x37, 0x40]), signRaw(w.pki.byCiSkiHex.get(ciSki)!.auth.key, serverSigned1)]));
    }
    return { ...res, json: out, text: JSON.stringify(out) };
  };
  for (const [resign, code, name] of [[false, 2, 'invalidSignature'], [true, 6, 'euiccChallengeMismatch']] as const) {
    const { lpa, wire } = await device(w, { response: { initiateAuthentication: swapChallenge(resign) } });
    const order = await w.order();
    const before = await snapshot(w.db);
    const err = await lpa.download(order.activationCode).catch((e) => e);
    t.ok(err instanceof LpaError);
    t.same({ code: err.code, function: err.function, cardErrorCode: err.cardErrorCode }, { code: 'authenticateServer', function: 'AuthenticateServer', cardErrorCode: code }, `${resign ? 're-signed' : 'unsigned'} change: the card answers ${name}`);
    t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication'], 'the LPA never reached authenticateClient (and the card had no session left to cancel)');
    t.same(await snapshot(w.db), before, 'the order is untouched');
  }
});

t.test('replayed authenticateClient after a complete download → 8.10.1/3.9', async (t) => {
  const { lpa, wire } = await device(w);
  const order = await w.order();
  await lpa.download(order.activationCode);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  const replay = await wire.send('authenticateClient', wire.last('authenticateClient').sent);
  failedWith(t, replay, '8.10.1', '3.9');
  untouched(t, replay);
});

t.test('replayed getBoundProfilePackage: in the same session the same package again, after the session 8.10.1/3.9', async (t) => {
  const { lpa, wire } = await device(w);
  const order = await w.order();
  const r = await lpa.download(order.activationCode, { sendPir: false });
  t.equal((await w.profile(order.iccid))!.state, 'Downloaded');
  const first = wire.last('getBoundProfilePackage');
  const gbpp = first.sent;

  // A retry (same transactionId, same euiccOtpk): the BPP already bound, byte for byte, and only a log entry.
  const again = await wire.send('getBoundProfilePackage', gbpp);
  succeeded(t, again);
  t.equal(again.json.boundProfilePackage, first.json.boundProfilePackage, 'the same BPP bytes');
  t.same(again.after!.profiles, again.before!.profiles, 'profiles unchanged');
  t.same(again.after!.events.slice(again.before!.events.length).map((e) => e.event), ['bpp-resent'], 'one bpp-resent event, no second downloaded');
  t.same(again.after!.notifications, again.before!.notifications);

  const ac = await wire.send('authenticateClient', wire.last('authenticateClient').sent);
  failedWith(t, ac, '8.10.1', '3.9');
  untouched(t, ac);

  // The PIR ends the session.
  const sent = await lpa.processNotifications({ seqNumbers: [r.seqNumber] });
  t.ok(sent[0]?.sent, 'PIR delivered');
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  const late = await wire.send('getBoundProfilePackage', gbpp);
  failedWith(t, late, '8.10.1', '3.9');
  untouched(t, late);
});

t.test('unknown transactionId → 8.10.1/3.9 on authenticateClient, getBoundProfilePackage and cancelSession', async (t) => {
  const stranger = randomBytes(16).toString('hex').toUpperCase();
  const { lpa, wire } = await device(w, { request: { authenticateClient: (b) => ({ ...b, transactionId: stranger }) } });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.10.1', '3.9');
  failedWith(t, wire.tampered, '8.10.1', '3.9');
  untouched(t, wire.tampered);

  // The real session is still waiting: a complete download with other bodies under a stranger's transactionId.
  const d = await device(w);
  const o2 = await w.order();
  await d.lpa.download(o2.activationCode, { sendPir: false });
  for (const fn of ['getBoundProfilePackage', 'cancelSession'] as const) {
    const body = fn === 'cancelSession'
      ? { transactionId: stranger, cancelSessionResponse: toB64(Buffer.from('bf4103810105', 'hex')) }
      : { ...(d.wire.last(fn).sent as Body), transactionId: stranger };
    const ex = await d.wire.send(fn, body);
    failedWith(t, ex, '8.10.1', '3.9');
    untouched(t, ex);
  }
  t.equal((await w.profile(o2.iccid))!.state, 'Downloaded');
});

t.test('transactionId inside euiccSigned1 differs from the JSON one (correctly re-signed) → 8.10.1/3.9', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b, wire) => ({
        ...b,
        authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => resignEuiccSigned1(ok, wire.euiccKey, { transactionId: randomBytes(16) })),
      }),
    },
  });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.10.1', '3.9');
  failedWith(t, wire.tampered, '8.10.1', '3.9');
  untouched(t, wire.tampered);
});

t.test('transactionId inside euiccSigned2 differs from the JSON one (correctly re-signed) → 8.10.1/3.9', async (t) => {
  const { lpa, wire } = await device(w, {
    request: {
      getBoundProfilePackage: (b, wire) => ({
        ...b,
        prepareDownloadResponse: retouchPdr(b.prepareDownloadResponse!, (ok) => {
          const { raw: _raw, ...s } = decodeEuiccSigned2(ok.euiccSigned2);
          return resignEuiccSigned2(wire.euiccKey, smdpSignature2Do(wire), { ...s, transactionId: randomBytes(16) });
        }),
      }),
    },
  });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'getBoundProfilePackage', '8.10.1', '3.9');
  failedWith(t, wire.tampered, '8.10.1', '3.9');
  untouched(t, wire.tampered);
});

t.test('order expired between authenticateClient and getBoundProfilePackage → 8.8.5/4.10', async (t) => {
  const order = await w.order({ expiresIn: 3600 });
  const { lpa, wire } = await device(w, {
    request: {
      getBoundProfilePackage: async (b) => {
        await w.db.query(`UPDATE profiles SET expires_at = now() - interval '1 second' WHERE iccid = $1`, [order.iccid]);
        return b;
      },
    },
  });
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'getBoundProfilePackage', '8.8.5', '4.10');
  failedWith(t, wire.tampered, '8.8.5', '4.10');
  untouched(t, wire.tampered);
  t.equal((await w.profile(order.iccid))!.state, 'Released');
});

/** Only cc_attempts (+1), updated_at and, at the limit, state changed; exactly one new event. */
function ccTrace(t: Asserts, before: StateSnapshot, after: StateSnapshot, iccid: string, attempts: number, state: string, event: string) {
  const b = before.profiles[iccid]!;
  const a = after.profiles[iccid]!;
  t.same({ ...a, updated_at: undefined }, { ...b, cc_attempts: attempts, state, updated_at: undefined }, `cc_attempts ${attempts}, state ${state}, nothing else changed`);
  t.ok(a.updated_at >= b.updated_at, 'updated_at moved on');
  t.same(after.events.slice(0, before.events.length), before.events, 'earlier events kept');
  t.same(after.events.slice(before.events.length).map((e) => [e.iccid, e.event]), [[iccid, event]], `one new event: ${event}`);
  t.same(after.notifications, before.notifications, 'no notification');
}

t.test('wrong confirmation code → 8.2.7/3.8 counted; at the limit 8.2.7/6.4 and the order ends in Error', async (t) => {
  const order = await w.order({ confirmationCode: '12345678', maxConfirmationCodeAttempts: 3 });
  const watchGbpp = { request: { getBoundProfilePackage: (b: Body) => b } };
  const { card } = await device(w);
  for (const attempt of [1, 2, 3]) {
    const wire = new Wire(w, watchGbpp);
    wire.card = card;
    const lpa = new Lpa(card, { http: wire.http });
    const err = await lpa.download(order.activationCode, { confirmationCode: `8765432${attempt}` }).catch((e) => e);
    const [sc, rc] = attempt < 3 ? ['8.2.7', '3.8'] : ['8.2.7', '6.4'];
    lpaFailed(t, err, 'getBoundProfilePackage', sc, rc);
    const ex = wire.of('getBoundProfilePackage')[0]!;
    failedWith(t, ex, sc, rc);
    ccTrace(t, ex.before!, ex.after!, order.iccid, attempt, attempt < 3 ? 'Released' : 'Error', attempt < 3 ? 'confirmation-code-refused' : 'confirmation-code-limit');
    t.notOk(ex.json.boundProfilePackage, 'no BPP');
  }
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.cc_attempts, p.download_attempts], ['Error', 3, 3]);
  // Even the right code gets nothing any more.
  const wire = new Wire(w);
  const lpa = new Lpa(card, { http: wire.http });
  lpaFailed(t, await lpa.download(order.activationCode, { confirmationCode: '12345678' }).catch((e) => e), 'authenticateClient', '8.2.1', '3.3');
  t.equal(wire.of('getBoundProfilePackage').length, 0);
  t.equal(card.profiles.length, 0, 'nothing was installed');
});

t.test('one wrong confirmation code, then the right one: installed, the failure stays counted', async (t) => {
  const order = await w.order({ confirmationCode: 'open sesame' });
  const { lpa } = await device(w);
  lpaFailed(t, await lpa.download(order.activationCode, { confirmationCode: 'open sesame!' }).catch((e) => e), 'getBoundProfilePackage', '8.2.7', '3.8');
  await lpa.download(order.activationCode, { confirmationCode: 'open sesame' });
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.cc_attempts, p.download_attempts], ['Installed', 1, 2]);
  t.same(await events(order.iccid), ['created', 'released', 'authenticated', 'confirmation-code-refused', 'session-cancelled', 'authenticated', 'downloaded', 'installed']);
});

t.test('confirmation code required but hashCc missing (correctly re-signed) → 8.2.7/2.2, not counted', async (t) => {
  const order = await w.order({ confirmationCode: '12345678' });
  const { lpa, wire } = await device(w, {
    request: {
      getBoundProfilePackage: (b, wire) => ({
        ...b,
        prepareDownloadResponse: retouchPdr(b.prepareDownloadResponse!, (ok) => {
          const { raw: _raw, hashCc, ...s } = decodeEuiccSigned2(ok.euiccSigned2);
          if (!hashCc) throw new Error('the card sent no hashCc to remove');
          return resignEuiccSigned2(wire.euiccKey, smdpSignature2Do(wire), s);
        }),
      }),
    },
  });
  lpaFailed(t, await lpa.download(order.activationCode, { confirmationCode: '12345678' }).catch((e) => e), 'getBoundProfilePackage', '8.2.7', '2.2');
  failedWith(t, wire.tampered, '8.2.7', '2.2');
  untouched(t, wire.tampered);
  t.equal((await w.profile(order.iccid))!.cc_attempts, 0);
});

// ---------------------------------------------------------------------------------------------
// cancelSession

/** A device whose getBoundProfilePackage answer is lost after the server bound the BPP: the LPA cancels. */
async function lostBpp(cancelHook?: (b: Body, wire: Wire) => Body) {
  const d = await device(w, {
    request: { cancelSession: cancelHook ?? ((b) => b) },
    response: { getBoundProfilePackage: lose },
  });
  const order = await w.order();
  const err = await d.lpa.download(order.activationCode).catch((e) => e);
  return { ...d, order, err: err as LpaError };
}

t.test('cancelSession after a bound BPP: Executed-Success, the order back to Released, a new download works', async (t) => {
  const { err, wire, order, card } = await lostBpp();
  t.ok(err instanceof LpaError);
  t.same([err.code, err.function], ['http', 'getBoundProfilePackage']);
  t.same(err.cancel, { reason: 0, cardOk: true, es9: 'Executed-Success' });
  const ex = wire.last('cancelSession');
  succeeded(t, ex);
  t.equal(ex.before!.profiles[order.iccid]!.state, 'Downloaded', 'the server had bound the BPP');
  t.equal(ex.after!.profiles[order.iccid]!.state, 'Released', 'cancelled: Released again');
  t.same(ex.after!.events.slice(ex.before!.events.length).map((e) => e.event), ['session-cancelled']);
  t.same(await w.db.query('SELECT state, euicc_certificate FROM rsp_sessions WHERE transaction_id = $1', [err.transactionId]), [{ state: 'ended', euicc_certificate: null }], 'session ended');
  t.equal(card.profiles.length, 0);
  const replay = await wire.send('cancelSession', ex.sent);
  failedWith(t, replay, '8.10.1', '3.9');
  untouched(t, replay);

  const again = await new Lpa(card, { http: w.http }).download(order.activationCode);
  t.equal(again.iccid, order.iccid);
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.download_attempts, p.eid], ['Installed', 2, card.eid]);
});

t.test('cancelSession with a flipped euiccCancelSessionSignature → 8.1/6.1; the genuine one still works', async (t) => {
  const { err, wire, order } = await lostBpp((b) => ({ ...b, cancelSessionResponse: retouchCancel(b.cancelSessionResponse!, (ok) => ({ ...ok, signature: flipBit(ok.signature, 40, 1) })) }));
  t.equal(err.cancel?.es9, 'Failed 8.1/6.1');
  failedWith(t, wire.tampered, '8.1', '6.1');
  untouched(t, wire.tampered);
  t.equal((await w.profile(order.iccid))!.state, 'Downloaded', 'still bound');
  const genuine = await wire.send('cancelSession', wire.tampered.original);
  succeeded(t, genuine);
  t.equal((await w.profile(order.iccid))!.state, 'Released');
});

t.test('cancelSession with another smdpOid (correctly re-signed) → 8.8/3.10; the genuine one still works', async (t) => {
  const { err, wire, order } = await lostBpp((b, wire) => ({
    ...b,
    cancelSessionResponse: retouchCancel(b.cancelSessionResponse!, (ok) => {
      const s = decodeEuiccCancelSessionSigned(ok.signed);
      const signed = encodeEuiccCancelSessionSigned({ transactionId: s.transactionId, reason: s.reason, smdpOid: '2.999.66' });
      return { signed, signature: signRaw(wire.euiccKey, signed) };
    }),
  }));
  t.equal(err.cancel?.es9, 'Failed 8.8/3.10');
  failedWith(t, wire.tampered, '8.8', '3.10');
  untouched(t, wire.tampered);
  t.equal((await w.profile(order.iccid))!.state, 'Downloaded');
  succeeded(t, await wire.send('cancelSession', wire.tampered.original));
  t.equal((await w.profile(order.iccid))!.state, 'Released');
});

// ---------------------------------------------------------------------------------------------
// handleNotification: always 204; only verified notifications change anything but the log

/** 204 with an empty body, no profile or event changed, exactly one new notification row. */
function recordedOnly(t: Asserts, ex: { status: number; text: string; before?: StateSnapshot; after?: StateSnapshot }, row: Record<string, unknown>) {
  t.equal(ex.status, 204, 'HTTP 204');
  t.equal(ex.text, '', 'empty body');
  t.same(ex.after!.profiles, ex.before!.profiles, 'profiles unchanged');
  t.same(ex.after!.events, ex.before!.events, 'no event');
  const added = ex.after!.notifications.slice(ex.before!.notifications.length);
  t.equal(added.length, 1, 'recorded once');
  t.match(added[0], row);
}

t.test('handleNotification with garbage: 204, recorded as unverified, nothing else', async (t) => {
  const { wire } = await device(w);
  for (const [what, value] of [
    ['random bytes', toB64(randomBytes(40))],
    ['DER of the wrong type', toB64(Buffer.from('0403010203', 'hex'))],
    ['a PIR cut short', toB64(Buffer.from('bf3781ff', 'hex'))],
    ['not base64', 'this is not base64!'],
  ] as const) {
    const ex = await wire.send('handleNotification', { pendingNotification: value });
    t.test(what, async (t) => recordedOnly(t, ex, { kind: 'unknown', verified: false, iccid: null, outcome: /^malformed/ }));
  }
});

t.test('handleNotification: a PIR with a bad signature is recorded unverified and changes nothing; the genuine one installs', async (t) => {
  const { lpa, wire } = await device(w);
  const order = await w.order();
  const r = await lpa.download(order.activationCode, { sendPir: false });
  const pir = await lpa.retrieveNotification(r.seqNumber);
  const n = decodePendingNotification(pir);
  if (!('pir' in n)) throw new Error('not a PIR');
  const forged = encodeProfileInstallationResult({ data: n.pir.data.raw, signature: flipBit(n.pir.signature) });
  const ex = await wire.send('handleNotification', { pendingNotification: toB64(forged) });
  recordedOnly(t, ex, { kind: 'install', verified: false, iccid: order.iccid, outcome: 'bad-signature' });
  t.equal((await w.profile(order.iccid))!.state, 'Downloaded');

  const genuine = await wire.send('handleNotification', { pendingNotification: toB64(pir) });
  t.equal(genuine.status, 204);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');
  t.match(genuine.after!.notifications.at(-1), { kind: 'install', verified: true, outcome: 'success' });

  // The same PIR again: its session is over, so it is only logged.
  const replay = await wire.send('handleNotification', { pendingNotification: toB64(pir) });
  recordedOnly(t, replay, { kind: 'install', verified: false, outcome: 'unknown-transaction' });
});

t.test('handleNotification: an enable notification with a bad signature is recorded unverified, device_state unchanged', async (t) => {
  const { lpa, wire } = await device(w);
  const order = await w.order();
  await lpa.download(order.activationCode);
  await lpa.enableProfile(order.iccid);
  const [pending] = (await lpa.listNotifications()).filter((x) => x.operation === 'enable');
  const raw = await lpa.retrieveNotification(pending!.seqNumber);
  const n = decodePendingNotification(raw);
  if (!('other' in n)) throw new Error('not an OtherSignedNotification');
  const o = n.other;
  const forged = encodeOtherSignedNotification({ tbsOtherNotification: o.tbsOtherNotification.raw, signature: flipBit(o.signature), euiccCertificate: o.euiccCertificate, eumCertificate: o.eumCertificate });
  const ex = await wire.send('handleNotification', { pendingNotification: toB64(forged) });
  recordedOnly(t, ex, { kind: 'enable', verified: false, iccid: order.iccid, outcome: 'bad-signature' });
  t.equal((await w.profile(order.iccid))!.device_state, 'Disabled');

  const genuine = await wire.send('handleNotification', { pendingNotification: toB64(raw) });
  t.equal(genuine.status, 204);
  t.equal((await w.profile(order.iccid))!.device_state, 'Enabled');
});
