/**
 * What the database refuses of a profile or an RSP session whatever the code does: the rules of
 * migration 015 (domains for the identifiers and states, a trigger for the key lengths), the
 * same as the CHECK constraints they replaced, on INSERT and on UPDATE.
 */
import t from 'tap';
import { openTestDb } from '../helpers/db.js';

const ok = {
  iccid: '8900000000000000001', imsi: '001010000000001', ki: Buffer.alloc(16, 1), opc: Buffer.alloc(16, 2),
  scp03_keys: Buffer.alloc(48, 3) as Buffer | null, state: 'Available', eid: null as string | null, device_state: null as string | null,
};

const insert = (db: Awaited<ReturnType<typeof openTestDb>>, p: typeof ok) =>
  db.query(`INSERT INTO profiles (iccid, profile_type, imsi, ki, opc, scp03_keys, state, eid, device_state)
            VALUES ($1, 'default', $2, $3, $4, $5, $6, $7, $8)`, [p.iccid, p.imsi, p.ki, p.opc, p.scp03_keys, p.state, p.eid, p.device_state]);

const refused = async (t: { equal(...a: unknown[]): unknown }, what: string, run: () => Promise<unknown>) => {
  const err = await run().then(() => undefined, (e: unknown) => e as { code?: string });
  t.equal(err?.code, '23514', `${what}: refused as a check violation`);
};

t.test('profiles: identifiers, states and key lengths', async (t) => {
  const db = await openTestDb(t);
  await insert(db, ok);
  t.equal((await db.query('SELECT 1 FROM profiles WHERE iccid = $1', [ok.iccid])).length, 1, 'a good row is taken');
  await insert(db, { ...ok, iccid: '8900000000000000002', scp03_keys: null, eid: '89049032000000000000000000000001', device_state: 'Enabled', state: 'Installed' });
  let n = 10;
  const next = () => `89000000000000000${n++}`;
  for (const [what, p] of [
    ['ICCID with a letter', { ...ok, iccid: '890000000000000000A' }],
    ['ICCID of 18 digits', { ...ok, iccid: '890000000000000000' }],
    ['IMSI of 5 digits', { ...ok, iccid: next(), imsi: '00101' }],
    ['EID of 31 digits', { ...ok, iccid: next(), eid: '8904903200000000000000000000000' }],
    ['state unknown', { ...ok, iccid: next(), state: 'Sold' }],
    ['device state unknown', { ...ok, iccid: next(), device_state: 'On' }],
    ['Ki of 15 bytes', { ...ok, iccid: next(), ki: Buffer.alloc(15) }],
    ['OPc of 17 bytes', { ...ok, iccid: next(), opc: Buffer.alloc(17) }],
    ['SCP03 keys of 32 bytes', { ...ok, iccid: next(), scp03_keys: Buffer.alloc(32) }],
  ] as const) await refused(t, `INSERT: ${what}`, () => insert(db, p));

  await refused(t, 'UPDATE: state unknown', () => db.query(`UPDATE profiles SET state = 'Sold' WHERE iccid = $1`, [ok.iccid]));
  await refused(t, 'UPDATE: EID too short', () => db.query(`UPDATE profiles SET eid = '1234' WHERE iccid = $1`, [ok.iccid]));
  await refused(t, 'UPDATE: Ki of 8 bytes', () => db.query('UPDATE profiles SET ki = $2 WHERE iccid = $1', [ok.iccid, Buffer.alloc(8)]));
  await db.query(`UPDATE profiles SET state = 'Released', eid = '89049032000000000000000000000002' WHERE iccid = $1`, [ok.iccid]);
  t.same(await db.query('SELECT state, eid FROM profiles WHERE iccid = $1', [ok.iccid]), [{ state: 'Released', eid: '89049032000000000000000000000002' }], 'good updates pass');
});

t.test('rsp_sessions: the states a row can be in', async (t) => {
  const db = await openTestDb(t);
  const session = (state: string) => db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, expires_at)
                                                VALUES ($1, $2, 'AA', 'x', '\\x00', now())`, [`T-${state}`, state]);
  for (const s of ['authenticated', 'bound', 'ended']) await session(s);
  await refused(t, "'initiated' (never a row: the transactionId carries it)", () => session('initiated'));
  await refused(t, 'UPDATE: state unknown', () => db.query(`UPDATE rsp_sessions SET state = 'done' WHERE transaction_id = 'T-bound'`));
});
