/**
 * ES2+ test support: an operator with an API key on a running world, a stock of its profiles, and
 * a caller that sends ES2+ requests the way an operator system does and reads back the status.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Queryable } from '../../src/db/db.js';
import { assignProfiles, createOperator, type NewOperator } from '../../src/operators/store.js';
import { insertProfile } from '../../src/orders/store.js';
import type { World } from './world.js';

export interface Es2Answer {
  http: number;
  body: Record<string, any>;
  /** `Executed-Success`, or `Failed S/R`. */
  status: string;
  message?: string;
  adminProtocol?: string;
}

export interface Es2Operator {
  id: string;
  apiKey: string;
  call(fn: string, body?: Record<string, unknown>, opts?: { headers?: Record<string, string>; header?: Record<string, unknown> | null; requester?: string }): Promise<Es2Answer>;
  /** New Available profiles owned by this operator. */
  stock(n: number, profileType?: string): Promise<string[]>;
}

export function statusOf(body: Record<string, any>): string {
  const s = body?.header?.functionExecutionStatus;
  if (!s) return 'no header';
  if (s.status !== 'Failed') return s.status;
  return `Failed ${s.statusCodeData?.subjectCode}/${s.statusCodeData?.reasonCode}`;
}

export async function addProfileType(q: Queryable, name: string): Promise<void> {
  await q.query(`INSERT INTO profile_types (name, service_provider_name, profile_name) VALUES ($1, 'Test SP', $1) ON CONFLICT DO NOTHING`, [name]);
}

export async function stockProfiles(q: Queryable, operatorId: string | null, n: number, profileType = 'default'): Promise<string[]> {
  const iccids: string[] = [];
  for (let i = 0; i < n; i++) iccids.push((await insertProfile(q, { profileType })).iccid);
  if (operatorId) await assignProfiles(q, operatorId, iccids);
  return iccids;
}

export async function addEs2Operator(w: World, o: Partial<NewOperator> = {}): Promise<Es2Operator> {
  const id = o.id ?? `op-${randomBytes(4).toString('hex')}`;
  const { apiKey } = await w.db.tx((q) => createOperator(q, { name: `Operator ${id}`, ...o, id }));
  return {
    id,
    apiKey: apiKey!,
    async call(fn, body = {}, opts = {}) {
      const header = opts.header === null ? undefined : opts.header ?? { functionRequesterIdentifier: opts.requester ?? id, functionCallIdentifier: randomUUID() };
      const r = await w.http.post<Record<string, any>>(
        `/gsma/rsp2/es2plus/${fn}`,
        { ...(header ? { header } : {}), ...body },
        { 'x-api-key': apiKey!, 'x-admin-protocol': 'gsma/rsp/v2.5.0', ...opts.headers },
      );
      const json = r.json ?? {};
      return {
        http: r.status,
        body: json,
        status: statusOf(json),
        message: json?.header?.functionExecutionStatus?.statusCodeData?.message,
        adminProtocol: r.headers['x-admin-protocol'] as string | undefined,
      };
    },
    stock: (n, profileType) => w.db.tx((q) => stockProfiles(q, id, n, profileType)),
  };
}
