/**
 * ES2+ callers: API key (X-API-Key or Bearer), TLS client certificate, functionRequesterIdentifier,
 * the request header, schema errors and the admin API / CLI that create operators.
 */
import t from 'tap';
import http from 'node:http';
import https from 'node:https';
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../../src/app.js';
import { defaultConfig } from '../../src/config.js';
import { loadServerPki } from '../../src/pki/load.js';
import { issueCertificate } from '../../src/pki/issue.js';
import { authenticateOperator, credentialsOf } from '../../src/es2plus/auth.js';
import { createOperator, findOperatorByApiKey, getOperator } from '../../src/operators/store.js';
import { openTestDb } from '../helpers/db.js';
import { startWorld, testPkiDir } from '../helpers/world.js';
import { addEs2Operator } from '../helpers/es2plus.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

t.test('authentication and the request header', async (t) => {
  const w = await startWorld(t);
  const op = await addEs2Operator(w);
  const other = await addEs2Operator(w);
  const [iccid] = await op.stock(1);
  const body = { iccid };

  t.equal((await op.call('downloadOrder', { profileType: 'nope' })).status, 'Failed 8.2.5/3.9', 'a valid key gets to the function');

  const cases: Array<[string, Parameters<typeof op.call>[2], string]> = [
    ['no credentials', { headers: { 'x-api-key': '' } }, 'Failed 1.1/1.1'],
    ['unknown key', { headers: { 'x-api-key': 'msk_wrong' } }, 'Failed 1.1/1.1'],
    ['unknown bearer key', { headers: { 'x-api-key': '', authorization: 'Bearer msk_wrong' } }, 'Failed 1.1/1.1'],
    ['functionRequesterIdentifier of another operator', { requester: other.id }, 'Failed 1.1/1.2'],
    ['no request header', { header: null }, 'Failed 1.3.1/2.2'],
    ['no functionCallIdentifier', { header: { functionRequesterIdentifier: op.id } }, 'Failed 1.3.1/2.2'],
    ['no functionRequesterIdentifier', { header: { functionCallIdentifier: 'x' } }, 'Failed 1.3.1/2.2'],
    ['unsupported X-Admin-Protocol', { headers: { 'x-admin-protocol': 'gsma/rsp/v1.0.0' } }, 'Failed 1.3.2/3.1'],
  ];
  for (const [name, opts, want] of cases) {
    const r = await op.call('downloadOrder', body, opts);
    t.equal(r.http, 200, `${name}: HTTP 200`);
    t.equal(r.status, want, name);
    t.equal(r.adminProtocol, 'gsma/rsp/v2.5.0', `${name}: X-Admin-Protocol`);
  }
  t.equal((await w.profile(iccid!))!.state, 'Available', 'no refused call reserved the profile');

  const bearer = await op.call('downloadOrder', body, { headers: { 'x-api-key': '', authorization: `Bearer ${op.apiKey}` } });
  t.equal(bearer.status, 'Executed-Success', 'Authorization: Bearer works like X-API-Key');

  const bad = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es2plus/releaseProfile', undefined, {
    'content-type': 'application/json', 'x-api-key': op.apiKey,
  });
  t.equal(bad.status, 200, 'empty body: still an SGP.22 answer');
  t.equal(bad.json?.header?.functionExecutionStatus?.statusCodeData?.subjectCode, '1.3.1');
  const raw = await new Promise<{ status: number; body: string }>((res, rej) => {
    const u = new URL('/gsma/rsp2/es2plus/releaseProfile', w.url);
    const req = (u.protocol === 'https:' ? https : http).request(u, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': op.apiKey } }, (r) => {
      let s = '';
      r.on('data', (c) => (s += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body: s }));
    });
    req.on('error', rej);
    req.end('{"header": ');
  });
  t.equal(raw.status, 200);
  t.match(JSON.parse(raw.body), { header: { functionExecutionStatus: { status: 'Failed', statusCodeData: { subjectCode: '1.3.1', reasonCode: '2.1' } } } }, 'malformed JSON: 1.3.1/2.1');
});

t.test('operator store: key stored as SHA-256 only, lookups', async (t) => {
  const db = await openTestDb(t);
  const { operator, apiKey } = await db.tx((q) => createOperator(q, { id: 'acme', name: 'ACME', callbackUrl: 'https://acme.example/cb', orderTtlSeconds: 60 }));
  t.ok(apiKey && apiKey.length >= 32);
  t.notOk(JSON.stringify(operator).includes(apiKey!), 'the key itself is not stored');
  t.equal((await findOperatorByApiKey(db, apiKey!))?.id, 'acme');
  t.equal(await findOperatorByApiKey(db, apiKey + 'x'), undefined);
  t.match(await getOperator(db, 'acme'), { cc_max_attempts: 3, max_download_attempts: 5, order_ttl_seconds: 60, callback_url: 'https://acme.example/cb' });
  await t.rejects(db.tx((q) => createOperator(q, { id: 'acme', name: 'again' })), { code: 'conflict' });
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad', name: 'x', callbackUrl: 'ftp://x' })), { code: 'invalid' });
  // The CLI path (no HTTP schema): text the database cannot hold, numbers past its columns.
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad', name: 'a\u0000b' })), { name: 'OperatorError', code: 'invalid', message: /NUL/ }, 'NUL in a name');
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad', name: 'x', callbackUrl: 'http://h/\uD800' })), { name: 'OperatorError', code: 'invalid' }, 'a lone surrogate in a callback URL');
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad\u0000', name: 'x' })), { name: 'OperatorError', code: 'invalid' }, 'NUL in an id');
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad', name: 'x', orderTtlSeconds: 1e15 })), { name: 'OperatorError', code: 'invalid', message: /orderTtlSeconds/ }, 'an order lifetime past the column');
  await t.rejects(db.tx((q) => createOperator(q, { id: 'bad', name: 'x', maxDownloadAttempts: 2 ** 40 })), { name: 'OperatorError', code: 'invalid' }, 'attempts past the column');
  t.equal(await getOperator(db, 'bad'), undefined, 'none of them was created');

  const fp = 'AB:'.repeat(31) + 'CD';
  await db.tx((q) => createOperator(q, { id: 'certop', name: 'Cert', clientCertSha256: fp, apiKey: false }));
  t.equal((await authenticateOperator(db, { certFingerprint: fp })).id, 'certop', 'certificate alone');
  await t.rejects(authenticateOperator(db, { certFingerprint: 'EF:'.repeat(31) + 'CD' }), { name: 'FunctionFailed', status: { subjectCode: '1.1', reasonCode: '1.1' } }, 'unregistered certificate');
  await t.rejects(authenticateOperator(db, { apiKey: apiKey!, certFingerprint: fp }), { name: 'FunctionFailed', status: { subjectCode: '1.1', reasonCode: '1.2' } }, 'key and certificate of different operators');
  t.equal((await authenticateOperator(db, { apiKey: apiKey!, certFingerprint: 'EF:'.repeat(31) + 'CD' })).id, 'acme', 'key with an unregistered certificate');
  await t.rejects(authenticateOperator(db, {}), { name: 'FunctionFailed', status: { subjectCode: '1.1', reasonCode: '1.1' } });

  const fake = { headers: {}, raw: { socket: { getPeerCertificate: () => ({ fingerprint256: fp }) } } } as never;
  t.same(credentialsOf(fake), { certFingerprint: fp });
  const noCert = { headers: { 'x-api-key': ' k ' }, raw: { socket: { getPeerCertificate: () => ({}) } } } as never;
  t.same(credentialsOf(noCert), { apiKey: 'k' });
});

t.test('TLS client certificate authenticates the operator', async (t) => {
  const pkiDir = await testPkiDir();
  const pki = loadServerPki(pkiDir);
  const db = await openTestDb(t);
  const config = { ...defaultConfig({}), smdpAddress: 'localhost:8443', certsDir: pkiDir, tls: true, logLevel: 'silent' };
  const app = await buildApp({ config, db, pki }, {
    logger: false,
    https: { key: pki.tls!.keyPem, cert: pki.tls!.chainPem, requestCert: true, rejectUnauthorized: false },
  } as object);
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const port = (app.server.address() as { port: number }).port;

  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const cert = issueCertificate({
    subject: [['CN', 'operator client']], subjectKey: privateKey, notAfter: new Date(Date.now() + 86400_000),
    policies: [], keyUsage: ['digitalSignature'], extKeyUsage: ['clientAuth'],
  });
  const fp = createHash('sha256').update(cert.raw).digest('hex');
  await db.tx((q) => createOperator(q, { id: 'tls-op', name: 'TLS operator', clientCertSha256: fp, apiKey: false }));

  const call = (withCert: boolean) =>
    new Promise<Record<string, any>>((res, rej) => {
      const req = https.request({
        host: '127.0.0.1', port, path: '/gsma/rsp2/es2plus/downloadOrder', method: 'POST', servername: 'localhost',
        ca: pki.cis.map((c) => c.toPem()),
        ...(withCert ? { cert: cert.toPem(), key: privateKey.export({ format: 'pem', type: 'pkcs8' }) } : {}),
        headers: { 'content-type': 'application/json' },
        agent: false,
      }, (r) => {
        let s = '';
        r.on('data', (c) => (s += c));
        r.on('end', () => res(JSON.parse(s)));
      });
      req.on('error', rej);
      req.end(JSON.stringify({ header: { functionRequesterIdentifier: 'tls-op', functionCallIdentifier: randomUUID() }, profileType: 'nope' }));
    });
  t.match(await call(true), { header: { functionExecutionStatus: { statusCodeData: { subjectCode: '8.2.5', reasonCode: '3.9' } } } }, 'certificate accepted: the function ran');
  t.match(await call(false), { header: { functionExecutionStatus: { statusCodeData: { subjectCode: '1.1', reasonCode: '1.1' } } } }, 'no certificate, no key: unknown requester');
});

t.test('admin API and CLI create operators', async (t) => {
  const w = await startWorld(t);
  const r = await w.http.post<Record<string, any>>('/admin/operators', { id: 'op-admin', name: 'Admin-made', callbackUrl: 'http://127.0.0.1:1/cb', ccMaxAttempts: 4, maxDownloadAttempts: 9, orderTtlSeconds: 120 });
  t.equal(r.status, 201);
  t.match(r.json, { id: 'op-admin', hasApiKey: true, ccMaxAttempts: 4, maxDownloadAttempts: 9, orderTtlSeconds: 120, apiKey: /^msk_/ });
  t.equal((await w.http.post('/admin/operators', { id: 'op-admin', name: 'dup' })).status, 409);
  const list = await w.http.get<{ operators: Array<Record<string, unknown>> }>('/admin/operators');
  t.equal(list.json!.operators.length, 1);
  t.notOk(JSON.stringify(list.json).includes(r.json!.apiKey), 'keys are never listed');

  // The key works on ES2+.
  const es2 = await w.http.post<Record<string, any>>('/gsma/rsp2/es2plus/downloadOrder',
    { header: { functionRequesterIdentifier: 'op-admin', functionCallIdentifier: '1' }, profileType: 'default' }, { 'x-api-key': r.json!.apiKey });
  t.match(es2.json, { header: { functionExecutionStatus: { statusCodeData: { subjectCode: '8.2.5', reasonCode: '1.2' } } } }, 'authenticated; owns no profiles');

  const cli = resolve(repo, 'src/cli.ts');
  // Asynchronously: the server answering the CLI runs in this process.
  const run = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, 'operator', 'create', '--id', 'op-cli', '--name', 'CLI', '--callback', 'https://op.example', '--cc-max', '2', '--download-max', '3', '--order-ttl', '30'], {
    cwd: repo, env: { ...process.env, MOCK_SMDP_URL: w.url, ADMIN_TOKEN: '' }, encoding: 'utf8',
  });
  const key = run.stdout.match(/API key[^:]*: (\S+)/)?.[1];
  t.ok(key, 'the API key is printed');
  t.match(await findOperatorByApiKey(w.db, key!), { id: 'op-cli', callback_url: 'https://op.example', cc_max_attempts: 2, max_download_attempts: 3, order_ttl_seconds: 30 });
});
