/**
 * The command line's conventions, through the spawned CLI: help and version on stdout with exit 0,
 * usage errors exit 2 and failures exit 1 with one line on stderr, list/show as tables or --json,
 * no colour when stdout is not a terminal; order list/show/export, reset, inventory generate in
 * batches with a summary, and the admin token.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { startWorld, type World } from '../helpers/world.js';
import { CLEAN_ENV, cli, cliPath, lines, repo, type Run } from './_cli.js';

const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const version = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version as string;

const against = (w: World, args: string[], env: NodeJS.ProcessEnv = {}) => cli(args, { MOCK_SMDP_URL: w.url, CERTS_DIR: w.pkiDir, ...env });
const ok = (r: Run) => r.code === 0 && r.stderr === '';

t.test('help and version: stdout, exit 0', async (t) => {
  const runs = await Promise.all([
    cli(['--help']), cli(['-h']), cli(['help']), cli(['--version']), cli(['-V']),
    cli(['order', '--help']), cli(['help', 'order']), cli(['order', 'list', '--help']), cli(['serve', '--help']),
    cli(['inventory', 'generate', '--help']), cli(['sim', '--help']), cli(['family', '--help']), cli(['reset', '--help']),
  ]);
  const [help, h, helpCmd, ver, V, order, helpOrder, orderList, serve, generate, sim, family, reset] = runs;
  for (const r of runs) t.ok(ok(r!), `exit 0, nothing on stderr: ${r!.stderr}`);
  t.match(help!.stdout, /^Usage: mock-smdp \[options\] \[command\]/);
  t.match(help!.stdout, /TLS_PROFILE=sgp22\|compat/, 'the environment is listed');
  t.equal(h!.stdout, help!.stdout);
  t.equal(helpCmd!.stdout, help!.stdout);
  t.equal(ver!.stdout, `${version}\n`);
  t.equal(V!.stdout, `${version}\n`);
  t.match(order!.stdout, /Usage: mock-smdp order \[options\] \[command\][\s\S]*list[\s\S]*export/);
  t.equal(helpOrder!.stdout, order!.stdout);
  t.match(orderList!.stdout, /--json/);
  t.match(serve!.stdout, /--plain-http/);
  t.match(generate!.stdout, /--out <file>/);
  t.match(sim!.stdout, /^mock-smdp sim — /);
  t.match(family!.stdout, /mock-smdp family demo/);
  t.match(reset!.stdout, /RESET_ENABLED=1/);
});

t.test('usage errors: stderr, exit 2', async (t) => {
  const [none, unknown, option, missing, choice, noSub, badInt, sim, family] = await Promise.all([
    cli([]), cli(['ordr']), cli(['order', 'list', '--bogus']), cli(['order', 'show']), cli(['order', 'export', '--format', 'xml']),
    cli(['order']), cli(['order', 'list', '--limit', 'ten']), cli(['sim', 'nope']), cli(['family', '--bogus']),
  ]);
  for (const r of [none, unknown, option, missing, choice, noSub, badInt, sim, family]) {
    t.equal(r!.code, 2, `exit 2: ${r!.stderr.split('\n')[0]}`);
    t.equal(r!.stdout, '', 'nothing on stdout');
  }
  t.match(none!.stderr, /^Usage: mock-smdp/);
  t.match(unknown!.stderr, /^error: unknown command 'ordr'\n\(Did you mean order\?\)\n$/);
  t.equal(option!.stderr, "error: unknown option '--bogus'\n");
  t.equal(missing!.stderr, "error: missing required argument 'iccid'\n");
  t.match(choice!.stderr, /^error: option '--format <format>' argument 'xml' is invalid\. Allowed choices are csv, json\.\n$/);
  t.match(noSub!.stderr, /^Usage: mock-smdp order/, 'a group without its command shows its help on stderr');
  t.equal(badInt!.stderr, '--limit takes a positive integer (got "ten")\n');
  t.equal(sim!.stderr, 'unknown sim command nope (mock-smdp sim --help for usage)\n');
  t.equal(family!.stderr, "Unknown option '--bogus' (mock-smdp family --help for usage)\n");
});

t.test('no server to talk to: one line, exit 1', async (t) => {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  const r = await cli(['order', 'list'], { MOCK_SMDP_URL: `http://127.0.0.1:${port}` });
  t.equal(r.code, 1);
  t.equal(r.stderr, `cannot list orders: cannot reach the server at http://127.0.0.1:${port} (MOCK_SMDP_URL): ECONNREFUSED\n`);
});

t.test('orders: list, show, export; reset', async (t) => {
  const w = await startWorld(t, { config: { resetEnabled: true } });
  const made = [await w.order(), await w.order({ confirmationCode: '1234' }), await w.order()];

  const list = await against(w, ['order', 'list']);
  t.ok(ok(list), list.stderr);
  const rows = lines(list.stdout);
  t.match(rows[0], /^ICCID +STATE +TYPE +OPERATOR +EID +UPDATED +ACTIVATION CODE$/, 'a table');
  t.equal(rows.length, 4);
  for (const o of made) t.ok(rows.some((r) => r.startsWith(o.iccid) && r.includes('Released') && r.endsWith(o.activationCode)), `${o.iccid} listed with its code`);
  t.notMatch(list.stdout, /\x1b\[/, 'no colour when stdout is not a terminal');
  const json = JSON.parse((await against(w, ['order', 'list', '--json'])).stdout);
  t.same(json.orders.map((o: { iccid: string }) => o.iccid).sort(), made.map((o) => o.iccid).sort());
  t.equal((await against(w, ['order', 'list', '--state', 'Installed'])).stdout, 'no orders\n');

  const show = await against(w, ['order', 'show', made[1]!.iccid]);
  t.ok(ok(show));
  t.match(show.stdout, new RegExp(`^ICCID ${made[1]!.iccid}  Released  type default\\n  EID -  MatchingID ${made[1]!.matchingId}  confirmation code required`));
  t.match(show.stdout, /\nhistory:\n  \S+  created/);
  t.equal(JSON.parse((await against(w, ['order', 'show', made[1]!.iccid, '--json'])).stdout).iccid, made[1]!.iccid);
  const missing = await against(w, ['order', 'show', '89000000000000000000']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^no order 89000000000000000000 \(HTTP (400|404)\): /);
  t.equal(lines(missing.stderr).length, 1);

  const csv = await against(w, ['order', 'export', '--format', 'csv']);
  t.ok(ok(csv));
  const [header, ...records] = lines(csv.stdout);
  t.equal(header, 'iccid,state,deviceState,profileType,operator,imsi,eid,matchingId,confirmationCodeRequired,activationCode,downloadAttempts,expiresAt,updatedAt');
  t.equal(records.length, 3);
  for (const o of made) {
    const rec = records.find((r) => r.startsWith(`${o.iccid},`))!.split(',');
    t.equal(rec[9], o.activationCode, 'with the activation code');
    t.equal(rec[7], o.matchingId);
  }
  const file = join(dir, 'orders.json');
  const toFile = await against(w, ['order', 'export', '--format', 'json', '--out', file]);
  t.equal(toFile.stdout, `3 order(s) written to ${file} (json)\n`);
  t.same(JSON.parse(readFileSync(file, 'utf8')).orders.map((o: { activationCode: string }) => o.activationCode).sort(), made.map((o) => o.activationCode).sort());

  const reset = await against(w, ['reset']);
  t.ok(ok(reset), reset.stderr);
  t.match(reset.stdout, /^reset \(orders\): deleted .*\b3 orders\b/);
  t.equal((await against(w, ['order', 'list'])).stdout, 'no orders\n', 'orders gone');
  const again = JSON.parse((await against(w, ['reset', '--json'])).stdout);
  t.match(again, { scope: 'orders', deleted: { orders: 0 } });
});

t.test('reset on a server without RESET_ENABLED: one line naming it, exit 1', async (t) => {
  const w = await startWorld(t);
  const r = await against(w, ['reset']);
  t.equal(r.code, 1);
  t.equal(lines(r.stderr).length, 1);
  t.match(r.stderr, /^not reset \(HTTP 404\): .*RESET_ENABLED=1/);
});

t.test('inventory generate: batches, a summary line, ICCIDs only with --out or --json', async (t) => {
  const w = await startWorld(t);
  const out = join(dir, 'iccids.txt');
  const r = await against(w, ['inventory', 'generate', '--type', 'default', '--count', '10002', '--out', out]);
  t.ok(ok(r), `${r.stderr} (no progress: stderr is not a terminal)`);
  const iccids = lines(readFileSync(out, 'utf8'));
  t.equal(iccids.length, 10002, 'all ICCIDs in the file');
  t.equal(new Set(iccids).size, 10002);
  t.equal(r.stdout, `10002 profile(s) of type default generated: ${iccids[0]} … ${iccids.at(-1)}; ICCIDs in ${out}\n`, 'one summary line');
  const n = await w.db.query<{ n: string | number }>("SELECT count(*) AS n FROM profiles WHERE state = 'Available' AND iccid = ANY($1::text[])", [iccids]);
  t.equal(Number(n[0]!.n), 10002, 'in the inventory');
  const json = JSON.parse((await against(w, ['inventory', 'generate', '--type', 'default', '--count', '3', '--json'])).stdout);
  t.match(json, { generated: 3, type: 'default' });
  t.equal(json.iccids.length, 3);
  const bad = await against(w, ['inventory', 'generate', '--type', 'default', '--count', '0']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, '--count takes a positive integer (got "0")\n');
  const none = await against(w, ['inventory', 'generate', '--type', 'no-such-type', '--count', '2']);
  t.equal(none.code, 1);
  t.match(none.stderr, /^nothing generated \(HTTP 4\d\d\): /);
  t.equal(lines(none.stderr).length, 1);
});

t.test('with ADMIN_TOKEN the CLI needs the same token', async (t) => {
  const w = await startWorld(t, { config: { adminToken: 'tok-123' } });
  const without = await against(w, ['operator', 'list']);
  t.equal(without.code, 1);
  t.equal(lines(without.stderr).length, 1);
  t.match(without.stderr, /^cannot list operators \(HTTP 401\): .*\(set ADMIN_TOKEN to the server's admin token\)\n$/);
  const wrong = await against(w, ['operator', 'list'], { ADMIN_TOKEN: 'other' });
  t.equal(wrong.code, 1);
  const right = await against(w, ['operator', 'list'], { ADMIN_TOKEN: 'tok-123' });
  t.ok(ok(right), right.stderr);
  t.equal(right.stdout, 'no operators\n');
  const created = await against(w, ['operator', 'create', '--id', 'op1', '--name', 'One'], { ADMIN_TOKEN: 'tok-123' });
  t.match(created.stdout, /^operator op1 created\nAPI key \(shown once; send as X-API-Key\): msk_/);
  const table = await against(w, ['operator', 'list'], { ADMIN_TOKEN: 'tok-123' });
  t.match(lines(table.stdout)[1], /^op1 +One +- +yes /);
  t.match(JSON.parse((await against(w, ['operator', 'list', '--json'], { ADMIN_TOKEN: 'tok-123' })).stdout), { operators: [{ id: 'op1' }] });
});

t.test('on a terminal: progress on stderr, colour unless NO_COLOR', { skip: !existsSync('/usr/bin/script') && 'needs script(1) for a terminal' }, async (t) => {
  const w = await startWorld(t);
  await w.order();
  const { execFile } = await import('node:child_process');
  const inTerminal = (command: string, env: NodeJS.ProcessEnv = {}) =>
    new Promise<string>((resolve, reject) =>
      execFile('/usr/bin/script', ['-qec', command, '/dev/null'], {
        cwd: repo,
        env: { ...process.env, ...CLEAN_ENV, TERM: 'xterm', MOCK_SMDP_URL: w.url, CERTS_DIR: w.pkiDir, ...env },
        encoding: 'utf8',
        timeout: 60_000,
      }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
  const run = `${JSON.stringify(process.execPath)} --import tsx ${JSON.stringify(cliPath)}`;
  const generated = await inTerminal(`${run} inventory generate --type default --count 6000`);
  t.match(generated, /\rgenerating default profiles: 5,000\/6,000 \(83%\)/, 'progress, rewritten in place');
  t.match(generated, /\r\x1b\[2K6000 profile\(s\) of type default generated: /, 'cleared, then the summary');
  t.match(await inTerminal(`${run} order list`), /\x1b\[1mICCID/, 'a bold header on a terminal');
  t.notMatch(await inTerminal(`${run} order list`, { NO_COLOR: '1' }), /\x1b\[/, 'NO_COLOR: none');
});

t.test('certs: the SM-DP+ and the SM-DS host names in their TLS certificates', async (t) => {
  const { X509Certificate } = await import('node:crypto');
  const out = join(dir, 'pki-names');
  const r = await cli(['certs', '--dir', out, '--hostname', 'dp.example', '--smds-hostname', 'ds.example']);
  t.ok(ok(r), r.stderr);
  const san = (f: string) => new X509Certificate(readFileSync(join(out, f))).subjectAltName ?? '';
  t.match(san('DPtls/CERT_S_SM_DP_TLS_NIST.der'), /DNS:dp\.example/);
  t.match(san('DStls/CERT_S_SM_DS_TLS_NIST.der'), /DNS:ds\.example/);
  t.notMatch(san('DStls/CERT_S_SM_DS_TLS_BRP.der'), /dp\.example/, 'the SM-DS has a name of its own');
});
