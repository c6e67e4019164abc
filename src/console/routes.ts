/**
 * The QA console: a page at /console, served by the server itself from src/console/page (plain
 * HTML, CSS and JavaScript modules, no build step). It talks to the admin API like any client.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';

/** The page folder, from src/console (tsx) or dist/src/console (built). */
export function pageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..', '..', 'src', 'console', 'page') : join(here, 'page');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export async function consoleRoutes(app: FastifyInstance, _deps: { db: Database; config: Config }) {
  const dir = pageDir();
  // The page's files, read once at start-up (a handful of small files).
  const files = new Map<string, { type: string; body: Buffer }>();
  const load = (name: string) => {
    const ext = name.slice(name.lastIndexOf('.'));
    files.set(name, { type: TYPES[ext] ?? 'application/octet-stream', body: readFileSync(join(dir, name)) });
  };
  load('index.html');
  app.get('/console', { schema: { hide: true } }, async (_req, reply) => {
    const f = files.get('index.html')!;
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  });
}
