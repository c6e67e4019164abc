import t from 'tap';
import { generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { decode, tlv } from '../../src/der/tlv.js';
import { bitStringBytes, integer, oid, seq, utf8 } from '../../src/der/types.js';
import { decodeSignatureDo, encodeSignatureDo } from '../../src/rsp/data-objects.js';
import { RspError } from '../../src/rsp/errors.js';
import { encodeEuiccInfo2, type EuiccInfo2 } from '../../src/rsp/euiccinfo.js';
import {
  AUTHENTICATE_ERROR,
  decodeAuthenticateServerRequest,
  decodeAuthenticateServerResponse,
  decodeCtxParams1,
  decodeEuiccSigned1,
  decodeServerSigned1,
  EMPTY_DEVICE_CAPABILITIES,
  encodeAuthenticateServerRequest,
  encodeAuthenticateServerResponse,
  encodeCtxParams1,
  encodeEuiccSigned1,
  encodeServerSigned1,
  type CtxParams1Input,
} from '../../src/rsp/authentication.js';

const key = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const signRaw = (k: KeyObject, d: Buffer) => sign('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' });
const verifyRaw = (k: KeyObject, d: Buffer, s: Buffer) => verify('sha256', d, { key: k, dsaEncoding: 'ieee-p1363' }, s);
/** A certificate-shaped SEQUENCE (the codecs treat certificates as opaque DER). */
const fakeCert = (cn: string) =>
  seq(seq(tlv(0xa0, integer(2)), integer(randomBytes(8)), seq(oid('1.2.840.10045.4.3.2')), seq(utf8(cn))), seq(oid('1.2.840.10045.4.3.2')), bitStringBytes(randomBytes(70)));

const SKI = Buffer.from('F54172BDF98A95D65CBEB88A38A1C11D800A85C3', 'hex');
const tid = Buffer.from('1B2412CD9CCF40F6AC99194B16DC21AE', 'hex');
const serverSigned1 = {
  transactionId: tid,
  euiccChallenge: randomBytes(16),
  serverAddress: 'smdp.example.com:8443',
  serverChallenge: randomBytes(16),
};
const ctx: CtxParams1Input = {
  matchingId: 'K3T9Q-2M8XA',
  deviceInfo: { tac: Buffer.from('35290611', 'hex'), deviceCapabilities: tlv(0xa1, tlv(0x80, Buffer.from('020000', 'hex'))), imei: Buffer.from('3529061112345678', 'hex') },
};
const info2: Omit<EuiccInfo2, 'raw'> = {
  profileVersion: Buffer.from('020301', 'hex'),
  svn: Buffer.from('020202', 'hex'),
  euiccFirmwareVer: Buffer.from('010000', 'hex'),
  extCardResource: Buffer.from('8101008204000f424083021000', 'hex'),
  uiccCapability: [1, 2, 4],
  rspCapability: [0, 3],
  ciPkIdsForVerification: [SKI],
  ciPkIdsForSigning: [SKI],
  ppVersion: Buffer.from('000001', 'hex'),
  sasAccreditationNumber: 'TEST-SAS',
};

t.test('ServerSigned1 layout and round trip', async (t) => {
  const enc = encodeServerSigned1(serverSigned1);
  t.equal(enc[0], 0x30);
  t.same(decode(enc).children().map((c) => c.tag), [0x80, 0x81, 0x83, 0x84]);
  const d = decodeServerSigned1(enc);
  t.same(d, { raw: enc, ...serverSigned1 });
});

t.test('ServerSigned1 length rules', async (t) => {
  t.throws(() => encodeServerSigned1({ ...serverSigned1, euiccChallenge: randomBytes(15) }), { code: 'malformed', message: /euiccChallenge/ });
  t.throws(() => encodeServerSigned1({ ...serverSigned1, transactionId: randomBytes(17) }), { code: 'malformed', message: /transactionId/ });
  const build = (tidv: Buffer, ch: Buffer) => seq(tlv(0x80, tidv), tlv(0x81, ch), utf8('a.example', 0x83), tlv(0x84, randomBytes(16)));
  t.throws(() => decodeServerSigned1(build(Buffer.alloc(0), randomBytes(16))), { code: 'malformed', message: /transactionId/ });
  t.throws(() => decodeServerSigned1(build(randomBytes(17), randomBytes(16))), { code: 'malformed', message: /transactionId/ });
  t.throws(() => decodeServerSigned1(build(randomBytes(1), randomBytes(17))), { code: 'malformed', message: /euiccChallenge/ });
  t.equal(decodeServerSigned1(build(randomBytes(1), randomBytes(16))).transactionId.length, 1);
  t.throws(() => decodeServerSigned1(seq(tlv(0x80, tid), tlv(0x81, randomBytes(16)), tlv(0x84, randomBytes(16)))), { message: /serverAddress/ });
});

t.test('CtxParams1 round trip, with and without optional parts', async (t) => {
  const enc = encodeCtxParams1(ctx);
  t.equal(enc[0], 0xa0);
  const d = decodeCtxParams1(enc);
  t.same(d, { raw: enc, ...ctx });
  const bare: CtxParams1Input = { deviceInfo: { tac: Buffer.from('35290611', 'hex'), deviceCapabilities: EMPTY_DEVICE_CAPABILITIES } };
  const e2 = encodeCtxParams1(bare);
  t.equal(e2.toString('hex'), 'a00aa108800435290611a100', 'as lpac sends it');
  t.strictSame(decodeCtxParams1(e2), { raw: e2, ...bare });
  t.throws(() => encodeCtxParams1({ deviceInfo: { tac: bare.deviceInfo.tac, deviceCapabilities: Buffer.from('a000ff', 'hex') } }), RspError);
  t.throws(() => decodeCtxParams1(tlv(0xa1, tlv(0x80, Buffer.from('x')))), { code: 'unsupported' });
  t.throws(() => decodeCtxParams1(tlv(0xa0, utf8('x', 0x80))), { code: 'malformed', message: /deviceInfo/ });
});

t.test('AuthenticateServerRequest round trip; signature over the raw serverSigned1', async (t) => {
  const dpAuth = key();
  const ss1 = encodeServerSigned1(serverSigned1);
  const cert = fakeCert('DPauth');
  const enc = encodeAuthenticateServerRequest({
    serverSigned1: ss1,
    serverSignature1: signRaw(dpAuth.privateKey, ss1),
    euiccCiPkIdToBeUsed: SKI,
    serverCertificate: cert,
    ctxParams1: ctx,
  });
  t.equal(enc.readUInt16BE(0), 0xbf38);
  const d = decodeAuthenticateServerRequest(enc);
  t.same(d.raw, enc);
  t.same(d.serverSigned1, { raw: ss1, ...serverSigned1 });
  t.same(d.serverCertificate, cert);
  t.same(d.euiccCiPkIdToBeUsed, SKI);
  t.same(d.ctxParams1, { raw: encodeCtxParams1(ctx), ...ctx });
  t.same(d.serverSignature1Do, encodeSignatureDo(d.serverSignature1));
  t.ok(verifyRaw(dpAuth.publicKey, d.serverSigned1.raw, d.serverSignature1));
  // Re-encoding from fields gives the same bytes.
  t.same(encodeAuthenticateServerRequest({ ...d, serverSigned1: d.serverSigned1, ctxParams1: d.ctxParams1 }), enc);
});

t.test('signed parts given as bytes are used verbatim (an unknown extension survives)', async (t) => {
  const dpAuth = key();
  const ss1 = seq(...decode(encodeServerSigned1(serverSigned1)).children().map((c) => c.raw), tlv(0x9f7f, Buffer.from('ext')));
  const enc = encodeAuthenticateServerRequest({
    serverSigned1: ss1,
    serverSignature1: signRaw(dpAuth.privateKey, ss1),
    euiccCiPkIdToBeUsed: SKI,
    serverCertificate: fakeCert('DPauth'),
    ctxParams1: encodeCtxParams1(ctx),
  });
  const d = decodeAuthenticateServerRequest(enc);
  t.same(d.serverSigned1.raw, ss1);
  t.same(d.serverSigned1.serverChallenge, serverSigned1.serverChallenge);
  t.ok(verifyRaw(dpAuth.publicKey, d.serverSigned1.raw, d.serverSignature1));
  t.notOk(verifyRaw(dpAuth.publicKey, encodeServerSigned1(d.serverSigned1), d.serverSignature1), 're-encoding would lose the extension');
});

t.test('EuiccSigned1 and AuthenticateServerResponse ok round trip', async (t) => {
  const euicc = key();
  const signed = encodeEuiccSigned1({
    transactionId: tid,
    serverAddress: serverSigned1.serverAddress,
    serverChallenge: serverSigned1.serverChallenge,
    euiccInfo2: info2,
    ctxParams1: ctx,
  });
  const ds = decodeEuiccSigned1(signed);
  t.same(ds.euiccInfo2.raw, encodeEuiccInfo2(info2));
  t.same(ds.ctxParams1.matchingId, ctx.matchingId);
  t.same(decode(signed).children().map((c) => c.tag), [0x80, 0x83, 0x84, 0xbf22, 0xa0]);
  const euiccCert = fakeCert('eUICC');
  const eumCert = fakeCert('EUM');
  const sig = signRaw(euicc.privateKey, signed);
  const enc = encodeAuthenticateServerResponse({ ok: { euiccSigned1: signed, euiccSignature1: sig, euiccCertificate: euiccCert, eumCertificate: eumCert } });
  t.equal(enc.readUInt16BE(0), 0xbf38);
  const d = decodeAuthenticateServerResponse(enc);
  if (!('ok' in d)) throw new Error('expected ok');
  t.same(d.ok.raw, enc);
  t.same(d.ok.euiccSigned1.raw, signed);
  t.same(d.ok.euiccSigned1.transactionId, tid);
  t.same(d.ok.euiccSigned1.serverChallenge, serverSigned1.serverChallenge);
  t.same(d.ok.euiccSigned1.euiccInfo2.rspCapability, [0, 3]);
  t.same(d.ok.euiccSignature1, sig);
  t.same(d.ok.euiccSignature1Do, Buffer.concat([Buffer.from('5f3740', 'hex'), sig]));
  t.same(d.ok.euiccCertificate, euiccCert);
  t.same(d.ok.eumCertificate, eumCert);
  t.ok(verifyRaw(euicc.publicKey, d.ok.euiccSigned1.raw, d.ok.euiccSignature1));
  // The same message built from fields.
  const enc2 = encodeAuthenticateServerResponse({ ok: { euiccSigned1: d.ok.euiccSigned1, euiccSignature1: sig, euiccCertificate: euiccCert, eumCertificate: eumCert } });
  t.same(enc2, enc);
});

t.test('AuthenticateServerResponse error form', async (t) => {
  const enc = encodeAuthenticateServerResponse({ error: { transactionId: tid, code: AUTHENTICATE_ERROR.ciPKUnknown } });
  t.equal(enc.toString('hex'), `bf3817a1158010${tid.toString('hex')}020107`);
  t.same(decodeAuthenticateServerResponse(enc), { error: { raw: enc, transactionId: tid, code: 7 } });
  const noTid = encodeAuthenticateServerResponse({ error: { code: AUTHENTICATE_ERROR.undefinedError } });
  t.strictSame(decodeAuthenticateServerResponse(noTid), { error: { raw: noTid, code: 127 } });
});

t.test('AuthenticateServerResponse strictness', async (t) => {
  const signed = encodeEuiccSigned1({ transactionId: tid, serverAddress: 'a', serverChallenge: randomBytes(16), euiccInfo2: info2, ctxParams1: ctx });
  const c1 = fakeCert('a');
  const c2 = fakeCert('b');
  t.throws(() => decodeAuthenticateServerResponse(tlv(0xbf38, tlv(0xa0, signed, tlv(0x5f37, randomBytes(63)), c1, c2))), {
    code: 'malformed',
    message: /euiccSignature1.*64/,
  });
  t.throws(() => decodeAuthenticateServerResponse(tlv(0xbf38, tlv(0xa0, signed, tlv(0x5f37, randomBytes(64)), c1))), { code: 'malformed', message: /eumCertificate/ });
  t.throws(() => decodeAuthenticateServerResponse(tlv(0xbf38, tlv(0xa0, signed, c1, c2))), { code: 'malformed', message: /euiccSignature1/ });
  t.throws(() => decodeAuthenticateServerResponse(tlv(0xbf38, tlv(0xa2, integer(1)))), { code: 'malformed', message: /A0.*A1/ });
  t.throws(() => decodeAuthenticateServerResponse(tlv(0xbf38, tlv(0xa1, tlv(0x80, tid)))), { code: 'malformed', message: /authenticateErrorCode/ });
  t.throws(() => encodeAuthenticateServerResponse({ ok: { euiccSigned1: signed, euiccSignature1: randomBytes(70), euiccCertificate: c1, eumCertificate: c2 } }), RspError);
  t.throws(() => encodeAuthenticateServerResponse({ ok: { euiccSigned1: signed, euiccSignature1: randomBytes(64), euiccCertificate: Buffer.from('0400', 'hex'), eumCertificate: c2 } }), RspError);
  // Unknown extra elements are skipped, and stay inside the signed raw bytes.
  const signedExt = seq(...decode(signed).children().map((c) => c.raw), tlv(0x9f70, Buffer.from([1])));
  const withExt = tlv(0xbf38, tlv(0xa0, signedExt, tlv(0x5f37, randomBytes(64)), c1, c2, tlv(0x9f71, Buffer.alloc(0))), tlv(0x9f72, Buffer.alloc(0)));
  const d = decodeAuthenticateServerResponse(withExt);
  if (!('ok' in d)) throw new Error('expected ok');
  t.same(d.ok.euiccSigned1.raw, signedExt);
});

t.test('signature DO helpers', async (t) => {
  const sig = randomBytes(64);
  const d = encodeSignatureDo(sig);
  t.equal(d.subarray(0, 3).toString('hex'), '5f3740');
  t.same(decodeSignatureDo(d), sig);
  t.throws(() => decodeSignatureDo(tlv(0x5f37, randomBytes(65))), { code: 'malformed' });
  t.throws(() => decodeSignatureDo(tlv(0x5f38, randomBytes(64))), { code: 'malformed' });
  t.throws(() => encodeSignatureDo(randomBytes(72)), RspError);
});
