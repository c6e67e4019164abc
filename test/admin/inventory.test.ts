import { randomBytes } from 'node:crypto';
import t from 'tap';
import { startWorld } from '../helpers/world.js';
import { luhn, withLuhn } from '../../src/rsp/identifiers.js';

const hex = () => randomBytes(16).toString('hex');

t.test('admin inventory API: types, import, generate, listing, orders and history', async (t) => {
  const w = await startWorld(t);
  const api = (method: 'GET' | 'POST', url: string, payload?: object) => w.app.inject({ method, url, ...(payload ? { payload } : {}) });

  let r = await api('POST', '/admin/profile-types', { name: 'lab', serviceProviderName: 'Lab Op', profileName: 'Lab profile', profileClass: 0 });
  t.equal(r.statusCode, 201);
  t.same(r.json(), { name: 'lab', serviceProviderName: 'Lab Op', profileName: 'Lab profile', profileClass: 0, template: null });
  t.equal((await api('POST', '/admin/profile-types', { name: 'lab', serviceProviderName: 'x', profileName: 'y' })).statusCode, 409);
  t.equal((await api('POST', '/admin/profile-types', { name: 'lab', serviceProviderName: 'x', profileName: 'y', replace: true })).statusCode, 201);
  t.equal((await api('POST', '/admin/profile-types', { name: 'no spaces', serviceProviderName: 'x', profileName: 'y' })).statusCode, 400);
  await w.db.query(`INSERT INTO operators (id, name) VALUES ('op-lab', 'Lab')`);

  const rows = [0, 1, 2].map((i) => ({ iccid: withLuhn(`8988200000000000${i}0`), imsi: `00101999000000${i}`, ki: hex(), opc: hex() }));
  const csv = `iccid,imsi,ki,opc\n${rows.map((x) => [x.iccid, x.imsi, x.ki, x.opc].join(',')).join('\n')}\n`;
  const badCsv = `${csv}${withLuhn('898820000000000099')},001019990000099,${hex()},NOT-HEX\n`;
  r = await api('POST', '/admin/inventory/import', { type: 'lab', format: 'csv', data: badCsv, operator: 'op-lab' });
  t.equal(r.statusCode, 400);
  t.match(r.json(), { error: 'invalid', message: /nothing imported/, details: { rows: ['row 4: OPc must be 32 hex digits'] } });
  t.equal((await api('GET', '/admin/inventory')).json().total, 0, 'bad row: nothing imported');

  r = await api('POST', '/admin/inventory/import', { type: 'lab', format: 'csv', data: csv, operator: 'op-lab' });
  t.equal(r.statusCode, 201);
  t.match(r.json(), { imported: 3, type: 'lab', operator: 'op-lab', iccids: rows.map((x) => x.iccid) });
  r = await api('POST', '/admin/inventory/import', { type: 'lab', format: 'json', data: [rows[2]] });
  t.equal(r.statusCode, 409);
  t.match(r.json().message, rows[2]!.iccid);
  t.equal((await api('POST', '/admin/inventory/import', { type: 'lab', format: 'xml', data: 'x' })).statusCode, 400);
  t.equal((await api('POST', '/admin/inventory/import', { type: 'ghost', format: 'json', data: [] })).statusCode, 400, 'empty');

  r = await api('POST', '/admin/inventory/generate', { type: 'lab', count: 5, prefix: '89882001', mccMnc: '001019', operator: 'op-lab' });
  t.equal(r.statusCode, 201);
  const gen = r.json().iccids as string[];
  t.equal(gen.length, 5);
  t.ok(gen.every((i) => i.startsWith('89882001') && i.length === 20 && luhn(i)));
  t.equal((await api('POST', '/admin/inventory/generate', { type: 'lab', count: 0 })).statusCode, 400);
  t.equal((await api('POST', '/admin/inventory/generate', { type: 'nope', count: 1 })).statusCode, 404);

  // an order on one imported profile
  r = await api('POST', '/admin/orders', { iccid: rows[0]!.iccid, confirmationCode: '0000' });
  t.equal(r.statusCode, 201);
  const matchingId = r.json().matchingId as string;

  const inv = (await api('GET', '/admin/inventory?type=lab&operator=op-lab')).json();
  t.equal(inv.total, 8);
  t.match(inv.counts, { Available: 7, Released: 1, Installed: 0 });
  t.notOk(JSON.stringify(inv).includes(rows[0]!.ki), 'Ki never listed');
  const rel = (await api('GET', '/admin/inventory?state=Released')).json();
  t.same(rel.profiles.map((p: { iccid: string }) => p.iccid), [rows[0]!.iccid]);
  t.equal((await api('GET', '/admin/inventory?state=Bogus')).statusCode, 400);

  const types = (await api('GET', '/admin/profile-types')).json().profileTypes as Array<{ name: string; counts: Record<string, number> }>;
  t.same(types.find((x) => x.name === 'lab')!.counts, { Available: 7, Released: 1 });

  const orders = (await api('GET', '/admin/orders?operator=op-lab')).json().orders;
  t.equal(orders.length, 1);
  t.match(orders[0], { iccid: rows[0]!.iccid, state: 'Released', operator: 'op-lab', matchingId, activationCode: `LPA:1$LOCALHOST:8443$${matchingId}$$1` });
  t.equal((await api('GET', '/admin/orders?state=Installed')).json().orders.length, 0);

  const hist = (await api('GET', `/admin/orders/${rows[0]!.iccid}/history`)).json();
  t.equal(hist.state, 'Released');
  t.same(hist.history.map((h: { event: string }) => h.event), ['created', 'released']);
  t.equal((await api('GET', `/admin/orders/${withLuhn('898820000000000077')}/history`)).statusCode, 404);
  t.equal((await api('GET', '/admin/orders/123/history')).statusCode, 400);
});

t.test('the inventory routes are behind the admin token', async (t) => {
  const w = await startWorld(t, { config: { adminToken: 'sekret' } });
  t.equal((await w.app.inject({ method: 'GET', url: '/admin/inventory' })).statusCode, 401);
  t.equal((await w.app.inject({ method: 'GET', url: '/admin/activation-codes/ABC' })).statusCode, 401);
  t.equal((await w.app.inject({ method: 'GET', url: '/admin/inventory', headers: { authorization: 'Bearer sekret' } })).statusCode, 200);
});
