/**
 * The src/rsp decoders against real lpac traffic (../shared/interop): every message of the
 * captured ES9+ download and cancel exchanges decodes, the signatures in them verify over the raw
 * slices the decoders return, and the ES10 APDU log of the same download matches the ES9+ side.
 */
import t from 'tap';
import { verify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode, DerError } from '../../src/der/tlv.js';
import { decodeSignatureDo } from '../../src/rsp/data-objects.js';
import { RspError } from '../../src/rsp/errors.js';
import { decodeEuiccInfo1, encodeEuiccInfo1 } from '../../src/rsp/euiccinfo.js';
import {
  decodeAuthenticateServerRequest,
  decodeAuthenticateServerResponse,
  decodeServerSigned1,
  encodeCtxParams1,
  encodeEuiccSigned1,
  encodeServerSigned1,
} from '../../src/rsp/authentication.js';
import {
  decodePrepareDownloadRequest,
  decodePrepareDownloadResponse,
  decodeSmdpSigned2,
  decodeStoreMetadataRequest,
  encodeEuiccSigned2,
  encodeSmdpSigned2,
  encodeStoreMetadataRequest,
} from '../../src/rsp/download.js';
import {
  buildBoundProfilePackage,
  decodeBoundProfilePackage,
  encodeInitialiseSecureChannel,
  smdpSignInput,
  smdpSignVerifyInput,
  splitBppForLoading,
} from '../../src/rsp/bpp.js';
import {
  decodeNotificationMetadata,
  decodePendingNotification,
  encodeNotificationMetadata,
  encodeProfileInstallationResultData,
} from '../../src/rsp/notification.js';
import { decodeCancelSessionResponse, encodeEuiccCancelSessionSigned } from '../../src/rsp/cancel.js';
import { INTEROP, needs } from '../helpers/shared-data.js';

const interop = INTEROP.dir;
const ES9 = resolve(interop, 'es9plus-lpac-to-reference-smdp.jsonl');
const ES9_CANCEL = resolve(interop, 'es9plus-lpac-cancel-session.jsonl');
const ES10 = resolve(interop, 'es10-apdus-lpac-to-euicc.jsonl');
const skip = needs(INTEROP);

interface Exchange {
  fn: string;
  req: Record<string, string>;
  status: number;
  resp: Record<string, string>;
}

function exchanges(file: string): Exchange[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const e = JSON.parse(l) as { url: string; req: string; status: number; resp: string | null };
      return { fn: e.url.split('/').pop()!, req: JSON.parse(e.req), status: e.status, resp: e.resp ? JSON.parse(e.resp) : {} };
    });
}

const b64 = (s: string) => Buffer.from(s, 'base64');

/** r‖s verification with the SPKI of a DER certificate, independent of src/crypto. */
function verifies(certDer: Buffer, data: Buffer, sig: Buffer): boolean {
  const key = new X509Certificate(certDer).publicKey;
  return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig);
}

interface Asserts {
  ok(v: unknown, message: string): unknown;
  fail(message: string): unknown;
}

/** Cutting a message anywhere gives RspError/DerError, nothing else. */
function truncations(t: Asserts, name: string, buf: Buffer, fn: (b: Buffer) => unknown): void {
  const cuts = new Set([0, 1, 2, 3, 5, Math.floor(buf.length / 3), Math.floor(buf.length / 2), buf.length - 65, buf.length - 2, buf.length - 1]);
  for (const n of cuts) {
    if (n < 0 || n >= buf.length) continue;
    try {
      fn(buf.subarray(0, n));
      t.fail(`${name} cut at ${n} decoded`);
    } catch (err) {
      t.ok(err instanceof RspError || err instanceof DerError, `${name} cut at ${n}: ${(err as Error).message}`);
    }
  }
}

/** ES10 commands and answers, reassembled from the STORE DATA / GET RESPONSE APDUs, per card session. */
function es10Sessions(): Array<Array<{ command: Buffer; response: Buffer }>> {
  const sessions: Array<Array<{ command: Buffer; response: Buffer }>> = [];
  let cur: Array<{ command: Buffer; response: Buffer }> = [];
  let cmd: Buffer[] = [];
  let resp: Buffer[] = [];
  for (const line of readFileSync(ES10, 'utf8').split('\n').filter((l) => l.trim())) {
    const e = JSON.parse(line) as { func: string; c: string | null; r: { ecode: number; data?: string } };
    if (e.func === 'connect') cur = [];
    if (e.func === 'disconnect') sessions.push(cur);
    if (e.func !== 'transmit') continue;
    const c = Buffer.from(e.c!, 'hex');
    const r = Buffer.from(e.r.data!, 'hex');
    if (c[1] === 0xe2) {
      // STORE DATA 80 E2 P1 P2 Lc data: P1 bit 8 set on the last block.
      cmd.push(c.subarray(5, 5 + c[4]!));
      if ((c[2]! & 0x80) === 0) continue;
    }
    resp.push(r.subarray(0, r.length - 2));
    if (r[r.length - 2] === 0x61) continue; // more response data to fetch with GET RESPONSE
    cur.push({ command: Buffer.concat(cmd), response: Buffer.concat(resp) });
    cmd = [];
    resp = [];
  }
  return sessions;
}

t.test('lpac download through the reference SM-DP+', { skip }, async (t) => {
  const ex = exchanges(ES9);
  const byFn = (fn: string) => ex.filter((e) => e.fn === fn);
  const [init] = byFn('initiateAuthentication');
  const [auth] = byFn('authenticateClient');
  const [gbpp] = byFn('getBoundProfilePackage');
  const notes = byFn('handleNotification');
  if (!init || !auth || !gbpp) throw new Error('capture incomplete');
  const tidHex = init.resp.transactionId!;

  // initiateAuthentication
  const info1Bytes = b64(init.req.euiccInfo1!);
  const info1 = decodeEuiccInfo1(info1Bytes);
  t.equal(info1.svn.toString('hex'), '020202');
  t.equal(info1.ciPkIdsForSigning.length, 1);
  t.match(info1.ciPkIdsForSigning[0]!.toString('hex').toUpperCase(), /^682060D2/);
  t.same(encodeEuiccInfo1(info1), info1Bytes, 'euiccInfo1 re-encodes to the same bytes');

  const ss1Bytes = b64(init.resp.serverSigned1!);
  const ss1 = decodeServerSigned1(ss1Bytes);
  t.equal(ss1.transactionId.toString('hex').toUpperCase(), tidHex.toUpperCase(), 'serverSigned1.transactionId is the JSON transactionId');
  t.same(ss1.euiccChallenge, b64(init.req.euiccChallenge!));
  t.equal(ss1.serverAddress, init.req.smdpAddress);
  t.same(ss1.raw, ss1Bytes);
  t.same(encodeServerSigned1(ss1), ss1Bytes);
  const serverSignature1Do = b64(init.resp.serverSignature1!);
  const serverSignature1 = decodeSignatureDo(serverSignature1Do);
  const serverCert = b64(init.resp.serverCertificate!);
  t.ok(verifies(serverCert, ss1.raw, serverSignature1), 'serverSignature1 verifies with CERT.DPauth');
  const ciPkId = decode(b64(init.resp.euiccCiPKIdToBeUsed!));
  t.equal(ciPkId.tag, 0x04);
  t.same(ciPkId.value, info1.ciPkIdsForSigning[0]);

  // authenticateClient
  t.equal(auth.req.transactionId, tidHex);
  const asrBytes = b64(auth.req.authenticateServerResponse!);
  const asr = decodeAuthenticateServerResponse(asrBytes);
  if (!('ok' in asr)) throw new Error('expected authenticateResponseOk');
  const { euiccSigned1, euiccSignature1, euiccSignature1Do, euiccCertificate, eumCertificate } = asr.ok;
  t.same(euiccSigned1.transactionId, ss1.transactionId);
  t.same(euiccSigned1.serverChallenge, ss1.serverChallenge);
  t.equal(euiccSigned1.serverAddress, ss1.serverAddress);
  t.equal(euiccSigned1.ctxParams1.matchingId, 'TS48V1-A-UNIQUE');
  t.equal(euiccSigned1.ctxParams1.deviceInfo.tac.toString('hex'), '35290611', 'lpac sends a 4-byte TAC');
  t.same(euiccSigned1.ctxParams1.deviceInfo.deviceCapabilities, Buffer.from('a100', 'hex'));
  const info2 = euiccSigned1.euiccInfo2;
  t.equal(info2.svn.toString('hex'), '020202');
  t.same(info2.ciPkIdsForSigning, info1.ciPkIdsForSigning);
  t.ok(info2.rspCapability.includes(3), 'test profile support');
  t.equal(info2.sasAccreditationNumber, 'SOFTEUICC-TEST');
  t.equal(info2.ppVersion.toString('hex'), '000001');
  t.same(encodeCtxParams1(euiccSigned1.ctxParams1), euiccSigned1.ctxParams1.raw);
  t.same(encodeEuiccSigned1(euiccSigned1), euiccSigned1.raw, 'euiccSigned1 (with euiccInfo2 fields) re-encodes to the same bytes');
  t.equal(euiccSignature1Do.length, 67);
  t.same(euiccSignature1Do.subarray(3), euiccSignature1);
  t.ok(verifies(euiccCertificate, euiccSigned1.raw, euiccSignature1), 'euiccSignature1 verifies with CERT.EUICC');
  t.notOk(verifies(euiccCertificate, Buffer.concat([euiccSigned1.raw, Buffer.from([0])]), euiccSignature1), 'tampered data fails');
  t.ok(new X509Certificate(euiccCertificate).verify(new X509Certificate(eumCertificate).publicKey), 'CERT.EUICC is issued by the EUM');

  const metadataBytes = b64(auth.resp.profileMetadata!);
  const md = decodeStoreMetadataRequest(metadataBytes);
  t.equal(md.iccid.toString('hex'), '989444999999990920f3');
  t.equal(md.serviceProviderName, 'OsmocomSPN');
  t.equal(md.profileName, 'TS48V1-A-UNIQUE');
  t.equal(md.profileClass, 2);
  t.same(
    md.notificationConfigurationInfo,
    [1, 2, 3].map((op) => ({ operations: [op], address: 'testsmdpplus1.example.com' })),
  );
  t.same(encodeStoreMetadataRequest(md), metadataBytes, 'profileMetadata re-encodes to the same bytes');

  const sd2Bytes = b64(auth.resp.smdpSigned2!);
  const sd2 = decodeSmdpSigned2(sd2Bytes);
  t.same(sd2.transactionId, ss1.transactionId);
  t.equal(sd2.ccRequiredFlag, false);
  t.equal(sd2.bppEuiccOtpk, undefined);
  t.same(encodeSmdpSigned2(sd2), sd2Bytes);
  t.equal(sd2Bytes.subarray(-3).toString('hex'), '010100', 'ccRequiredFlag is a plain 01 BOOLEAN');
  const smdpSignature2Do = b64(auth.resp.smdpSignature2!);
  const smdpSignature2 = decodeSignatureDo(smdpSignature2Do);
  const smdpCert = b64(auth.resp.smdpCertificate!);
  t.ok(verifies(smdpCert, Buffer.concat([sd2.raw, euiccSignature1Do]), smdpSignature2), 'smdpSignature2 verifies over smdpSigned2 ‖ euiccSignature1 DO');
  t.notOk(verifies(smdpCert, Buffer.concat([sd2.raw, euiccSignature1]), smdpSignature2), '… and not without the 5F37 40 header');

  // getBoundProfilePackage
  const pdrBytes = b64(gbpp.req.prepareDownloadResponse!);
  const pdr = decodePrepareDownloadResponse(pdrBytes);
  if (!('ok' in pdr)) throw new Error('expected downloadResponseOk');
  const { euiccSigned2, euiccSignature2 } = pdr.ok;
  t.same(euiccSigned2.transactionId, ss1.transactionId);
  t.equal(euiccSigned2.euiccOtpk.length, 65);
  t.equal(euiccSigned2.hashCc, undefined);
  t.same(encodeEuiccSigned2(euiccSigned2), euiccSigned2.raw);
  t.ok(verifies(euiccCertificate, Buffer.concat([euiccSigned2.raw, smdpSignature2Do]), euiccSignature2), 'euiccSignature2 verifies over euiccSigned2 ‖ smdpSignature2 DO');

  const bppBytes = b64(gbpp.resp.boundProfilePackage!);
  const bpp = decodeBoundProfilePackage(bppBytes);
  const isc = bpp.initialiseSecureChannel;
  t.same(isc.transactionId, ss1.transactionId);
  t.same(encodeInitialiseSecureChannel(isc), isc.raw, 'BF23 re-encodes to the same bytes');
  const signInput = smdpSignInput(isc.transactionId, isc.hostId, isc.smdpOtpk, euiccSigned2.euiccOtpk);
  t.same(smdpSignVerifyInput(isc, euiccSigned2.euiccOtpk), signInput, 'the raw signed part equals the table in docs/protocol.md (What is signed)');
  t.ok(verifies(smdpCert, signInput, isc.smdpSign), 'smdpSign verifies with CERT.DPpb');
  t.equal(bpp.firstSequenceOf87.length, 1);
  t.equal(bpp.secondSequenceOf87.length, 1, 'the reference SM-DP+ sends ReplaceSessionKeys (A2)');
  t.ok(bpp.sequenceOf86.length > 1);
  // 88 segments are MAC-only: plaintext ‖ 8-byte MAC; the plaintext is the profileMetadata.
  const plain88 = Buffer.concat(bpp.sequenceOf88.map((s) => decode(s).value.subarray(0, -8)));
  t.same(plain88, metadataBytes, 'sequenceOf88 carries profileMetadata byte for byte');
  t.same(
    buildBoundProfilePackage({
      initialiseSecureChannel: isc.raw,
      firstSequenceOf87: bpp.firstSequenceOf87,
      sequenceOf88: bpp.sequenceOf88,
      secondSequenceOf87: bpp.secondSequenceOf87,
      sequenceOf86: bpp.sequenceOf86,
    }),
    bppBytes,
    'the package rebuilds to the same bytes',
  );
  const pieces = splitBppForLoading(bppBytes);
  t.same(Buffer.concat(pieces), bppBytes, 'loading pieces concatenate to the package');
  t.equal(pieces.length, 1 + 1 + 1 + bpp.sequenceOf88.length + 1 + 1 + bpp.sequenceOf86.length);

  // handleNotification
  t.equal(notes.length, 4);
  const pending = notes.map((n) => decodePendingNotification(b64(n.req.pendingNotification!)));
  const first = pending[0]!;
  if (!('pir' in first)) throw new Error('first notification should be the install result');
  const pir = first.pir;
  t.same(pir.data.transactionId, ss1.transactionId);
  t.equal(pir.data.notificationMetadata.operation, 0);
  t.equal(pir.data.notificationMetadata.notificationAddress, 'testsmdpplus1.example.com');
  t.same(pir.data.notificationMetadata.iccid, md.iccid);
  t.equal(pir.data.smdpOid, '2.999.10');
  if (!('success' in pir.data.finalResult)) throw new Error('expected successResult');
  t.equal(pir.data.finalResult.success.aid.toString('hex').toUpperCase(), 'A0000005591010FFFFFFFF8900001000');
  t.equal(pir.data.finalResult.success.simaResponse.toString('hex'), '3007a0053003800100');
  t.same(encodeProfileInstallationResultData(pir.data), pir.data.raw);
  t.ok(verifies(euiccCertificate, pir.data.raw, pir.signature), 'euiccSignPIR verifies over BF27');
  const ops: number[] = [];
  for (const p of pending.slice(1)) {
    if (!('other' in p)) throw new Error('expected OtherSignedNotification');
    const o = p.other;
    ops.push(o.tbsOtherNotification.operation);
    t.same(o.euiccCertificate, euiccCertificate);
    t.same(o.eumCertificate, eumCertificate);
    t.same(o.tbsOtherNotification.iccid, md.iccid);
    t.same(encodeNotificationMetadata(o.tbsOtherNotification), o.tbsOtherNotification.raw);
    t.ok(verifies(o.euiccCertificate, o.tbsOtherNotification.raw, o.signature), `notification ${o.tbsOtherNotification.seqNumber} verifies over BF2F`);
  }
  t.same(ops, [1, 2, 3], 'enable, disable, delete');

  for (const [name, buf, fn] of [
    ['euiccInfo1', info1Bytes, decodeEuiccInfo1],
    ['serverSigned1', ss1Bytes, decodeServerSigned1],
    ['authenticateServerResponse', asrBytes, decodeAuthenticateServerResponse],
    ['profileMetadata', metadataBytes, decodeStoreMetadataRequest],
    ['smdpSigned2', sd2Bytes, decodeSmdpSigned2],
    ['prepareDownloadResponse', pdrBytes, decodePrepareDownloadResponse],
    ['boundProfilePackage', bppBytes, decodeBoundProfilePackage],
    ['splitBppForLoading', bppBytes, splitBppForLoading],
    ['pendingNotification', b64(notes[1]!.req.pendingNotification!), decodePendingNotification],
  ] as const) {
    truncations(t, name, buf, fn as (b: Buffer) => unknown);
  }

  // The ES10 side of the same download.
  t.test('ES10 APDU log of the same session', async (t) => {
    const sessions = es10Sessions();
    const all = sessions.flat();
    const find = (tag: number) => all.find((x) => x.command.length > 2 && x.command.readUInt16BE(0) === tag);
    const euiccInfo1 = find(0xbf20)!;
    t.same(euiccInfo1.response, info1Bytes, 'GetEuiccInfo1 answer is the euiccInfo1 sent to the SM-DP+');

    const as = find(0xbf38)!;
    const asReq = decodeAuthenticateServerRequest(as.command);
    t.same(asReq.serverSigned1.raw, ss1Bytes, 'same session: serverSigned1 as sent by the SM-DP+');
    t.same(asReq.serverSignature1Do, serverSignature1Do);
    t.same(asReq.serverCertificate, serverCert);
    t.same(asReq.euiccCiPkIdToBeUsed, ciPkId.value);
    t.same(asReq.ctxParams1.raw, euiccSigned1.ctxParams1.raw);
    t.ok(verifies(asReq.serverCertificate, asReq.serverSigned1.raw, asReq.serverSignature1));
    t.same(as.response, asrBytes, 'AuthenticateServer answer is the authenticateServerResponse');

    const pd = find(0xbf21)!;
    const pdReq = decodePrepareDownloadRequest(pd.command);
    t.same(pdReq.smdpSigned2.raw, sd2Bytes);
    t.same(pdReq.smdpSignature2Do, smdpSignature2Do);
    t.same(pdReq.smdpCertificate, smdpCert);
    t.equal(pdReq.hashCc, undefined);
    t.same(pd.response, pdrBytes);

    const start = all.findIndex((x) => x.command.length > 2 && x.command.readUInt16BE(0) === 0xbf36);
    const load = all.slice(start, start + pieces.length);
    t.equal(load.length, pieces.length);
    t.same(
      load.map((x) => x.command.toString('hex')),
      pieces.map((p) => p.toString('hex')),
      'lpac loaded exactly the splitBppForLoading pieces',
    );
    t.same(load.slice(0, -1).map((x) => x.response.length), load.slice(0, -1).map(() => 0), 'intermediate pieces get no data');
    const pirAnswer = decodePendingNotification(load.at(-1)!.response);
    if (!('pir' in pirAnswer)) throw new Error('expected a PIR after the last 86');
    t.same(pirAnswer.pir.raw, b64(notes[0]!.req.pendingNotification!), 'the PIR sent to the SM-DP+ is the one the card returned');

    // RetrieveNotificationsList answers BF2B { A0 { PendingNotification… } }; ListNotification BF28 { A0 { BF2F… } }.
    const listed = all.filter((x) => x.command.readUInt16BE(0) === 0xbf2b).flatMap((x) => decode(x.response).get(0xa0).children());
    t.same(
      listed.map((x) => x.raw.toString('hex')),
      notes.map((n) => b64(n.req.pendingNotification!).toString('hex')),
      'retrieved notifications are the ones sent',
    );
    for (const l of all.filter((x) => x.command.readUInt16BE(0) === 0xbf28)) {
      for (const m of decode(l.response).get(0xa0).children()) {
        const meta = decodeNotificationMetadata(m.raw);
        t.ok(meta.operation >= 0 && meta.operation <= 3);
      }
    }
  });
});

t.test('lpac cancelSession after a refused download', { skip }, async (t) => {
  const ex = exchanges(ES9_CANCEL);
  const init = ex.find((e) => e.fn === 'initiateAuthentication')!;
  const auth = ex.find((e) => e.fn === 'authenticateClient')!;
  const cancel = ex.find((e) => e.fn === 'cancelSession')!;
  const ss1 = decodeServerSigned1(b64(init.resp.serverSigned1!));
  t.equal(ss1.transactionId.toString('hex').toUpperCase(), init.resp.transactionId!.toUpperCase());
  t.ok(verifies(b64(init.resp.serverCertificate!), ss1.raw, decodeSignatureDo(b64(init.resp.serverSignature1!))));
  const asr = decodeAuthenticateServerResponse(b64(auth.req.authenticateServerResponse!));
  if (!('ok' in asr)) throw new Error('expected authenticateResponseOk');
  t.ok(verifies(asr.ok.euiccCertificate, asr.ok.euiccSigned1.raw, asr.ok.euiccSignature1));

  const csrBytes = b64(cancel.req.cancelSessionResponse!);
  const csr = decodeCancelSessionResponse(csrBytes);
  if (!('ok' in csr)) throw new Error('expected cancelSessionResponseOk');
  t.equal(csr.ok.signed.transactionId.toString('hex').toUpperCase(), cancel.req.transactionId!.toUpperCase());
  t.equal(csr.ok.signed.smdpOid, '2.999.10');
  t.equal(csr.ok.signed.reason, 0, 'endUserRejection');
  t.same(encodeEuiccCancelSessionSigned(csr.ok.signed), csr.ok.signed.raw);
  t.ok(verifies(asr.ok.euiccCertificate, csr.ok.signed.raw, csr.ok.signature), 'euiccCancelSessionSignature verifies over the 30 TLV');
  t.ok(cancel.resp.header, 'the reference server refused it (a known defect of that server)');
  truncations(t, 'cancelSessionResponse', csrBytes, decodeCancelSessionResponse);
});
