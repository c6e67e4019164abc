/**
 * The one validated configuration (src/config.ts): every variable and `serve` flag is checked, and a
 * bad value is a ConfigError naming it and the value; the PGlite data-folder lock; the readable log
 * format. In-process (fast); test/cli/startup.test.ts runs the same through `mock-smdp serve`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, defaultConfig, redactUrl, serveConfig } from '../../src/config.js';
import { DataDirLockedError, lockDataDir } from '../../src/db/db.js';
import { logStream, prettyLogLine, useColour } from '../../src/server.js';

t.test('defaults', async (t) => {
  t.match(defaultConfig({}), {
    listenHost: '0.0.0.0', port: 8443, tls: true, tlsProfile: 'sgp22', smdpAddress: 'localhost:8443', certsDir: 'certs',
    dataDir: 'data', databaseUrl: undefined, dbPoolSize: 10, dbConnectTimeoutMs: 5000, sessionTtlSeconds: 600, retentionDays: 7,
    workers: 1, adminToken: undefined, resetEnabled: false, logLevel: 'info', logFormat: 'auto',
  });
  t.equal(defaultConfig({ PORT: '443', SMDP_HOSTNAME: 'smdp.example.com' }).smdpAddress, 'smdp.example.com', 'port 443 is left out of the address');
  t.equal(defaultConfig({ PORT: '' }).port, 8443, 'an empty variable is the default');
});

t.test('switches: 0/1/true/false/yes/no/on/off in any case, nothing else', async (t) => {
  for (const [v, want] of [['1', true], ['true', true], ['YES', true], ['on', true], ['0', false], ['false', false], ['no', false], ['Off', false]] as const) {
    t.equal(defaultConfig({ TLS: v }).tls, want, `TLS=${v}`);
    t.equal(defaultConfig({ RESET_ENABLED: v }).resetEnabled, want, `RESET_ENABLED=${v}`);
  }
  t.throws(() => defaultConfig({ TLS: 'nope' }), new ConfigError('TLS must be one of 1/true/yes/on or 0/false/no/off (got "nope")'));
  t.throws(() => defaultConfig({ RESET_ENABLED: '2' }), { name: 'ConfigError', message: /^RESET_ENABLED must be/ });
});

t.test('each bad value is a ConfigError naming its variable and the value', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['PORT', 'abc', /^PORT must be a port number 0-65535 \(got "abc"\)$/],
    ['PORT', '65536', /^PORT must be a port number/],
    ['PORT', '-1', /^PORT must be a port number/],
    ['HOST', 'two words', /^HOST must be an IP address or host name/],
    ['SMDP_ADDRESS', 'smdp.example.com:99999', /^SMDP_ADDRESS must be a host name with an optional port/],
    ['SMDP_ADDRESS', 'https://smdp.example.com', /^SMDP_ADDRESS must be/],
    ['SMDP_HOSTNAME', 'bad_host', /^SMDP_HOSTNAME must be a host name/],
    ['TLS_PROFILE', 'tls13', /^TLS_PROFILE must be one of sgp22, compat \(got "tls13"\)$/],
    ['DATABASE_URL', 'localhost:5432', /^DATABASE_URL must be a URL like postgres:\/\/.*: the scheme is localhost, not postgres/],
    ['DATABASE_URL', 'mysql://u@h/db', /^DATABASE_URL must be a URL .*the scheme is mysql/],
    ['DATABASE_URL', 'host=localhost dbname=x', /^DATABASE_URL must be a URL .*: not a URL/],
    ['DATABASE_URL', 'postgres://', /^DATABASE_URL must be a URL .*: no host/],
    ['DB_POOL_SIZE', '0', /^DB_POOL_SIZE must be a positive integer \(got "0"\)$/],
    ['DB_CONNECT_TIMEOUT_SECONDS', 'soon', /^DB_CONNECT_TIMEOUT_SECONDS must be a positive integer/],
    ['SESSION_TTL_SECONDS', '1.5', /^SESSION_TTL_SECONDS must be a positive integer/],
    ['RETENTION_DAYS', '-3', /^RETENTION_DAYS must be a non-negative integer/],
    ['WORKERS', '0', /^WORKERS must be a positive integer \(got "0"\)$/],
    ['LOG_LEVEL', 'verbose', /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "verbose"\)$/],
    ['LOG_FORMAT', 'xml', /^LOG_FORMAT must be one of auto, json, pretty/],
  ];
  for (const [name, value, want] of cases) {
    let err: unknown;
    try {
      defaultConfig({ [name]: value });
    } catch (e) {
      err = e;
    }
    t.type(err, ConfigError, `${name}=${value}: ConfigError`);
    t.match((err as Error).message, want, `${name}=${value}: ${(err as Error).message}`);
    t.notMatch((err as Error).message, /\n/, 'one line');
  }
  t.equal(defaultConfig({ DATABASE_URL: 'postgresql://u:p@db.example:5433/x?sslmode=require' }).databaseUrl, 'postgresql://u:p@db.example:5433/x?sslmode=require');
  t.equal(defaultConfig({ DATABASE_URL: 'postgres:///x?host=/run/postgresql' }).databaseUrl, 'postgres:///x?host=/run/postgresql', 'a socket folder');
});

t.test('a DATABASE_URL password never appears in a message', async (t) => {
  t.throws(() => defaultConfig({ DATABASE_URL: 'mysql://me:hunter2@h/db' }), { message: /mysql:\/\/me:\*\*\*@h\/db/ });
  t.notMatch(String((() => { try { defaultConfig({ DATABASE_URL: 'mysql://me:hunter2@h/db' }); } catch (e) { return (e as Error).message; } })()), /hunter2/);
  t.equal(redactUrl('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
});

t.test('serve flags override the environment and are named in their errors', async (t) => {
  const c = serveConfig({ port: '9443', host: '127.0.0.1', certs: 'pki', data: 'd', plainHttp: true, workers: '2' }, { PORT: '1234', DATABASE_URL: 'postgres://h/db' });
  t.match(c, { port: 9443, listenHost: '127.0.0.1', certsDir: 'pki', dataDir: 'd', tls: false, workers: 2, smdpAddress: 'localhost:9443' });
  t.equal(serveConfig({ port: '9443' }, { SMDP_ADDRESS: 'smdp.example.com' }).smdpAddress, 'smdp.example.com', 'SMDP_ADDRESS is kept');
  t.equal(serveConfig({ address: 'a.example:1' }, {}).smdpAddress, 'a.example:1');
  t.throws(() => serveConfig({ port: 'abc' }, {}), new ConfigError('--port must be a port number 0-65535 (got "abc")'));
  t.throws(() => serveConfig({ workers: 'two' }, {}), new ConfigError('--workers must be a positive integer (got "two")'));
  t.throws(() => serveConfig({ address: 'a b' }, {}), { message: /^--address must be/ });
  t.throws(() => serveConfig({}, { PORT: 'abc' }), { message: /^PORT must be/ }, 'the environment is checked too');
});

t.test('readable log lines', async (t) => {
  const line = JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), pid: 1, hostname: 'h', msg: 'SM-DP+ listening on http://127.0.0.1:1', database: 'pglite', tls: false });
  t.equal(prettyLogLine(line, false), '03:04:05.678 INFO  SM-DP+ listening on http://127.0.0.1:1 database=pglite tls=false\n');
  t.match(prettyLogLine(line, true), /\x1b\[32mINFO /, 'coloured level when asked');
  t.match(prettyLogLine(JSON.stringify({ level: 50, time: 0, msg: 'x', err: { message: 'boom', stack: 's' } }), false), /ERROR x err="boom"\n$/);
  t.equal(prettyLogLine('not json', false), 'not json', 'other lines pass unchanged');
});

t.test('colour and the log format follow the terminal and NO_COLOR', async (t) => {
  const saved = { NO_COLOR: process.env.NO_COLOR, TERM: process.env.TERM };
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });
  delete process.env.NO_COLOR;
  process.env.TERM = 'xterm';
  t.equal(useColour({ isTTY: true }), true, 'a terminal');
  t.equal(useColour({ isTTY: false }), false, 'a pipe or file');
  process.env.NO_COLOR = '1';
  t.equal(useColour({ isTTY: true }), false, 'NO_COLOR');
  delete process.env.NO_COLOR;
  process.env.TERM = 'dumb';
  t.equal(useColour({ isTTY: true }), false, 'TERM=dumb');

  const written: string[] = [];
  const fake = (isTTY: boolean) => ({ isTTY, write: (s: string) => void written.push(s) }) as unknown as NodeJS.WriteStream;
  t.equal(logStream({ logFormat: 'auto' }, fake(false)), undefined, 'auto, not a terminal: pino JSON');
  t.equal(logStream({ logFormat: 'json' }, fake(true)), undefined, 'json on a terminal');
  logStream({ logFormat: 'auto' }, fake(true))!.write(`${JSON.stringify({ level: 40, time: 0, msg: 'careful' })}\n`);
  t.same(written, ['00:00:00.000 WARN  careful\n'], 'auto on a terminal: readable (TERM=dumb: no colour)');
  t.ok(logStream({ logFormat: 'pretty' }, fake(false)), 'pretty into a pipe');
});

t.test('the PGlite data-folder lock', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = join(dir, 'pglite');
  const lockFile = `${data}.lock`;

  const release = lockDataDir(data);
  t.same(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid, 'the lock holds our pid');
  t.throws(() => lockDataDir(data), DataDirLockedError, 'a second open in this process is refused');
  release();
  t.notOk(existsSync(lockFile), 'released: removed');

  // Another live process holds it.
  const other = spawn('sleep', ['30']);
  t.teardown(() => other.kill());
  writeFileSync(lockFile, JSON.stringify({ pid: other.pid, host: hostname() }));
  t.throws(() => lockDataDir(data), { name: 'DataDirLockedError', pid: other.pid, message: new RegExp(`in use by another mock-smdp server \\(pid ${other.pid}; lock file `) });

  // Its process is gone: the lock is stale and taken over.
  other.kill();
  await new Promise((r) => other.once('exit', r));
  const again = lockDataDir(data);
  t.equal(JSON.parse(readFileSync(lockFile, 'utf8')).pid, process.pid, 'stale lock taken over');
  again();

  // A pid that is alive but was started after the lock (a reused pid, e.g. a restarted container).
  writeFileSync(lockFile, JSON.stringify({ pid: process.pid, host: hostname(), start: '1' }));
  lockDataDir(data)();
  writeFileSync(lockFile, JSON.stringify({ pid: 1, host: hostname(), start: 'not-the-start-of-pid-1' }));
  lockDataDir(data)();
  t.pass('a lock whose pid now belongs to another process is stale');
  writeFileSync(lockFile, 'half-written');
  lockDataDir(data)();
  t.pass('an unreadable lock is stale');
});
