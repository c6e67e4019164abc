/**
 * The GSMA SGP.26 test PKI folder layout (see ../shared/sgp26): `CERT_*` DER certificates and `SK_*`
 * PEM private keys, `NIST` = P-256, `BRP` = brainpoolP256r1. Beyond what SGP.26 publishes, the
 * generator also writes the CI and EUM private keys (to issue more certificates later), an EUM for
 * brainpool and a sample eUICC for each curve, all under the same naming scheme.
 */
import { CURVES, type CurveName } from '../crypto/curves.js';

export const CURVE_NAMES: readonly CurveName[] = ['P-256', 'brainpoolP256r1'];

/** Folder and base name (without CERT_/SK_ prefix and curve tag) of each credential. */
const ENTRIES = {
  ci: ['CertificateIssuer', 'CI_ECDSA'],
  dpAuth: ['DPauth', 'S_SM_DPauth_ECDSA'],
  dpPb: ['DPpb', 'S_SM_DPpb_ECDSA'],
  dpTls: ['DPtls', 'S_SM_DP_TLS'],
  // The built-in SM-DS's CERT.DSauth (docs/smds.md#its-certificates): not in the published SGP.26 set.
  dsAuth: ['DSauth', 'S_SM_DSauth_ECDSA'],
  // The built-in SM-DS's CERT.DS.TLS (docs/smds.md#its-certificates): its ES11/ES12 TLS server
  // certificate; not in the published SGP.26 set either.
  dsTls: ['DStls', 'S_SM_DS_TLS'],
  eum: ['EUM', 'EUM_ECDSA'],
  euicc: ['eUICC', 'EUICC_ECDSA'],
} as const;

export type CredentialKind = keyof typeof ENTRIES;
export const CREDENTIAL_KINDS = Object.keys(ENTRIES) as CredentialKind[];

/** Relative path of a certificate, e.g. certPath('ci', 'P-256') = 'CertificateIssuer/CERT_CI_ECDSA_NIST.der'. */
export function certPath(kind: CredentialKind, curve: CurveName): string {
  const [dir, base] = ENTRIES[kind];
  return `${dir}/CERT_${base}_${CURVES[curve].fileTag}.der`;
}

/** Relative path of a private key, e.g. keyPath('dpAuth', 'brainpoolP256r1') = 'DPauth/SK_S_SM_DPauth_ECDSA_BRP.pem'. */
export function keyPath(kind: CredentialKind, curve: CurveName): string {
  const [dir, base] = ENTRIES[kind];
  return `${dir}/SK_${base}_${CURVES[curve].fileTag}.pem`;
}

/** Folder of a credential kind ('CertificateIssuer', 'DPauth', …). */
export function folderOf(kind: CredentialKind): string {
  return ENTRIES[kind][0];
}

type PerCurve = Record<CurveName, string>;
const perCurve = (f: (c: CurveName) => string): PerCurve => ({ 'P-256': f('P-256'), brainpoolP256r1: f('brainpoolP256r1') });

/** Every file name of the layout, relative to the PKI folder, per curve. */
export const layoutFiles: Record<CredentialKind | `${CredentialKind}Key`, PerCurve> = {
  ci: perCurve((c) => certPath('ci', c)),
  ciKey: perCurve((c) => keyPath('ci', c)),
  dpAuth: perCurve((c) => certPath('dpAuth', c)),
  dpAuthKey: perCurve((c) => keyPath('dpAuth', c)),
  dpPb: perCurve((c) => certPath('dpPb', c)),
  dpPbKey: perCurve((c) => keyPath('dpPb', c)),
  dpTls: perCurve((c) => certPath('dpTls', c)),
  dpTlsKey: perCurve((c) => keyPath('dpTls', c)),
  dsAuth: perCurve((c) => certPath('dsAuth', c)),
  dsAuthKey: perCurve((c) => keyPath('dsAuth', c)),
  dsTls: perCurve((c) => certPath('dsTls', c)),
  dsTlsKey: perCurve((c) => keyPath('dsTls', c)),
  eum: perCurve((c) => certPath('eum', c)),
  eumKey: perCurve((c) => keyPath('eum', c)),
  euicc: perCurve((c) => certPath('euicc', c)),
  euiccKey: perCurve((c) => keyPath('euicc', c)),
};
