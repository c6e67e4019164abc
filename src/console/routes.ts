/**
 * The QA console (docs/console.md): a page at /console, served by the server itself from
 * src/console/page (plain HTML, CSS and JavaScript modules, no build step). It talks to the admin API
 * like any client, follows changes through the live feed at /admin/console/events (src/console/feed.ts)
 * and lists what the callback catcher at /catcher/<bin> received (src/console/catcher.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { consoleAdminRoutes } from './admin-routes.js';
import { catcherRoutes } from './catcher.js';
import { ConsoleFeed, type FeedOptions } from './feed.js';
import { SSE_EXAMPLE } from './schemas.js';

/** The page folder, from src/console (tsx) or dist/src/console (built). */
function pageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.includes(`${join('dist', 'src')}`) ? join(here, '..', '..', '..', 'src', 'console', 'page') : join(here, 'page');
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The live feed of each app (tests look at it: it polls only while someone watches). */
export const feeds = new WeakMap<FastifyInstance, ConsoleFeed>();

export async function consoleRoutes(app: FastifyInstance, deps: { db: Database; config: Config; feed?: FeedOptions }) {
  const dir = pageDir();
  // The page's files, read once at start-up (a handful of small files); nothing else is served.
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const name of readdirSync(dir)) {
    const ext = name.slice(name.lastIndexOf('.'));
    if (TYPES[ext]) files.set(name, { type: TYPES[ext]!, body: readFileSync(join(dir, name)) });
  }
  const page = { hide: true };
  app.get('/console', { schema: page }, async (_req, reply) => {
    const f = files.get('index.html')!;
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  });
  app.get('/console/', { schema: page }, async (_req, reply) => reply.redirect('/console'));
  app.get<{ Params: { file: string } }>('/console/:file', {
    schema: { ...page, params: { type: 'object', properties: { file: { type: 'string', pattern: '^[a-z0-9-]{1,64}\\.[a-z]{2,4}$' } } } },
  }, async (req, reply) => {
    const f = files.get(req.params.file);
    if (!f) throw ApiError.notFound('file', req.params.file);
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  });

  const feed = new ConsoleFeed(deps.db, deps.config, { log: app.log, ...deps.feed });
  feeds.set(app, feed);
  // Streams would hold the server's close open: they end first.
  app.addHook('preClose', async () => feed.closeAll());

  app.get('/admin/console/events', {
    schema: {
      tags: ['admin: console'],
      summary: 'Live changes as Server-Sent Events: order (state changes), callback (new, and delivery state), caught (catcher), family (group events, usage), smds (the SM-DS event records changed)',
      response: {
        200: {
          description: 'text/event-stream: `event: <type>` and `data: <JSON>` per change; `hello` first, then only what changed after it',
          content: { 'text/event-stream': { schema: { type: 'string' }, example: SSE_EXAMPLE } },
        },
      },
    },
  }, async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    req.raw.socket.setNoDelay(true);
    await feed.add(res);
  });

  await catcherRoutes(app, { db: deps.db });
  await consoleAdminRoutes(app, { db: deps.db });
}
