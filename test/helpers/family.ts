/** Family API test support: a world with an operator, a stock of profiles of a family profile type, and JSON calls with a chosen credential. */
import { addEs2Operator, addProfileType, type Es2Operator } from './es2plus.js';
import type { World } from './world.js';

export interface Reply {
  status: number;
  body: any;
}

export type Cred = { apiKey: string } | { token: string } | null;

export function caller(w: World) {
  return async (method: string, path: string, cred: Cred, body?: unknown): Promise<Reply> => {
    const headers: Record<string, string> = {};
    if (cred && 'apiKey' in cred) headers['x-api-key'] = cred.apiKey;
    if (cred && 'token' in cred) headers.authorization = `Bearer ${cred.token}`;
    const r = await w.http.request<any>(method, `/family${path}`, body, headers);
    return { status: r.status, body: r.json ?? r.text };
  };
}

export const PROFILE_TYPE = 'family-5g';

export async function familyOperator(w: World, stock = 4): Promise<Es2Operator & { cred: Cred }> {
  await w.db.tx((q) => addProfileType(q, PROFILE_TYPE));
  const op = await addEs2Operator(w);
  if (stock) await op.stock(stock, PROFILE_TYPE);
  return Object.assign(op, { cred: { apiKey: op.apiKey } });
}

/** Everything the family API could change, for "a refusal changes nothing". */
export async function snapshot(w: World) {
  const q = (sql: string) => w.db.query(sql);
  return {
    groups: await q('SELECT * FROM family_groups ORDER BY id'),
    members: await q('SELECT * FROM family_members ORDER BY id'),
    lines: await q('SELECT * FROM family_lines ORDER BY id'),
    bindings: await q('SELECT * FROM family_line_profiles ORDER BY id'),
    profiles: await q('SELECT iccid, state, eid, matching_id, device_state, updated_at FROM profiles ORDER BY iccid'),
    events: await q('SELECT count(*)::int AS n FROM group_events'),
    profileEvents: await q('SELECT count(*)::int AS n FROM profile_events'),
  };
}
