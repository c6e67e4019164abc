import { randomBytes } from 'node:crypto';
import t from 'tap';
import { openTestDb } from '../helpers/db.js';
import { importInventory, parseCsv, parseJson } from '../../src/inventory/import.js';
import { InventoryError, createProfileType, listInventory } from '../../src/inventory/store.js';
import { getProfile, profileHistory } from '../../src/orders/store.js';
import { luhn, withLuhn } from '../../src/rsp/identifiers.js';

const hex = () => randomBytes(16).toString('hex').toUpperCase();
const row = (i: number) => ({ iccid: withLuhn(`8944100000000000${String(i).padStart(3, '0')}`), imsi: `23410000000${String(i).padStart(4, '0')}`, ki: hex(), opc: hex() });

// One database for the file (PGlite start-up is the slow part); each test starts from an empty inventory.
let shared: ReturnType<typeof openTestDb> | undefined;
async function setup(_t: unknown) {
  const first = !shared;
  shared ??= openTestDb(t);
  const db = await shared;
  if (first) {
    await createProfileType(db, { name: 'uk-test', serviceProviderName: 'Test Op', profileName: 'UK test', profileClass: 1 });
    await db.query(`INSERT INTO operators (id, name) VALUES ('op-1', 'Operator One')`);
  }
  await db.query('DELETE FROM profile_events');
  await db.query('DELETE FROM profiles');
  return db;
}

t.test('CSV import: header in any order, quoted fields, comments, per-row type, operator owner', async (t) => {
  const db = await setup(t);
  const [a, b] = [row(1), row(2)];
  const c = { ...row(3), iccid: withLuhn('894410000000000003') }; // 19 digits: may carry an F filler
  const csv = [
    '# exported by the card vendor',
    'IMSI,iccid,ki,opc,type',
    `${a.imsi},${a.iccid},${a.ki},${a.opc},`,
    `"${b.imsi}", "${b.iccid}" ,${b.ki.toLowerCase()},${b.opc},default`,
    '',
    `${c.imsi},${c.iccid}F,${c.ki},${c.opc},uk-test`,
  ].join('\r\n');
  t.equal(parseCsv(csv).length, 3);
  const r = await importInventory(db, 'csv', csv, { type: 'uk-test', operator: 'op-1', luhn: true });
  t.equal(r.imported, 3);
  t.same(r.iccids, [a.iccid, b.iccid, c.iccid]);
  const pa = await getProfile(db, a.iccid);
  t.equal(pa!.state, 'Available');
  t.equal(pa!.profile_type, 'uk-test');
  t.equal(pa!.imsi, a.imsi);
  t.equal(pa!.ki.toString('hex').toUpperCase(), a.ki);
  t.equal(pa!.opc.toString('hex').toUpperCase(), a.opc);
  t.equal((pa as unknown as { operator_id: string }).operator_id, 'op-1');
  t.equal((await getProfile(db, b.iccid))!.profile_type, 'default');
  t.equal((await getProfile(db, b.iccid))!.ki.toString('hex').toUpperCase(), b.ki);
  const h = await profileHistory(db, a.iccid);
  t.equal(h[0]!.event, 'created');
  t.match(h[0]!.detail, { source: 'import', operator: 'op-1', profileType: 'uk-test' });
  const inv = await listInventory(db, { operator: 'op-1' });
  t.equal(inv.counts.Available, 3);
});

t.test('JSON import: array, JSON text and {profiles}', async (t) => {
  const db = await setup(t);
  const rows = [row(10), row(11)];
  t.equal((await importInventory(db, 'json', rows, { type: 'uk-test' })).imported, 2);
  t.equal((await importInventory(db, 'json', JSON.stringify([row(12)]), { type: 'uk-test' })).imported, 1);
  t.equal((await importInventory(db, 'json', JSON.stringify({ profiles: [row(13)] }), { type: 'uk-test' })).imported, 1);
  t.equal((await listInventory(db, { type: 'uk-test' })).counts.Available, 4);
  t.throws(() => parseJson('{not json'), { code: 'invalid' });
  t.throws(() => parseJson('{"a":1}'), { code: 'invalid' });
});

t.test('one bad row aborts the whole import and names the row', async (t) => {
  const db = await setup(t);
  const good = [row(20), row(21), row(22)];
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['short Ki', { ...row(23), ki: 'ABCD' }, /row 4: Ki must be 32 hex digits/],
    ['non-hex OPc', { ...row(23), opc: 'G'.repeat(32) }, /row 4: OPc must be 32 hex digits/],
    ['IMSI letters', { ...row(23), imsi: '23410ABC' }, /row 4: IMSI must be 6 to 15 digits/],
    ['ICCID too short', { ...row(23), iccid: '894410' }, /row 4: ICCID must be 19 or 20 digits/],
    ['duplicate ICCID in file', { ...row(23), iccid: good[0]!.iccid }, /row 4: duplicate ICCID .* \(also row 1\)/],
    ['duplicate IMSI in file', { ...row(23), imsi: good[1]!.imsi }, /row 4: duplicate IMSI .* \(also row 2\)/],
    ['unknown column', { ...row(23), pin1: '0000' }, /row 4: unknown field/],
  ];
  for (const [name, bad, msg] of cases) {
    const err = await importInventory(db, 'json', [...good, bad], { type: 'uk-test' }).catch((e: unknown) => e);
    t.type(err, InventoryError, name);
    t.equal((err as InventoryError).code, 'invalid', name);
    t.match((err as InventoryError).message, msg, name);
    t.match((err as InventoryError).message, /nothing imported/, name);
  }
  // CSV: the same, and a wrong field count
  const csv = `iccid,imsi,ki,opc\n${good.map((r) => `${r.iccid},${r.imsi},${r.ki},${r.opc}`).join('\n')}\n${row(24).iccid},${row(24).imsi},${row(24).ki}\n`;
  await t.rejects(importInventory(db, 'csv', csv, { type: 'uk-test' }), { code: 'invalid', message: /row 4 \(line 5\): 3 fields/ });
  await t.rejects(importInventory(db, 'csv', 'iccid,imsi,ki\n1,2,3', { type: 'uk-test' }), { code: 'invalid', message: /lacks column opc/ });
  // Luhn is checked only when asked for
  const badLuhn = { ...row(25), iccid: row(25).iccid.slice(0, 19) + String((Number(row(25).iccid[19]) + 1) % 10) };
  t.notOk(luhn(badLuhn.iccid));
  await t.rejects(importInventory(db, 'json', [...good, badLuhn], { type: 'uk-test', luhn: true }), { code: 'invalid', message: /row 4: ICCID .* fails the Luhn check/ });
  // unknown type / operator
  await t.rejects(importInventory(db, 'json', good, { type: 'nope' }), { code: 'notFound', message: /unknown profile type\(s\): nope/ });
  await t.rejects(importInventory(db, 'json', good, { type: 'uk-test', operator: 'op-x' }), { code: 'notFound', message: /unknown operator op-x/ });
  t.equal((await listInventory(db, {})).total, 0, 'nothing was written by any failed import');
  t.equal((await db.query('SELECT * FROM profile_events')).length, 0);
});

t.test('duplicates of existing profiles abort the import (conflict), in one transaction', async (t) => {
  const db = await setup(t);
  const first = [row(30), row(31)];
  await importInventory(db, 'json', first, { type: 'uk-test' });
  const second = [row(32), row(33), { ...row(34), iccid: first[1]!.iccid }];
  await t.rejects(importInventory(db, 'json', second, { type: 'uk-test' }), { code: 'conflict', message: new RegExp(`ICCID ${first[1]!.iccid} already exists`) });
  await t.rejects(importInventory(db, 'json', [row(35), { ...row(36), imsi: first[0]!.imsi }], { type: 'uk-test' }), { code: 'conflict', message: /IMSI .* already exists/ });
  t.equal((await listInventory(db, {})).total, 2);
  t.notOk(await getProfile(db, second[0]!.iccid));
});

t.test('a row type that does not exist aborts the import', async (t) => {
  const db = await setup(t);
  await t.rejects(importInventory(db, 'json', [row(40), { ...row(41), type: 'missing-type' }], { type: 'uk-test' }), { code: 'notFound', message: /missing-type/ });
  t.equal((await listInventory(db, {})).total, 0);
});

t.test('NUL and lone surrogates in an import file (the CLI path, no HTTP schema): refused by the checks, never by the database', async (t) => {
  const db = await setup(t);
  const a = row(7);
  for (const bad of ['x\u0000y', 'x\uD800y']) {
    const csv = `iccid,imsi,ki,opc,type\n${a.iccid},${a.imsi},${a.ki},${a.opc},uk${bad}\n`;
    await t.rejects(importInventory(db, 'csv', csv, { type: 'uk-test' }), { name: 'InventoryError', code: 'invalid', message: /bad profile type name/ }, 'in a CSV type column');
    await t.rejects(importInventory(db, 'json', [{ ...a, imsi: `${a.imsi}${bad}` }], { type: 'uk-test' }), { name: 'InventoryError', code: 'invalid', message: /IMSI/ }, 'in a JSON IMSI');
    await t.rejects(importInventory(db, 'json', [a], { type: 'uk-test', operator: `op${bad}` }), { name: 'InventoryError', code: 'notFound', refs: { operator: `op${bad}` } }, 'in the operator: no such operator');
    await t.rejects(importInventory(db, 'csv', `iccid,imsi,ki,opc,no${bad}te\n`, { type: 'uk-test' }), { name: 'InventoryError', code: 'invalid' }, 'in a CSV header');
  }
  t.equal((await listInventory(db, {})).total, 0, 'nothing imported');
});
