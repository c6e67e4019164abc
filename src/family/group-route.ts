/**
 * The family REST routes under one group (`/family/groups/:gid/…`), as usage-routes.ts and
 * controls-routes.ts declare them: the caller resolved (operator key or member token), schema
 * failures as 400, the group looked up (404 when there is none), then the route's function.
 * With `tx` the function runs in a transaction with the group row locked for writes (not for a GET),
 * so a group's changes are serialised. Refusals are thrown (ApiError, or the store's errors) and
 * rendered by the app's error handler.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Database, Queryable } from '../db/db.js';
import { ApiError } from '../http/api-error.js';
import { principalLabel, resolvePrincipal, type Principal } from './auth.js';
import { getGroup, type GroupRow } from './store.js';

export interface GroupCall<B, P> {
  principal: Principal;
  /** Who acted, as the event log names them. */
  by: string;
  /** The transaction (with `tx`), or the database. */
  q: Queryable;
  group: GroupRow;
  body: B;
  params: P;
  query: Record<string, string | undefined>;
}

export type GroupRoute<P> = <B = unknown>(
  method: 'GET' | 'POST' | 'PUT', url: string, schema: Record<string, unknown>, fn: (c: GroupCall<B, P>) => Promise<unknown>,
  opts?: { okStatus?: number },
) => void;

export function groupRoutes<P extends { gid: string }>(app: FastifyInstance, db: Database, opts: { tags: string[]; tx: boolean }): GroupRoute<P> {
  return (method, url, schema, fn, o = {}) => {
    app.route({
      method,
      url: `/family${url}`,
      schema: { tags: opts.tags, ...schema },
      attachValidation: true,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const principal = await resolvePrincipal(db, req);
        if (req.validationError) throw ApiError.fromValidation(req.validationError as never);
        const params = req.params as P;
        const run = async (q: Queryable) => {
          const group = await getGroup(q, params.gid, opts.tx ? { lock: method !== 'GET' } : {});
          if (!group) throw new ApiError(404, 'notFound', `no family group ${params.gid}`, { group: params.gid });
          return fn({
            principal, by: principalLabel(principal), q, group, body: (req.body ?? {}) as never, params,
            query: (req.query ?? {}) as Record<string, string | undefined>,
          });
        };
        const out = opts.tx ? await db.tx(run) : await run(db);
        return reply.code(o.okStatus ?? 200).send(out);
      },
    });
  };
}
