/**
 * ES10b of the virtual eUICC up to the Bound Profile Package (GetEUICCChallenge, GetEUICCInfo,
 * SGP.22 §5.7.13 AuthenticateServer, §5.7.5 PrepareDownload, §5.7.14 CancelSession): the card's challenge, its EUICCInfo, the SM-DP+ certificates and signatures checked against the
 * CIs it trusts, the one-time key pair, and the signed answers.
 */
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import { generateOtKeyPair } from '../crypto/ecka.js';
import { checkIssued, parseCertificateCached, RSP_ROLE, type Certificate } from '../crypto/x509.js';
import { decode, tlv, type Tlv } from '../der/tlv.js';
import { encodeOidValue, integer, readUint } from '../der/types.js';
import { AUTHENTICATE_ERROR, decodeAuthenticateServerRequest, encodeAuthenticateServerResponse, encodeEuiccSigned1 } from '../rsp/authentication.js';
import { CANCEL_SESSION_ERROR as CANCEL_ERROR } from '../rsp/cancel.js';
import { decodePrepareDownloadRequest, DOWNLOAD_ERROR } from '../rsp/download.js';
import { encodeEuiccInfo1, encodeEuiccInfo2 } from '../rsp/euiccinfo.js';
import { hexU, type EuiccCore, type OtKey, type RspSession } from './card.js';
import { ES10 } from './es10.js';

/** UICCCapability bits advertised by default (USIM, ISIM, Milenage, TUAK, GBA, EAP, Java Card, multiple USIM/ISIM). */
const DEFAULT_UICC_CAPABILITY = [1, 2, 4, 6, 7, 10, 11, 13, 14, 16, 17];

function versionBytes(v: string, what: string): Buffer {
  const m = v.match(/^(\d+)\.(\d+)\.(\d+)$/);
  if (!m) throw new TypeError(`${what} must be major.minor.revision: ${v}`);
  return Buffer.from([Number(m[1]), Number(m[2]), Number(m[3])]);
}

/** CI SKIs the card trusts (ForVerification). */
export function ciPkIdsForVerification(card: EuiccCore): Buffer[] {
  return [...card.trusted.values()].map((c) => c.ski!);
}

/** CI SKIs under which the card holds an eUICC certificate (ForSigning). */
export function ciPkIdsForSigning(card: EuiccCore): Buffer[] {
  const out: Buffer[] = [];
  for (const c of card.creds) if (!out.some((x) => x.equals(c.eum.aki!))) out.push(c.eum.aki!);
  return out;
}

function svn(card: EuiccCore): Buffer {
  return versionBytes(card.opts.svn ?? '2.2.2', 'svn');
}

export function euiccInfo1(card: EuiccCore): Buffer {
  return encodeEuiccInfo1({ svn: svn(card), ciPkIdsForVerification: ciPkIdsForVerification(card), ciPkIdsForSigning: ciPkIdsForSigning(card) });
}

export function euiccInfo2(card: EuiccCore): Buffer {
  const apps = Math.min(255, card.state.profiles.length);
  return encodeEuiccInfo2({
    profileVersion: versionBytes(card.opts.profileVersion ?? '2.3.1', 'profileVersion'),
    svn: svn(card),
    euiccFirmwareVer: versionBytes(card.opts.firmwareVersion ?? '1.0.0', 'firmwareVersion'),
    // 81 installed applications, 82 free non-volatile memory, 83 free volatile memory
    extCardResource: Buffer.concat([tlv(0x81, Buffer.from([apps])), tlv(0x82, Buffer.from('000F4240', 'hex')), tlv(0x83, Buffer.from('1000', 'hex'))]),
    uiccCapability: DEFAULT_UICC_CAPABILITY,
    ts102241Version: Buffer.from([9, 2, 0]),
    globalPlatformVersion: Buffer.from([2, 3, 1]),
    rspCapability: [0, 3], // additionalProfile, testProfileSupport
    ciPkIdsForVerification: ciPkIdsForVerification(card),
    ciPkIdsForSigning: ciPkIdsForSigning(card),
    euiccCategory: 2,
    ppVersion: Buffer.from([0, 0, 1]),
    sasAccreditationNumber: card.opts.sasAccreditationNumber ?? 'MOCK-SMDP-SIM',
  });
}

// ------------------------------------------------------------------------------------------
// Session: challenge, AuthenticateServer, PrepareDownload, CancelSession

export function endSession(card: EuiccCore): void {
  card.session = undefined;
  card.load = undefined;
}

export function getEuiccChallenge(card: EuiccCore): Buffer {
  endSession(card);
  card.lastPir = undefined;
  const euiccChallenge = card.random(16);
  card.session = { euiccChallenge, stage: 'challenge' };
  return tlv(ES10.GetEuiccChallenge, tlv(0x80, euiccChallenge));
}

/** Checks a certificate issued by a trusted CI, with the role policy. */
function checkServerCert(card: EuiccCore, cert: Certificate, role: string): Certificate {
  const ci = cert.aki ? card.trusted.get(hexU(cert.aki)) : undefined;
  if (!ci) throw new Error(`certificate "${cert.subject}" is not issued by a trusted CI`);
  checkIssued(cert, ci, { role, at: card.opts.now ? card.opts.now() : cert.notBefore });
  return ci;
}

export function authenticateServer(card: EuiccCore, command: Buffer): Buffer {
  const session = card.session;
  let tid: Buffer | undefined;
  const fail = (code: number, why: string): Buffer => {
    card.lastError = `AuthenticateServer: ${why}`;
    endSession(card);
    return encodeAuthenticateServerResponse({ error: { ...(tid ? { transactionId: tid } : {}), code } });
  };
  let req: ReturnType<typeof decodeAuthenticateServerRequest>;
  try {
    req = decodeAuthenticateServerRequest(command);
  } catch (err) {
    try {
      const t = decode(command).children().find((c) => c.tag === 0x30)?.find(0x80);
      if (t && t.length >= 1 && t.length <= 16) tid = t.value;
    } catch {
      /* no transactionId to echo */
    }
    return fail(AUTHENTICATE_ERROR.undefinedError, `malformed request: ${(err as Error).message}`);
  }
  const s1 = req.serverSigned1;
  tid = s1.transactionId;
  if (!session || session.stage !== 'challenge') return fail(AUTHENTICATE_ERROR.noSessionContext, 'no euiccChallenge issued');
  // CERT.DPauth: parsed, on a supported curve, issued by a CI the card trusts, role dp-auth.
  let dpAuth: Certificate;
  try {
    dpAuth = parseCertificateCached(req.serverCertificate);
  } catch (err) {
    const why = (err as Error).message;
    return fail(/unsupported curve|not an EC key/.test(why) ? AUTHENTICATE_ERROR.unsupportedCurve : AUTHENTICATE_ERROR.invalidCertificate, `CERT.DPauth: ${why}`);
  }
  try {
    // CERT.DSauth of an SM-DS is accepted as well (ES11 uses the same AuthenticateServer, SGP.22 §5.7.13).
    checkServerCert(card, dpAuth, dpAuth.policies.includes(RSP_ROLE.dsAuth) ? RSP_ROLE.dsAuth : RSP_ROLE.dpAuth);
  } catch (err) {
    return fail(AUTHENTICATE_ERROR.invalidCertificate, `CERT.DPauth: ${(err as Error).message}`);
  }
  const smdpOid = dpAuth.sanRegisteredIds[0];
  if (!smdpOid) return fail(AUTHENTICATE_ERROR.invalidOid, 'CERT.DPauth carries no SM-DP+ OID');
  if (!verifyRaw(dpAuth.publicKey, s1.raw, req.serverSignature1)) return fail(AUTHENTICATE_ERROR.invalidSignature, 'serverSignature1 does not verify');
  if (!s1.euiccChallenge.equals(session.euiccChallenge)) return fail(AUTHENTICATE_ERROR.euiccChallengeMismatch, 'euiccChallenge differs');
  const creds = card.creds.find((c) => c.eum.aki!.equals(req.euiccCiPkIdToBeUsed));
  if (!creds) return fail(AUTHENTICATE_ERROR.ciPKUnknown, `no eUICC certificate under CI ${hexU(req.euiccCiPkIdToBeUsed)}`);

  const euiccSigned1 = encodeEuiccSigned1({
    transactionId: s1.transactionId,
    serverAddress: s1.serverAddress,
    serverChallenge: s1.serverChallenge,
    euiccInfo2: euiccInfo2(card),
    ctxParams1: req.ctxParams1.raw,
  });
  const euiccSignature1 = signRaw(creds.key, euiccSigned1);
  Object.assign(session, {
    stage: 'authenticated',
    transactionId: s1.transactionId,
    serverAddress: s1.serverAddress,
    serverChallenge: s1.serverChallenge,
    smdpOid,
    creds,
    euiccSignature1Do: tlv(0x5f37, euiccSignature1),
  } satisfies Partial<RspSession>);
  return encodeAuthenticateServerResponse({
    ok: { euiccSigned1, euiccSignature1, euiccCertificate: creds.cert.raw, eumCertificate: creds.eum.raw },
  });
}

export function prepareDownload(card: EuiccCore, command: Buffer): Buffer {
  const session = card.session;
  let tid: Buffer | undefined = session?.transactionId;
  const fail = (code: number, why: string): Buffer => {
    card.lastError = `PrepareDownload: ${why}`;
    endSession(card);
    return tlv(ES10.PrepareDownload, tlv(0xa1, tid && tlv(0x80, tid), integer(code)));
  };
  let req: ReturnType<typeof decodePrepareDownloadRequest>;
  try {
    req = decodePrepareDownloadRequest(command);
  } catch (err) {
    return fail(DOWNLOAD_ERROR.undefinedError, `malformed request: ${(err as Error).message}`);
  }
  tid = req.smdpSigned2.transactionId;
  if (!session || session.stage !== 'authenticated' || !session.creds || !session.euiccSignature1Do) {
    return fail(DOWNLOAD_ERROR.noSessionContext, 'no authenticated session');
  }
  let dpPb: Certificate;
  try {
    dpPb = parseCertificateCached(req.smdpCertificate);
    checkServerCert(card, dpPb, RSP_ROLE.dpPb);
  } catch (err) {
    return fail(DOWNLOAD_ERROR.invalidCertificate, `CERT.DPpb: ${(err as Error).message}`);
  }
  if (!dpPb.sanRegisteredIds.includes(session.smdpOid!)) {
    return fail(DOWNLOAD_ERROR.invalidCertificate, `CERT.DPpb does not carry the SM-DP+ OID ${session.smdpOid} of CERT.DPauth`);
  }
  const signed = Buffer.concat([req.smdpSigned2.raw, session.euiccSignature1Do]);
  if (!verifyRaw(dpPb.publicKey, signed, req.smdpSignature2)) return fail(DOWNLOAD_ERROR.invalidSignature, 'smdpSignature2 does not verify');
  if (!req.smdpSigned2.transactionId.equals(session.transactionId!)) {
    return fail(DOWNLOAD_ERROR.invalidTransactionId, 'transactionId differs from the session');
  }
  let otKey: OtKey;
  const kept = card.retainedOtKey;
  if (req.smdpSigned2.bppEuiccOtpk && kept && kept.curve === dpPb.curve && kept.publicPoint.equals(req.smdpSigned2.bppEuiccOtpk)) {
    otKey = kept;
  } else {
    const k = generateOtKeyPair(dpPb.curve);
    otKey = { curve: dpPb.curve, pair: k, publicPoint: k.publicPoint };
  }
  card.retainedOtKey = otKey;
  const euiccSigned2 = tlv(0x30, tlv(0x80, session.transactionId!), tlv(0x5f49, otKey.publicPoint), req.hashCc && tlv(0x04, req.hashCc));
  const euiccSignature2 = signRaw(session.creds.key, Buffer.concat([euiccSigned2, req.smdpSignature2Do]));
  Object.assign(session, { stage: 'prepared', dpPb, otKey } satisfies Partial<RspSession>);
  return tlv(ES10.PrepareDownload, tlv(0xa0, euiccSigned2, tlv(0x5f37, euiccSignature2)));
}

export function cancelSession(card: EuiccCore, cmd: Tlv): Buffer {
  const tag = ES10.CancelSession;
  const err = (code: number, why: string) => {
    card.lastError = `CancelSession: ${why}`;
    return tlv(tag, integer(code, 0x81));
  };
  let tid: Buffer;
  let reason: number;
  try {
    const t = cmd.find(0x80);
    const r = cmd.find(0x81);
    if (!t || !r || t.length < 1 || t.length > 16) return err(CANCEL_ERROR.undefinedError, 'malformed request');
    tid = t.value;
    reason = readUint(r);
  } catch (e) {
    return err(CANCEL_ERROR.undefinedError, `malformed request: ${(e as Error).message}`);
  }
  const s = card.session;
  if (!s || s.stage === 'challenge' || !s.transactionId?.equals(tid) || !s.creds || !s.smdpOid) {
    return err(CANCEL_ERROR.invalidTransactionId, 'no session with this transactionId');
  }
  const signed = tlv(0x30, tlv(0x80, tid), tlv(0x81, encodeOidValue(s.smdpOid)), integer(reason, 0x82));
  const sig = signRaw(s.creds.key, signed);
  endSession(card);
  card.retainedOtKey = undefined;
  return tlv(tag, tlv(0xa0, signed, tlv(0x5f37, sig)));
}