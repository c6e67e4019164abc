/**
 * A started server with no traffic is idle: its background workers (operator callbacks, retention)
 * run no claim rounds and next to no CPU. Measured with process.cpuUsage() over 5 s after a
 * warm-up; the round count is the robust check (CPU time also counts GC and anything else this
 * test process does), the CPU bound a generous one (a polling worker took 2-10 ms per second, the
 * sleeping one takes about 0.1-0.7).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';
import { emptyPgDatabase, usingPostgres } from '../helpers/db.js';
import { until } from '../helpers/operator.js';
import { testPkiDir } from '../helpers/world.js';

t.test('an idle server runs no worker rounds and uses < 25 ms CPU in 5 s', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mock-smdp-idle-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const databaseUrl = usingPostgres ? await emptyPgDatabase(t) : undefined;
  const config = { ...defaultConfig({}), listenHost: '127.0.0.1', port: 0, tls: false, certsDir: await testPkiDir(), dataDir, databaseUrl, logLevel: 'silent' };
  const server = await startServer(config);
  try {
    t.equal((await fetch(`${server.url}/health`)).status, 200);
    await until(() => server.outbox.listening, 10_000);
    await server.retention.runNow();
    await new Promise((r) => setTimeout(r, 1_500)); // warm-up: start-up work and its garbage
    const rounds0 = server.outbox.rounds;
    // Ten windows of 500 ms; the median one is the idle cost. V8 compacts the heap a few times
    // once a process goes idle (its memory reducer), a one-off burst of some tens of ms that can
    // fall into any window, so the total is only reported.
    const windows: number[] = [];
    for (let i = 0; i < 10; i++) {
      const cpu0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 500));
      const cpu = process.cpuUsage(cpu0);
      windows.push((cpu.user + cpu.system) / 1000);
    }
    const total = windows.reduce((a, b) => a + b, 0);
    const median = [...windows].sort((a, b) => a - b)[5]!;
    const rounds = server.outbox.rounds - rounds0;
    t.comment(`${server.db.kind}: ${total.toFixed(1)} ms CPU in 5 s, median ${(median * 2).toFixed(2)} ms/s, ${rounds} outbox rounds`);
    t.ok(rounds <= 1, `${rounds} outbox rounds in 5 s idle (a 500 ms poll makes 10)`);
    t.ok(median * 10 < 25, `idle CPU ${(median * 10).toFixed(1)} ms per 5 s (median window), bound 25 ms`);
  } finally {
    await server.close();
  }
});
