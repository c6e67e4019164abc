import { createServer } from 'node:net';
import t from 'tap';
import { moduleOf, summarizeProfile } from '../../src/bench/profile.js';
import { databaseOf, withDatabase } from '../../src/bench/pg-monitor.js';
import { isLocalHost, listeningPids, threadCpu, treeSample } from '../../src/bench/proc.js';

const linux = process.platform === 'linux';

t.test('process tree and thread CPU from /proc', { skip: !linux && 'Linux only' }, async (t) => {
  const s = treeSample(process.pid)!;
  t.ok(s.pids.includes(process.pid));
  t.ok(s.cpu > 0 && s.rss > 0);
  t.ok(threadCpu()! >= 0);
  t.equal(treeSample(2 ** 30), undefined);
});

t.test('the process listening on a port is found', { skip: !linux && 'Linux only' }, async (t) => {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  t.same(listeningPids(port), [process.pid]);
  await new Promise((r) => srv.close(r));
  t.same(listeningPids(port), []);
  t.ok(isLocalHost('127.0.0.1') && isLocalHost('localhost') && isLocalHost('[::1]'));
  t.notOk(isLocalHost('192.0.2.1'));
});

t.test('database URLs', async (t) => {
  t.equal(databaseOf('postgres://u:p@h:5432/mocksmdp'), 'mocksmdp');
  t.equal(withDatabase('postgres://u:p@h:5432/mocksmdp?sslmode=disable', 'other'), 'postgres://u:p@h:5432/other?sslmode=disable');
});

t.test('CPU profile summary: self time by function and module, windowed', async (t) => {
  const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
  const p = {
    nodes: [
      { id: 1, callFrame: frame('(root)', '') },
      { id: 2, callFrame: frame('(idle)', '') },
      { id: 3, callFrame: frame('signOneShot', 'node:internal/crypto/sig') },
      { id: 4, callFrame: frame('query', 'file:///x/node_modules/pg/lib/client.js') },
      { id: 5, callFrame: frame('bind', 'file:///x/dist/src/es9plus/get-bound-profile-package.js') },
    ],
    startTime: 1000,
    endTime: 2000,
    samples: [3, 3, 4, 5, 2, 3],
    timeDeltas: [100, 100, 100, 100, 100, 100],
  };
  const s = summarizeProfile(p);
  t.equal(s.busyMs, 0.4);
  t.equal(s.idleMs, 0.1);
  t.equal(s.functions[0]!.name, 'signOneShot');
  t.same(s.modules.map((m) => m.module).sort(), ['node:internal/crypto/sig', 'pg', 'src/es9plus/get-bound-profile-package.js']);
  const w = summarizeProfile(p, { fromUs: 1250, toUs: 1450 });
  t.equal(w.windowed, true);
  t.same(w.functions.map((f) => f.name).sort(), ['bind', 'query']);
  t.equal(moduleOf(frame('(garbage collector)', '')), '(garbage collector)');
  t.equal(moduleOf(frame('x', 'file:///a/node_modules/@scope/pkg/i.js')), '@scope/pkg');
});
