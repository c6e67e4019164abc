/**
 * `mock-smdp serve` misconfigured, as a user would meet it: each case exits non-zero within a few
 * seconds with exactly one line on stderr naming what to fix (and nothing on stdout); Ctrl-C while
 * starting exits; a running server holds its data folder against a second one and logs readably.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { emptyPgDatabase, usingPostgres } from '../helpers/db.js';
import { testPkiDir } from '../helpers/world.js';
import { cli, lines, start, type Run } from './_cli.js';

/** Start-up failures must be this quick (the CLI's own start under tsx included, on a loaded machine). */
const QUICK_MS = 10_000;

const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-startup-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(dir, `case${++n}`);

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function oneLine(t: Test, r: Run, want: RegExp, what: string) {
  t.equal(r.code, 1, `${what}: exit code 1`);
  t.equal(r.stdout, '', `${what}: nothing on stdout`);
  t.equal(lines(r.stderr).length, 1, `${what}: one line on stderr: ${r.stderr.trim()}`);
  t.match(r.stderr, want, what);
  t.ok(r.ms < QUICK_MS, `${what}: exits within ${QUICK_MS} ms (${r.ms} ms)`);
}

t.test('bad settings: one line naming the variable or flag', async (t) => {
  const certs = await testPkiDir();
  const base = { CERTS_DIR: certs, DATA_DIR: fresh() };
  const cases: Array<[string, string[], NodeJS.ProcessEnv, RegExp]> = [
    ['PORT=abc', [], { PORT: 'abc' }, /^PORT must be a port number 0-65535 \(got "abc"\)\n$/],
    ['--port abc', ['--port', 'abc'], {}, /^--port must be a port number 0-65535 \(got "abc"\)\n$/],
    ['TLS=maybe', [], { TLS: 'maybe' }, /^TLS must be one of 1\/true\/yes\/on or 0\/false\/no\/off \(got "maybe"\)\n$/],
    ['a malformed DATABASE_URL', [], { DATABASE_URL: 'localhost:5432/mocksmdp' }, /^DATABASE_URL must be a URL like postgres:\/\/user:password@host:5432\/database/],
    ['LOG_LEVEL=verbose', [], { LOG_LEVEL: 'verbose' }, /^LOG_LEVEL must be one of fatal, error/],
    ['RESET_ENABLED=maybe', [], { RESET_ENABLED: 'maybe' }, /^RESET_ENABLED must be one of/],
    ['WORKERS=0', [], { WORKERS: '0' }, /^WORKERS must be a positive integer \(got "0"\)\n$/],
  ];
  // One after the other: each is timed on its own.
  for (const [what, args, env, want] of cases) oneLine(t, await cli(['serve', '--port', '0', ...args], { ...base, ...env }), want, what);
  t.notOk(existsSync(base.DATA_DIR), 'no data folder was created');
});

t.test('a CERTS_DIR that does not exist is refused, not filled with a new PKI', async (t) => {
  const missing = join(fresh(), 'sgp26');
  const r = await cli(['serve', '--port', '0'], { CERTS_DIR: missing, DATA_DIR: fresh() });
  oneLine(t, r, /^the certificate folder .*sgp26 \(CERTS_DIR \/ --certs\) does not exist: /, 'missing CERTS_DIR');
  t.notOk(existsSync(missing), 'nothing generated under that name');

  const other = fresh();
  mkdirSync(other, { recursive: true });
  writeFileSync(join(other, 'notes.txt'), 'not a PKI');
  const r2 = await cli(['serve', '--port', '0', '--certs', other], { DATA_DIR: fresh() });
  oneLine(t, r2, /holds no PKI in the SGP\.26 layout \(no CertificateIssuer\/ in it\)/, 'a folder that is not a PKI');
  t.same(readdirSync(other), ['notes.txt'], 'left as it was');
});

t.test('a busy port: one line, before the database is opened', async (t) => {
  const blocker = net.createServer();
  const port = await listen(blocker);
  t.teardown(() => blocker.close());
  const data = fresh();
  const r = await cli(['serve', '--host', '127.0.0.1', '--port', String(port)], { CERTS_DIR: await testPkiDir(), DATA_DIR: data });
  oneLine(t, r, new RegExp(`^port ${port} is in use \\(PORT / --port\\): another server is listening on 127\\.0\\.0\\.1:${port}\\n$`), 'busy port');
  t.notOk(existsSync(data), 'the data folder was not touched');
});

t.test('an unreachable DATABASE_URL: one line naming it, password hidden', async (t) => {
  const closed = net.createServer();
  const port = await listen(closed);
  await new Promise((r) => closed.close(r));
  const r = await cli(['serve', '--port', '0'], { CERTS_DIR: await testPkiDir(), DATABASE_URL: `postgres://mocksmdp:s3cret@127.0.0.1:${port}/mocksmdp` });
  oneLine(t, r, new RegExp(`^DATABASE_URL: cannot connect to postgres://mocksmdp:\\*\\*\\*@127\\.0\\.0\\.1:${port}/mocksmdp: connect ECONNREFUSED`), 'connection refused');
  t.notMatch(r.stderr, /s3cret/);

  // A host that accepts the connection and never answers: the connect timeout.
  const silent = net.createServer((socket) => socket.on('error', () => {}));
  const silentPort = await listen(silent);
  t.teardown(() => silent.close());
  const r2 = await cli(['serve', '--port', '0'], { CERTS_DIR: await testPkiDir(), DATABASE_URL: `postgres://u:p@127.0.0.1:${silentPort}/db`, DB_CONNECT_TIMEOUT_SECONDS: '1' });
  oneLine(t, r2, /^DATABASE_URL: cannot connect to postgres:\/\/u:\*\*\*@127\.0\.0\.1:\d+\/db: .*timeout/i, 'no answer');
});

t.test('a data folder whose lock a live process holds', async (t) => {
  const data = fresh();
  mkdirSync(data, { recursive: true });
  // This test process stands for the other server: alive, and not the child.
  writeFileSync(join(data, 'pglite.lock'), JSON.stringify({ pid: process.pid, host: hostname() }));
  const r = await cli(['serve', '--port', '0'], { CERTS_DIR: await testPkiDir(), DATA_DIR: data });
  oneLine(t, r, new RegExp(`^DATA_DIR: the data folder .*pglite is in use by another mock-smdp server \\(pid ${process.pid}; lock file .*pglite\\.lock\\)`), 'locked data folder');
  t.notOk(existsSync(join(data, 'pglite')), 'the database was not opened');
});

t.test('Ctrl-C while starting exits at once', async (t) => {
  // A database that accepts and never answers keeps the server in its start.
  let connected!: () => void;
  const reached = new Promise<void>((r) => (connected = r));
  const silent = net.createServer((socket) => {
    socket.on('error', () => {});
    connected();
  });
  const port = await listen(silent);
  t.teardown(() => silent.close());
  const child = start(['serve', '--port', '0'], { CERTS_DIR: await testPkiDir(), DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/db`, DB_CONNECT_TIMEOUT_SECONDS: '60' });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => child.kill('SIGKILL'));
  await reached;
  const sent = Date.now();
  child.kill('SIGINT');
  const { code } = await exited;
  t.ok(Date.now() - sent < 3000, `exited ${Date.now() - sent} ms after SIGINT`);
  t.equal(code, 130);
  t.equal(stderr, 'SIGINT while starting: not started\n');
});

t.test('a running server: TLS=no serves HTTP, readable log, holds its data folder; SIGINT releases it', async (t) => {
  const data = fresh();
  const env: NodeJS.ProcessEnv = { CERTS_DIR: await testPkiDir(), DATA_DIR: data, TLS: 'no', LOG_FORMAT: 'pretty', HOST: '127.0.0.1' };
  if (usingPostgres) env.DATABASE_URL = await emptyPgDatabase(t);
  const server = start(['serve', '--port', '0'], env);
  t.teardown(() => server.kill('SIGKILL'));
  let stdout = '';
  let stderr = '';
  server.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const listening = new Promise<string>((resolve, reject) => {
    server.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      const m = /INFO  SM-DP\+ listening on (http:\/\/\S+)/.exec(stdout);
      if (m) resolve(m[1]!);
    });
    server.once('exit', () => reject(new Error(`server exited: ${stderr}`)));
  });
  const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
  const url = await listening;
  t.match(stdout, /^\d\d:\d\d:\d\d\.\d{3} INFO  /m, 'one readable line per entry (stdout is not a terminal: no colour)');
  t.notMatch(stdout, /\x1b\[/, 'no colour codes');
  t.notMatch(stdout, /^\{/m, 'no JSON lines');
  const health = await fetch(`${url}/health`);
  t.equal(health.status, 200, 'TLS=no: plain HTTP');

  if (!usingPostgres) {
    t.ok(existsSync(join(data, 'pglite.lock')), 'the lock file is there');
    const second = await cli(['serve', '--port', '0'], { ...env, LOG_FORMAT: 'json' });
    oneLine(t, second, new RegExp(`^DATA_DIR: the data folder .* is in use by another mock-smdp server \\(pid ${server.pid}; `), 'second server on the folder');
  }
  server.kill('SIGINT');
  t.equal(await exited, 0, 'SIGINT: clean exit');
  t.match(stdout, /INFO  SIGINT: shutting down/);
  t.notOk(existsSync(join(data, 'pglite.lock')), 'lock released');
  t.equal(stderr, '', 'nothing on stderr');
});
