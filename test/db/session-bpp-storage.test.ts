/**
 * A session's bound profile package is never compressed (migration 019; docs/state-machine.md,
 * "What a download writes"): a row up to a page stays as it is, a larger package is moved out of
 * the row as it is. The packages here are zeros, which would compress well, so a compression
 * attempt would show.
 */
import t from 'tap';
import { openTestDb } from '../helpers/db.js';

t.test('packages are stored uncompressed, in the row up to a page and out of it beyond', async (t) => {
  const db = await openTestDb(t);
  const stored = async (tid: string, bytes: number) => {
    await db.query(
      `INSERT INTO rsp_sessions (transaction_id, state, ci_ski, server_address, server_challenge, expires_at, euicc_certificate, bound_profile_package)
       VALUES ($1, 'bound', 'AA', 'localhost', $2, now() + interval '1 hour', $3, $4)`,
      [tid, Buffer.alloc(16, 1), Buffer.alloc(600, 2), Buffer.alloc(bytes)],
    );
    const [r] = await db.query<{ method: string | null; size: number }>(
      `SELECT pg_column_compression(bound_profile_package) AS method, pg_column_size(bound_profile_package) AS size
         FROM rsp_sessions WHERE transaction_id = $1`, [tid]);
    return { method: r!.method, size: Number(r!.size) };
  };
  const small = await stored('01', 3000);
  t.equal(small.method, null, 'a 3 KB package (a 3.7 KB row) is not compressed');
  t.ok(small.size >= 3000, `and kept whole: ${small.size} bytes`);
  const large = await stored('02', 20000);
  t.equal(large.method, null, 'a 20 KB package is not compressed either');
  t.ok(large.size >= 20000, `${large.size} bytes`);

  const [opts] = await db.query<{ reloptions: string[] | null }>(`SELECT reloptions FROM pg_class WHERE oid = 'rsp_sessions'::regclass`);
  t.match(opts!.reloptions, ['toast_tuple_target=8160']);
});
