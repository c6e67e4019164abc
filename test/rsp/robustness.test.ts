/**
 * Every src/rsp decoder, fed truncated or corrupted input, either decodes or throws RspError /
 * DerError: never a TypeError, RangeError or anything else the server could not map.
 */
import t from 'tap';
import { createECDH, randomBytes } from 'node:crypto';
import { DerError, tlv } from '../../src/der/tlv.js';
import { bitStringBytes, integer, oid, seq, utf8 } from '../../src/der/types.js';
import { RspError } from '../../src/rsp/errors.js';
import { decodeEuiccInfo1, decodeEuiccInfo2, encodeEuiccInfo1, encodeEuiccInfo2 } from '../../src/rsp/euiccinfo.js';
import {
  decodeAuthenticateServerRequest,
  decodeAuthenticateServerResponse,
  decodeCtxParams1,
  decodeServerSigned1,
  encodeAuthenticateServerRequest,
  encodeAuthenticateServerResponse,
  encodeCtxParams1,
  encodeServerSigned1,
} from '../../src/rsp/authentication.js';
import {
  decodePrepareDownloadRequest,
  decodePrepareDownloadResponse,
  decodeSmdpSigned2,
  decodeStoreMetadataRequest,
  encodePrepareDownloadRequest,
  encodePrepareDownloadResponse,
  encodeSmdpSigned2,
  encodeStoreMetadataRequest,
} from '../../src/rsp/download.js';
import { buildBoundProfilePackage, decodeBoundProfilePackage, encodeInitialiseSecureChannel, splitBppForLoading } from '../../src/rsp/bpp.js';
import { decodePendingNotification, encodePendingNotification } from '../../src/rsp/notification.js';
import { decodeCancelSessionRequest, decodeCancelSessionResponse, encodeCancelSessionRequest, encodeCancelSessionResponse } from '../../src/rsp/cancel.js';

const cert = () => seq(seq(integer(randomBytes(8)), seq(utf8('x'))), seq(oid('1.2.840.10045.4.3.2')), bitStringBytes(randomBytes(70)));
const tid = randomBytes(16);
const ski = randomBytes(20);
const otpk = () => createECDH('prime256v1').generateKeys() as Buffer;
const info2 = {
  profileVersion: Buffer.from('020301', 'hex'),
  svn: Buffer.from('020202', 'hex'),
  euiccFirmwareVer: Buffer.from('010000', 'hex'),
  extCardResource: Buffer.from('810100', 'hex'),
  uiccCapability: [1, 2, 17],
  rspCapability: [0, 3],
  ciPkIdsForVerification: [ski],
  ciPkIdsForSigning: [ski],
  euiccCategory: 2,
  ppVersion: Buffer.from('000001', 'hex'),
  sasAccreditationNumber: 'SAS',
  certificationDataObject: { platformLabel: 'p', discoveryBaseUrl: 'https://d' },
};
const ctx = { matchingId: 'ABC', deviceInfo: { tac: Buffer.from('35290611', 'hex'), deviceCapabilities: Buffer.from('a100', 'hex'), imei: randomBytes(8) } };
const meta = { seqNumber: 1, operation: 0, notificationAddress: 'a.example', iccid: randomBytes(10) };

const samples: Array<[string, Buffer, (b: Buffer) => unknown]> = [
  ['euiccInfo1', encodeEuiccInfo1({ svn: Buffer.from('020200', 'hex'), ciPkIdsForVerification: [ski], ciPkIdsForSigning: [ski] }), decodeEuiccInfo1],
  ['euiccInfo2', encodeEuiccInfo2(info2), decodeEuiccInfo2],
  ['ctxParams1', encodeCtxParams1(ctx), decodeCtxParams1],
  ['serverSigned1', encodeServerSigned1({ transactionId: tid, euiccChallenge: randomBytes(16), serverAddress: 'a', serverChallenge: randomBytes(16) }), decodeServerSigned1],
  [
    'authenticateServerRequest',
    encodeAuthenticateServerRequest({
      serverSigned1: { transactionId: tid, euiccChallenge: randomBytes(16), serverAddress: 'a', serverChallenge: randomBytes(16) },
      serverSignature1: randomBytes(64),
      euiccCiPkIdToBeUsed: ski,
      serverCertificate: cert(),
      ctxParams1: ctx,
    }),
    decodeAuthenticateServerRequest,
  ],
  [
    'authenticateServerResponse',
    encodeAuthenticateServerResponse({
      ok: {
        euiccSigned1: { transactionId: tid, serverAddress: 'a', serverChallenge: randomBytes(16), euiccInfo2: info2, ctxParams1: ctx },
        euiccSignature1: randomBytes(64),
        euiccCertificate: cert(),
        eumCertificate: cert(),
      },
    }),
    decodeAuthenticateServerResponse,
  ],
  [
    'storeMetadataRequest',
    encodeStoreMetadataRequest({
      iccid: randomBytes(10),
      serviceProviderName: 's',
      profileName: 'p',
      iconType: 1,
      icon: randomBytes(20),
      profileClass: 1,
      notificationConfigurationInfo: [{ operations: [0, 3], address: 'x' }],
      profileOwner: { mccMnc: randomBytes(3), gid1: randomBytes(2) },
      profilePolicyRules: [1],
    }),
    decodeStoreMetadataRequest,
  ],
  ['smdpSigned2', encodeSmdpSigned2({ transactionId: tid, ccRequiredFlag: true, bppEuiccOtpk: otpk() }), decodeSmdpSigned2],
  [
    'prepareDownloadRequest',
    encodePrepareDownloadRequest({ smdpSigned2: { transactionId: tid, ccRequiredFlag: true }, smdpSignature2: randomBytes(64), hashCc: randomBytes(32), smdpCertificate: cert() }),
    decodePrepareDownloadRequest,
  ],
  ['prepareDownloadResponse', encodePrepareDownloadResponse({ ok: { euiccSigned2: { transactionId: tid, euiccOtpk: otpk(), hashCc: randomBytes(32) }, euiccSignature2: randomBytes(64) } }), decodePrepareDownloadResponse],
  [
    'boundProfilePackage',
    buildBoundProfilePackage({
      initialiseSecureChannel: encodeInitialiseSecureChannel({ transactionId: tid, hostId: randomBytes(8), smdpOtpk: otpk(), smdpSign: randomBytes(64) }),
      firstSequenceOf87: [tlv(0x87, randomBytes(24))],
      sequenceOf88: [tlv(0x88, randomBytes(50))],
      secondSequenceOf87: [tlv(0x87, randomBytes(72))],
      sequenceOf86: [tlv(0x86, randomBytes(200)), tlv(0x86, randomBytes(30))],
    }),
    decodeBoundProfilePackage,
  ],
  ['pir', encodePendingNotification({ pir: { data: { transactionId: tid, notificationMetadata: meta, smdpOid: '2.999.10', finalResult: { success: { aid: randomBytes(16), simaResponse: randomBytes(9) } } }, signature: randomBytes(64) } }), decodePendingNotification],
  ['other', encodePendingNotification({ other: { tbsOtherNotification: meta, signature: randomBytes(64), euiccCertificate: cert(), eumCertificate: cert() } }), decodePendingNotification],
  ['cancelSessionRequest', encodeCancelSessionRequest({ transactionId: tid, reason: 1 }), decodeCancelSessionRequest],
  ['cancelSessionResponse', encodeCancelSessionResponse({ ok: { signed: { transactionId: tid, smdpOid: '2.999.10', reason: 1 }, signature: randomBytes(64) } }), decodeCancelSessionResponse],
];
samples.push(['splitBppForLoading', samples.find((s) => s[0] === 'boundProfilePackage')![1], splitBppForLoading]);

const allowed = (err: unknown) => err instanceof RspError || err instanceof DerError;

t.test('samples decode', async (t) => {
  for (const [name, buf, fn] of samples) t.doesNotThrow(() => fn(buf), name);
});

t.test('truncation anywhere throws RspError/DerError', async (t) => {
  for (const [name, buf, fn] of samples) {
    let bad = 0;
    for (let n = 0; n < buf.length; n++) {
      try {
        fn(buf.subarray(0, n));
        bad++;
        t.fail(`${name} cut at ${n} decoded`);
      } catch (err) {
        if (!allowed(err)) {
          bad++;
          t.fail(`${name} cut at ${n}: ${String(err)}`);
        }
      }
    }
    t.equal(bad, 0, `${name}: all ${buf.length} cuts rejected with RspError/DerError`);
  }
});

t.test('corrupted bytes never escape as foreign errors', async (t) => {
  // deterministic xorshift so a failure is reproducible
  let s = 0x2545f491;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
  for (const [name, buf, fn] of samples) {
    let foreign = 0;
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(buf);
      const flips = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < flips; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try {
        fn(b);
      } catch (err) {
        if (!allowed(err)) {
          foreign++;
          t.fail(`${name} mutation ${i}: ${String(err)} (${b.toString('hex')})`);
        }
      }
    }
    t.equal(foreign, 0, `${name}: 400 mutations`);
  }
});
