/**
 * ES2+ downloadOrder, confirmOrder, cancelOrder and releaseProfile: the state machine of docs/protocol.md#profile-states (docs/state-machine.md)
 * and every status pair of docs/protocol.md#es2-functions-and-callbacks for these functions. A refused call changes nothing.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { profileHistory } from '../../src/orders/store.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator, addProfileType, stockProfiles, type Es2Operator } from '../helpers/es2plus.js';
import { sampleEid } from '../../src/pki/generate.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';

const EID_A = eidWithCheckDigits(sampleEid().slice(0, 20) + '0000000901');
const EID_B = eidWithCheckDigits(sampleEid().slice(0, 20) + '0000000902');

// One server for the whole file; every test has its own operator (and so its own profiles).
let world: Promise<World> | undefined;
async function setup(_t?: unknown) {
  world ??= startWorld(t);
  const w = await world;
  const op = await addEs2Operator(w);
  return { w, op };
}

/** A snapshot of what a refused call must leave alone. */
async function snapshot(w: World, iccid: string) {
  const p = (await w.profile(iccid))!;
  const events = await profileHistory(w.db, iccid);
  return { ...p, updated_at: p.updated_at.toISOString(), events: events.length };
}

async function linked(op: Es2Operator, eid?: string) {
  const [iccid] = await op.stock(1);
  const r = await op.call('downloadOrder', { iccid, ...(eid ? { eid } : {}) });
  if (r.status !== 'Executed-Success') throw new Error(`downloadOrder: ${r.status}`);
  return iccid!;
}

t.test('downloadOrder', async (t) => {
  const { w, op } = await setup(t);
  const other = await addEs2Operator(w);
  await addProfileType(w.db, 'alt');
  await addProfileType(w.db, 'empty');
  const [a, b] = await op.stock(2);
  const [theirs] = await other.stock(1);
  const [alt] = await op.stock(1, 'alt');

  t.test('by ICCID without EID: Allocated, limits of the operator applied', async (t) => {
    const r = await op.call('downloadOrder', { iccid: a });
    t.equal(r.status, 'Executed-Success');
    t.equal(r.body.iccid, a);
    t.equal(r.adminProtocol, 'gsma/rsp/v2.5.0');
    const p = (await w.profile(a!))!;
    t.equal(p.state, 'Allocated');
    t.equal(p.eid, null);
    t.equal(p.cc_max_attempts, 3);
    t.equal(p.max_download_attempts, 5);
    t.equal(p.expires_at, null);
  });

  t.test('by profile type with EID: Linked and bound', async (t) => {
    const r = await op.call('downloadOrder', { profileType: 'default', eid: EID_A });
    t.equal(r.status, 'Executed-Success');
    t.equal(r.body.iccid, b, 'the only Available one left');
    const p = (await w.profile(b!))!;
    t.equal(p.state, 'Linked');
    t.equal(p.eid, EID_A);
    const ev = await profileHistory(w.db, b!);
    t.match(ev.at(-1), { event: 'linked', detail: { from: 'Available', to: 'Linked', operator: op.id, via: 'ES2+', eid: EID_A } });
    t.type((ev.at(-1)!.detail as any).functionCallIdentifier, 'string');
  });

  t.test('status pairs', async (t) => {
    const before = await snapshot(w, alt!);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['unknown ICCID', { iccid: '89000000000000000007' }, 'Failed 8.2.1/3.9'],
      ['another operator\'s ICCID', { iccid: theirs }, 'Failed 8.2.1/1.2'],
      ['ICCID not Available', { iccid: a }, 'Failed 8.2.1/3.3'],
      ['type does not match the ICCID', { iccid: alt, profileType: 'default' }, 'Failed 8.2.5/3.8'],
      ['unknown profile type', { profileType: 'nope' }, 'Failed 8.2.5/3.9'],
      ['no Available profile of the type left', { profileType: 'default' }, 'Failed 8.2.5/3.7'],
      ['no profile of the type for this operator', { profileType: 'empty' }, 'Failed 8.2.5/1.2'],
      ['neither ICCID nor type', { eid: EID_A }, 'Failed 8.2.5/2.3'],
      ['bad EID check digits', { iccid: alt, eid: EID_A.slice(0, 30) + (EID_A.slice(30) === '00' ? '01' : '00') }, 'Failed 8.1.1/2.1'],
      ['ICCID of 18 digits', { iccid: '890000000000000001' }, 'Failed 8.2.1/2.1'],
    ];
    for (const [name, body, want] of cases) t.equal((await op.call('downloadOrder', body)).status, want, name);
    t.same(await snapshot(w, alt!), before, 'refused calls changed nothing');
    t.equal((await w.profile(theirs!))!.state, 'Available', 'the other operator\'s profile untouched');
  });

  t.test('19-digit ICCID given with trailing F', async (t) => {
    const iccid19 = '8900000000000000123';
    await w.db.tx(async (q) => {
      await q.query(`INSERT INTO profiles (iccid, profile_type, imsi, ki, opc, state, operator_id)
        VALUES ($1, 'default', '001010000000001', $2, $2, 'Available', $3)`, [iccid19, Buffer.alloc(16, 1), op.id]);
    });
    const r = await op.call('downloadOrder', { iccid: iccid19 + 'F' });
    t.equal(r.status, 'Executed-Success');
    t.equal(r.body.iccid, iccid19, 'answered as stored');
    const r2 = await op.call('releaseProfile', { iccid: iccid19.toLowerCase() + 'f' });
    t.equal(r2.status, 'Failed 8.2.1/3.5', 'lower-case f accepted too (and Allocated cannot be released)');
  });
});

t.test('operator limits are copied onto the order', async (t) => {
  const { w } = await setup();
  const op = await addEs2Operator(w, { ccMaxAttempts: 2, maxDownloadAttempts: 7, orderTtlSeconds: 3600 });
  const [iccid] = await op.stock(1);
  const before = Date.now();
  t.equal((await op.call('downloadOrder', { iccid })).status, 'Executed-Success');
  const p = (await w.profile(iccid!))!;
  t.equal(p.cc_max_attempts, 2);
  t.equal(p.max_download_attempts, 7);
  const exp = p.expires_at!.getTime();
  t.ok(exp >= before + 3600_000 - 1000 && exp <= Date.now() + 3600_000 + 1000, 'expires one TTL after the order');
});

t.test('confirmOrder', async (t) => {
  const { w, op } = await setup(t);

  t.test('generated MatchingID, confirmation code stored hashed, Confirmed then released', async (t) => {
    const iccid = await linked(op);
    const r = await op.call('confirmOrder', { iccid, confirmationCode: '12345678', releaseFlag: false });
    t.equal(r.status, 'Executed-Success');
    t.match(r.body.matchingId, /^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/);
    t.equal(r.body.smdpAddress, w.config.smdpAddress);
    t.notOk('eid' in r.body, 'no EID to answer');
    const p = (await w.profile(iccid))!;
    t.equal(p.state, 'Confirmed');
    t.equal(p.matching_id, r.body.matchingId);
    t.same(p.cc_digest, createHash('sha256').update('12345678').digest(), 'SHA-256 of the code, not the code');
    t.equal((await op.call('confirmOrder', { iccid, releaseFlag: true })).status, 'Failed 8.2.1/3.5', 'confirmed twice');
    t.equal((await op.call('releaseProfile', { iccid })).status, 'Executed-Success');
    t.equal((await w.profile(iccid))!.state, 'Released');
    t.equal((await op.call('releaseProfile', { iccid })).status, 'Failed 8.2.1/3.5', 'released twice');
    const events = (await profileHistory(w.db, iccid)).map((e) => e.event);
    t.same(events, ['created', 'allocated', 'confirmed', 'released']);
  });

  t.test('given MatchingID and EID, released at once', async (t) => {
    const iccid = await linked(op);
    const r = await op.call('confirmOrder', { iccid, eid: EID_A, matchingId: 'MY-ORDER-1', releaseFlag: true });
    t.equal(r.status, 'Executed-Success');
    t.same({ eid: r.body.eid, matchingId: r.body.matchingId }, { eid: EID_A, matchingId: 'MY-ORDER-1' });
    const p = (await w.profile(iccid))!;
    t.match(p, { state: 'Released', eid: EID_A, matching_id: 'MY-ORDER-1', cc_digest: null });
  });

  t.test('status pairs, each changing nothing', async (t) => {
    const [avail] = await op.stock(1);
    const plain = await linked(op);
    const bound = await linked(op, EID_A);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['Available profile', { iccid: avail, releaseFlag: true }, 'Failed 8.2.1/3.5'],
      ['unknown ICCID', { iccid: '89000000000000000007', releaseFlag: true }, 'Failed 8.2.1/3.9'],
      ['different EID than linked', { iccid: bound, eid: EID_B, releaseFlag: true }, 'Failed 8.2.1/3.10'],
      ['MatchingID used by another order', { iccid: plain, matchingId: 'MY-ORDER-1', releaseFlag: true }, 'Failed 8.2.6/3.3'],
      ['MatchingID with lower case', { iccid: plain, matchingId: 'my-order-2', releaseFlag: true }, 'Failed 8.2.6/2.1'],
      ['MatchingID with a space', { iccid: plain, matchingId: 'A B', releaseFlag: true }, 'Failed 8.2.6/2.1'],
      ['empty MatchingID without EID', { iccid: plain, matchingId: '', releaseFlag: true }, 'Failed 8.1.1/2.2'],
      ['SM-DS without EID', { iccid: plain, smdsAddress: 'smds.example.com', releaseFlag: true }, 'Failed 8.1.1/2.2'],
      ['SM-DS with EID: SM-DS unreachable', { iccid: bound, smdsAddress: '127.0.0.1:1', releaseFlag: true }, 'Failed 8.9/5.1'],
      ['SM-DS address not host[:port]', { iccid: bound, smdsAddress: 'smds example', releaseFlag: true }, 'Failed 8.9.1/2.1'],
      ['releaseFlag missing', { iccid: plain }, 'Failed 1.3.1/2.2'],
      ['releaseFlag not a boolean', { iccid: plain, releaseFlag: 'soon' }, 'Failed 1.3.1/2.1'],
    ];
    const before = { plain: await snapshot(w, plain), bound: await snapshot(w, bound), avail: await snapshot(w, avail!) };
    for (const [name, body, want] of cases) {
      const r = await op.call('confirmOrder', body);
      t.equal(r.status, want, name);
      if (want === 'Failed 8.9/5.1') t.match(r.message, /SM-DS 127\.0\.0\.1:1 unreachable/, 'clear message');
    }
    t.same({ plain: await snapshot(w, plain), bound: await snapshot(w, bound), avail: await snapshot(w, avail!) }, before, 'nothing changed');
  });

  t.test('default SM-DP+ order: empty MatchingID with the linked EID', async (t) => {
    const iccid = await linked(op, EID_B);
    const r = await op.call('confirmOrder', { iccid, matchingId: '', releaseFlag: true });
    t.equal(r.status, 'Executed-Success');
    t.same({ eid: r.body.eid, matchingId: r.body.matchingId }, { eid: EID_B, matchingId: '' });
    t.match(await w.profile(iccid), { state: 'Released', eid: EID_B, matching_id: null });
  });
});

t.test('cancelOrder', async (t) => {
  const { w, op } = await setup(t);

  t.test('Released order back to Available, order data cleared, sessions ended', async (t) => {
    const iccid = await linked(op, EID_A);
    const c = await op.call('confirmOrder', { iccid, confirmationCode: '1111', releaseFlag: true });
    await w.db.query(`INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, euicc_challenge, server_challenge, expires_at, eid, iccid)
      VALUES ('AA01', 'authenticated', 'X', 'x', '\\x00', '\\x00', now() + interval '1 hour', $1, $2)`, [EID_A, iccid]);
    const r = await op.call('cancelOrder', { iccid, eid: EID_A, matchingId: c.body.matchingId, finalProfileStatusIndicator: 'Available' });
    t.equal(r.status, 'Executed-Success');
    t.match(await w.profile(iccid), {
      state: 'Available', eid: null, matching_id: null, cc_digest: null, cc_attempts: 0, download_attempts: 0, expires_at: null,
    });
    t.equal((await w.db.query('SELECT 1 FROM rsp_sessions WHERE iccid = $1', [iccid])).length, 0, 'live session ended');
    t.equal((await op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Available' })).status, 'Failed 8.2.1/3.5', 'Available cannot be cancelled');
    t.equal((await op.call('downloadOrder', { iccid })).status, 'Executed-Success', 'the profile can be ordered again');
  });

  t.test('Unavailable is final', async (t) => {
    const iccid = await linked(op);
    t.equal((await op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Unavailable' })).status, 'Executed-Success');
    t.equal((await w.profile(iccid))!.state, 'Unavailable');
    t.equal((await op.call('cancelOrder', { iccid, finalProfileStatusIndicator: 'Available' })).status, 'Failed 8.2.1/3.5');
    t.equal((await op.call('downloadOrder', { iccid })).status, 'Failed 8.2.1/3.3');
    const events = (await profileHistory(w.db, iccid)).map((e) => e.event);
    t.same(events, ['created', 'allocated', 'cancelled-unavailable']);
  });

  t.test('status pairs, each changing nothing', async (t) => {
    const iccid = await linked(op, EID_A);
    const c = await op.call('confirmOrder', { iccid, releaseFlag: false });
    const installed = await linked(op);
    await w.db.query(`UPDATE profiles SET state = 'Installed' WHERE iccid = $1`, [installed]);
    const before = await snapshot(w, iccid);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['other EID', { iccid, eid: EID_B, finalProfileStatusIndicator: 'Available' }, 'Failed 8.1.1/3.10'],
      ['other MatchingID', { iccid, matchingId: 'NOT-' + c.body.matchingId, finalProfileStatusIndicator: 'Available' }, 'Failed 8.2.6/3.10'],
      ['Installed', { iccid: installed, finalProfileStatusIndicator: 'Available' }, 'Failed 8.2.1/3.5'],
      ['unknown ICCID', { iccid: '89000000000000000007', finalProfileStatusIndicator: 'Available' }, 'Failed 8.2.1/3.9'],
      ['finalProfileStatusIndicator missing', { iccid }, 'Failed 8.2.1/2.2'],
      ['ICCID missing', { finalProfileStatusIndicator: 'Available' }, 'Failed 8.2.1/2.2'],
      ['finalProfileStatusIndicator invalid', { iccid, finalProfileStatusIndicator: 'Gone' }, 'Failed 1.3.1/2.1'],
    ];
    for (const [name, body, want] of cases) t.equal((await op.call('cancelOrder', body)).status, want, name);
    t.same(await snapshot(w, iccid), before, 'nothing changed');
  });
});

t.test('releaseProfile refuses every state but Confirmed', async (t) => {
  const { w, op } = await setup(t);
  const [avail] = await op.stock(1);
  t.equal((await op.call('releaseProfile', { iccid: avail })).status, 'Failed 8.2.1/3.5', 'Available');
  const iccid = await linked(op);
  t.equal((await op.call('releaseProfile', { iccid })).status, 'Failed 8.2.1/3.5', 'Allocated');
  await op.call('confirmOrder', { iccid, releaseFlag: true });
  t.equal((await op.call('releaseProfile', { iccid })).status, 'Failed 8.2.1/3.5', 'Released');
  t.equal((await w.profile(iccid))!.state, 'Released');
});

t.test('no operator touches another operator\'s profiles', async (t) => {
  const { w, op } = await setup(t);
  const other = await addEs2Operator(w);
  const iccid = await linked(op);
  const [unowned] = await w.db.tx((q) => stockProfiles(q, null, 1));
  const before = await snapshot(w, iccid);
  for (const [fn, body] of [
    ['downloadOrder', { iccid: unowned }],
    ['confirmOrder', { iccid, releaseFlag: true }],
    ['cancelOrder', { iccid, finalProfileStatusIndicator: 'Unavailable' }],
    ['releaseProfile', { iccid }],
  ] as const) {
    t.equal((await other.call(fn, body)).status, 'Failed 8.2.1/1.2', fn);
  }
  t.same(await snapshot(w, iccid), before);
});
