import t from 'tap';
import { openTestDb } from '../helpers/db.js';
import { createProfileType, generateProfiles, listInventory, listOrders } from '../../src/inventory/store.js';
import { createReleasedOrder } from '../../src/orders/store.js';

t.test('inventory listing: filters, counts per state, pagination, no secrets', async (t) => {
  const db = await openTestDb(t);
  await createProfileType(db, { name: 'b', serviceProviderName: 'B', profileName: 'B', profileClass: 2 });
  await db.query(`INSERT INTO operators (id, name) VALUES ('op-a', 'A'), ('op-b', 'B')`);
  const a = await generateProfiles(db, { type: 'default', count: 6, operator: 'op-a' });
  await generateProfiles(db, { type: 'b', count: 4, operator: 'op-b' });
  await generateProfiles(db, { type: 'b', count: 2 });
  // two of op-a's profiles become orders
  await db.tx((q) => createReleasedOrder(q, { iccid: a.iccids[0]! }));
  await db.tx((q) => createReleasedOrder(q, { iccid: a.iccids[1]!, confirmationCode: '1234' }));
  await db.query(`UPDATE profiles SET state = 'Installed' WHERE iccid = $1`, [a.iccids[1]]);

  const all = await listInventory(db, {});
  t.equal(all.total, 12);
  t.match(all.counts, { Available: 10, Released: 1, Installed: 1, Allocated: 0 });
  t.equal(all.profiles.length, 12);
  t.notOk('ki' in all.profiles[0]! || 'opc' in all.profiles[0]!, 'no Ki/OPc in the listing');

  const opA = await listInventory(db, { operator: 'op-a' });
  t.equal(opA.total, 6);
  t.match(opA.counts, { Available: 4, Released: 1, Installed: 1 });
  t.ok(opA.profiles.every((p) => p.operator === 'op-a' && p.profileType === 'default'));

  const bAvail = await listInventory(db, { type: 'b', state: 'Available' });
  t.equal(bAvail.profiles.length, 6);
  t.equal(bAvail.counts.Available, 6);
  t.equal((await listInventory(db, { type: 'b', operator: 'op-b' })).total, 4);

  const page1 = await listInventory(db, { limit: 5 });
  const page2 = await listInventory(db, { limit: 5, offset: 5 });
  t.equal(page1.profiles.length, 5);
  t.equal(new Set([...page1.profiles, ...page2.profiles].map((p) => p.iccid)).size, 10);
  await t.rejects(listInventory(db, { state: 'Bogus' }), { code: 'invalid' });

  const orders = await listOrders(db, {});
  t.same(orders.map((o) => o.iccid).sort(), [a.iccids[0], a.iccids[1]].sort());
  t.same((await listOrders(db, { state: 'Installed' })).map((o) => o.iccid), [a.iccids[1]]);
  t.equal((await listOrders(db, { operator: 'op-b' })).length, 0);
  t.equal((await listOrders(db, { state: 'Available', operator: 'op-b' })).length, 4);
});
