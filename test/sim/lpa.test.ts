/**
 * The LPA against a fake ES9+ and a fake card that replay the lpac captures: every ES10 command and
 * every ES9+ request it produces must equal what lpac produced in the same situation. Without the
 * captures (../shared/interop, see test/helpers/shared-data.ts) these skip; lpa-server.test.ts checks
 * the same behaviours against this project's server and card on the generated PKI.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { decode, tlv } from '../../src/der/tlv.js';
import { HttpClient } from '../../src/http/client.js';
import { ApduCard, ApduFront, type ApduTransport } from '../../src/sim/apdu.js';
import type { Es10Card } from '../../src/sim/es10.js';
import { CANCEL_REASON, Lpa, LpaError, metadataFromBpp } from '../../src/sim/lpa.js';
import { CAPTURE_AC, SKIP_CAPTURES, es10Sessions, es9Exchanges, type Es10Exchange, type Es9Exchange } from '../helpers/lpac-capture.js';

interface Recorded {
  fn: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type Answer = { status: number; body?: string };
/** The parts of a tap Test used by the helpers below. */
type TestLike = Pick<Test, 'teardown' | 'type' | 'fail'>;

/** A plain-HTTP ES9+ stand-in: answers per function name, records requests. */
async function fakeEs9(t: TestLike, answer: (fn: string, body: string) => Answer): Promise<{ client: HttpClient; seen: Recorded[] }> {
  const seen: Recorded[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const fn = (req.url ?? '').split('/').pop()!;
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ fn, headers: req.headers, body });
      const a = answer(fn, body);
      res.writeHead(a.status, { 'content-type': 'application/json;charset=UTF-8', 'x-admin-protocol': 'gsma/rsp/v2.1.0' });
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = new HttpClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  t.teardown(() => {
    client.close();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { client, seen };
}

/** A card that answers by handler and records commands. */
class FakeCard implements Es10Card {
  received: Buffer[] = [];
  constructor(private readonly handler: (cmd: Buffer, i: number) => Buffer) {}
  async transmit(command: Buffer): Promise<Buffer> {
    this.received.push(Buffer.from(command));
    return this.handler(command, this.received.length - 1);
  }
}

class RecordingTransport implements ApduTransport {
  log: Buffer[] = [];
  constructor(private readonly inner: ApduTransport) {}
  async transmit(apdu: Buffer): Promise<Buffer> {
    this.log.push(Buffer.from(apdu));
    return this.inner.transmit(apdu);
  }
}

const b64 = (s: string) => Buffer.from(s, 'base64');
const failed = (subjectCode: string, reasonCode: string) =>
  JSON.stringify({ header: { functionExecutionStatus: { status: 'Failed', statusCodeData: { subjectCode, reasonCode, message: 'refused' } } } });

function replayEs9(exchanges: Es9Exchange[]) {
  return (fn: string): Answer => {
    const e = exchanges.find((x) => x.fn === fn);
    if (!e) return { status: 404 };
    return { status: e.status, body: e.resp };
  };
}

t.test('download: the same ES10 commands and ES9+ requests as lpac (capture replay)', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-to-reference-smdp.jsonl');
  const sessions = es10Sessions();
  // the download session, then RemoveNotificationFromList(1) as lpac sent it when processing the PIR
  const remove = sessions.flat().find((e) => e.command.toString('hex') === 'bf3003800101')!;
  const expected: Es10Exchange[] = [...sessions[0]!, remove];

  for (const via of ['direct', 'apdu'] as const) {
    await t.test(via, async (t) => {
      const { client, seen } = await fakeEs9(t, replayEs9(es9));
      const card = new FakeCard((_cmd, i) => expected[i]?.response ?? Buffer.alloc(0));
      const rec = new RecordingTransport(new ApduFront(card));
      const steps: string[] = [];
      const lpa = new Lpa(via === 'direct' ? card : new ApduCard(rec), { http: client, progress: (s) => steps.push(s) });
      const result = await lpa.download(CAPTURE_AC);

      t.same(card.received.map((c) => c.toString('hex')), expected.map((e) => e.command.toString('hex')), 'ES10 commands');
      // ES9+: initiateAuthentication, authenticateClient, getBoundProfilePackage, handleNotification (PIR)
      t.same(seen.map((s) => s.fn), ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification']);
      for (let i = 0; i < 4; i++) {
        t.equal(seen[i]!.body, es9[i]!.req, `${seen[i]!.fn} body is byte-identical to lpac's`);
        const want = Object.fromEntries(es9[i]!.req_headers.map((h) => h.split(': ', 2).map((x, j) => (j ? x : x.toLowerCase()))));
        t.equal(seen[i]!.headers['user-agent'], want['user-agent']);
        t.equal(seen[i]!.headers['x-admin-protocol'], want['x-admin-protocol']);
        t.equal(seen[i]!.headers['content-type'], want['content-type']);
      }
      t.equal(result.iccid, '8949449999999990023');
      t.equal(result.profileName, 'TS48V1-A-UNIQUE');
      t.equal(result.seqNumber, 1);
      t.equal(result.transactionId, '1B2412CD9CCF40F6AC99194B16DC21AE');
      t.match(result.isdpAid, /^A0000005591010FFFFFFFF89000010/);
      t.equal(result.notificationSent, true);
      t.equal(result.notificationAddress, 'testsmdpplus1.example.com');
      for (const k of ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage', 'handleNotification', 'es10', 'total'] as const) {
        t.ok(result.timings[k] > 0, `timing ${k}`);
      }
      t.ok(result.timings.total >= result.timings.initiateAuthentication + result.timings.authenticateClient + result.timings.getBoundProfilePackage);
      t.same(steps.slice(0, 3), ['es10b_get_euicc_challenge_and_info', 'es9p_initiate_authentication', 'es10b_authenticate_server']);
      if (via === 'apdu') {
        const lpacApdus = sessions[0]!.flatMap((e) => e.apdus.map((a) => a.c.toLowerCase()));
        const ours = rec.log.map((c) => c.toString('hex')).filter((c) => c.startsWith('81e2') || c.startsWith('81c0'));
        t.same(ours.slice(0, lpacApdus.length), lpacApdus, 'STORE DATA / GET RESPONSE APDUs identical to lpac');
      }
    });
  }
});

t.test('the BPP of the capture carries profileMetadata in its 88 segments', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-to-reference-smdp.jsonl');
  const md = b64(JSON.parse(es9[1]!.resp).profileMetadata);
  const bpp = b64(JSON.parse(es9[2]!.resp).boundProfilePackage);
  t.same(metadataFromBpp(bpp), md);
});

t.test('metadata mismatch: cancelled with reason metadataMismatch', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-to-reference-smdp.jsonl');
  const ac = JSON.parse(es9[1]!.resp) as Record<string, string>;
  const md = b64(ac.profileMetadata!);
  const i = md.indexOf(Buffer.from('TS48V1'));
  md[i] = 'X'.charCodeAt(0);
  const tampered = JSON.stringify({ ...ac, profileMetadata: md.toString('base64') });
  const { client, seen } = await fakeEs9(t, (fn) => (fn === 'authenticateClient' ? { status: 200, body: tampered } : replayEs9(es9)(fn)));
  const session = es10Sessions()[0]!;
  const card = new FakeCard((cmd, i) => (cmd[0] === 0xbf && cmd[1] === 0x41 ? Buffer.from('bf4103810105', 'hex') : session[i]!.response));
  const err = await lpaError(t, new Lpa(card, { http: client }).download(CAPTURE_AC));
  t.equal(err.code, 'metadataMismatch');
  t.same(err.cancel, { reason: CANCEL_REASON.metadataMismatch, cardOk: false });
  t.equal(card.received.at(-1)!.toString('hex'), `bf4115801${'0'}1b2412cd9ccf40f6ac99194b16dc21ae810104`);
  t.notOk(card.received.some((c) => c[0] === 0xbf && c[1] === 0x36), 'no BPP piece loaded');
  t.same(seen.map((s) => s.fn), ['initiateAuthentication', 'authenticateClient', 'getBoundProfilePackage'], 'no ES9+ cancel without a signed cancel response');
});

t.test('install failure: the PIR is still delivered and removed, then an installFailed error', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-to-reference-smdp.jsonl');
  const tid = Buffer.from('1B2412CD9CCF40F6AC99194B16DC21AE', 'hex');
  const pir = tlv(
    0xbf37,
    tlv(
      0xbf27,
      tlv(0x80, tid),
      tlv(0xbf2f, Buffer.from('80010781020780', 'hex'), tlv(0x0c, Buffer.from('testsmdpplus1.example.com'))),
      tlv(0xa2, tlv(0xa1, Buffer.from('800105810108', 'hex'))),
    ),
    tlv(0x5f37, Buffer.alloc(64)),
  );
  const session = es10Sessions()[0]!;
  const card = new FakeCard((cmd, i) => {
    if (cmd.toString('hex') === 'bf3003800107') return Buffer.from('bf3003800100', 'hex');
    return i === session.length - 1 ? pir : session[i]!.response;
  });
  const { client, seen } = await fakeEs9(t, replayEs9(es9));
  const err = await lpaError(t, new Lpa(card, { http: client }).download(CAPTURE_AC));
  t.equal(err.code, 'installFailed');
  t.equal(err.bppCommandId, 5);
  t.equal(err.errorReason, 8);
  t.equal(err.cancel, undefined, 'no cancel after a PIR');
  t.equal(JSON.parse(seen.at(-1)!.body).pendingNotification, pir.toString('base64'));
  t.equal(card.received.at(-1)!.toString('hex'), 'bf3003800107', 'removed notification 7');
});

async function lpaError(t: TestLike, p: Promise<unknown>): Promise<LpaError> {
  try {
    await p;
  } catch (err) {
    t.type(err, LpaError);
    return err as LpaError;
  }
  t.fail('expected an LpaError');
  throw new Error('unreachable');
}

/** A card for the cancel capture: its answers are the ES10 responses lpac forwarded to the server. */
function cancelCaptureCard(es9: Es9Exchange[], prepare?: (cmd: Buffer) => Buffer): FakeCard {
  const ia = JSON.parse(es9[0]!.req) as Record<string, string>;
  const ac = JSON.parse(es9[1]!.req) as Record<string, string>;
  const cs = JSON.parse(es9[2]!.req) as Record<string, string>;
  return new FakeCard((cmd) => {
    const tag = cmd.subarray(0, 2).toString('hex');
    switch (tag) {
      case 'bf2e':
        return tlv(0xbf2e, tlv(0x80, b64(ia.euiccChallenge!)));
      case 'bf20':
        return b64(ia.euiccInfo1!);
      case 'bf38':
        return b64(ac.authenticateServerResponse!);
      case 'bf41':
        return b64(cs.cancelSessionResponse!);
      case 'bf21':
        return prepare ? prepare(cmd) : Buffer.from('bf2100', 'hex');
      default:
        return Buffer.from('6f00', 'hex');
    }
  });
}

t.test('user refusal after the metadata: cancelSession as lpac sent it', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-cancel-session.jsonl');
  const { client, seen } = await fakeEs9(t, replayEs9(es9));
  const card = cancelCaptureCard(es9);
  let shown: unknown;
  const err = await lpaError(t, new Lpa(card, { http: client }).download(CAPTURE_AC, { onMetadata: (m) => ((shown = m), false) }));
  t.equal(err.code, 'cancelled');
  t.match(shown, { iccid: '8949449999999990023', serviceProviderName: 'OsmocomSPN', profileName: 'TS48V1-A-UNIQUE', profileClass: 'operational' });
  // the captured server refused the (correct) cancel with 8.8/3.10 — a known defect of that server
  t.same(err.cancel, { reason: CANCEL_REASON.endUserRejection, cardOk: true, es9: 'Failed 8.8/3.10' });
  t.same(seen.map((s) => s.fn), ['initiateAuthentication', 'authenticateClient', 'cancelSession']);
  t.equal(seen[0]!.body, es9[0]!.req);
  t.equal(seen[1]!.body, es9[1]!.req);
  t.equal(seen[2]!.body, es9[2]!.req, 'cancelSession body byte-identical to lpac');
  t.equal(card.received.at(-1)!.toString('hex'), 'bf41158010' + '5035c666eaa44652b38aa5dfc0afc653' + '810100');
  // the BF38 the LPA built: server fields as received + ctxParams1 {matchingId, deviceInfo {tac, empty caps}}
  const ia = JSON.parse(es9[0]!.resp) as Record<string, string>;
  const ctx = tlv(0xa0, tlv(0x80, Buffer.from('TS48V1-A-UNIQUE')), tlv(0xa1, tlv(0x80, Buffer.from('35290611', 'hex')), tlv(0xa1)));
  t.same(card.received[2], tlv(0xbf38, ...['serverSigned1', 'serverSignature1', 'euiccCiPKIdToBeUsed', 'serverCertificate'].map((k) => b64(ia[k]!)), ctx));
});

t.test('an ES9+ Failed status cancels the session on both sides and reports the codes', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-cancel-session.jsonl');
  const { client, seen } = await fakeEs9(t, (fn) =>
    fn === 'authenticateClient'
      ? { status: 200, body: failed('8.2.6', '3.8') }
      : fn === 'cancelSession'
        ? { status: 200, body: JSON.stringify({ header: { functionExecutionStatus: { status: 'Executed-Success' } } }) }
        : replayEs9(es9)(fn),
  );
  const card = cancelCaptureCard(es9);
  const err = await lpaError(t, new Lpa(card, { http: client }).download(CAPTURE_AC));
  t.equal(err.code, 'es9Failed');
  t.equal(err.function, 'authenticateClient');
  t.equal(err.subjectCode, '8.2.6');
  t.equal(err.reasonCode, '3.8');
  t.match(err.message, /8\.2\.6\/3\.8: refused/);
  t.same(err.cancel, { reason: 0, cardOk: true, es9: 'Executed-Success' });
  t.same(seen.map((s) => s.fn), ['initiateAuthentication', 'authenticateClient', 'cancelSession']);
  t.equal(err.transactionId, '5035C666EAA44652B38AA5DFC0AFC653');
});

t.test('initiateAuthentication failure and transport errors: no session, nothing to cancel', async (t) => {
  const { client, seen } = await fakeEs9(t, (fn) => (fn === 'initiateAuthentication' ? { status: 200, body: failed('8.8.1', '3.8') } : { status: 500 }));
  const card = new FakeCard((cmd) => (cmd[1] === 0x2e ? tlv(0xbf2e, tlv(0x80, Buffer.alloc(16, 1))) : tlv(0xbf20, tlv(0x82, Buffer.from([2, 2, 0])))));
  const lpa = new Lpa(card, { http: client, smdpAddress: 'other.example:8443' });
  const err = await lpaError(t, lpa.download('LPA:1$smdp.example:9443$ABC'));
  t.same([err.code, err.subjectCode, err.reasonCode, err.cancel], ['es9Failed', '8.8.1', '3.8', undefined]);
  t.equal(JSON.parse(seen[0]!.body).smdpAddress, 'other.example:8443', 'explicit address override');
  t.same(card.received.map((c) => c.toString('hex')), ['bf2e00', 'bf2000']);

  const { client: c2, seen: s2 } = await fakeEs9(t, () => ({ status: 500, body: 'oops' }));
  const err2 = await lpaError(t, new Lpa(card, { http: c2 }).download('LPA:1$smdp.example:9443$ABC'));
  t.same([err2.code, err2.httpStatus], ['http', 500]);
  t.equal(JSON.parse(s2[0]!.body).smdpAddress, 'smdp.example:9443', 'the AC address with its port');

  const { client: c3 } = await fakeEs9(t, () => ({ status: 200, body: JSON.stringify({ header: { functionExecutionStatus: { status: 'Executed-Success' } }, transactionId: '01' }) }));
  const err3 = await lpaError(t, new Lpa(card, { http: c3 }).download('LPA:1$smdp.example$ABC'));
  t.same([err3.code, err3.message], ['badResponse', 'initiateAuthentication: answer lacks serverSigned1']);
});

t.test('confirmation code: hashCc = SHA-256(SHA-256(CC) || tid) in PrepareDownload', { skip: SKIP_CAPTURES }, async (t) => {
  const es9 = es9Exchanges('es9plus-lpac-cancel-session.jsonl');
  const tid = Buffer.from('5035C666EAA44652B38AA5DFC0AFC653', 'hex');
  const ac = JSON.parse(es9[1]!.resp) as Record<string, string>;
  const withCc = JSON.stringify({ ...ac, smdpSigned2: tlv(0x30, tlv(0x80, tid), tlv(0x01, Buffer.from([0xff]))).toString('base64') });
  const answer = (fn: string): Answer => (fn === 'authenticateClient' ? { status: 200, body: withCc } : replayEs9(es9)(fn));

  // CC required by the AC but not given: refused before touching the card
  const { client } = await fakeEs9(t, answer);
  const idle = cancelCaptureCard(es9);
  const e0 = await lpaError(t, new Lpa(idle, { http: client }).download('LPA:1$testsmdpplus1.example.com$TS48V1-A-UNIQUE$$1'));
  t.equal(e0.code, 'confirmationCodeRequired');
  t.equal(idle.received.length, 0);

  // CC required by the SM-DP+ (ccRequiredFlag) but not given: cancelled
  const e1 = await lpaError(t, new Lpa(cancelCaptureCard(es9), { http: client }).download(CAPTURE_AC));
  t.equal(e1.code, 'confirmationCodeRequired');
  t.equal(e1.cancel?.cardOk, true);

  // given: the card gets hashCc; its error answer is reported and the session cancelled
  const card = cancelCaptureCard(es9, () => tlv(0xbf21, tlv(0xa1, tlv(0x80, tid), tlv(0x02, Buffer.from([2])))));
  const e2 = await lpaError(t, new Lpa(card, { http: client }).download(CAPTURE_AC, { confirmationCode: '12345678' }));
  t.equal(e2.code, 'prepareDownload');
  t.equal(e2.cardErrorCode, 2);
  const pd = card.received.find((c) => c[1] === 0x21)!;
  const ccHash = createHash('sha256').update(createHash('sha256').update('12345678').digest()).update(tid).digest();
  t.ok(pd.includes(Buffer.concat([Buffer.from([0x04, 0x20]), ccHash])), 'hashCc in BF21');
  const smdpSigned2 = b64(JSON.parse(withCc).smdpSigned2);
  t.same(decode(pd).children()[0]!.raw, smdpSigned2, 'smdpSigned2 first, as received');
  t.equal(e2.cancel?.reason, CANCEL_REASON.endUserRejection);
});

t.test('notifications: list, retrieve, post to their address, remove after 2xx', { skip: SKIP_CAPTURES }, async (t) => {
  // the capture's notification session after enable/disable/delete: BF28 with 3 entries, then BF2B/BF30 each
  const sessions = es10Sessions();
  const last = sessions.find((s) => s.length === 7)!;
  const byCmd = new Map(last.map((e) => [e.command.toString('hex'), e.response]));
  const card = new FakeCard((cmd) => byCmd.get(cmd.toString('hex')) ?? Buffer.from('bf3003800101', 'hex'));
  const es9 = es9Exchanges('es9plus-lpac-to-reference-smdp.jsonl').filter((e) => e.fn === 'handleNotification').slice(1);
  let n = 0;
  const { client, seen } = await fakeEs9(t, () => ({ status: n++ === 1 ? 500 : 204 }));
  const addresses: string[] = [];
  const lpa = new Lpa(card, { http: client, clientFor: (a) => (addresses.push(a), client) });
  const list = await lpa.listNotifications();
  t.same(list.map((x) => [x.seqNumber, x.operation, x.notificationAddress, x.iccid]), [
    [2, 'enable', 'testsmdpplus1.example.com', '8949449999999990023'],
    [3, 'disable', 'testsmdpplus1.example.com', '8949449999999990023'],
    [4, 'delete', 'testsmdpplus1.example.com', '8949449999999990023'],
  ]);
  const out = await lpa.processNotifications();
  t.same(out.map((o) => [o.seqNumber, o.sent, o.removed, o.httpStatus]), [
    [2, true, true, undefined],
    [3, false, false, 500],
    [4, true, true, undefined],
  ]);
  t.same(seen.map((s) => s.body), es9.map((e) => e.req), 'bodies identical to lpac');
  t.same(addresses, ['testsmdpplus1.example.com', 'testsmdpplus1.example.com', 'testsmdpplus1.example.com']);
  t.same(
    card.received.map((c) => c.toString('hex')),
    ['bf2800', 'bf2800', 'bf2b05a003800102', 'bf3003800102', 'bf2b05a003800103', 'bf2b05a003800104', 'bf3003800104'],
  );
});

t.test('ES10c helpers: EID, profiles, enable/disable/delete with result codes', { skip: SKIP_CAPTURES }, async (t) => {
  const all = es10Sessions().flat();
  const byCmd = new Map(all.map((e) => [e.command.toString('hex'), e.response]));
  byCmd.set('bf3e035c015a', Buffer.from('bf3e125a1089049032001001234500012345678901', 'hex'));
  const card = new FakeCard((cmd) => byCmd.get(cmd.toString('hex')) ?? Buffer.from('bf3303800101', 'hex'));
  const lpa = new Lpa(card, { http: new HttpClient({ baseUrl: 'http://127.0.0.1:9' }) });
  t.equal(await lpa.getEid(), '89049032001001234500012345678901');
  const profiles = await lpa.listProfiles();
  t.match(profiles, [{ iccid: '8949449999999990023', state: 'disabled', profileName: 'TS48V1-A-UNIQUE', serviceProviderName: 'OsmocomSPN' }]);
  await lpa.enableProfile('8949449999999990023');
  await lpa.disableProfile('8949449999999990023');
  await lpa.deleteProfile('8949449999999990023');
  const cmds = card.received.map((c) => c.toString('hex'));
  t.ok(all.some((e) => e.command.toString('hex') === cmds[2]), 'EnableProfile as lpac sent it');
  t.ok(all.some((e) => e.command.toString('hex') === cmds[3]), 'DisableProfile as lpac sent it');
  t.ok(all.some((e) => e.command.toString('hex') === cmds[4]), 'DeleteProfile as lpac sent it');
  byCmd.clear();
  await t.rejects(lpa.deleteProfile('8949449999999990023'), { code: 'card', cardErrorCode: 1, message: /iccidOrAidNotFound/ });
});
