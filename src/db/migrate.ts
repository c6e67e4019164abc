/**
 * Versioned SQL migrations: src/db/migrations/NNN_name.sql, applied once each, in order, in one
 * transaction per file.
 *
 * There is no 003: the number was skipped between 002 (operators) and 004 (outbox, faults), and no
 * migration 003 was ever in the repository. The runner needs no continuous numbering: it applies, in
 * name order, every file whose version (its name without .sql) schema_migrations does not list.
 * Numbers are never reused or changed: a database records what it applied by version, so a renamed
 * file would run a second time, and a new file in the gap would run after 010 on an existing database
 * but before 004 on a new one. A new migration takes the next number after the highest
 * (test/db/migrate.test.ts checks that only 003 is missing).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database } from './db.js';

function migrationsDir(): string {
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

/**
 * The advisory lock key (per database) that serialises migration runs: 'mocksmdp' in ASCII, as a
 * bigint. Any process that migrates this database takes it before touching the schema.
 */
const MIGRATION_LOCK_KEY = '7885631175453451376';

/**
 * Applies pending migrations; returns the versions applied now. Safe to run from several processes
 * at once on PostgreSQL, on an empty database too: the whole run, from the creation of
 * schema_migrations on, holds a session advisory lock on one connection, so a second process waits
 * for the first and then finds everything applied. (Two concurrent CREATE TABLE IF NOT EXISTS of one
 * table can both pass the existence check and one then fails on pg_type's unique index, which is why
 * the lock must come first.) PGlite is one process; the lock is taken there too and costs nothing.
 */
export async function migrate(db: Database, dir = migrationsDir()): Promise<string[]> {
  return db.connection(async (c) => {
    await c.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    try {
      await c.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version text PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT now())`);
      const applied: string[] = [];
      for (const m of loadMigrations(dir)) {
        const done = await c.tx(async (q) => {
          // Also serialises against a migrator that does not know the advisory lock (older versions).
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
    } finally {
      await c.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  });
}

/**
 * Splits a migration into statements on the semicolons outside quotes and comments: '…' strings
 * (E'…' with backslash escapes), "…" identifiers, $$…$$ / $tag$…$tag$ bodies (functions), -- and
 * /* … *\/ comments (nested, as PostgreSQL does). Comments are dropped; blank statements too.
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  const n = sql.length;
  const push = () => {
    const s = cur.trim();
    if (s) out.push(s);
    cur = '';
  };
  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    if (ch === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? n : end; // the newline stays, as a separator
      continue;
    }
    if (ch === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      cur += ' ';
      continue;
    }
    if (ch === "'") {
      // E'…' (escape string) when the quote follows an E that starts a token.
      const escapes = /[eE]/.test(sql[i - 1] ?? '') && !/[\w$]/.test(sql[i - 2] ?? '');
      let j = i + 1;
      while (j < n) {
        if (escapes && sql[j] === '\\') j += 2;
        else if (sql[j] === "'" && sql[j + 1] === "'") j += 2;
        else if (sql[j] === "'") break;
        else j++;
      }
      if (j >= n) throw new Error(`unterminated string in migration near: ${sql.slice(i, i + 40)}`);
      cur += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === '"' && sql[j + 1] === '"') j += 2;
        else if (sql[j] === '"') break;
        else j++;
      }
      if (j >= n) throw new Error(`unterminated identifier in migration near: ${sql.slice(i, i + 40)}`);
      cur += sql.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === '$' && !/[\w$]/.test(sql[i - 1] ?? '')) {
      // $tag$ with tag empty or an identifier not starting with a digit ($1 is a parameter).
      const m = /^\$([A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 66));
      if (m) {
        const tag = m[0];
        const end = sql.indexOf(tag, i + tag.length);
        if (end < 0) throw new Error(`unterminated ${tag} body in migration`);
        cur += sql.slice(i, end + tag.length);
        i = end + tag.length;
        continue;
      }
    }
    if (ch === ';') {
      push();
      i++;
      continue;
    }
    cur += ch;
    i++;
  }
  push();
  return out;
}
