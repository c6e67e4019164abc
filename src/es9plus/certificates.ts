/**
 * Verification of the eUICC's certificate chain (CI → EUM → eUICC), SGP.22 §5.6.3 and
 * docs/protocol.md#who-verifies-what.
 * Verified certificates are cached by their exact bytes (derived data, safe to hold in any
 * instance); validity dates are checked on every use.
 */
import { Certificate, CertificateError, checkIssued, parseCertificateCached, RSP_ROLE } from '../crypto/x509.js';
import { FunctionFailed, SC, type StatusCode } from '../errors.js';
import type { ServerPki } from '../pki/load.js';

export interface VerifiedEuicc {
  eid: string;
  eum: Certificate;
  euicc: Certificate;
}


/** The issuer each (cached, parsed) certificate was verified against. */
const verifiedBy = new WeakMap<Certificate, Certificate>();

function parse(der: Buffer, invalid: StatusCode, what: string): Certificate {
  try {
    return parseCertificateCached(der);
  } catch (err) {
    throw new FunctionFailed(invalid, `${what} certificate malformed: ${(err as Error).message}`);
  }
}

function checkValidity(cert: Certificate, at: Date, expired: StatusCode, what: string) {
  if (at < cert.notBefore || at > cert.notAfter) throw new FunctionFailed(expired, `${what} certificate outside its validity period`);
}

/** Verify cert is issued by issuer with the given role, otherwise invalid (6.1) or expired (6.3). */
function verifyIssued(cert: Certificate, issuer: Certificate, role: string, at: Date, invalid: StatusCode, expired: StatusCode, what: string) {
  if (verifiedBy.get(cert) !== issuer) {
    try {
      checkIssued(cert, issuer, { at, role });
    } catch (err) {
      if (err instanceof CertificateError && (err.code === 'expired' || err.code === 'notYetValid')) {
        throw new FunctionFailed(expired, `${what} certificate outside its validity period`);
      }
      throw new FunctionFailed(invalid, `${what} certificate: ${(err as Error).message}`);
    }
    verifiedBy.set(cert, issuer);
  }
  checkValidity(cert, at, expired, what);
}

/** The CI certificate whose SKI the EUM certificate names, otherwise 8.11.1/3.9. */
export function ciForEum(pki: ServerPki, eum: Certificate, requiredCiSkiHex?: string): Certificate {
  const aki = eum.aki?.toString('hex').toUpperCase();
  check(aki !== undefined && (requiredCiSkiHex === undefined || aki === requiredCiSkiHex), 'EUM certificate not issued by the CI selected for this session');
  const ci = pki.cis.find((c) => c.ski?.toString('hex').toUpperCase() === aki);
  check(ci !== undefined, 'EUM certificate issued by an unknown CI');
  return ci!;
}

function check(cond: boolean, message: string) {
  if (!cond) throw new FunctionFailed(SC.ciPkUnknown, message);
}

/** EID = subject serialNumber of the eUICC certificate, 32 digits, within the EUM's permitted EINs. */
export function checkEid(euicc: Certificate, eum: Certificate): string {
  const eid = euicc.subjectSerialNumber;
  if (!eid || !/^\d{32}$/.test(eid)) throw new FunctionFailed(SC.euiccCertificateInvalid, 'eUICC certificate has no 32-digit EID');
  if (eum.permittedEins.length && !eum.permittedEins.some((p) => eid.startsWith(p))) {
    throw new FunctionFailed(SC.euiccCertificateInvalid, `EID ${eid} outside the EUM's permitted EINs`);
  }
  return eid;
}

export function verifyEuiccChain(
  pki: ServerPki,
  eumDer: Buffer,
  euiccDer: Buffer,
  opts: { ciSkiHex?: string; at?: Date } = {},
): VerifiedEuicc {
  const at = opts.at ?? new Date();
  const eum = parse(eumDer, SC.eumCertificateInvalid, 'EUM');
  const ci = ciForEum(pki, eum, opts.ciSkiHex);
  verifyIssued(eum, ci, RSP_ROLE.eum, at, SC.eumCertificateInvalid, SC.eumCertificateExpired, 'EUM');
  const euicc = parse(euiccDer, SC.euiccCertificateInvalid, 'eUICC');
  verifyIssued(euicc, eum, RSP_ROLE.euicc, at, SC.euiccCertificateInvalid, SC.euiccCertificateExpired, 'eUICC');
  return { eid: checkEid(euicc, eum), eum, euicc };
}

/** The eUICC certificate cached in a session, parsed once per process. */
export const sessionEuiccCertificate = parseCertificateCached;

/** The EID an eUICC certificate states (its subject serialNumber), unverified; undefined when it has none. */
export function certificateEid(der: Buffer): string | undefined {
  try {
    const sn = parseCertificateCached(der).subjectSerialNumber;
    return sn && /^\d{32}$/.test(sn) ? sn : undefined;
  } catch {
    return undefined;
  }
}
