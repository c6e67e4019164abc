/**
 * A fresh, migrated database for one test: in-memory PGlite by default, or a new database on the
 * PostgreSQL server named by DATABASE_URL (created here, dropped at teardown), so the whole suite
 * runs against both engines.
 */
import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../../src/db/db.js';
import { migrate } from '../../src/db/migrate.js';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export const usingPostgres = !!process.env.DATABASE_URL;

/**
 * DROP DATABASE … WITH (FORCE), tried again for a few seconds: it refuses while a session it may
 * not terminate (an autovacuum worker on the freshly migrated database) is connected.
 */
async function dropDatabase(admin: Database, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      return;
    } catch (err) {
      if (attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

export async function openTestDb(t: Teardown): Promise<Database & { url?: string }> {
  if (!process.env.DATABASE_URL) {
    const db = await openDatabase({ dataDir: 'memory://' });
    await migrate(db);
    t.teardown(() => db.close());
    return db;
  }
  const admin = await openDatabase({ url: process.env.DATABASE_URL, poolSize: 1 });
  const name = `mocksmdp_t_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(process.env.DATABASE_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.toString(), poolSize: 10 });
  await migrate(db);
  t.teardown(async () => {
    await db.close();
    await dropDatabase(admin, name);
    await admin.close();
  });
  return Object.assign(db, { url: url.toString() });
}

/**
 * A new, empty (not migrated) database on the PostgreSQL server of DATABASE_URL, dropped at
 * teardown; its URL. PostgreSQL only.
 */
export async function emptyPgDatabase(t: Teardown): Promise<string> {
  if (!process.env.DATABASE_URL) throw new Error('emptyPgDatabase needs DATABASE_URL');
  const admin = await openDatabase({ url: process.env.DATABASE_URL, poolSize: 1 });
  const name = `mocksmdp_t_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name}`);
  t.teardown(async () => {
    await dropDatabase(admin, name);
    await admin.close();
  });
  const url = new URL(process.env.DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
