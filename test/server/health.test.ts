/** GET /health answers 200 with the database's round trip, and 503 (not a hang, not a 500) when the database is gone. */
import t from 'tap';
import { startWorld } from '../helpers/world.js';

t.test('/health: 200 with a database check', async (t) => {
  const w = await startWorld(t);
  const r = await w.app.inject({ method: 'GET', url: '/health' });
  t.equal(r.statusCode, 200);
  t.match(r.json(), { status: 'ok', database: w.db.kind, databaseOk: true, databaseMs: Number, smdpAddress: 'localhost:8443' });
});

t.test('/health: 503 naming the database when it does not answer', async (t) => {
  const w = await startWorld(t);
  await w.db.close();
  const started = Date.now();
  const r = await w.app.inject({ method: 'GET', url: '/health' });
  t.equal(r.statusCode, 503);
  t.match(r.json(), { status: 'unavailable', databaseOk: false, message: /^database: / });
  t.ok(Date.now() - started < 5000, 'answers within a few seconds');
});
