/** Versioned SQL migrations: src/db/migrations/NNN_name.sql, applied once each, in order, in one transaction per file. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from './db.js';

export function migrationsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Running from src/db (tsx) or from dist/src/db (compiled): the .sql files live in src/db/migrations.
  for (const c of [join(here, 'migrations'), resolve(here, '../../../src/db/migrations')]) {
    if (existsSync(c)) return c;
  }
  throw new Error('migrations folder not found');
}

export interface Migration {
  version: string;
  sql: string;
}

export function loadMigrations(dir = migrationsDir()): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: f.replace(/\.sql$/, ''), sql: readFileSync(join(dir, f), 'utf8') }));
}

/** Applies pending migrations; returns the versions applied now. Safe to run from several processes at once on PostgreSQL. */
export async function migrate(db: Database): Promise<string[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now())`);
  const applied: string[] = [];
  for (const m of loadMigrations()) {
    const done = await db.tx(async (q) => {
      // Serialise concurrent migrators (two server processes starting together).
      await q.query('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      const rows = await q.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (rows.length) return false;
      for (const stmt of splitStatements(m.sql)) await q.query(stmt);
      await q.query('INSERT INTO schema_migrations (version) VALUES ($1)', [m.version]);
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}

/** Splits a migration on top-level semicolons (our migrations use no functions or quoted semicolons). */
function splitStatements(sql: string): string[] {
  return sql
    .replace(/--.*$/gm, '')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
}
