import t from 'tap';
import { openTestDb } from '../helpers/db.js';
import { InventoryError, createProfileType, generateProfiles, getProfileType, listInventory, listProfileTypes } from '../../src/inventory/store.js';
import { getProfile } from '../../src/orders/store.js';
import { luhn } from '../../src/rsp/identifiers.js';

// One database for the file (PGlite start-up is the slow part); each test starts from an empty inventory.
let shared: ReturnType<typeof openTestDb> | undefined;
async function freshDb() {
  shared ??= openTestDb(t);
  const db = await shared;
  await db.query('DELETE FROM profile_events');
  await db.query('DELETE FROM profiles');
  return db;
}

t.test('generates unique Luhn-valid 20-digit ICCIDs, IMSIs from MCC/MNC, random Ki/OPc', async (t) => {
  const db = await freshDb();
  await db.query(`INSERT INTO operators (id, name) VALUES ('op-2', 'Two') ON CONFLICT DO NOTHING`);
  const r = await generateProfiles(db, { type: 'default', count: 300, prefix: '8949001', mccMnc: '26201', operator: 'op-2' });
  t.equal(r.generated, 300);
  t.equal(new Set(r.iccids).size, 300, 'ICCIDs unique');
  for (const iccid of r.iccids) {
    if (!/^8949001\d{13}$/.test(iccid) || !luhn(iccid)) t.fail(`bad ICCID ${iccid}`);
  }
  const rows = await db.query<{ iccid: string; imsi: string; ki: Buffer; opc: Buffer; state: string; operator_id: string }>('SELECT * FROM profiles');
  t.equal(rows.length, 300);
  t.equal(new Set(rows.map((p) => p.imsi)).size, 300, 'IMSIs unique');
  t.ok(rows.every((p) => /^26201\d{10}$/.test(p.imsi)), 'IMSIs are MCC+MNC and 15 digits');
  t.ok(rows.every((p) => p.ki.length === 16 && p.opc.length === 16 && !p.ki.equals(p.opc)));
  t.equal(new Set(rows.map((p) => p.ki.toString('hex'))).size, 300, 'Ki random');
  t.ok(rows.every((p) => p.state === 'Available' && p.operator_id === 'op-2'));
  t.equal((await getProfile(db, r.iccids[0]!))!.profile_type, 'default');

  // defaults, and a second batch does not collide with the first
  const again = await generateProfiles(db, { type: 'default', count: 50 });
  t.ok(again.iccids.every((i) => i.startsWith('89000') && i.length === 20 && luhn(i)));
  t.equal(new Set([...r.iccids, ...again.iccids]).size, 350);
});

t.test('a nearly full number space still yields unique ICCIDs, or is refused', async (t) => {
  const db = await freshDb();
  // prefix of 16 digits: 1000 possible ICCIDs
  const a = await generateProfiles(db, { type: 'default', count: 400, prefix: '8900000000000001' });
  t.equal(new Set(a.iccids).size, 400);
  await t.rejects(generateProfiles(db, { type: 'default', count: 10, prefix: '890000000000000001' }), { code: 'invalid', message: /room for only 10/ });
  await t.rejects(generateProfiles(db, { type: 'default', count: 0 }), InventoryError);
  await t.rejects(generateProfiles(db, { type: 'default', count: 1, prefix: '89x' }), { code: 'invalid' });
  await t.rejects(generateProfiles(db, { type: 'default', count: 1, mccMnc: '0010' }), { code: 'invalid' });
  await t.rejects(generateProfiles(db, { type: 'nope', count: 2 }), { code: 'notFound' });
  await t.rejects(generateProfiles(db, { type: 'default', count: 2, operator: 'ghost' }), { code: 'notFound' });
  t.equal((await listInventory(db, {})).total, 400, 'failed batches wrote nothing');
});

t.test('profile types: create, conflict, replace, list with counts', async (t) => {
  const db = await freshDb();
  const pt = { name: 'iot-1', serviceProviderName: 'IoT Co', profileName: 'IoT profile', profileClass: 2 as const };
  t.same(await createProfileType(db, pt), { ...pt, template: null });
  await t.rejects(createProfileType(db, pt), { code: 'conflict' });
  await t.rejects(createProfileType(db, { ...pt, name: 'bad name!' }), { code: 'invalid' });
  await t.rejects(createProfileType(db, { ...pt, name: 'x', serviceProviderName: 'S'.repeat(33) }), { code: 'invalid' });
  await t.rejects(createProfileType(db, { name: 'x', profileName: 'no service provider name, no template' }), { code: 'invalid' });
  t.same(await createProfileType(db, { ...pt, profileName: 'renamed', profileClass: 0 }, { replace: true }), { ...pt, profileName: 'renamed', profileClass: 0, template: null });
  t.equal((await getProfileType(db, 'iot-1'))!.profileName, 'renamed');
  await generateProfiles(db, { type: 'iot-1', count: 3 });
  const types = await listProfileTypes(db);
  t.same(types.map((x) => x.name), ['default', 'iot-1']);
  t.same(types.find((x) => x.name === 'iot-1')!.counts, { Available: 3 });
  t.same(types.find((x) => x.name === 'default')!.counts, {});
});
