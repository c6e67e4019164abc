/**
 * Who is calling ES2+: an operator authenticated by API key (`X-API-Key` or `Authorization: Bearer`)
 * and/or by its TLS client certificate (SHA-256 fingerprint), whose id must be the request's
 * functionRequesterIdentifier. Also the per-call context every ES2+ function receives.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { Database, Queryable } from '../db/db.js';
import { check, FunctionFailed, SC } from '../errors.js';
import { findOperatorByApiKey, findOperatorByCertFingerprint, type OperatorRow } from '../operators/store.js';
import { lockProfile, type LockedProfile } from '../orders/state-machine.js';
import { eidChecksumOk, isEid, normaliseIccid } from '../rsp/identifiers.js';

export interface Es2RequestHeader {
  functionRequesterIdentifier: string;
  functionCallIdentifier: string;
}

export interface Es2Deps {
  db: Database;
  config: Config;
  log: FastifyBaseLogger;
}

/** One ES2+ call: the dependencies, the authenticated operator and the request header. */
export interface Es2Context extends Es2Deps {
  operator: OperatorRow;
  header: Es2RequestHeader;
}

export interface Credentials {
  apiKey?: string;
  /** SHA-256 fingerprint of the TLS client certificate, when the client presented one. */
  certFingerprint?: string;
}

/** The API key and client certificate fingerprint a request carries. */
export function credentialsOf(request: Pick<FastifyRequest, 'headers' | 'raw'>): Credentials {
  const out: Credentials = {};
  const key = request.headers['x-api-key'];
  const auth = request.headers.authorization;
  if (typeof key === 'string' && key.trim()) out.apiKey = key.trim();
  else if (typeof auth === 'string' && /^Bearer\s+\S/i.test(auth)) out.apiKey = auth.replace(/^Bearer\s+/i, '').trim();
  const socket = request.raw.socket as Partial<TLSSocket> | undefined;
  if (socket && typeof socket.getPeerCertificate === 'function') {
    const cert = socket.getPeerCertificate();
    if (cert && cert.fingerprint256) out.certFingerprint = cert.fingerprint256;
  }
  return out;
}

/**
 * Verify the caller is a known operator: a given API key must be known and a given certificate,
 * when it names an operator, must name the same one (otherwise 1.1/1.2); no usable credential: 1.1/1.1.
 */
export async function authenticateOperator(q: Queryable, creds: Credentials): Promise<OperatorRow> {
  const byKey = creds.apiKey !== undefined ? await findOperatorByApiKey(q, creds.apiKey) : undefined;
  if (creds.apiKey !== undefined && !byKey) throw new FunctionFailed(SC.requesterUnknown, 'unknown API key');
  const byCert = creds.certFingerprint !== undefined ? await findOperatorByCertFingerprint(q, creds.certFingerprint) : undefined;
  if (byKey && byCert && byKey.id !== byCert.id) {
    throw new FunctionFailed(SC.requesterNotAllowed, 'the API key and the client certificate belong to different operators');
  }
  const op = byKey ?? byCert;
  if (!op) {
    throw new FunctionFailed(SC.requesterUnknown, creds.certFingerprint ? 'client certificate not registered for any operator' : 'no credentials: send X-API-Key or a registered TLS client certificate');
  }
  return op;
}

/** Verify header.functionRequesterIdentifier names the authenticated operator, otherwise 1.1/1.2. */
export function checkRequester(op: OperatorRow, header: Es2RequestHeader): void {
  check(header.functionRequesterIdentifier === op.id, SC.requesterNotAllowed,
    `functionRequesterIdentifier ${header.functionRequesterIdentifier} is not the authenticated operator`);
}

/** Verify an ICCID is 19/20 digits (optional trailing F), otherwise 8.2.1/2.1; returns the stored form. */
export function checkIccid(iccid: string): string {
  try {
    return normaliseIccid(iccid);
  } catch {
    throw new FunctionFailed(SC.iccidInvalid, `ICCID must be 19 or 20 digits (a trailing F allowed after 19): ${iccid}`);
  }
}

/** Verify an EID is 32 digits with valid check digits, otherwise 8.1.1/2.1. */
export function checkEid(eid: string): string {
  check(isEid(eid), SC.eidInvalid, `EID must be 32 digits: ${eid}`);
  check(eidChecksumOk(eid), SC.eidInvalid, `EID check digits are wrong: ${eid}`);
  return eid;
}

/** Lock the profile: it must exist (8.2.1/3.9) and belong to the caller (8.2.1/1.2). */
export async function lockOwnedProfile(q: Queryable, op: OperatorRow, iccid: string): Promise<LockedProfile> {
  const p = await lockProfile(q, iccid);
  if (!p) throw new FunctionFailed(SC.iccidUnknown, `unknown ICCID ${iccid}`);
  check(p.operator_id === op.id, SC.iccidNotAllowed, `profile ${iccid} does not belong to operator ${op.id}`);
  return p;
}

/** What profile_events records about an ES2+ call. */
export function callDetail(ctx: Es2Context): Record<string, unknown> {
  return { via: 'ES2+', operator: ctx.operator.id, functionCallIdentifier: ctx.header.functionCallIdentifier };
}
