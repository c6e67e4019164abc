/**
 * `mock-smdp serve --workers N`: N processes answer on one port over one PostgreSQL database
 * (an empty one: the primary migrates it), SIGTERM/SIGINT stop all of them cleanly; a worker that
 * cannot start stops the whole cluster with exit 1; with PGlite (no DATABASE_URL) N > 1 is refused
 * with one line on stderr.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { emptyPgDatabase, usingPostgres } from '../helpers/db.js';
import { until } from '../helpers/operator.js';
import { testPkiDir } from '../helpers/world.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = resolve(repo, 'src/cli.ts');
const run = promisify(execFile);
const PG_ONLY = { skip: !usingPostgres && 'PostgreSQL only (DATABASE_URL)' };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** GET on a new connection each time, so the primary hands each to a worker in turn. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

interface Cluster {
  child: ChildProcess;
  lines: Array<Record<string, any>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function serve(t: { teardown(fn: () => unknown): void }, args: string[], env: NodeJS.ProcessEnv): Promise<Cluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mock-smdp-cluster-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', ...args], {
    cwd: repo,
    env: { ...process.env, CERTS_DIR: await testPkiDir(), DATA_DIR: dataDir, ADMIN_TOKEN: '', LOG_LEVEL: 'info', TLS_PROFILE: '', WORKERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, any>> = [];
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    const parts = out.split('\n');
    out = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p));
      } catch {
        lines.push({ text: p });
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, lines, stderr: () => err, exited };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`two workers on one port over an empty PostgreSQL database; ${signal} stops them all`, PG_ONLY, async (t) => {
    const url = await emptyPgDatabase(t);
    const port = await freePort();
    const c = await serve(t, ['--workers', '2', '--plain-http', '--host', '127.0.0.1', '--port', String(port)], { DATABASE_URL: url });
    const listening = () => c.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('SM-DP+ listening'));
    await until(() => listening().length === 2 || c.child.exitCode !== null, 60_000);
    const workers = listening().map((l) => l.pid as number);
    t.equal(new Set(workers).size, 2, `two worker processes (${workers.join(', ')})`);
    t.notOk(workers.includes(c.child.pid!), 'neither is the primary');
    t.ok(c.lines.some((l) => l.msg === 'migrations applied' && l.pid === c.child.pid), 'the primary migrated the empty database');

    const answers = [];
    for (let i = 0; i < 8; i++) answers.push(await get(port, '/admin/profile-types'));
    t.same(answers.map((a) => a.status), Array(8).fill(200), 'every request answered');
    t.match(JSON.parse(answers[0]!.body), { profileTypes: [{ name: 'default' }] });
    const served = new Set<number>();
    for (let i = 0; i < 8; i++) served.add(JSON.parse((await get(port, '/health')).body).pid);
    t.same([...served].sort(), [...workers].sort(), 'both workers served requests');

    c.child.kill(signal);
    const { code, signal: sig } = await c.exited;
    t.same({ code, signal: sig }, { code: 0, signal: null }, 'the primary exits 0');
    t.ok(workers.every((p) => !alive(p)), 'no worker left');
    t.ok(c.lines.some((l) => l.msg === `${signal}: stopping the workers` && l.pid === c.child.pid), 'the primary stopped the workers');
    // The primary passes SIGTERM on (a terminal's ^C reaches the workers as SIGINT too).
    const stopped = c.lines.filter((l) => l.msg === 'SIGTERM: shutting down').map((l) => l.pid);
    t.same(stopped.sort(), [...workers].sort(), 'each worker shut down cleanly');
    t.equal(c.stderr(), '', 'nothing on stderr');
  });
}

t.test('a taken port stops the cluster with exit 1 and one line, before any worker starts', PG_ONLY, async (t) => {
  const url = await emptyPgDatabase(t);
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const c = await serve(t, ['--workers', '2', '--plain-http', '--host', '127.0.0.1', '--port', String(port)], { DATABASE_URL: url });
  const { code } = await c.exited;
  t.equal(code, 1);
  t.equal(c.stderr(), `port ${port} is in use (PORT / --port): another server is listening on 127.0.0.1:${port}\n`);
  t.notOk(c.lines.some((l) => l.msg === 'cluster started'), 'no worker forked');
});

t.test('with PGlite, --workers 2 or WORKERS=2 is refused: one line on stderr, exit 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-cluster-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const attempt = (args: string[], env: NodeJS.ProcessEnv) =>
    run(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0', ...args], {
      cwd: repo,
      env: { ...process.env, CERTS_DIR: join(dir, 'certs'), DATA_DIR: join(dir, 'data'), DATABASE_URL: '', WORKERS: '', ...env },
      encoding: 'utf8',
      timeout: 60_000,
    }).then(
      () => undefined,
      (e: { code?: number; stderr: string; stdout: string; killed?: boolean }) => e,
    );
  const want = '--workers 2 (WORKERS) needs PostgreSQL (DATABASE_URL): PGlite serves one process only\n';
  for (const [args, env] of [[['--workers', '2'], {}], [[], { WORKERS: '2' }]] as const) {
    const err = await attempt([...args], env);
    t.ok(err, `${args.join(' ') || JSON.stringify(env)}: serve fails`);
    t.notOk(err!.killed, 'exits on its own');
    t.equal(err!.code, 1, 'exit code 1');
    t.equal(err!.stderr, want, 'one line, no stack trace');
    t.equal(err!.stdout, '');
  }
  const bad = await attempt(['--workers', 'two'], {});
  t.equal(bad!.stderr, '--workers must be a positive integer (got "two")\n');
  const zero = await attempt([], { WORKERS: '0' });
  t.equal(zero!.stderr, 'WORKERS must be a positive integer (got "0")\n');
  t.notOk(await run(process.execPath, ['--import', 'tsx', cli, 'certs', '--dir', join(dir, 'unused')], { cwd: repo, env: { ...process.env, DATABASE_URL: '' } }).then(() => undefined, (e) => e), 'other commands are not affected');
});
