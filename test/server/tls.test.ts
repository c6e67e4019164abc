/**
 * The HTTPS listener's TLS profile: by default SGP.22's (TLS 1.2, two ECDHE-ECDSA AES-128 suites,
 * secp256r1, plus brainpoolP256r1 for a brainpool DP TLS key), TLS_PROFILE=compat for Node's
 * defaults, anything else a one-line configuration error. Every case is a real handshake with
 * node:tls, whose offer is pinned down (versions, suites, groups).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError, defaultConfig } from '../../src/config.js';
import { HttpClient } from '../../src/http/client.js';
import { startServer } from '../../src/server.js';
import { SGP22_CIPHERS, tlsProfileOptions } from '../../src/tls-profile.js';
import { testPkiDir, startWorld, type World } from '../helpers/world.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = resolve(repo, 'src/cli.ts');
const run = promisify(execFile);

interface Handshake {
  ok: boolean;
  protocol?: string | null;
  cipher?: string;
  group?: string;
  /** The error code when refused, e.g. ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION. */
  code?: string;
}

/** One TLS handshake to the server at `url`, trusting the CIs of the world's PKI. */
function handshake(w: Pick<World, 'url' | 'pki'>, opts: tls.ConnectionOptions): Promise<Handshake> {
  const port = Number(new URL(w.url).port);
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: w.pki.cis.map((c) => c.toPem()), ...opts }, () => {
      const result: Handshake = {
        ok: socket.authorized,
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        group: (socket.getEphemeralKeyInfo() as { name?: string }).name,
      };
      socket.end();
      resolve(result);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, code: err.code ?? err.message }));
  });
}

const TLS12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
/** What a server that refuses the offered protocol version answers (alert 70), as the client sees it. */
const PROTOCOL_VERSION_ALERT = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';
/** No common suite or group (alert 40). */
const HANDSHAKE_FAILURE_ALERT = 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE';

t.test('the option set of each profile', async (t) => {
  const p256 = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  const bp = generateKeyPairSync('ec', { namedCurve: 'brainpoolP256r1' }).privateKey;
  t.same(tlsProfileOptions('sgp22', p256), {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-SHA256',
    ecdhCurve: 'P-256',
    honorCipherOrder: true,
  });
  t.equal(tlsProfileOptions('sgp22', bp).ecdhCurve, 'P-256:brainpoolP256r1', 'brainpool key: its curve joins the groups');
  t.equal(tlsProfileOptions('sgp22', bp.export({ format: 'pem', type: 'pkcs8' }).toString()).ecdhCurve, 'P-256:brainpoolP256r1', 'from PEM too');
  t.same(tlsProfileOptions('compat', p256), {}, 'compat: Node defaults');

  t.equal(defaultConfig({}).tlsProfile, 'sgp22', 'default');
  t.equal(defaultConfig({ TLS_PROFILE: '' }).tlsProfile, 'sgp22');
  t.equal(defaultConfig({ TLS_PROFILE: 'sgp22' }).tlsProfile, 'sgp22');
  t.equal(defaultConfig({ TLS_PROFILE: 'compat' }).tlsProfile, 'compat');
  t.throws(() => defaultConfig({ TLS_PROFILE: 'tls13' }), new ConfigError('TLS_PROFILE must be one of sgp22, compat (got "tls13")'));
});

t.test('sgp22 (default): TLS 1.2 with the two SGP.22 suites on secp256r1, nothing else', async (t) => {
  const w = await startWorld(t, { tls: true });
  t.equal(w.config.tlsProfile, 'sgp22');

  for (const suite of SGP22_CIPHERS) {
    t.match(await handshake(w, { ...TLS12, ciphers: suite }), { ok: true, protocol: 'TLSv1.2', cipher: suite, group: 'prime256v1' }, `TLS 1.2 ${suite} accepted`);
  }
  t.match(await handshake(w, { ...TLS12, ciphers: SGP22_CIPHERS.join(':'), ecdhCurve: 'P-256' }), { ok: true, group: 'prime256v1' }, 'P-256 group accepted');
  t.match(await handshake(w, {}), { ok: true, protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' }, "Node's default client offer lands on TLS 1.2 GCM");

  t.match(await handshake(w, { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }), { ok: false, code: PROTOCOL_VERSION_ALERT }, 'TLS 1.3 refused');
  t.match(
    await handshake(w, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0' }),
    { ok: false, code: PROTOCOL_VERSION_ALERT },
    'TLS 1.1 refused (by the server: a protocol version alert)',
  );
  for (const suite of ['ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-AES256-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-RSA-AES128-GCM-SHA256']) {
    t.match(await handshake(w, { ...TLS12, ciphers: suite }), { ok: false, code: HANDSHAKE_FAILURE_ALERT }, `${suite} refused`);
  }
  for (const group of ['X25519', 'P-384', 'brainpoolP256r1']) {
    t.match(await handshake(w, { ...TLS12, ecdhCurve: group }), { ok: false, code: HANDSHAKE_FAILURE_ALERT }, `${group}-only offer refused`);
  }
  // In TLS 1.2 a client must also list the certificate's curve, so the offers above fail on any
  // profile; with P-256 offered too, the group restriction alone decides (compat picks X25519).
  for (const group of ['X25519', 'P-384']) {
    t.match(await handshake(w, { ...TLS12, ecdhCurve: `${group}:P-256` }), { ok: true, group: 'prime256v1' }, `${group} offered first: P-256 is chosen`);
  }
});

t.test('sgp22 with a brainpoolP256r1 DP TLS key: brainpoolP256r1 group accepted too', async (t) => {
  const w = await startWorld(t, { tls: true, tlsCurve: 'brainpoolP256r1' });
  t.equal(w.pki.tls!.curve, 'brainpoolP256r1');
  for (const suite of SGP22_CIPHERS) {
    t.match(await handshake(w, { ...TLS12, ciphers: suite, ecdhCurve: 'brainpoolP256r1' }), { ok: true, protocol: 'TLSv1.2', cipher: suite, group: 'brainpoolP256r1' }, `brainpoolP256r1 ${suite}`);
  }
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'brainpoolP256r1:P-256' }), { ok: true, protocol: 'TLSv1.2' }, 'both groups offered');
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'X25519:brainpoolP256r1' }), { ok: true, group: 'brainpoolP256r1' }, 'X25519 passed over');
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'P-384:brainpoolP256r1' }), { ok: true, group: 'brainpoolP256r1' }, 'P-384 passed over');
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'P-256' }), { ok: false, code: HANDSHAKE_FAILURE_ALERT }, 'no brainpoolP256r1 in the offer: refused (TLS 1.2 certificate curve rule)');
  // (OpenSSL 3.0 has no brainpool groups for TLS 1.3, hence P-256 in this offer.)
  t.match(await handshake(w, { minVersion: 'TLSv1.3', ecdhCurve: 'brainpoolP256r1:P-256' }), { ok: false, code: PROTOCOL_VERSION_ALERT }, 'TLS 1.3 refused');
  t.match(await handshake(w, { ...TLS12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384', ecdhCurve: 'brainpoolP256r1' }), { ok: false, code: HANDSHAKE_FAILURE_ALERT }, 'AES-256 refused');
});

t.test('compat: Node defaults, TLS 1.3 and other suites accepted', async (t) => {
  const w = await startWorld(t, { tls: true, config: { tlsProfile: 'compat' } });
  t.match(await handshake(w, { minVersion: 'TLSv1.3' }), { ok: true, protocol: 'TLSv1.3' }, 'TLS 1.3 accepted');
  t.match(await handshake(w, {}), { ok: true, protocol: 'TLSv1.3' }, "Node's default offer: TLS 1.3");
  t.match(await handshake(w, { ...TLS12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }), { ok: true, cipher: 'ECDHE-ECDSA-AES256-GCM-SHA384' }, 'AES-256 accepted');
  t.match(await handshake(w, { minVersion: 'TLSv1.3', ecdhCurve: 'X25519' }), { ok: true, protocol: 'TLSv1.3', group: 'X25519' }, 'X25519-only accepted (TLS 1.3)');
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'X25519:P-256' }), { ok: true, protocol: 'TLSv1.2', group: 'X25519' }, 'TLS 1.2: X25519 chosen over P-256');
  for (const suite of SGP22_CIPHERS) {
    t.match(await handshake(w, { ...TLS12, ciphers: suite }), { ok: true, cipher: suite }, `TLS 1.2 ${suite} still accepted`);
  }
  t.match(await handshake(w, { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0' }), { ok: false, code: PROTOCOL_VERSION_ALERT }, "TLS 1.1 refused (Node's minimum)");
  const r = await w.http.get<{ status: string }>('/health');
  t.equal(r.status, 200);
});

t.test('startServer serves the sgp22 profile by default; our HTTP client and the admin CLI connect', async (t) => {
  const pkiDir = await testPkiDir();
  const dataDir = mkdtempSync(join(tmpdir(), 'mock-smdp-tls-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = { ...defaultConfig({}), listenHost: '127.0.0.1', port: 0, smdpAddress: 'localhost:8443', certsDir: pkiDir, dataDir, logLevel: 'silent' };
  t.equal(config.tlsProfile, 'sgp22');
  const server = await startServer(config);
  t.teardown(() => server.close());
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const w = { url: server.url, pki: (await import('../../src/pki/load.js')).loadServerPki(pkiDir) };

  t.match(await handshake(w, {}), { ok: true, protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256', group: 'prime256v1' });
  t.match(await handshake(w, { minVersion: 'TLSv1.3' }), { ok: false, code: PROTOCOL_VERSION_ALERT }, 'TLS 1.3 refused');
  t.match(await handshake(w, { ...TLS12, ecdhCurve: 'X25519' }), { ok: false, code: HANDSHAKE_FAILURE_ALERT }, 'X25519 refused');

  const http = new HttpClient({ baseUrl: server.url, ca: w.pki.cis.map((c) => c.toPem()), servername: 'localhost' });
  t.teardown(() => http.close());
  t.match(await http.get('/health'), { status: 200, json: { status: 'ok' } }, 'HttpClient (LPA, bench, CLI) connects');

  const out = await run(process.execPath, ['--import', 'tsx', cli, 'operator', 'list', '--json'], {
    cwd: repo,
    env: { ...process.env, MOCK_SMDP_URL: server.url, CERTS_DIR: pkiDir, SMDP_ADDRESS: 'localhost:8443', ADMIN_TOKEN: '', TLS_PROFILE: '' },
    encoding: 'utf8',
  });
  t.match(JSON.parse(out.stdout), { operators: [] }, 'the admin CLI connects over HTTPS');
});

t.test('mock-smdp serve with a bad TLS_PROFILE: one line on stderr, non-zero exit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-tls-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const err = await run(process.execPath, ['--import', 'tsx', cli, 'serve', '--port', '0'], {
    cwd: repo,
    env: { ...process.env, TLS_PROFILE: 'tls13', CERTS_DIR: join(dir, 'certs'), DATA_DIR: join(dir, 'data'), DATABASE_URL: '' },
    encoding: 'utf8',
    timeout: 60_000,
  }).then(
    () => undefined,
    (e: { code?: number; stderr: string; stdout: string; killed?: boolean }) => e,
  );
  t.ok(err, 'serve fails');
  t.notOk(err!.killed, 'exits on its own');
  t.equal(err!.code, 1, 'exit code 1');
  t.equal(err!.stderr, 'TLS_PROFILE must be one of sgp22, compat (got "tls13")\n', 'one line, no stack trace');
  t.equal(err!.stdout, '');

  const help = await run(process.execPath, ['--import', 'tsx', cli, 'help'], { cwd: repo, encoding: 'utf8' });
  t.match(help.stdout, /TLS_PROFILE=sgp22\|compat/, 'listed in the usage');
});
