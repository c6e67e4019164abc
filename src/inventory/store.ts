/**
 * Inventory: profile types (the metadata templates) and pools of Available profiles with their
 * ICCID, IMSI, Ki and OPc, optionally owned by an operator. Imports and generated batches are
 * all-or-nothing: every row is checked first, then everything is inserted in one transaction.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Database, Queryable } from '../db/db.js';
import { buildActivationCode } from '../rsp/activation-code.js';
import { withLuhn } from '../rsp/identifiers.js';
import { readTemplate, type ProfileTemplate } from '../saip/template.js';
import { publicProfile, type ProfileRow, type ProfileState, type ProfileTypeRow } from '../orders/store.js';
import { PROFILE_EVENT } from '../orders/state-machine.js';
import { OPERATOR_ID_RE } from '../operators/store.js';

export const PROFILE_STATES: readonly ProfileState[] = [
  'Available', 'Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Installed', 'Error', 'Unavailable',
];

export class InventoryError extends Error {
  override name = 'InventoryError';
  constructor(
    readonly code: 'invalid' | 'conflict' | 'notFound',
    message: string,
    /** Per-row problems of an import (row numbers count data rows from 1). */
    readonly details: string[] = [],
    /** What a reference that does not exist names, e.g. `{ operator: "op-9" }`. */
    readonly refs?: Record<string, unknown>,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------- profile types

export interface ProfileType {
  name: string;
  serviceProviderName: string;
  profileName: string;
  /** 0 test, 1 provisioning, 2 operational (SGP.22 ProfileClass). */
  profileClass: 0 | 1 | 2;
  /** What the type's template is, when it has one (its bytes: GET /admin/profile-types/:name/template). */
  template: TemplateSummary | null;
}

export interface TemplateSummary {
  bytes: number;
  sha256: string;
  saipVersion: string;
  profileElements: number;
  profileType: string | null;
  /** The template's own ICCID and IMSI, replaced in every order. */
  iccid: string;
  imsi: string;
  algorithm: 'milenage' | 'tuak' | 'usim-test-algorithm' | string;
}

/** What POST /admin/profile-types takes: metadata fields may be left out when a template gives them. */
export interface NewProfileType {
  name: string;
  serviceProviderName?: string;
  profileName?: string;
  profileClass?: 0 | 1 | 2;
  /** An Unprotected Profile Package (SAIP DER), checked completely before anything is stored. */
  template?: Buffer;
}

export const TYPE_NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

const ALGORITHM_NAME: Record<number, string> = { 1: 'milenage', 2: 'tuak', 3: 'usim-test-algorithm' };

export function templateSummary(t: ProfileTemplate): TemplateSummary {
  return {
    bytes: t.der.length,
    sha256: createHash('sha256').update(t.der).digest('hex'),
    saipVersion: `${t.majorVersion}.${t.minorVersion}`,
    profileElements: t.elements.length,
    profileType: t.profileType ?? null,
    iccid: t.iccid,
    imsi: t.imsi,
    algorithm: ALGORITHM_NAME[t.algorithmId] ?? `algorithm ${t.algorithmId}`,
  };
}

const typeView = (r: ProfileTypeRow): ProfileType => ({
  name: r.name,
  serviceProviderName: r.service_provider_name,
  profileName: r.profile_name,
  profileClass: r.profile_class as 0 | 1 | 2,
  template: r.template ? templateSummary(readTemplate(r.template)) : null,
});

/**
 * Creates a profile type; with `replace` an existing one of that name is updated instead of refused.
 * With a template, the metadata the request leaves out comes from the template (docs/profiles.md).
 */
export async function createProfileType(q: Queryable, t: NewProfileType, opts: { replace?: boolean } = {}): Promise<ProfileType> {
  if (!TYPE_NAME_RE.test(t.name)) throw new InventoryError('invalid', `profile type name must be 1-64 of A-Z a-z 0-9 . _ -: ${t.name}`);
  const template = t.template ? readTemplate(t.template) : undefined;
  const serviceProviderName = t.serviceProviderName ?? template?.metadata.serviceProviderName;
  const profileName = t.profileName ?? template?.metadata.profileName;
  const profileClass = t.profileClass ?? template?.metadata.profileClass ?? 2;
  if (![0, 1, 2].includes(profileClass)) throw new InventoryError('invalid', `profileClass must be 0, 1 or 2: ${profileClass}`);
  for (const [k, v] of [['serviceProviderName', serviceProviderName], ['profileName', profileName]] as const) {
    // StoreMetadataRequest carries them as UTF8String (SIZE(0..32)) and (SIZE(0..64)).
    const max = k === 'serviceProviderName' ? 32 : 64;
    if (v === undefined) throw new InventoryError('invalid', `${k} is required for a profile type without a template`);
    if (typeof v !== 'string' || Buffer.byteLength(v) > max) throw new InventoryError('invalid', `${k} must be a string of at most ${max} UTF-8 bytes`);
  }
  const rows = await q.query<ProfileTypeRow>(
    `INSERT INTO profile_types (name, service_provider_name, profile_name, profile_class, template) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name) DO ${opts.replace ? `UPDATE SET service_provider_name = EXCLUDED.service_provider_name, profile_name = EXCLUDED.profile_name,
       profile_class = EXCLUDED.profile_class, template = EXCLUDED.template` : 'NOTHING'}
     RETURNING *`,
    [t.name, serviceProviderName, profileName, profileClass, template?.der ?? null],
  );
  if (!rows[0]) throw new InventoryError('conflict', `profile type ${t.name} already exists`);
  return typeView(rows[0]);
}

export async function getProfileType(q: Queryable, name: string): Promise<ProfileType | undefined> {
  const rows = await q.query<ProfileTypeRow>('SELECT * FROM profile_types WHERE name = $1', [name]);
  return rows[0] && typeView(rows[0]);
}

/** The template bytes of a profile type: undefined when there is no such type, null when it has none. */
export async function profileTypeTemplate(q: Queryable, name: string): Promise<Buffer | null | undefined> {
  const rows = await q.query<{ template: Buffer | null }>('SELECT template FROM profile_types WHERE name = $1', [name]);
  return rows[0] ? rows[0].template : undefined;
}

/** All profile types with how many profiles of each are in each state. */
export async function listProfileTypes(q: Queryable): Promise<Array<ProfileType & { counts: Record<string, number> }>> {
  const types = await q.query<ProfileTypeRow>('SELECT * FROM profile_types ORDER BY name');
  const counts = await q.query<{ profile_type: string; state: string; n: string | number }>(
    'SELECT profile_type, state, count(*) AS n FROM profiles GROUP BY profile_type, state',
  );
  return types.map((t) => ({
    ...typeView(t),
    counts: Object.fromEntries(counts.filter((c) => c.profile_type === t.name).map((c) => [c.state, Number(c.n)])),
  }));
}

// ---------------------------------------------------------------- profile rows

export interface InventoryRow {
  iccid: string;
  imsi: string;
  /** 32 hex digits. */
  ki: string;
  /** 32 hex digits. */
  opc: string;
  /** Overrides the import's profile type for this row. */
  type?: string;
}

export interface ImportOptions {
  type: string;
  operator?: string;
  /** Require a valid Luhn check digit in every ICCID. */
  luhn?: boolean;
}

export const HEX32_RE = /^[0-9A-Fa-f]{32}$/;
export const MAX_ROWS = 100_000;
export const MAX_DETAILS = 20;

export interface CheckedRow { iccid: string; imsi: string; ki: Buffer; opc: Buffer; type: string }

export function invalidRows(problems: string[], total: number): InventoryError {
  const shown = problems.slice(0, MAX_DETAILS);
  const more = problems.length > shown.length ? ` (+${problems.length - shown.length} more)` : '';
  return new InventoryError('invalid', `import rejected, nothing imported: ${problems.length} of ${total} row(s) invalid: ${shown.join('; ')}${more}`, shown);
}

/** Inserts checked rows as Available profiles, in the caller's transaction; refuses duplicates against the database. */
export async function insertRows(q: Queryable, rows: CheckedRow[], operator: string | undefined, source: string): Promise<void> {
  const types = [...new Set(rows.map((r) => r.type))];
  const known = await q.query<{ name: string }>('SELECT name FROM profile_types WHERE name = ANY($1::text[])', [types]);
  const missing = types.filter((t) => !known.some((k) => k.name === t));
  if (missing.length) throw new InventoryError('notFound', `unknown profile type(s): ${missing.join(', ')} (create them with POST /admin/profile-types)`, [], { profileTypes: missing });
  if (operator !== undefined) {
    // An id no operator can have (src/operators/store.ts: printable ASCII) is not looked up: PostgreSQL refuses NUL in text.
    const op = OPERATOR_ID_RE.test(operator) ? await q.query('SELECT 1 FROM operators WHERE id = $1', [operator]) : [];
    if (!op.length) throw new InventoryError('notFound', `unknown operator ${operator}`, [], { operator });
  }
  const dupIccid = await q.query<{ iccid: string }>('SELECT iccid FROM profiles WHERE iccid = ANY($1::text[]) ORDER BY iccid', [rows.map((r) => r.iccid)]);
  const dupImsi = await q.query<{ imsi: string }>('SELECT imsi FROM profiles WHERE imsi = ANY($1::text[]) ORDER BY imsi', [rows.map((r) => r.imsi)]);
  if (dupIccid.length || dupImsi.length) {
    const problems = [
      ...dupIccid.map((d) => `ICCID ${d.iccid} already exists`),
      ...dupImsi.map((d) => `IMSI ${d.imsi} already exists`),
    ];
    const shown = problems.slice(0, MAX_DETAILS);
    throw new InventoryError('conflict', `import rejected, nothing imported: ${problems.length} duplicate(s) of existing profiles: ${shown.join('; ')}${problems.length > shown.length ? ' …' : ''}`, shown);
  }
  const CHUNK = 500;
  for (let i = 0; i < rows.length; i += CHUNK) {
    const part = rows.slice(i, i + CHUNK);
    const params: unknown[] = [operator ?? null];
    const values = part.map((r) => {
      params.push(r.iccid, r.type, r.imsi, r.ki, r.opc, randomBytes(48));
      const b = params.length - 6;
      return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, 'Available', $1)`;
    });
    await q.query(`INSERT INTO profiles (iccid, profile_type, imsi, ki, opc, scp03_keys, state, operator_id) VALUES ${values.join(', ')}`, params);
    await q.query(
      `INSERT INTO profile_events (iccid, event, detail)
       SELECT i, $5::text, jsonb_build_object('source', $2::text, 'profileType', t, 'operator', $3::text)
       FROM unnest($1::text[], $4::text[]) AS u(i, t)`,
      [part.map((r) => r.iccid), source, operator ?? null, part.map((r) => r.type), PROFILE_EVENT.created],
    );
  }
}

// ---------------------------------------------------------------- generation

export interface GenerateOptions {
  type: string;
  count: number;
  /** Leading ICCID digits (default `89000`, as order creation uses); 20-digit ICCIDs with a Luhn check digit. */
  prefix?: string;
  /** MCC+MNC of the IMSIs (5 or 6 digits, default 00101). */
  mccMnc?: string;
  operator?: string;
}

export const MAX_GENERATE = 100_000;

const randomDigits = (n: number) => Array.from({ length: n }, () => randomInt(10)).join('');

/** Generates `count` Available profiles: Luhn-valid unique 20-digit ICCIDs, IMSIs from MCC/MNC, random Ki/OPc. */
export async function generateProfiles(db: Database, o: GenerateOptions): Promise<{ generated: number; iccids: string[] }> {
  const prefix = o.prefix ?? '89000';
  const mccMnc = o.mccMnc ?? '00101';
  if (!Number.isInteger(o.count) || o.count < 1 || o.count > MAX_GENERATE) throw new InventoryError('invalid', `count must be 1..${MAX_GENERATE}`);
  if (!/^\d{1,18}$/.test(prefix)) throw new InventoryError('invalid', `ICCID prefix must be 1-18 digits: ${prefix}`);
  if (!/^\d{5,6}$/.test(mccMnc)) throw new InventoryError('invalid', `MCC+MNC must be 5 or 6 digits: ${mccMnc}`);
  const iccidSpace = 10 ** (19 - prefix.length);
  const imsiSpace = 10 ** (15 - mccMnc.length);
  // Keep random picks cheap: refuse batches that would nearly exhaust the number space.
  if (o.count > iccidSpace / 2) throw new InventoryError('invalid', `prefix ${prefix} leaves room for only ${iccidSpace} ICCIDs; use a shorter prefix`);
  if (o.count > imsiSpace / 2) throw new InventoryError('invalid', `MCC+MNC ${mccMnc} leaves room for only ${imsiSpace} IMSIs`);
  if (!TYPE_NAME_RE.test(o.type)) throw new InventoryError('invalid', `profile type name must be 1-64 of A-Z a-z 0-9 . _ -: ${JSON.stringify(o.type)}`);

  return db.tx(async (q) => {
    const iccids = new Set<string>();
    const imsis = new Set<string>();
    const rows: CheckedRow[] = [];
    // Retry the (rare) collisions with existing profiles a few rounds before giving up.
    for (let round = 0; rows.length < o.count; round++) {
      if (round > 20) throw new InventoryError('conflict', 'could not find free ICCIDs/IMSIs; use another prefix or MCC+MNC');
      const batch: CheckedRow[] = [];
      while (rows.length + batch.length < o.count) {
        const iccid = withLuhn(prefix + randomDigits(19 - prefix.length));
        const imsi = mccMnc + randomDigits(15 - mccMnc.length);
        if (iccids.has(iccid) || imsis.has(imsi)) continue;
        iccids.add(iccid);
        imsis.add(imsi);
        batch.push({ iccid, imsi, ki: randomBytes(16), opc: randomBytes(16), type: o.type });
      }
      const takenIccid = new Set((await q.query<{ iccid: string }>('SELECT iccid FROM profiles WHERE iccid = ANY($1::text[])', [batch.map((r) => r.iccid)])).map((r) => r.iccid));
      const takenImsi = new Set((await q.query<{ imsi: string }>('SELECT imsi FROM profiles WHERE imsi = ANY($1::text[])', [batch.map((r) => r.imsi)])).map((r) => r.imsi));
      rows.push(...batch.filter((r) => !takenIccid.has(r.iccid) && !takenImsi.has(r.imsi)));
    }
    await insertRows(q, rows, o.operator, 'generate');
    return { generated: rows.length, iccids: rows.map((r) => r.iccid) };
  });
}

// ---------------------------------------------------------------- listing

export interface InventoryQuery {
  type?: string;
  state?: string;
  operator?: string;
  limit?: number;
  offset?: number;
}

type Row = ProfileRow & { operator_id?: string | null };

/** The public view of an inventory profile (never Ki/OPc). */
export const inventoryView = (p: Row) => ({ ...publicProfile(p), operator: p.operator_id ?? null });

/**
 * An order as GET /admin/orders and the console show it: the profile with its operator, the SM-DS it
 * was confirmed with (docs/smds.md; the built-in one or an external one) and its activation code.
 */
export function orderView(p: Row & { smds_address?: string | null }, config: { smdpAddress: string }) {
  return {
    ...inventoryView(p),
    smdsAddress: p.smds_address ?? null,
    activationCode: p.matching_id
      ? buildActivationCode({ smdpAddress: config.smdpAddress, matchingId: p.matching_id, confirmationCodeRequired: p.cc_digest !== null })
      : null,
  };
}

/**
 * Profiles matching the filters (type, operator, state), newest first, with the number of profiles
 * in each state among those of that type/operator (the state filter does not narrow the counts).
 */
export async function listInventory(q: Queryable, f: InventoryQuery) {
  if (f.state !== undefined && !PROFILE_STATES.includes(f.state as ProfileState)) throw new InventoryError('invalid', `unknown state ${f.state}; one of ${PROFILE_STATES.join(', ')}`);
  const base = `($1::text IS NULL OR profile_type = $1) AND ($2::text IS NULL OR operator_id = $2)`;
  const counted = await q.query<{ state: string; n: string | number }>(`SELECT state, count(*) AS n FROM profiles WHERE ${base} GROUP BY state`, [f.type ?? null, f.operator ?? null]);
  const counts = Object.fromEntries(PROFILE_STATES.map((s) => [s, 0])) as Record<ProfileState, number>;
  for (const c of counted) counts[c.state as ProfileState] = Number(c.n);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const rows = await q.query<Row>(
    `SELECT * FROM profiles WHERE ${base} AND ($3::text IS NULL OR state = $3) ORDER BY created_at DESC, iccid LIMIT $4 OFFSET $5`,
    [f.type ?? null, f.operator ?? null, f.state ?? null, f.limit ?? 100, f.offset ?? 0],
  );
  return { filter: { type: f.type ?? null, operator: f.operator ?? null, state: f.state ?? null }, total, counts, profiles: rows.map(inventoryView) };
}

/**
 * Orders: profiles that have left the Available pool (any state but Available), or in the given
 * state, optionally of one operator, most recently changed first.
 */
export async function listOrders(q: Queryable, f: { state?: string; operator?: string; limit?: number; offset?: number }): Promise<Row[]> {
  if (f.state !== undefined && !PROFILE_STATES.includes(f.state as ProfileState)) throw new InventoryError('invalid', `unknown state ${f.state}; one of ${PROFILE_STATES.join(', ')}`);
  return q.query<Row>(
    `SELECT * FROM profiles
     WHERE (CASE WHEN $1::text IS NULL THEN state <> 'Available' ELSE state = $1 END) AND ($2::text IS NULL OR operator_id = $2)
     ORDER BY updated_at DESC, iccid LIMIT $3 OFFSET $4`,
    [f.state ?? null, f.operator ?? null, f.limit ?? 100, f.offset ?? 0],
  );
}
