/**
 * Family-plan test support: an operator (API key, optional callback URL, a stock of profiles) on a
 * running world, and a caller for the /family REST API that fails the test on unexpected statuses.
 */
import { addEs2Operator, stockProfiles } from './es2plus.js';
import type { World } from './world.js';

export interface Answer {
  status: number;
  body: any;
}

export interface FamilyApi {
  operatorId: string;
  apiKey: string;
  /** Sends a request with the operator key (or the given bearer token); answers status and JSON. */
  call(method: string, path: string, body?: unknown, token?: string): Promise<Answer>;
  /** Like call, but throws unless the status is `expect`. */
  ok(method: string, path: string, body?: unknown, expect?: number, token?: string): Promise<any>;
}

export async function familyOperator(w: World, opts: { callbackUrl?: string; stock?: number } = {}): Promise<FamilyApi> {
  const op = await addEs2Operator(w, opts.callbackUrl ? { callbackUrl: opts.callbackUrl } : {});
  if (opts.stock) await stockProfiles(w.db, op.id, opts.stock);
  const call = async (method: string, path: string, body?: unknown, token?: string): Promise<Answer> => {
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : { 'x-api-key': op.apiKey };
    const r = await w.http.request<any>(method, path, body, headers);
    return { status: r.status, body: r.json ?? r.text };
  };
  return {
    operatorId: op.id,
    apiKey: op.apiKey,
    call,
    async ok(method, path, body, expect = 200, token) {
      const r = await call(method, path, body, token);
      if (r.status !== expect) throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
  };
}

export interface FamilySpec {
  name?: string;
  plan: { dataMb?: number; voiceMin?: number; sms?: number; hotspotMb?: number; billingCycleDay?: number; msisdns?: string[] };
  members: Array<{ name: string; role: 'owner' | 'adult' | 'child'; caps?: Record<string, unknown>; lines: Array<{ device: 'phone' | 'watch' | 'tablet'; name?: string }> }>;
}

export interface Family {
  groupId: string;
  members: Array<{ id: string; name: string; token: string; lines: Array<{ id: string; device: string }> }>;
  /** member name → member */
  byName: Record<string, { id: string; token: string; lines: Array<{ id: string; device: string }> }>;
}

/** Creates a group with its plan (profile type 'default'), members and lines through the API. */
export async function createFamily(api: FamilyApi, spec: FamilySpec): Promise<Family> {
  const g = await api.ok('POST', '/family/groups', { name: spec.name ?? 'Test family' }, 201);
  await api.ok('PUT', `/family/groups/${g.id}/plan`, { profileType: 'default', ...spec.plan });
  const members: Family['members'] = [];
  for (const m of spec.members) {
    const mm = await api.ok('POST', `/family/groups/${g.id}/members`, { name: m.name, role: m.role, ...(m.caps ? { caps: m.caps } : {}) }, 201);
    const lines = [];
    for (const l of m.lines) {
      const ll = await api.ok('POST', `/family/groups/${g.id}/members/${mm.id}/lines`, { device: l.device, numberMode: 'shared', ...(l.name ? { name: l.name } : {}) }, 201);
      lines.push({ id: ll.id as string, device: l.device as string });
    }
    members.push({ id: mm.id, name: m.name, token: mm.token, lines });
  }
  return { groupId: g.id, members, byName: Object.fromEntries(members.map((m) => [m.name, m])) };
}
