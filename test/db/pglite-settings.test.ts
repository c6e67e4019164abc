/** The embedded database starts with the bounded memory settings of src/db/db.ts (PGLITE_SETTINGS). */
import t from 'tap';
import { PGLITE_SETTINGS, openDatabase } from '../../src/db/db.js';

t.test('PGlite runs with small shared buffers', async (t) => {
  const db = await openDatabase({ dataDir: 'memory://' });
  t.teardown(() => db.close());
  t.equal(db.kind, 'pglite');
  const [row] = await db.query<{ shared_buffers: string }>('SHOW shared_buffers');
  t.equal(row!.shared_buffers, '16MB');
  t.ok(PGLITE_SETTINGS.includes('shared_buffers = 16MB'));
});
