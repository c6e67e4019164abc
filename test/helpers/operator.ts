/**
 * An operator for callback tests: a row in `operators`, a local HTTP receiver recording every
 * handleDownloadProgressInfo, and a device (virtual eUICC + LPA) for a world.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Queryable } from '../../src/db/db.js';
import { sampleEid } from '../../src/pki/generate.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { Lpa } from '../../src/sim/lpa.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import type { World } from './world.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

export interface ReceivedCall {
  at: number;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, any>;
}

/**
 * Replies with what `answer(n)` returns for the n-th call (0-based): an HTTP status, or 'hang'
 * (never answers). Default 204.
 */
export async function receiver(t: TestLike, answer: (n: number, body: Record<string, any>) => number | 'hang' = () => 204) {
  const calls: ReceivedCall[] = [];
  const waiters: Array<() => void> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      const n = calls.length;
      calls.push({ at: performance.now(), path: req.url ?? '', headers: req.headers, body });
      waiters.splice(0).forEach((w) => w());
      const a = answer(n, body);
      if (a === 'hang') return;
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(() => r(undefined)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    /** Resolves once `n` calls arrived (rejects after `ms`). */
    async waitFor(n: number, ms = 10_000): Promise<ReceivedCall[]> {
      const deadline = Date.now() + ms;
      while (calls.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${calls.length} of ${n} callbacks arrived`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return calls.slice(0, n);
    },
  };
}

/** Creates an operator with this callback URL and gives it the profile(s). */
export async function addOperator(q: Queryable, callbackUrl: string | null, iccids: string[] = []): Promise<string> {
  const id = `op-${randomBytes(4).toString('hex')}`;
  await q.query('INSERT INTO operators (id, name, callback_url) VALUES ($1, $2, $3)', [id, `Operator ${id}`, callbackUrl]);
  for (const iccid of iccids) await q.query('UPDATE profiles SET operator_id = $2 WHERE iccid = $1', [iccid, id]);
  return id;
}

export { newDevice } from './device.js';

export async function until(cond: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
