/**
 * Persistent state of the virtual eUICC: installed profiles, pending notifications, counters and a
 * reference to (or an embedded copy of) the card's credentials. Plain JSON, so one process can
 * install a profile and a later one list it. The ephemeral RSP session (challenge, one-time key,
 * session keys) is deliberately not part of it.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { CurveName } from '../crypto/curves.js';
import { Certificate } from '../crypto/x509.js';
import { loadEuiccCredentials, privateKeyFromPem, privateKeyToPem, type EuiccCredentials } from '../pki/load.js';

export const CARD_STATE_VERSION = 1;

export type SimStateErrorCode = 'missingFile' | 'malformed' | 'credentials';

export class SimStateError extends Error {
  override name = 'SimStateError';
  constructor(readonly code: SimStateErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type ProfileStateName = 'disabled' | 'enabled';

export interface NotificationConfig {
  /** NotificationEvent bit numbers: 0 install, 1 enable, 2 disable, 3 delete. */
  operations: number[];
  address: string;
}

export interface ProfileRecord {
  /** ICCID digits (19 or 20, no F padding). */
  iccid: string;
  /** ICCID in EF.ICCID coding (10 bytes, upper hex), as carried in tag 5A. */
  iccidEf: string;
  /** ISD-P AID, upper hex. */
  isdpAid: string;
  state: ProfileStateName;
  nickname?: string;
  serviceProviderName: string;
  profileName: string;
  iconType?: number;
  /** Icon bytes, base64. */
  icon?: string;
  /** 0 test, 1 provisioning, 2 operational. */
  profileClass: number;
  notificationConfigurationInfo: NotificationConfig[];
  profileOwner?: { mccMnc: string; gid1?: string; gid2?: string };
  profilePolicyRules?: number[];
  /** The StoreMetadataRequest (BF25) as received, upper hex. */
  metadata: string;
  /** From the decoded profile package. */
  imsi?: string;
  ki?: string;
  opc?: string;
  profileType?: string;
  /** Profile element types of the UPP, in order. */
  elements?: string[];
  /** The Unprotected Profile Package as decrypted from the BPP, base64 (`mock-smdp sim package ICCID`). */
  package?: string;
  smdpOid?: string;
  smdpAddress?: string;
  /** SKI (upper hex) of the CI whose eUICC credentials signed the install; other notifications use them too. */
  ciPkId?: string;
  installedAt: string;
}

export interface NotificationRecord {
  seqNumber: number;
  /** NotificationEvent bit number: 0 install, 1 enable, 2 disable, 3 delete. */
  operation: number;
  address: string;
  /** ICCID digits of the profile concerned, if any. */
  iccid?: string;
  /** The NotificationMetadata (BF2F) DER, upper hex, as listed by ListNotification. */
  metadata: string;
  /** The PendingNotification DER (BF37 PIR or 30 OtherSignedNotification), upper hex, signed when generated. */
  pending: string;
  createdAt: string;
}

/** eUICC credentials copied into the state file (one entry per curve). */
export interface EmbeddedCredentials {
  curve: CurveName;
  /** eUICC certificate DER, base64. */
  certificate: string;
  /** eUICC private key, PEM. */
  privateKey: string;
  /** EUM certificate DER, base64. */
  eumCertificate: string;
  /** Trusted CI certificates DER, base64. */
  ciCertificates: string[];
}

export interface CredentialsReference {
  /**
   * A folder in the SGP.26 layout whose eUICC/ credentials are loaded (relative paths are resolved
   * against the state file's folder).
   */
  dir?: string;
  /** Curves to load from `dir` (default: every curve with an eUICC certificate there). */
  curves?: CurveName[];
  /** Credentials stored in the state file itself. Used when present; `dir` is then ignored. */
  embedded?: EmbeddedCredentials[];
}

export interface CardState {
  version: number;
  eid: string;
  credentials: CredentialsReference;
  /** Extra trusted CI certificates (DER base64) besides those that come with the credentials. */
  extraTrustedCis?: string[];
  profiles: ProfileRecord[];
  notifications: NotificationRecord[];
  /** Next NotificationMetadata seqNumber (starts at 1, never reused). */
  nextSeqNumber: number;
  /** Counter for ISD-P AIDs (never reused). */
  nextIsdpIndex: number;
  defaultDpAddress?: string;
  rootDsAddress: string;
}

export const DEFAULT_ROOT_DS = 'lpa.ds.gsma.com';

export function newCardState(eid: string, credentials: CredentialsReference, opts: { rootDsAddress?: string; defaultDpAddress?: string } = {}): CardState {
  return {
    version: CARD_STATE_VERSION,
    eid,
    credentials,
    profiles: [],
    notifications: [],
    nextSeqNumber: 1,
    nextIsdpIndex: 0,
    rootDsAddress: opts.rootDsAddress ?? DEFAULT_ROOT_DS,
    ...(opts.defaultDpAddress ? { defaultDpAddress: opts.defaultDpAddress } : {}),
  };
}

/** Shape check of parsed JSON; throws SimStateError 'malformed'. */
export function validateCardState(s: unknown): CardState {
  const bad = (why: string): never => {
    throw new SimStateError('malformed', `card state: ${why}`);
  };
  if (!s || typeof s !== 'object') bad('not an object');
  const o = s as Record<string, unknown>;
  if (o.version !== CARD_STATE_VERSION) bad(`unsupported version ${String(o.version)}`);
  if (typeof o.eid !== 'string' || !/^\d{32}$/.test(o.eid)) bad('eid must be 32 digits');
  if (!o.credentials || typeof o.credentials !== 'object') bad('credentials missing');
  if (!Array.isArray(o.profiles)) bad('profiles must be an array');
  if (!Array.isArray(o.notifications)) bad('notifications must be an array');
  if (!Number.isInteger(o.nextSeqNumber) || (o.nextSeqNumber as number) < 1) bad('nextSeqNumber');
  if (!Number.isInteger(o.nextIsdpIndex) || (o.nextIsdpIndex as number) < 0) bad('nextIsdpIndex');
  if (typeof o.rootDsAddress !== 'string') bad('rootDsAddress');
  for (const p of o.profiles as unknown[]) {
    const r = p as Partial<ProfileRecord>;
    if (!r || typeof r.iccid !== 'string' || typeof r.iccidEf !== 'string' || typeof r.isdpAid !== 'string') bad('profile without iccid/isdpAid');
    if (r!.state !== 'enabled' && r!.state !== 'disabled') bad(`profile ${r!.iccid}: bad state`);
    if (!Array.isArray(r!.notificationConfigurationInfo)) bad(`profile ${r!.iccid}: notificationConfigurationInfo`);
  }
  for (const n of o.notifications as unknown[]) {
    const r = n as Partial<NotificationRecord>;
    if (!r || !Number.isInteger(r.seqNumber) || !Number.isInteger(r.operation) || typeof r.pending !== 'string' || typeof r.metadata !== 'string' || typeof r.address !== 'string') {
      bad('malformed notification');
    }
  }
  return o as unknown as CardState;
}

export function loadCardState(file: string): CardState {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new SimStateError('missingFile', `cannot read card state ${file}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SimStateError('malformed', `card state ${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return validateCardState(json);
}

/** Writes the state atomically (temporary file, then rename). */
export function saveCardState(file: string, state: CardState): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}

/** Copies credentials into the JSON form kept in the state file. */
export function embedCredentials(creds: EuiccCredentials): EmbeddedCredentials {
  return {
    curve: creds.curve,
    certificate: creds.cert.raw.toString('base64'),
    privateKey: privateKeyToPem(creds.key),
    eumCertificate: creds.eum.raw.toString('base64'),
    ciCertificates: creds.cis.map((c) => c.raw.toString('base64')),
  };
}

export function credentialsFromEmbedded(e: EmbeddedCredentials): EuiccCredentials {
  try {
    const cert = Certificate.parse(Buffer.from(e.certificate, 'base64'));
    return {
      eid: cert.subjectSerialNumber ?? '',
      curve: cert.curve,
      cert,
      key: privateKeyFromPem(e.privateKey),
      eum: Certificate.parse(Buffer.from(e.eumCertificate, 'base64')),
      cis: e.ciCertificates.map((c) => Certificate.parse(Buffer.from(c, 'base64'))),
    };
  } catch (err) {
    throw new SimStateError('credentials', `embedded ${e.curve} credentials: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The credentials a reference names: the embedded ones, else those of `ref.dir` (resolved against
 * `baseDir`). No EID check; see loadStateCredentials.
 */
export function loadCredentialsReference(ref: CredentialsReference, baseDir = process.cwd()): EuiccCredentials[] {
  let out: EuiccCredentials[];
  if (ref.embedded?.length) {
    out = ref.embedded.map(credentialsFromEmbedded);
  } else if (ref.dir) {
    const dir = isAbsolute(ref.dir) ? ref.dir : resolve(baseDir, ref.dir);
    const curves: CurveName[] = ref.curves?.length ? ref.curves : ['P-256', 'brainpoolP256r1'];
    out = [];
    const errors: string[] = [];
    for (const curve of curves) {
      try {
        out.push(loadEuiccCredentials(dir, { curve }));
      } catch (err) {
        errors.push(`${curve}: ${(err as Error).message}`);
      }
    }
    if (!out.length) throw new SimStateError('credentials', `no eUICC credentials in ${dir} (${errors.join('; ')})`);
    if (ref.curves?.length && errors.length) throw new SimStateError('credentials', errors.join('; '));
  } else {
    throw new SimStateError('credentials', 'no credentials named (neither embedded nor dir)');
  }
  const eids = new Set(out.map((c) => c.eid));
  if (eids.size > 1) throw new SimStateError('credentials', `eUICC certificates name different EIDs: ${[...eids].join(', ')}`);
  return out;
}

/** The credentials of a card state (resolved against `baseDir`, normally the state file's folder), checked against its EID. */
export function loadStateCredentials(state: CardState, baseDir = process.cwd()): EuiccCredentials[] {
  const out = loadCredentialsReference(state.credentials, baseDir);
  for (const c of out) {
    if (c.eid !== state.eid) {
      throw new SimStateError('credentials', `eUICC certificate (${c.curve}) is for EID ${c.eid}, card state has ${state.eid}`);
    }
  }
  return out;
}
