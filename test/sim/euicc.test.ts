/**
 * The virtual eUICC against a server side played here with the project's RSP encoders and crypto:
 * full downloads on both curves (and with the public SGP.26 test PKI when present), profile
 * management with signed notifications, persistence, and the error answers of every step.
 */
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CurveName } from '../../src/crypto/curves.js';
import { signRaw, verifyRaw } from '../../src/crypto/ecdsa.js';
import { ecka, generateOtKeyPair } from '../../src/crypto/ecka.js';
import { deriveSessionKeys } from '../../src/crypto/kdf.js';
import { chunk, MAX_ENCRYPTED_PLAINTEXT, MAX_MAC_ONLY_PLAINTEXT, Scp03tWriter } from '../../src/crypto/scp03t.js';
import { Certificate, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { decode, tlv } from '../../src/der/tlv.js';
import { integer, namedBits, readUint, readUtf8 } from '../../src/der/types.js';
import { generatePki } from '../../src/pki/generate.js';
import { loadEuiccCredentials, loadServerPki, type DpCredentials, type ServerPki } from '../../src/pki/load.js';
import {
  decodeAuthenticateServerResponse,
  EMPTY_DEVICE_CAPABILITIES,
  encodeAuthenticateServerRequest,
  encodeServerSigned1,
} from '../../src/rsp/authentication.js';
import { buildBoundProfilePackage, encodeInitialiseSecureChannel, smdpSignInput, splitBppForLoading } from '../../src/rsp/bpp.js';
import { decodeCancelSessionResponse, encodeCancelSessionRequest } from '../../src/rsp/cancel.js';
import {
  decodePrepareDownloadResponse,
  encodePrepareDownloadRequest,
  encodeSmdpSigned2,
  encodeStoreMetadataRequest,
  type StoreMetadataRequest,
} from '../../src/rsp/download.js';
import { decodeEuiccInfo1, decodeEuiccInfo2 } from '../../src/rsp/euiccinfo.js';
import { iccidToEf } from '../../src/rsp/identifiers.js';
import {
  decodeNotificationMetadata,
  decodePendingNotification,
  decodeProfileInstallationResult,
  type DecodedProfileInstallationResult,
} from '../../src/rsp/notification.js';
import { buildProfile } from '../../src/saip/profile.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { loadCardState } from '../../src/sim/state.js';
import { es10Sessions, SKIP_CAPTURES } from '../helpers/lpac-capture.js';
import { needs, SGP26 as SGP26_SET } from '../helpers/shared-data.js';

const SGP26 = SGP26_SET.dir;

const ADDRESS = 'smdp.example.test';
const NOTIFY = 'notify.example.test';
const KI = Buffer.from('000102030405060708090A0B0C0D0E0F', 'hex');
const OPC = Buffer.from('F0E0D0C0B0A090807060504030201000', 'hex');

const work = mkdtempSync(join(tmpdir(), 'euicc-test-'));
t.teardown(() => rmSync(work, { recursive: true, force: true }));
const pkiDir = join(work, 'pki');
await generatePki(pkiDir, { hostname: ADDRESS });
const server = loadServerPki(pkiDir);

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

/** The server half of one download session, step by step. */
class ServerSide {
  tid = randomBytes(16);
  serverChallenge = randomBytes(16);
  euiccSignature1Do?: Buffer;
  euiccCert?: Certificate;
  euiccOtpk?: Buffer;
  smdpSignature2Do?: Buffer;

  constructor(
    readonly pki: ServerPki,
    readonly cred: DpCredentials,
    readonly address = ADDRESS,
  ) {}

  /** BF38 request for this challenge; options to break it. */
  authenticateServerRequest(euiccChallenge: Buffer, o: { tamperSignature?: boolean; ciPkId?: Buffer; cert?: Buffer; matchingId?: string } = {}): Buffer {
    const ss1 = encodeServerSigned1({ transactionId: this.tid, euiccChallenge, serverAddress: this.address, serverChallenge: this.serverChallenge });
    const sig = signRaw(this.cred.auth.key, ss1);
    if (o.tamperSignature) sig[10]! ^= 0x01;
    return encodeAuthenticateServerRequest({
      serverSigned1: ss1,
      serverSignature1: sig,
      euiccCiPkIdToBeUsed: o.ciPkId ?? this.cred.ciSki,
      serverCertificate: o.cert ?? this.cred.auth.cert.raw,
      ctxParams1: { matchingId: o.matchingId ?? 'MATCHING-1', deviceInfo: { tac: Buffer.from('35290611', 'hex'), deviceCapabilities: EMPTY_DEVICE_CAPABILITIES } },
    });
  }

  /** What authenticateClient checks of the eUICC's answer. */
  checkAuthenticateResponse(t: Test, resp: Buffer, eid: string): void {
    const r = decodeAuthenticateServerResponse(resp);
    if (!('ok' in r)) throw new Error(`AuthenticateServer error ${r.error.code}`);
    const { euiccSigned1, euiccSignature1, euiccSignature1Do, euiccCertificate, eumCertificate } = r.ok;
    const eum = Certificate.parse(eumCertificate);
    const euicc = Certificate.parse(euiccCertificate);
    const ci = this.pki.cis.find((c) => c.ski?.equals(eum.aki!));
    t.ok(ci, 'EUM issued by a CI the server knows');
    checkIssued(eum, ci!, { role: RSP_ROLE.eum });
    checkIssued(euicc, eum, { role: RSP_ROLE.euicc });
    t.equal(euicc.subjectSerialNumber, eid, 'EID in the eUICC certificate');
    t.ok(verifyRaw(euicc.publicKey, euiccSigned1.raw, euiccSignature1), 'euiccSignature1 verifies');
    t.same(euiccSigned1.transactionId, this.tid);
    t.same(euiccSigned1.serverChallenge, this.serverChallenge);
    t.equal(euiccSigned1.serverAddress, this.address);
    t.equal(euiccSigned1.ctxParams1.matchingId, 'MATCHING-1');
    this.euiccSignature1Do = euiccSignature1Do;
    this.euiccCert = euicc;
  }

  prepareDownloadRequest(o: { tamperSignature?: boolean; tid?: Buffer; hashCc?: Buffer; bppEuiccOtpk?: Buffer; cert?: Buffer } = {}): Buffer {
    const smdpSigned2 = encodeSmdpSigned2({ transactionId: o.tid ?? this.tid, ccRequiredFlag: !!o.hashCc, ...(o.bppEuiccOtpk ? { bppEuiccOtpk: o.bppEuiccOtpk } : {}) });
    const sig = signRaw(this.cred.pb.key, Buffer.concat([smdpSigned2, this.euiccSignature1Do!]));
    if (o.tamperSignature) sig[3]! ^= 0x80;
    this.smdpSignature2Do = tlv(0x5f37, sig);
    return encodePrepareDownloadRequest({
      smdpSigned2,
      smdpSignature2: sig,
      smdpCertificate: o.cert ?? this.cred.pb.cert.raw,
      ...(o.hashCc ? { hashCc: o.hashCc } : {}),
    });
  }

  checkPrepareDownloadResponse(t: Test, resp: Buffer): Buffer {
    const r = decodePrepareDownloadResponse(resp);
    if (!('ok' in r)) throw new Error(`PrepareDownload error ${r.error.code}`);
    const { euiccSigned2, euiccSignature2 } = r.ok;
    t.ok(verifyRaw(this.euiccCert!.publicKey, Buffer.concat([euiccSigned2.raw, this.smdpSignature2Do!]), euiccSignature2), 'euiccSignature2 verifies');
    t.same(euiccSigned2.transactionId, this.tid);
    this.euiccOtpk = euiccSigned2.euiccOtpk;
    return euiccSigned2.euiccOtpk;
  }

  /** A BPP for `eid`, with optional damage. */
  boundProfilePackage(
    eid: string,
    p: { iccid: string; profileIccid?: string; metadata?: Partial<StoreMetadataRequest>; ppk?: boolean },
    damage: { segment86?: number; segment88?: number; smdpSign?: boolean } = {},
  ): Buffer {
    const hostId = Buffer.from('mock-smdp-host');
    const ot = generateOtKeyPair(this.cred.curve);
    const keys = deriveSessionKeys(ecka(ot.privateKey, this.euiccOtpk!), hostId, eid);
    const smdpSign = signRaw(this.cred.pb.key, smdpSignInput(this.tid, hostId, ot.publicPoint, this.euiccOtpk!));
    if (damage.smdpSign) smdpSign[0]! ^= 0x01;
    const isc = encodeInitialiseSecureChannel({ transactionId: this.tid, hostId, smdpOtpk: ot.publicPoint, smdpSign });
    const w = new Scp03tWriter(keys);
    const a0 = [w.encrypted(0x87, tlv(0xbf24))];
    const metadata = encodeStoreMetadataRequest({
      iccid: iccidToEf(p.iccid),
      serviceProviderName: 'Mock Operator',
      profileName: `Profile ${p.iccid}`,
      profileClass: 2,
      notificationConfigurationInfo: [{ operations: [1, 2, 3], address: NOTIFY }],
      ...p.metadata,
    });
    const s88 = chunk(metadata, Math.min(40, MAX_MAC_ONLY_PLAINTEXT)).map((c) => w.macOnly(0x88, c));
    let a2: Buffer[] | undefined;
    if (p.ppk) {
      const ppk = { mcv: randomBytes(16), sEnc: randomBytes(16), sMac: randomBytes(16) };
      a2 = [w.encrypted(0x87, tlv(0xbf26, tlv(0x80, ppk.mcv), tlv(0x81, ppk.sEnc), tlv(0x82, ppk.sMac)))];
      w.usePpk(ppk);
    }
    const upp = buildProfile({ iccid: p.profileIccid ?? p.iccid, imsi: '001010123456063', ki: KI, opc: OPC, spn: 'Mock' });
    const s86 = chunk(upp, MAX_ENCRYPTED_PLAINTEXT).map((c) => w.encrypted(0x86, c));
    if (damage.segment86 !== undefined) s86[damage.segment86]![10]! ^= 0x01;
    if (damage.segment88 !== undefined) s88[damage.segment88]![5]! ^= 0x01;
    return buildBoundProfilePackage({ initialiseSecureChannel: isc, firstSequenceOf87: a0, sequenceOf88: s88, ...(a2 ? { secondSequenceOf87: a2 } : {}), sequenceOf86: s86 });
  }
}

async function challenge(card: VirtualEuicc): Promise<Buffer> {
  const r = decode(await card.transmit(Buffer.from('BF2E00', 'hex')));
  return r.get(0x80).value;
}

/** GetEuiccChallenge → AuthenticateServer → PrepareDownload; returns the server side ready for a BPP. */
async function session(t: Test, card: VirtualEuicc, cred: DpCredentials, pki: ServerPki = server): Promise<ServerSide> {
  const s = new ServerSide(pki, cred);
  s.checkAuthenticateResponse(t, await card.transmit(s.authenticateServerRequest(await challenge(card))), card.eid);
  s.checkPrepareDownloadResponse(t, await card.transmit(s.prepareDownloadRequest()));
  return s;
}

/** Loads a BPP in lpac's pieces; checks intermediate answers are empty; returns the decoded PIR. */
async function load(t: Test, card: VirtualEuicc, pkg: Buffer): Promise<{ pir: DecodedProfileInstallationResult; raw: Buffer; piecesSent: number; pieces: number }> {
  const pieces = splitBppForLoading(pkg);
  let sent = 0;
  for (const p of pieces) {
    const r = await card.transmit(p);
    sent++;
    if (r.length) return { pir: decodeProfileInstallationResult(r), raw: r, piecesSent: sent, pieces: pieces.length };
  }
  t.fail('no PIR after the last piece');
  throw new Error('no PIR');
}

function verifyPir(t: Test, card: VirtualEuicc, pir: DecodedProfileInstallationResult): void {
  const creds = card.credentials;
  t.ok(
    creds.some((c) => verifyRaw(c.cert.publicKey, pir.data.raw, pir.signature)),
    'euiccSignPIR verifies over the BF27 bytes',
  );
}

async function profilesInfo(card: VirtualEuicc, cmd = 'BF2D00') {
  const r = decode(await card.transmit(Buffer.from(cmd, 'hex'))).expect(0xbf2d);
  const list = r.find(0xa0);
  if (!list) return { error: readUint(r.get(0x81)), profiles: [] };
  return {
    profiles: list.children().map((e) => ({
      iccidEf: hex(e.get(0x5a).value),
      aid: e.find(0x4f) && hex(e.get(0x4f).value),
      state: e.find(0x9f70) && readUint(e.get(0x9f70)),
      spn: e.find(0x91) && readUtf8(e.get(0x91)),
      name: e.find(0x92) && readUtf8(e.get(0x92)),
      nickname: e.find(0x90) && readUtf8(e.get(0x90)),
      cls: e.find(0x95) && readUint(e.get(0x95)),
      hasNci: !!e.find(0xb6),
    })),
  };
}

const es10 = async (card: VirtualEuicc, h: string | Buffer) => decode(await card.transmit(typeof h === 'string' ? Buffer.from(h, 'hex') : h));
const resultCode = async (card: VirtualEuicc, cmd: Buffer) => readUint((await es10(card, cmd)).get(0x80));
const byIccid = (tag: number, iccid: string, refresh = false) =>
  tag === 0xbf33 ? tlv(tag, tlv(0x5a, iccidToEf(iccid))) : tlv(tag, tlv(0xa0, tlv(0x5a, iccidToEf(iccid))), tlv(0x81, Buffer.from([refresh ? 0xff : 0])));

const nist = server.byCiSkiHex.get(hex(server.credentials.find((c) => c.curve === 'P-256')!.ciSki))!;
const brp = server.credentials.find((c) => c.curve === 'brainpoolP256r1')!;

t.test('EUICCInfo1/2, GetEID and challenges', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const info1 = decodeEuiccInfo1(await card.transmit(Buffer.from('BF2000', 'hex')));
  const skis = server.cis.map((c) => hex(c.ski!)).sort();
  t.same(info1.ciPkIdsForVerification.map(hex).sort(), skis, 'trusts both CIs');
  t.same(info1.ciPkIdsForSigning.map(hex).sort(), skis, 'eUICC certificates under both CIs');
  t.same(info1.svn, Buffer.from([2, 2, 2]));
  const info2 = decodeEuiccInfo2(await card.transmit(Buffer.from('BF2200', 'hex')));
  t.same(info2.ciPkIdsForSigning.map(hex).sort(), skis);
  t.ok(info2.rspCapability.includes(0), 'additionalProfile');
  const eid = await es10(card, 'BF3E035C015A');
  t.equal(hex(eid.get(0x5a).value), card.eid);
  t.equal(card.eid.length, 32);
  const c1 = await challenge(card);
  const c2 = await challenge(card);
  t.equal(c1.length, 16);
  t.not(hex(c1), hex(c2), 'fresh challenge each time');
});

for (const [name, cred] of [['P-256', nist], ['brainpoolP256r1', brp]] as const) {
  t.test(`${name}: full download, profile management, notifications, persistence`, async (t) => {
    const stateFile = join(work, `state-${name}.json`);
    const card = await VirtualEuicc.create({ pkiDir, persistTo: stateFile });
    const s = await session(t, card, cred);
    t.equal(s.euiccCert!.curve, cred.curve as CurveName, 'the eUICC signs with the certificate under the chosen CI');
    const iccid = '8944000000000000018';
    const { pir, raw, piecesSent, pieces } = await load(t, card, s.boundProfilePackage(card.eid, { iccid }));
    t.equal(piecesSent, pieces, 'PIR only after the last piece');
    verifyPir(t, card, pir);
    t.same(pir.data.transactionId, s.tid);
    t.equal(pir.data.smdpOid, server.smdpOid);
    t.ok('success' in pir.data.finalResult, 'successResult');
    const aid = 'success' in pir.data.finalResult ? pir.data.finalResult.success.aid : Buffer.alloc(0);
    t.equal(hex(aid), 'A0000005591010FFFFFFFF8900001000');
    const md = pir.data.notificationMetadata;
    t.equal(md.operation, 0, 'install');
    t.equal(md.notificationAddress, ADDRESS, 'PIR addressed to the SM-DP+ of the session');
    t.same(md.iccid, iccidToEf(iccid));

    // profile listed, disabled, with metadata
    let info = await profilesInfo(card);
    t.equal(info.profiles.length, 1);
    t.match(info.profiles[0], { iccidEf: hex(iccidToEf(iccid)), aid: hex(aid), state: 0, spn: 'Mock Operator', name: `Profile ${iccid}`, cls: 2, hasNci: false });
    const withNci = await profilesInfo(card, hex(tlv(0xbf2d, tlv(0x5c, Buffer.from('5A9F70B6', 'hex')))));
    t.match(withNci.profiles[0], { state: 0, hasNci: true, aid: undefined }, 'tagList honoured');
    t.equal(card.profiles[0]!.imsi, '001010123456063');
    t.equal(card.profiles[0]!.ki, hex(KI));

    // install notification pending, retrievable, exactly the PIR
    let list = await es10(card, 'BF2800');
    t.equal(list.get(0xa0).children().length, 1);
    const seqInstall = decodeNotificationMetadata(list.get(0xa0).children()[0]!.raw).seqNumber;
    const retrieved = await es10(card, tlv(0xbf2b, tlv(0xa0, integer(seqInstall, 0x80))));
    t.same(retrieved.get(0xa0).children()[0]!.raw, raw, 'RetrieveNotificationsList returns the PIR as answered');

    // a second GetProfilesInfo after restart sees the same (state file)
    const state = loadCardState(stateFile);
    t.equal(state.profiles.length, 1);
    const reopened = VirtualEuicc.open(stateFile);
    t.equal((await profilesInfo(reopened)).profiles.length, 1, 'another process sees the installed profile');

    // enable / disable / delete with notifications
    t.equal(await resultCode(card, byIccid(0xbf31, iccid)), 0, 'enable ok');
    t.equal(await resultCode(card, byIccid(0xbf31, iccid)), 2, 'enable again: profileNotInDisabledState');
    info = await profilesInfo(card);
    t.equal(info.profiles[0]!.state, 1);
    t.equal(await resultCode(card, byIccid(0xbf33, iccid)), 2, 'delete enabled profile refused');
    t.equal(await resultCode(card, byIccid(0xbf32, iccid)), 0, 'disable ok');
    t.equal(await resultCode(card, byIccid(0xbf32, iccid)), 2, 'disable again: profileNotInEnabledState');
    t.equal(await resultCode(card, tlv(0xbf29, tlv(0x5a, iccidToEf(iccid)), tlv(0x90, Buffer.from('work')))), 0, 'nickname');
    t.equal((await profilesInfo(card)).profiles[0]!.nickname, 'work');
    t.equal(await resultCode(card, tlv(0xbf33, tlv(0x4f, aid))), 0, 'delete by ISD-P AID');
    t.equal(await resultCode(card, byIccid(0xbf31, iccid)), 1, 'enable deleted: iccidOrAidNotFound');
    t.equal((await profilesInfo(card)).profiles.length, 0);

    list = await es10(card, 'BF2800');
    const metas = list.get(0xa0).children().map((c) => decodeNotificationMetadata(c.raw));
    t.same(metas.map((m) => m.operation), [0, 1, 2, 3], 'install, enable, disable, delete');
    t.same(metas.map((m) => m.notificationAddress), [ADDRESS, NOTIFY, NOTIFY, NOTIFY]);
    t.ok(metas.every((m, i) => i === 0 || m.seqNumber > metas[i - 1]!.seqNumber), 'increasing seqNumbers');
    const filtered = await es10(card, tlv(0xbf28, namedBits([2], 0x81)));
    t.equal(filtered.get(0xa0).children().length, 1, 'ListNotification filtered by operation');

    const all = await es10(card, 'BF2B00');
    const pending = all.get(0xa0).children().map((c) => decodePendingNotification(c.raw));
    t.equal(pending.length, 4);
    for (const p of pending.slice(1)) {
      if (!('other' in p)) {
        t.fail('expected an OtherSignedNotification');
        continue;
      }
      const o = p.other;
      const euicc = Certificate.parse(o.euiccCertificate);
      const eum = Certificate.parse(o.eumCertificate);
      const ci = server.cis.find((c) => c.ski!.equals(eum.aki!))!;
      checkIssued(eum, ci, { role: RSP_ROLE.eum });
      checkIssued(euicc, eum, { role: RSP_ROLE.euicc });
      t.ok(verifyRaw(euicc.publicKey, o.tbsOtherNotification.raw, o.signature), `notification ${o.tbsOtherNotification.seqNumber} signature verifies`);
      t.same(o.tbsOtherNotification.iccid, iccidToEf(iccid));
      t.equal(euicc.curve, cred.curve, 'signed with the credentials used for the install');
    }

    // remove them all
    for (const m of metas) t.equal(await resultCode(card, tlv(0xbf30, integer(m.seqNumber, 0x80))), 0, `remove ${m.seqNumber}`);
    t.equal(await resultCode(card, tlv(0xbf30, integer(metas[0]!.seqNumber, 0x80))), 1, 'nothingToDelete');
    t.equal((await es10(card, 'BF2800')).get(0xa0).children().length, 0);
    t.equal(readUint((await es10(card, tlv(0xbf2b, tlv(0xa0, integer(1, 0x80))))).get(0x81)), 1, 'retrieve unknown seq: noResultAvailable');
    t.equal(loadCardState(stateFile).notifications.length, 0, 'state saved after every change');
  });
}

t.test('enable switches the enabled profile and notifies both', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  for (const iccid of ['8944000000000000100', '8944000000000000200']) {
    const s = await session(t, card, nist);
    const { pir } = await load(t, card, s.boundProfilePackage(card.eid, { iccid }));
    t.ok('success' in pir.data.finalResult);
  }
  t.equal(await resultCode(card, byIccid(0xbf31, '8944000000000000100')), 0);
  t.equal(await resultCode(card, byIccid(0xbf31, '8944000000000000200', true)), 0);
  const states = (await profilesInfo(card)).profiles.map((p) => p.state);
  t.same(states, [0, 1], 'only the second is enabled');
  const ops = (await es10(card, 'BF2800')).get(0xa0).children().map((c) => decodeNotificationMetadata(c.raw).operation);
  t.same(ops, [0, 0, 1, 2, 1], 'installs, enable 1, disable 1, enable 2');
  const aids = (await profilesInfo(card)).profiles.map((p) => p.aid);
  t.not(aids[0], aids[1], 'distinct ISD-P AIDs');
  t.equal(await resultCode(card, tlv(0xbf31, tlv(0xa0, tlv(0x5a, iccidToEf('8944000000000000999'))), tlv(0x81, Buffer.from([0])))), 1);
  t.equal(await resultCode(card, tlv(0xbf31, tlv(0x81, Buffer.from([0])))), 127, 'no identifier: undefinedError');
});

t.test('profile policy rules: PPR1 refuses disable, PPR2 refuses delete', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const s = await session(t, card, nist);
  const iccid = '8944000000000000300';
  await load(t, card, s.boundProfilePackage(card.eid, { iccid, metadata: { profilePolicyRules: [1, 2] } }));
  t.equal(await resultCode(card, byIccid(0xbf31, iccid)), 0);
  t.equal(await resultCode(card, byIccid(0xbf32, iccid)), 3, 'disallowedByPolicy');
});

t.test('AuthenticateServer errors', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const code = (r: Buffer) => {
    const d = decodeAuthenticateServerResponse(r);
    return 'error' in d ? d.error.code : 0;
  };
  let s = new ServerSide(server, nist);
  t.equal(code(await card.transmit(s.authenticateServerRequest(randomBytes(16)))), 4, 'no challenge issued: noSessionContext');
  let r = decodeAuthenticateServerResponse(await card.transmit(s.authenticateServerRequest(await challenge(card), { tamperSignature: true })));
  t.ok('error' in r && r.error.code === 2, 'tampered serverSignature1: invalidSignature');
  t.ok('error' in r && r.error.transactionId?.equals(s.tid), 'error echoes the transactionId');
  await challenge(card);
  t.equal(code(await card.transmit(s.authenticateServerRequest(randomBytes(16)))), 6, 'wrong euiccChallenge: euiccChallengeMismatch');
  t.equal(code(await card.transmit(s.authenticateServerRequest(await challenge(card), { ciPkId: randomBytes(20) }))), 7, 'unknown CI: ciPKUnknown');
  t.equal(code(await card.transmit(s.authenticateServerRequest(await challenge(card), { cert: nist.pb.cert.raw }))), 1, 'DPpb as DPauth: invalidCertificate');
  // a DPauth of a PKI the card does not trust
  const otherDir = join(work, 'other-pki');
  await generatePki(otherDir, { curves: ['P-256'] });
  const other = loadServerPki(otherDir);
  s = new ServerSide(other, other.credentials[0]!);
  t.equal(code(await card.transmit(s.authenticateServerRequest(await challenge(card), { ciPkId: nist.ciSki }))), 1, 'untrusted CI: invalidCertificate');
  t.equal(code(await card.transmit(Buffer.from('BF3803800101', 'hex'))), 127, 'malformed request: undefinedError');
  // after the error the session is gone: PrepareDownload has no context
  s = new ServerSide(server, nist);
  s.euiccSignature1Do = tlv(0x5f37, Buffer.alloc(64));
  const pd = decodePrepareDownloadResponse(await card.transmit(s.prepareDownloadRequest()));
  t.ok('error' in pd && pd.error.code === 4, 'PrepareDownload without session: noSessionContext');
});

t.test('PrepareDownload errors and one-time key reuse', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const begin = async () => {
    const s = new ServerSide(server, nist);
    s.checkAuthenticateResponse(t, await card.transmit(s.authenticateServerRequest(await challenge(card))), card.eid);
    return s;
  };
  const code = (r: Buffer) => {
    const d = decodePrepareDownloadResponse(r);
    return 'error' in d ? d.error.code : 0;
  };
  let s = await begin();
  t.equal(code(await card.transmit(s.prepareDownloadRequest({ tamperSignature: true }))), 2, 'invalidSignature');
  s = await begin();
  t.equal(code(await card.transmit(s.prepareDownloadRequest({ cert: nist.auth.cert.raw }))), 1, 'DPauth as DPpb: invalidCertificate');
  s = await begin();
  t.equal(code(await card.transmit(s.prepareDownloadRequest({ cert: brp.pb.cert.raw }))), 2, 'DPpb of the other curve: signature fails');
  s = await begin();
  t.equal(code(await card.transmit(s.prepareDownloadRequest({ tid: randomBytes(16) }))), 5, 'invalidTransactionId');

  s = await begin();
  const hashCc = randomBytes(32);
  const r = decodePrepareDownloadResponse(await card.transmit(s.prepareDownloadRequest({ hashCc })));
  t.ok('ok' in r && r.ok.euiccSigned2.hashCc?.equals(hashCc), 'hashCc passed into EUICCSigned2');
  const first = 'ok' in r ? r.ok.euiccSigned2.euiccOtpk : Buffer.alloc(0);
  // retry with bppEuiccOtpk: the same key pair is reused
  s = await begin();
  const again = decodePrepareDownloadResponse(await card.transmit(s.prepareDownloadRequest({ bppEuiccOtpk: first })));
  t.ok('ok' in again && again.ok.euiccSigned2.euiccOtpk.equals(first), 'otPK reused for a matching bppEuiccOtpk');
  s = await begin();
  const fresh = decodePrepareDownloadResponse(await card.transmit(s.prepareDownloadRequest()));
  t.ok('ok' in fresh && !fresh.ok.euiccSigned2.euiccOtpk.equals(first), 'fresh otPK otherwise');
});

t.test('LoadBoundProfilePackage failures end with a signed errorResult PIR', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const expectError = async (pkg: (s: ServerSide) => Buffer, cmd: number, reason: number, what: string) => {
    const s = await session(t, card, nist);
    const { pir, piecesSent, pieces } = await load(t, card, pkg(s));
    verifyPir(t, card, pir);
    const fr = pir.data.finalResult;
    t.ok('error' in fr && fr.error.bppCommandId === cmd && fr.error.errorReason === reason, `${what}: errorResult ${cmd}/${reason}`);
    return { pir, piecesSent, pieces };
  };
  const r86 = await expectError((s) => s.boundProfilePackage(card.eid, { iccid: '8944000000000000400' }, { segment86: 0 }), 5, 8, 'tampered 86');
  t.equal(r86.piecesSent, r86.pieces, 'the only 86 segment is the last piece');
  const r88 = await expectError((s) => s.boundProfilePackage(card.eid, { iccid: '8944000000000000400' }, { segment88: 1 }), 2, 8, 'tampered 88');
  t.ok(r88.piecesSent < r88.pieces, 'answered at the first bad segment, not at the end');
  await expectError((s) => s.boundProfilePackage(card.eid, { iccid: '8944000000000000400' }, { smdpSign: true }), 0, 2, 'bad smdpSign');
  await expectError((s) => s.boundProfilePackage(card.eid, { iccid: '8944000000000000400', profileIccid: '8944000000000000418' }), 5, 13, 'ICCID mismatch');
  t.equal(card.profiles.length, 0, 'nothing installed');

  // duplicate ICCID
  const s = await session(t, card, nist);
  const ok = await load(t, card, s.boundProfilePackage(card.eid, { iccid: '8944000000000000400', ppk: true }));
  t.ok('success' in ok.pir.data.finalResult, 'install with ReplaceSessionKeys (A2) works');
  await expectError((s) => s.boundProfilePackage(card.eid, { iccid: '8944000000000000400' }), 2, 9, 'duplicate ICCID');
  t.equal(card.profiles.length, 1);

  // every PIR (failed ones too) is a pending notification to the SM-DP+
  const ops = (await es10(card, 'BF2800')).get(0xa0).children().map((c) => decodeNotificationMetadata(c.raw));
  t.equal(ops.length, 6);
  t.ok(ops.every((m) => m.operation === 0 && m.notificationAddress === ADDRESS));

  // pieces without a prepared session: a PIR for invalidTransactionId, not queued
  const s2 = await session(t, card, nist);
  const pkg = s2.boundProfilePackage(card.eid, { iccid: '8944000000000000500' });
  await challenge(card); // restarts the session: the prepared one is gone
  const first = splitBppForLoading(pkg)[0]!;
  const pir = decodeProfileInstallationResult(await card.transmit(first));
  t.ok('error' in pir.data.finalResult && pir.data.finalResult.error.errorReason === 3, 'no session: invalidTransactionId');
  t.same(pir.data.transactionId, s2.tid, 'with the package transactionId');
  t.equal((await es10(card, 'BF2800')).get(0xa0).children().length, 6, 'not queued');
});

t.test('a whole BPP in one command', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const s = await session(t, card, brp);
  const pir = decodeProfileInstallationResult(await card.transmit(s.boundProfilePackage(card.eid, { iccid: '8944000000000000600' })));
  t.ok('success' in pir.data.finalResult);
  verifyPir(t, card, pir);
});

t.test('CancelSession', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const s = new ServerSide(server, nist);
  s.checkAuthenticateResponse(t, await card.transmit(s.authenticateServerRequest(await challenge(card))), card.eid);
  const wrong = decodeCancelSessionResponse(await card.transmit(encodeCancelSessionRequest({ transactionId: randomBytes(16), reason: 1 })));
  t.ok('error' in wrong && wrong.error.code === 5, 'unknown transactionId: 5');
  const r = decodeCancelSessionResponse(await card.transmit(encodeCancelSessionRequest({ transactionId: s.tid, reason: 0 })));
  if (!('ok' in r)) throw new Error('cancel failed');
  t.ok(verifyRaw(s.euiccCert!.publicKey, r.ok.signed.raw, r.ok.signature), 'euiccCancelSessionSignature verifies');
  t.same(r.ok.signed.transactionId, s.tid);
  t.equal(r.ok.signed.smdpOid, server.smdpOid);
  t.equal(r.ok.signed.reason, 0);
  const again = decodeCancelSessionResponse(await card.transmit(encodeCancelSessionRequest({ transactionId: s.tid, reason: 0 })));
  t.ok('error' in again && again.error.code === 5, 'session gone after cancel');
  t.equal((await es10(card, 'BF2800')).get(0xa0).children().length, 0, 'no notification queued');
});

t.test('malformed and unknown commands never throw', async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  for (const h of ['', '00', 'BF', 'BF2E', 'BF2E05', 'FF0100', 'BF9901', 'BF7F00', '86020000', 'A38200']) {
    const r = await card.transmit(Buffer.from(h, 'hex'));
    t.type(r, Buffer, `"${h}" answered`);
  }
  t.equal((await card.transmit(Buffer.from('BF7F00', 'hex'))).length, 0, 'unknown function: empty answer');
  t.match(card.lastError, /unsupported/);
  t.equal(readUint((await es10(card, 'BF2D03A00100')).get(0x81)), 1, 'GetProfilesInfo with a bad search criterion: error');
  t.equal(await resultCode(card, Buffer.from('BF3000', 'hex')), 127, 'RemoveNotificationFromList without seq');
  t.equal(await resultCode(card, Buffer.from('BF3303990100', 'hex')), 127, 'Delete with a bad identifier');
  t.equal(await resultCode(card, Buffer.from('BF3200', 'hex')), 127, 'Disable without content');
  const rat = await es10(card, 'BF4300');
  t.equal(rat.get(0xa0).length, 0, 'empty RAT');
  t.equal(await resultCode(card, tlv(0xbf3f, tlv(0x80, Buffer.from('dp.example')))), 0, 'SetDefaultDpAddress');
  const addrs = await es10(card, 'BF3C00');
  t.equal(readUtf8(addrs.get(0x80)), 'dp.example');
  t.ok(addrs.find(0x81));
});

t.test('state round trip through JSON', async (t) => {
  const outside = await VirtualEuicc.create({ pkiDir, eid: '89001012000000000000000000012345' }).catch((e: Error) => e);
  t.ok(outside instanceof Error, 'an EID outside the EUM permitted EINs is refused');
  const c2 = await VirtualEuicc.create({ pkiDir, eid: '89049032000000000000000000012345' }).catch((e: Error) => e);
  if (c2 instanceof Error) {
    t.fail(`issuing for a new EID failed: ${c2.message}`);
    return;
  }
  t.equal(c2.eid, '89049032000000000000000000012345');
  const s = await session(t, c2, nist);
  await load(t, c2, s.boundProfilePackage(c2.eid, { iccid: '8944000000000000700' }));
  const json = JSON.parse(JSON.stringify(c2.toJSON()));
  t.ok(json.credentials.embedded?.length, 'issued credentials embedded');
  const back = VirtualEuicc.fromJSON(json);
  t.equal(back.eid, c2.eid);
  t.equal((await profilesInfo(back)).profiles.length, 1);
  const s2 = await session(t, back, nist);
  const { pir } = await load(t, back, s2.boundProfilePackage(back.eid, { iccid: '8944000000000000718' }));
  t.ok('success' in pir.data.finalResult, 'restored card downloads with its embedded credentials');
});

t.test('SGP.26 test PKI (GSMA published credentials)', { skip: needs(SGP26_SET) }, async (t) => {
  const creds = loadEuiccCredentials(SGP26);
  const card = await VirtualEuicc.create({ credentials: creds });
  t.equal(card.eid, '89049032123451234512345678901235');
  const pki = loadServerPki(SGP26);
  const cred = pki.byCiSkiHex.get('F54172BDF98A95D65CBEB88A38A1C11D800A85C3')!;
  t.ok(cred, 'NIST SM-DP+ credentials');
  const s = await session(t, card, cred, pki);
  const { pir } = await load(t, card, s.boundProfilePackage(card.eid, { iccid: '8944000000000000800' }));
  t.ok('success' in pir.data.finalResult);
  t.equal(pir.data.smdpOid, '2.999.10');
  const info1 = decodeEuiccInfo1(await card.transmit(Buffer.from('BF2000', 'hex')));
  t.ok(info1.ciPkIdsForVerification.some((k) => hex(k) === 'C0BC70BA36929D43B467FF57570530E57AB8FCD8'), 'trusts the brainpool CI too');
  t.same(info1.ciPkIdsForSigning.map(hex), ['F54172BDF98A95D65CBEB88A38A1C11D800A85C3'], 'signs only under the NIST CI');
});

t.test('lpac captured ES10 commands are understood (replayed against a card that does not trust their PKI)', { skip: SKIP_CAPTURES }, async (t) => {
  const card = await VirtualEuicc.create({ pkiDir });
  const exchanges = es10Sessions().flat();
  t.ok(exchanges.length > 20, 'capture has the download and the profile management');
  const seen = new Set<number>();
  for (const x of exchanges) {
    const mine = await card.transmit(x.command);
    const tag = x.command.subarray(0, 2).toString('hex').toUpperCase();
    if (x.response.length === 0) {
      // intermediate BPP pieces of the real card; ours answered the first piece with a PIR already
      t.ok(mine.length === 0 || decode(mine).tag === 0xbf37, `${tag}: empty or the PIR of the aborted load`);
      continue;
    }
    const real = decode(x.response);
    const ours = decode(mine);
    t.equal(ours.tag, real.tag, `${tag}: same response tag as the real eUICC`);
    seen.add(ours.tag);
    switch (ours.tag) {
      case 0xbf38: {
        const r = decodeAuthenticateServerResponse(mine);
        // decoded fine (not 127), refused because the capture's CI is unknown to this card
        t.ok('error' in r && r.error.code === 1, 'AuthenticateServer: invalidCertificate');
        t.ok('error' in r && r.error.transactionId?.equals(decode(x.command).children()[0]!.get(0x80).value), 'echoes lpac transactionId');
        break;
      }
      case 0xbf21: {
        const r = decodePrepareDownloadResponse(mine);
        t.ok('error' in r && r.error.code === 4, 'PrepareDownload: noSessionContext');
        break;
      }
      case 0xbf37: {
        const r = decodeProfileInstallationResult(mine);
        t.ok('error' in r.data.finalResult && r.data.finalResult.error.errorReason === 3, 'BPP without session: invalidTransactionId');
        break;
      }
      case 0xbf31:
      case 0xbf32:
      case 0xbf33:
      case 0xbf29:
        t.equal(readUint(ours.get(0x80)), 1, `${tag}: lpac's request parsed, profile not found`);
        break;
      case 0xbf30:
        t.equal(readUint(ours.get(0x80)), 1, 'RemoveNotificationFromList: nothingToDelete');
        break;
      case 0xbf2b:
        t.equal(readUint(ours.get(0x81)), 1, 'RetrieveNotificationsList by seqNumber: noResultAvailable');
        break;
      case 0xbf28:
      case 0xbf2d:
        t.equal(ours.get(0xa0).length, 0, `${tag}: empty list`);
        break;
      default:
        break;
    }
  }
  t.ok([0xbf2e, 0xbf20, 0xbf38, 0xbf21, 0xbf37, 0xbf28, 0xbf2d, 0xbf31].every((x) => seen.has(x)), 'all functions of the capture covered');
});
