/** Profiles and their download orders, in the database. ES9+, the admin API and the CLI all go through here. */
import { randomBytes, randomInt } from 'node:crypto';
import type { Queryable } from '../db/db.js';
import { confirmationCodeDigest } from '../crypto/hashcc.js';
import { normaliseIccid, withLuhn, isEid } from '../rsp/identifiers.js';
import { MATCHING_ID_RE } from '../rsp/activation-code.js';
import { lockProfile, PROFILE_EVENT, transition, type ProfileEventName } from './state-machine.js';

export type ProfileState =
  | 'Available' | 'Allocated' | 'Linked' | 'Confirmed' | 'Released'
  | 'Downloaded' | 'Installed' | 'Error' | 'Unavailable';

export interface ProfileRow {
  iccid: string;
  profile_type: string;
  imsi: string;
  ki: Buffer;
  opc: Buffer;
  state: ProfileState;
  eid: string | null;
  matching_id: string | null;
  cc_digest: Buffer | null;
  cc_attempts: number;
  cc_max_attempts: number;
  download_attempts: number;
  max_download_attempts: number;
  expires_at: Date | null;
  device_state: 'Enabled' | 'Disabled' | 'Deleted' | null;
  /** SCP03 ENC ‖ MAC ‖ DEK of the generated profile's MNO security domain (migration 007). */
  scp03_keys: Buffer | null;
  created_at: Date;
  updated_at: Date;
}

export interface ProfileTypeRow {
  name: string;
  service_provider_name: string;
  profile_name: string;
  profile_class: number;
  /** The Unprotected Profile Package orders of this type are personalised from (src/saip/template.ts). */
  template: Buffer | null;
}

export class OrderError extends Error {
  override name = 'OrderError';
  constructor(
    readonly code: 'invalid' | 'conflict' | 'notFound',
    message: string,
    /** What the client needs to fix it, e.g. `{ profileType: "x" }` for a reference that does not exist. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** A MatchingID like `K3T9Q-2M8XA-7PL4D-QW1ZE`: upper-case alphanumerics and dashes only. */
export function generateMatchingId(): string {
  const group = () => Array.from({ length: 5 }, () => ALNUM[randomInt(ALNUM.length)]).join('');
  return [group(), group(), group(), group()].join('-');
}

const digits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('');

/** A Luhn-valid 20-digit test ICCID (issuer prefix 89 000). */
export function generateIccid(prefix = '89000'): string {
  return withLuhn(prefix + digits(19 - prefix.length));
}

function generateImsi(mccMnc = '00101'): string {
  return mccMnc + digits(15 - mccMnc.length);
}

export interface NewProfile {
  iccid?: string;
  profileType?: string;
  imsi?: string;
  ki?: Buffer;
  opc?: Buffer;
}

/** The `source` of the 'created' event of a profile an admin order made (POST /admin/reset deletes those). */
export const ORDER_SOURCE = 'order';

/**
 * Inserts an Available profile. `source` is recorded in its 'created' event: ORDER_SOURCE for the
 * profile an admin order creates (POST /admin/reset deletes those; inventory profiles go back to the pool).
 */
export async function insertProfile(q: Queryable, p: NewProfile, source?: string): Promise<ProfileRow> {
  const iccid = p.iccid ? normaliseIccid(p.iccid) : generateIccid();
  const rows = await q.query<ProfileRow>(
    `INSERT INTO profiles (iccid, profile_type, imsi, ki, opc, scp03_keys, state)
     VALUES ($1, $2, $3, $4, $5, $6, 'Available')
     ON CONFLICT (iccid) DO NOTHING RETURNING *`,
    [iccid, p.profileType ?? 'default', p.imsi ?? generateImsi(), p.ki ?? randomBytes(16), p.opc ?? randomBytes(16), randomBytes(48)],
  );
  if (!rows[0]) throw new OrderError('conflict', `ICCID ${iccid} already exists`);
  await event(q, iccid, PROFILE_EVENT.created, { profileType: p.profileType ?? 'default', ...(source ? { source } : {}) });
  return rows[0];
}

export interface NewOrder extends NewProfile {
  matchingId?: string;
  eid?: string;
  confirmationCode?: string;
  /** Seconds until the order expires (8.8.5/4.10); none by default. */
  expiresIn?: number;
  maxDownloadAttempts?: number;
  maxConfirmationCodeAttempts?: number;
}

/**
 * Creates a Released (downloadable) order: on an existing Available profile when the ICCID is
 * known, else on a new profile (generated ICCID, IMSI, Ki, OPc unless given).
 */
export async function createReleasedOrder(q: Queryable, o: NewOrder): Promise<ProfileRow> {
  const matchingId = (o.matchingId ?? generateMatchingId()).toUpperCase();
  if (!MATCHING_ID_RE.test(matchingId)) throw new OrderError('invalid', `MatchingID must be 1-64 of 0-9 A-Z and '-': ${o.matchingId}`);
  if (o.eid !== undefined && !isEid(o.eid)) throw new OrderError('invalid', `EID must be 32 digits: ${o.eid}`);
  if (o.confirmationCode !== undefined && !/^[\x20-\x7e]{1,64}$/.test(o.confirmationCode)) {
    throw new OrderError('invalid', 'confirmation code must be 1-64 printable ASCII characters');
  }
  if (o.expiresIn !== undefined && !(Number.isInteger(o.expiresIn) && o.expiresIn > 0 && o.expiresIn <= MAX_EXPIRES_IN)) {
    throw new OrderError('invalid', `expiresIn must be 1..${MAX_EXPIRES_IN} seconds`, { field: 'expiresIn' });
  }
  const taken = await q.query('SELECT 1 FROM profiles WHERE matching_id = $1', [matchingId]);
  if (taken.length) throw new OrderError('conflict', `MatchingID ${matchingId} already in use`, { matchingId });

  let row: ProfileRow;
  if (o.iccid) {
    const iccid = normaliseIccid(o.iccid);
    const existing = await lockProfile(q, iccid);
    if (!existing) {
      await checkProfileType(q, o.profileType);
      row = await insertProfile(q, o, ORDER_SOURCE);
    } else if (existing.state !== 'Available') throw new OrderError('conflict', `profile ${iccid} is ${existing.state}, not Available`, { iccid, state: existing.state });
    else if (o.profileType !== undefined && o.profileType !== existing.profile_type) {
      throw new OrderError('conflict', `profile ${iccid} is of profile type ${existing.profile_type}, not ${o.profileType}`, { iccid, profileType: existing.profile_type });
    } else row = existing;
  } else {
    await checkProfileType(q, o.profileType);
    row = await insertProfile(q, o, ORDER_SOURCE);
  }
  return transition(q, row, {
    action: 'released',
    to: 'Released',
    set: {
      matching_id: matchingId,
      eid: o.eid ?? null,
      cc_digest: o.confirmationCode !== undefined ? confirmationCodeDigest(o.confirmationCode) : null,
      cc_attempts: 0,
      download_attempts: 0,
      ...(o.maxConfirmationCodeAttempts !== undefined ? { cc_max_attempts: o.maxConfirmationCodeAttempts } : {}),
      ...(o.maxDownloadAttempts !== undefined ? { max_download_attempts: o.maxDownloadAttempts } : {}),
      expires_at: o.expiresIn === undefined ? null : new Date(Date.now() + o.expiresIn * 1000),
      device_state: null,
    },
    detail: { matchingId, eid: o.eid ?? null, confirmationCode: o.confirmationCode !== undefined },
  });
}

/** Longest order lifetime `expiresIn` may ask for: ten years. */
export const MAX_EXPIRES_IN = 10 * 365 * 24 * 3600;

/** Verify a new profile's type exists (the default type when none is given), otherwise notFound naming it. */
async function checkProfileType(q: Queryable, profileType: string | undefined): Promise<void> {
  const name = profileType ?? 'default';
  const rows = await q.query('SELECT 1 FROM profile_types WHERE name = $1', [name]);
  if (!rows.length) throw new OrderError('notFound', `unknown profile type ${JSON.stringify(name)} (create it with POST /admin/profile-types)`, { profileType: name });
}

/** Records a history event of a profile outside a transition (its creation, a fault injection). */
export async function event(q: Queryable, iccid: string, name: ProfileEventName, detail?: Record<string, unknown>): Promise<void> {
  await q.query('INSERT INTO profile_events (iccid, event, detail) VALUES ($1, $2, $3)', [iccid, name, detail ? JSON.stringify(detail) : null]);
}

export async function getProfile(q: Queryable, iccid: string): Promise<ProfileRow | undefined> {
  return (await q.query<ProfileRow>('SELECT * FROM profiles WHERE iccid = $1', [normaliseIccid(iccid)]))[0];
}

export async function profileHistory(q: Queryable, iccid: string) {
  return q.query<{ at: Date; event: string; detail: unknown }>(
    'SELECT at, event, detail FROM profile_events WHERE iccid = $1 ORDER BY id',
    [iccid],
  );
}

/** The public view of a profile: never Ki, OPc or the confirmation code digest. */
export function publicProfile(p: ProfileRow) {
  return {
    iccid: p.iccid,
    profileType: p.profile_type,
    imsi: p.imsi,
    state: p.state,
    deviceState: p.device_state,
    eid: p.eid,
    matchingId: p.matching_id,
    confirmationCodeRequired: p.cc_digest !== null,
    confirmationCodeAttempts: p.cc_attempts,
    downloadAttempts: p.download_attempts,
    maxDownloadAttempts: p.max_download_attempts,
    expiresAt: p.expires_at?.toISOString() ?? null,
    updatedAt: p.updated_at.toISOString(),
  };
}
