/**
 * What the ES10 areas of the virtual eUICC (es10b-session.ts, es10b-bpp.ts,
 * es10b-notifications.ts, es10c.ts) share: the card's persistent state and credentials, and the RSP
 * session of a download in progress, which is never persisted.
 */
import type { OtKeyPair } from '../crypto/ecka.js';
import type { CurveName } from '../crypto/curves.js';
import type { Certificate } from '../crypto/x509.js';
import type { Scp03tReader } from '../crypto/scp03t.js';
import type { EuiccCredentials } from '../pki/load.js';
import type { StoreMetadataRequest } from '../rsp/download.js';
import type { CardState } from './state.js';

export interface VirtualEuiccOptions {
  /** Save the state to this file after every change. */
  persistTo?: string;
  /** Called after every state change (after persistTo was written). */
  onChange?: (state: CardState) => void;
  /** SGP.22 version in EUICCInfo1/2 (default '2.2.2'). */
  svn?: string;
  /** SAIP version in EUICCInfo2 (default '2.3.1'). */
  profileVersion?: string;
  /** Firmware version in EUICCInfo2 (default '1.0.0'). */
  firmwareVersion?: string;
  /** SAS accreditation number in EUICCInfo2 (default 'MOCK-SMDP-SIM'). */
  sasAccreditationNumber?: string;
  /** Random source (tests). */
  random?: (n: number) => Buffer;
  /** Clock for certificate validity checks; by default validity dates are not checked (an eUICC has no trusted clock). */
  now?: () => Date;
}

export interface OtKey {
  curve: CurveName;
  pair: OtKeyPair;
  publicPoint: Buffer;
}

/** The RSP session between GetEuiccChallenge and the end of the download (never persisted). */
export interface RspSession {
  euiccChallenge: Buffer;
  stage: 'challenge' | 'authenticated' | 'prepared';
  transactionId?: Buffer;
  serverAddress?: string;
  serverChallenge?: Buffer;
  smdpOid?: string;
  creds?: EuiccCredentials;
  euiccSignature1Do?: Buffer;
  dpPb?: Certificate;
  otKey?: OtKey;
}

export type LoadPhase = 'A0' | 'A1' | '88' | 'afterMetadata' | '86';

/** A LoadBoundProfilePackage in progress (pieces as lpac sends them). */
export interface BppLoad {
  session: RspSession & { transactionId: Buffer; creds: EuiccCredentials; dpPb: Certificate; otKey: OtKey };
  reader?: Scp03tReader;
  phase: LoadPhase;
  /** Bytes of the current sequenceOf88 / sequenceOf86 still to come. */
  remaining: number;
  metadataParts: Buffer[];
  metadata?: StoreMetadataRequest & { raw: Buffer };
  uppParts: Buffer[];
}

/** The card as its ES10 handlers see it. */
export interface EuiccCore {
  readonly state: CardState;
  readonly creds: readonly EuiccCredentials[];
  /** Trusted CI certificates (EUICCInfo ForVerification), by SKI hex. */
  readonly trusted: ReadonlyMap<string, Certificate>;
  readonly opts: VirtualEuiccOptions;
  readonly random: (n: number) => Buffer;
  session?: RspSession;
  load?: BppLoad;
  /** The PIR of the last finished or aborted load, answered again to stray pieces of it. */
  lastPir?: Buffer;
  /** One-time key kept for a possible retry with bppEuiccOtpk (SGP.22 v2 PPK rebinding). */
  retainedOtKey?: OtKey;
  /** Diagnostic of the last rejected command (not part of any ES10 answer). */
  lastError?: string;
  /** Persists the state after a change. */
  changed(): void;
}

export const hexU = (b: Buffer) => b.toString('hex').toUpperCase();

/** No ES10-level error answer exists: an empty answer, with the reason in lastError. */
export function reject(card: EuiccCore, why: string): Buffer {
  card.lastError = why;
  return Buffer.alloc(0);
}
