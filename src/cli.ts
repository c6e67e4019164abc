#!/usr/bin/env node
/**
 * The mock-smdp command line (commander): `serve` and `certs` run here; every other command talks
 * to the running server's admin API. Conventions (README "Command line"):
 *
 * - `--help` / `-h` on any command, `help [command]`, and `--version` print to stdout and exit 0;
 * - errors are one line on stderr: exit 2 for a usage error, 1 for anything else;
 * - list and show commands print a table (or a few lines) and take `--json` for the JSON answer;
 * - long work (inventory generate, order export) shows its progress on stderr when that is a
 *   terminal, and prints a summary rather than thousands of lines (those with --json or --out);
 * - colour only on a terminal, never with NO_COLOR.
 */
import cluster from 'node:cluster';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import QRCode from 'qrcode';
import { addressHost, ConfigError, defaultConfig, LOG_FORMATS, LOG_LEVELS, serveConfig, type Config } from './config.js';
import { HttpClient, type HttpResponse } from './http/client.js';
import { generatePki } from './pki/generate.js';
import { layoutFiles } from './pki/layout.js';
import { StartupError, useColour } from './server.js';

/** A failure to report as one line on stderr; exit code 2 for usage errors. */
class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
const usage = (message: string) => new CliError(message, 2);

function packageVersion(): string {
  // src/cli.ts (tsx) and dist/src/cli.js (built) are one or two folders below package.json.
  for (const rel of ['../package.json', '../../package.json']) {
    const f = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(f)) {
      const p = JSON.parse(readFileSync(f, 'utf8')) as { name?: string; version?: string };
      if (p.name === 'mock-smdp' && p.version) return p.version;
    }
  }
  return 'unknown';
}

const ENVIRONMENT = `
Environment (mock-smdp serve; README "Configuration"):
  PORT, HOST, SMDP_ADDRESS, SMDP_HOSTNAME, CERTS_DIR, DATA_DIR, DATABASE_URL (postgres://…),
  TLS=1|0 (also true/false, yes/no, on/off), TLS_PROFILE=sgp22|compat (sgp22, the default: TLS 1.2
  with SGP.22's cipher suites only; compat: Node's defaults, TLS 1.3 too), ADMIN_TOKEN,
  RESET_ENABLED=0|1, SESSION_TTL_SECONDS, LOG_LEVEL=${LOG_LEVELS.join('|')},
  LOG_FORMAT=${LOG_FORMATS.join('|')} (auto: readable on a terminal, JSON lines otherwise), DB_POOL_SIZE,
  DB_CONNECT_TIMEOUT_SECONDS (default 5), RETENTION_DAYS (history kept, default 7, 0 = all),
  WORKERS (server processes on one port, like --workers; more than 1 needs DATABASE_URL).
Admin commands reach the server at MOCK_SMDP_URL (default http(s)://127.0.0.1:PORT, trusting the CI
of CERTS_DIR) and send ADMIN_TOKEN as a bearer token when it is set.`;

// ---------------------------------------------------------------- output

const out = (s = '') => void process.stdout.write(`${s}\n`);
const printJson = (v: unknown) => out(JSON.stringify(v, null, 2));
const colourOut = () => useColour(process.stdout);
const paint = (code: string, s: string) => (colourOut() ? `\x1b[${code}m${s}\x1b[0m` : s);
const STATE_COLOURS: Record<string, string> = { Installed: '32', Released: '36', Downloaded: '34', Error: '31', Unavailable: '90', Available: '90' };
const state = (s: string) => paint(STATE_COLOURS[s] ?? '0', s);

/** A table with a header; cells padded to their column (colour codes do not count). */
function table(header: string[], rows: Array<Array<string | number | null | undefined>>): void {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  // eslint-disable-next-line no-control-regex
  const width = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').length;
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => width(r[i] ?? ''))));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c)))).join('  ').trimEnd();
  out(paint('1', line(header)));
  for (const r of cells) out(line(r));
}

/** Progress on stderr while it is a terminal: one line rewritten in place; nothing otherwise. */
function progress(label: string) {
  const tty = !!process.stderr.isTTY;
  let last = 0;
  return {
    update(done: number, total: number) {
      if (!tty || (Date.now() - last < 100 && done < total)) return;
      last = Date.now();
      process.stderr.write(`\r${label}: ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${Math.floor((done / total) * 100)}%)`);
    },
    end() {
      if (tty && last) process.stderr.write('\r\x1b[2K');
    },
  };
}

// ---------------------------------------------------------------- the admin API

/** A client for the local server's admin API, trusting the CI of the certificate folder. */
export function adminClient(config: Config): HttpClient {
  const url = process.env.MOCK_SMDP_URL || `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`;
  const ca = Object.values(layoutFiles.ci).map((f) => {
    try {
      return `-----BEGIN CERTIFICATE-----\n${readFileSync(join(config.certsDir, f)).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    } catch {
      return '';
    }
  }).filter(Boolean);
  try {
    return new HttpClient({ baseUrl: url, ca, servername: addressHost(config.smdpAddress) });
  } catch {
    throw usage(`MOCK_SMDP_URL must be a URL such as https://127.0.0.1:8443 (got ${JSON.stringify(url)})`);
  }
}

function authHeaders(): Record<string, string> {
  return process.env.ADMIN_TOKEN ? { authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : {};
}

type Json = Record<string, any>;

/** The admin API of the running server, with failures as one-line CliErrors. */
class Admin {
  #client: HttpClient | undefined;

  get client(): HttpClient {
    return (this.#client ??= adminClient(defaultConfig()));
  }

  async call<T = Json>(method: string, path: string, body: unknown, what: string, expect: number[] = [200, 201, 204]): Promise<HttpResponse<T>> {
    let r: HttpResponse<T>;
    try {
      r = await this.client.request<T>(method, path, body, authHeaders());
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new CliError(`${what}: cannot reach the server at ${this.client.base.origin} (MOCK_SMDP_URL): ${e.code ?? e.message}`);
    }
    if (!expect.includes(r.status)) {
      const j = r.json as { message?: string } | undefined;
      const msg = (j?.message ?? r.text.trim()) || `HTTP ${r.status}`;
      const hint = r.status === 401 || r.status === 403 ? ' (set ADMIN_TOKEN to the server\'s admin token)' : '';
      throw new CliError(`${what} (HTTP ${r.status}): ${msg}${hint}`.replace(/\s*\n\s*/g, ' '));
    }
    return r;
  }

  get = async <T = Json>(path: string, what: string) => (await this.call<T>('GET', path, undefined, what)).json as T;
  post = async <T = Json>(path: string, body: unknown, what: string) => (await this.call<T>('POST', path, body, what)).json as T;

  close(): void {
    this.#client?.close();
  }
}

const admin = new Admin();

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw usage(`${name} takes a ${min > 0 ? 'positive' : 'non-negative'} integer (got ${JSON.stringify(v)})`);
  return Number(v);
}

function query(values: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== false) q.set(k, String(v));
  return q.size ? `?${q}` : '';
}

// ---------------------------------------------------------------- commands

const program = new Command('mock-smdp')
  .description('GSMA SGP.22 SM-DP+ test server and device simulator')
  .version(packageVersion(), '-V, --version', 'print the version')
  .helpOption('-h, --help', 'show help')
  .helpCommand('help [command]', 'show help for a command')
  .showSuggestionAfterError()
  .addHelpText('after', ENVIRONMENT)
  .configureOutput({ outputError: (s, write) => write(useColour(process.stderr) ? `\x1b[31m${s}\x1b[0m` : s) })
  .exitOverride();

program
  .command('serve')
  .description('run the SM-DP+ (ES9+, ES2+, admin API, console); stops on Ctrl-C / SIGTERM')
  .option('--port <n>', 'listen on this port (PORT, default 8443)')
  .option('--host <ip>', 'listen on this interface (HOST, default 0.0.0.0)')
  .option('--address <host[:port]>', 'the SM-DP+ address (SMDP_ADDRESS)')
  .option('--certs <dir>', 'PKI folder, SGP.26 layout (CERTS_DIR)')
  .option('--data <dir>', 'PGlite data folder (DATA_DIR)')
  .option('--plain-http', 'serve plain HTTP (TLS=0)')
  .option('--workers <n>', 'server processes on one port (WORKERS; more than 1 needs DATABASE_URL)')
  .action(async (o: { port?: string; host?: string; address?: string; certs?: string; data?: string; plainHttp?: boolean; workers?: string }) => {
    const config = serveConfig(o);
    const { checkClusterConfig, isClusterWorker, runPrimary } = await import('./cluster.js');
    checkClusterConfig(config);
    // The primary of `--workers N` forks N processes that run this same command as workers.
    if (config.workers > 1 && !isClusterWorker()) {
      process.exitCode = await runPrimary(config);
      return;
    }
    // Ctrl-C or SIGTERM while starting (PKI generation, a database that is slow to answer) ends the
    // process at once; the data-folder lock is released by its exit hook (src/db/db.ts).
    const duringStart = (signal: NodeJS.Signals) => {
      // A cluster worker is stopped by its primary (which reports for the cluster): a clean exit.
      if (cluster.isWorker) process.exit(0);
      process.stderr.write(`${signal} while starting: not started\n`);
      process.exit(130);
    };
    process.once('SIGINT', duringStart);
    process.once('SIGTERM', duringStart);
    const { startServer } = await import('./server.js');
    const server = await startServer(config);
    process.removeListener('SIGINT', duringStart);
    process.removeListener('SIGTERM', duringStart);
    const stop = async (signal: string) => {
      server.app.log.info(`${signal}: shutting down`);
      // A second Ctrl-C does not wait for the clean shutdown.
      process.once('SIGINT', () => process.exit(130));
      await server.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
    keepRunning = true;
  });

program
  .command('certs')
  .description('generate a test PKI (CI, EUM, SM-DP+ certificates) in the SGP.26 layout')
  .option('--dir <dir>', 'where (default CERTS_DIR or certs)')
  .option('--hostname <name>', 'the SM-DP+ host name in the certificates')
  .option('--smds-hostname <name>', "the built-in SM-DS's host name in its TLS certificate (default: the host of SMDS_ADDRESS, else --hostname)")
  .option('--smdp-oid <oid>', 'the SM-DP+ OID')
  .option('--ein <prefix>', "the EUM's permitted EIN prefix")
  .option('--force', 'overwrite an existing PKI')
  .action(async (o: { dir?: string; hostname?: string; smdsHostname?: string; smdpOid?: string; ein?: string; force?: boolean }) => {
    const c = defaultConfig();
    const dir = o.dir ?? c.certsDir;
    await generatePki(dir, {
      hostname: o.hostname ?? addressHost(c.smdpAddress),
      ...(o.smdsHostname || c.smdsAddress ? { smdsHostname: o.smdsHostname ?? addressHost(c.smdsAddress!) } : {}),
      ...(o.smdpOid ? { smdpOid: o.smdpOid } : {}),
      ...(o.ein ? { einPrefix: o.ein } : {}),
      force: o.force ?? false,
    });
    out(`test PKI written to ${dir}`);
  });

// ---- order

const order = program.command('order').description('orders: downloadable profiles and their activation codes');

order
  .command('create')
  .description('create a Released order (or --count N of them) and print its activation code')
  .option('--iccid <iccid>', 'a given ICCID (default: the next Available profile)')
  .option('--matching-id <id>', 'a given MatchingID')
  .option('--eid <eid>', 'bind the order to this eUICC')
  .option('--cc <code>', 'confirmation code')
  .option('--expires-in <seconds>', 'expiry')
  .option('--profile-type <type>', 'profile type (default: default)')
  .option('--max-attempts <n>', 'download attempts allowed')
  .option('--count <n>', 'create this many orders (1-10000)')
  .option('--json', 'print the JSON answer')
  .action(async (o: Record<string, string | boolean | undefined>) => {
    const body: Record<string, unknown> = {};
    if (o.iccid) body.iccid = o.iccid;
    if (o.matchingId) body.matchingId = o.matchingId;
    if (o.eid) body.eid = o.eid;
    if (o.cc) body.confirmationCode = o.cc;
    if (o.expiresIn !== undefined) body.expiresIn = int('--expires-in', o.expiresIn as string, 1);
    if (o.profileType) body.profileType = o.profileType;
    if (o.maxAttempts !== undefined) body.maxDownloadAttempts = int('--max-attempts', o.maxAttempts as string, 1);
    if (o.count !== undefined) body.count = int('--count', o.count as string, 1);
    const r = await admin.post('/admin/orders', body, 'order not created');
    if (o.json) return printJson(r);
    const orders: Json[] = r.orders ?? [r];
    if (orders.length === 1 && !o.count) out(`ICCID ${orders[0]!.iccid}\n${orders[0]!.activationCode}`);
    else for (const x of orders) out(`${x.iccid}\t${x.activationCode}`);
  });

order
  .command('show')
  .description("an order's state, history and notifications")
  .argument('<iccid>')
  .option('--json', 'print the JSON answer')
  .action(async (iccid: string, o: { json?: boolean }) => {
    const p = await admin.get(`/admin/profiles/${encodeURIComponent(iccid)}`, `no order ${iccid}`);
    if (o.json) return printJson(p);
    out(`ICCID ${p.iccid}  ${state(p.state)}${p.deviceState ? ` (on the eUICC: ${p.deviceState})` : ''}  type ${p.profileType}`);
    out(`  EID ${p.eid ?? '-'}  MatchingID ${p.matchingId ?? '-'}  confirmation code ${p.confirmationCodeRequired ? `required (${p.confirmationCodeAttempts} wrong)` : 'none'}`);
    out(`  downloads ${p.downloadAttempts}${p.maxDownloadAttempts ? `/${p.maxDownloadAttempts}` : ''}  expires ${p.expiresAt ?? 'never'}  updated ${p.updatedAt}`);
    if (p.history?.length) {
      out('history:');
      for (const h of p.history) out(`  ${h.at}  ${h.event}${h.detail && Object.keys(h.detail).length ? `  ${JSON.stringify(h.detail)}` : ''}`);
    }
    if (p.notifications?.length) {
      out('notifications:');
      for (const n of p.notifications) out(`  ${n.at}  ${n.kind}${n.seqNumber !== null ? ` #${n.seqNumber}` : ''}  ${n.verified ? 'verified' : 'not verified'}  ${n.outcome}`);
    }
  });

const STATES = ['Available', 'Allocated', 'Linked', 'Confirmed', 'Released', 'Downloaded', 'Installed', 'Error', 'Unavailable'];
const stateOption = () => new Option('--state <state>', 'only orders in this state (default: every state but Available)').choices(STATES);

order
  .command('list')
  .description('orders, most recently changed first, with their activation codes')
  .addOption(stateOption())
  .option('--operator <id>', "only this operator's")
  .option('--limit <n>', 'at most this many (1-1000)', '100')
  .option('--offset <n>', 'skip this many')
  .option('--json', 'print the JSON answer')
  .action(async (o: { state?: string; operator?: string; limit: string; offset?: string; json?: boolean }) => {
    const q = query({ state: o.state, operator: o.operator, limit: int('--limit', o.limit, 1), offset: int('--offset', o.offset) });
    const r = await admin.get(`/admin/orders${q}`, 'cannot list orders');
    if (o.json) return printJson(r);
    if (!r.orders.length) return out('no orders');
    table(['ICCID', 'STATE', 'TYPE', 'OPERATOR', 'EID', 'UPDATED', 'ACTIVATION CODE'],
      r.orders.map((x: Json) => [x.iccid, state(x.state), x.profileType, x.operator, x.eid, x.updatedAt, x.activationCode]));
  });

const CSV_COLUMNS = ['iccid', 'state', 'deviceState', 'profileType', 'operator', 'imsi', 'eid', 'matchingId', 'confirmationCodeRequired', 'activationCode', 'downloadAttempts', 'expiresAt', 'updatedAt'];
const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

order
  .command('export')
  .description('every order with its activation code, as CSV or JSON (all pages)')
  .addOption(new Option('--format <format>', 'output format').choices(['csv', 'json']).default('csv'))
  .addOption(stateOption())
  .option('--operator <id>', "only this operator's")
  .option('--out <file>', 'write to this file (default: stdout)')
  .action(async (o: { format: 'csv' | 'json'; state?: string; operator?: string; out?: string }) => {
    const page = 1000;
    const orders: Json[] = [];
    const shown = progress('exporting orders');
    for (let offset = 0; ; offset += page) {
      const r = await admin.get(`/admin/orders${query({ state: o.state, operator: o.operator, limit: page, offset })}`, 'cannot list orders');
      orders.push(...r.orders);
      shown.update(orders.length, orders.length + (r.orders.length === page ? page : 0));
      if (r.orders.length < page) break;
    }
    shown.end();
    const text = o.format === 'json'
      ? `${JSON.stringify({ orders }, null, 2)}\n`
      : [CSV_COLUMNS.join(','), ...orders.map((x) => CSV_COLUMNS.map((c) => csvCell(x[c])).join(','))].join('\n') + '\n';
    if (!o.out) return void process.stdout.write(text);
    writeFileSync(o.out, text);
    out(`${orders.length} order(s) written to ${o.out} (${o.format})`);
  });

// ---- reset

program
  .command('reset')
  .description('empty orders and sessions (POST /admin/reset; the server needs RESET_ENABLED=1)')
  .option('--all', 'also profiles, operators, profile types and family groups')
  .option('--json', 'print the JSON answer')
  .action(async (o: { all?: boolean; json?: boolean }) => {
    const r = await admin.post(`/admin/reset${o.all ? '?all=1' : ''}`, undefined, 'not reset');
    if (o.json) return printJson(r);
    const deleted = Object.entries(r.deleted as Record<string, number>).map(([k, n]) => `${n} ${k}`).join(', ');
    out(`reset (${r.scope}): deleted ${deleted || 'nothing'}${r.returnedToPool ? `; ${r.returnedToPool} profile(s) back to Available` : ''}${r.unboundLines ? `; ${r.unboundLines} family line(s) unbound` : ''}`);
  });

// ---- fault

const fault = program.command('fault').description('fault injection: the next ES9+ call(s) of an order or eUICC fail, wait or drop');

fault
  .command('add')
  .description('add a fault (prints it as JSON)')
  .option('--iccid <iccid>', 'target: an order')
  .option('--matching-id <id>', 'target: a MatchingID')
  .option('--eid <eid>', 'target: an eUICC')
  .option('--function <name>', 'only this ES9+ function')
  .option('--fail <subject/reason>', 'answer this SGP.22 status, e.g. 8.2.6/3.8')
  .option('--delay <ms>', 'answer after this delay')
  .option('--drop', 'cut the connection')
  .option('--count <n>', 'fire this many times')
  .option('--message <text>', 'the failure message')
  .action(async (o: Record<string, string | boolean | undefined>) => {
    const modes = [o.fail !== undefined, o.delay !== undefined, !!o.drop].filter(Boolean).length;
    if (modes !== 1) throw usage('fault add: give exactly one of --fail SUBJECT/REASON, --delay MS, --drop');
    const body: Record<string, unknown> = {};
    if (o.iccid) body.iccid = o.iccid;
    if (o.matchingId) body.matchingId = o.matchingId;
    if (o.eid) body.eid = o.eid;
    if (o.function) body.function = o.function;
    if (o.count !== undefined) body.count = int('--count', o.count as string, 1);
    if (o.message) body.message = o.message;
    if (o.fail !== undefined) {
      const m = /^([\d.]+)\/([\d.]+)$/.exec(o.fail as string);
      if (!m) throw usage(`fault add: --fail wants SUBJECT/REASON, e.g. 8.2.6/3.8 (got ${o.fail})`);
      Object.assign(body, { mode: 'fail', subjectCode: m[1], reasonCode: m[2] });
    } else if (o.delay !== undefined) Object.assign(body, { mode: 'delay', delayMs: int('--delay', o.delay as string) });
    else body.mode = 'drop';
    printJson(await admin.post('/admin/faults', body, 'fault not added'));
  });

fault
  .command('list')
  .description('faults still to fire (--all: fired ones too)')
  .option('--all', 'include spent faults')
  .option('--json', 'print the JSON answer')
  .action(async (o: { all?: boolean; json?: boolean }) => {
    const r = await admin.get(`/admin/faults${o.all ? '?all=true' : ''}`, 'cannot list faults');
    if (o.json) return printJson(r);
    if (!r.faults.length) return out('no faults');
    table(['ID', 'TARGET', 'FUNCTION', 'MODE', 'REMAINING', 'FIRED'], r.faults.map((f: Json) => [
      f.id,
      f.iccid ? `iccid ${f.iccid}` : f.matchingId ? `matchingId ${f.matchingId}` : `eid ${f.eid}`,
      f.function ?? 'any',
      f.mode === 'fail' ? `fail ${f.subjectCode}/${f.reasonCode}` : f.mode === 'delay' ? `delay ${f.delayMs} ms` : f.mode,
      f.remaining,
      f.fired,
    ]));
  });

fault
  .command('clear')
  .description('remove a fault')
  .argument('<id>')
  .action(async (id: string) => {
    await admin.call('DELETE', `/admin/faults/${encodeURIComponent(id)}`, undefined, `fault ${id} not cleared`, [204]);
    out(`fault ${id} cleared`);
  });

// ---- inventory, profile types, activation codes

const inventory = program.command('inventory').description('the pool of Available profiles');

/** The server generates at most this many per request; more are sent as several requests. */
const GENERATE_BATCH = 5_000;

inventory
  .command('generate')
  .description('generate profiles (Luhn-valid ICCIDs, random Ki/OPc); prints a summary (ICCIDs with --json or --out)')
  .requiredOption('--type <type>', 'profile type')
  .requiredOption('--count <n>', 'how many (1-100000)')
  .option('--prefix <digits>', 'leading ICCID digits (default 89000)')
  .option('--mcc-mnc <digits>', 'IMSI MCC+MNC (default 00101)')
  .option('--operator <id>', 'owning operator')
  .option('--out <file>', 'write the new ICCIDs to this file, one per line')
  .option('--json', 'print the JSON answer with every ICCID')
  .action(async (o: { type: string; count: string; prefix?: string; mccMnc?: string; operator?: string; out?: string; json?: boolean }) => {
    const count = int('--count', o.count, 1)!;
    if (count > 100_000) throw usage(`--count takes at most 100000 (got ${count})`);
    const iccids: string[] = [];
    const shown = progress(`generating ${o.type} profiles`);
    shown.update(0, count);
    try {
      while (iccids.length < count) {
        const n = Math.min(GENERATE_BATCH, count - iccids.length);
        const body = { type: o.type, count: n, ...(o.prefix ? { prefix: o.prefix } : {}), ...(o.mccMnc ? { mccMnc: o.mccMnc } : {}), ...(o.operator ? { operator: o.operator } : {}) };
        const r = await admin.post('/admin/inventory/generate', body, iccids.length ? `generation stopped after ${iccids.length} profile(s)` : 'nothing generated');
        iccids.push(...(r.iccids as string[]));
        shown.update(iccids.length, count);
      }
    } finally {
      shown.end();
    }
    if (o.out) writeFileSync(o.out, `${iccids.join('\n')}\n`);
    if (o.json) return printJson({ generated: iccids.length, type: o.type, operator: o.operator ?? null, iccids });
    out(`${iccids.length} profile(s) of type ${o.type} generated${o.operator ? ` for ${o.operator}` : ''}${iccids.length > 1 ? `: ${iccids[0]} … ${iccids.at(-1)}` : `: ${iccids[0]}`}${o.out ? `; ICCIDs in ${o.out}` : ''}`);
  });

inventory
  .command('import')
  .description('import profiles from CSV (iccid,imsi,ki,opc[,type]) or JSON, all or nothing')
  .argument('<file>')
  .requiredOption('--type <type>', 'profile type')
  .option('--operator <id>', 'owning operator')
  .option('--luhn', 'require a Luhn check digit')
  .addOption(new Option('--format <format>', 'file format (default: from the extension)').choices(['csv', 'json']))
  .option('--json', 'print the JSON answer')
  .action(async (file: string, o: { type: string; operator?: string; luhn?: boolean; format?: string; json?: boolean }) => {
    let data: string;
    try {
      data = readFileSync(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const format = o.format ?? (extname(file).toLowerCase() === '.json' ? 'json' : 'csv');
    const r = await admin.post('/admin/inventory/import', { type: o.type, format, data, ...(o.operator ? { operator: o.operator } : {}), ...(o.luhn ? { luhn: true } : {}) }, 'nothing imported');
    if (o.json) return printJson(r);
    out(`${r.imported} profile(s) imported as type ${o.type}`);
  });

inventory
  .command('list')
  .description('profiles with counts per state')
  .option('--type <type>', 'only this profile type')
  .addOption(new Option('--state <state>', 'only this state').choices(STATES))
  .option('--operator <id>', "only this operator's")
  .option('--limit <n>', 'at most this many (1-1000)')
  .option('--json', 'print the JSON answer')
  .action(async (o: { type?: string; state?: string; operator?: string; limit?: string; json?: boolean }) => {
    const r = await admin.get(`/admin/inventory${query({ type: o.type, state: o.state, operator: o.operator, limit: int('--limit', o.limit, 1) })}`, 'cannot list');
    if (o.json) return printJson(r);
    const counts = Object.entries(r.counts as Record<string, number>).filter(([, n]) => n > 0);
    out(`total ${r.total}: ${counts.map(([s, n]) => `${state(s)} ${n}`).join(', ') || 'none'}`);
    if (r.profiles.length) table(['ICCID', 'IMSI', 'TYPE', 'STATE', 'OPERATOR', 'MATCHING ID'], r.profiles.map((p: Json) => [p.iccid, p.imsi, p.profileType, state(p.state), p.operator, p.matchingId]));
  });

const profileType = program.command('profile-type').description('profile types, optionally with a template (SAIP DER)');

async function profileTypeList(o: { json?: boolean }) {
  const r = await admin.get('/admin/profile-types', 'cannot list profile types');
  if (o.json) return printJson(r);
  table(['NAME', 'SERVICE PROVIDER', 'PROFILE NAME', 'CLASS', 'TEMPLATE', 'PROFILES'], r.profileTypes.map((t: Json) => [
    t.name, t.serviceProviderName, t.profileName, t.profileClass, t.template ? 'yes' : 'no',
    Object.entries((t.counts ?? {}) as Record<string, number>).map(([s, n]) => `${s} ${n}`).join(', ') || '0',
  ]));
}

async function profileTypeAdd(name: string, o: { template?: string; spn?: string; profileName?: string; class?: string; replace?: boolean; json?: boolean }) {
  const body: Record<string, unknown> = { name };
  if (o.template !== undefined) {
    try {
      body.template = readFileSync(o.template).toString('base64');
    } catch (err) {
      throw new CliError(`cannot read the template ${o.template}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else if (o.spn === undefined || o.profileName === undefined) {
    throw usage('a profile type without --template needs --spn and --profile-name');
  }
  if (o.spn !== undefined) body.serviceProviderName = o.spn;
  if (o.profileName !== undefined) body.profileName = o.profileName;
  if (o.class !== undefined) body.profileClass = Number(o.class);
  if (o.replace) body.replace = true;
  const r = await admin.post('/admin/profile-types', body, 'profile type not created');
  if (o.json) return printJson(r);
  out(`profile type ${r.name} ${o.replace ? 'saved' : 'created'}${r.template ? ' with its template' : ''}`);
}

const addTypeOptions = (c: Command) =>
  c
    .argument('<name>')
    .option('--template <file.der>', 'an Unprotected Profile Package (SAIP DER), e.g. a TS.48 test profile')
    .option('--spn <name>', 'service provider name')
    .option('--profile-name <name>', 'profile name')
    .addOption(new Option('--class <n>', 'profile class: 0 test, 1 provisioning, 2 operational').choices(['0', '1', '2']))
    .option('--replace', 'update an existing type of that name')
    .option('--json', 'print the JSON answer')
    .action(profileTypeAdd);

addTypeOptions(profileType.command('add').description('add a profile type'));
profileType.command('list').description('profile types with their profile counts').option('--json', 'print the JSON answer').action(profileTypeList);
profileType
  .command('template')
  .description("save a type's template")
  .argument('<name>')
  .requiredOption('--out <file.der>', 'where')
  .action(async (name: string, o: { out: string }) => {
    const r = await admin.call('GET', `/admin/profile-types/${encodeURIComponent(name)}/template`, undefined, 'no template', [200]);
    writeFileSync(o.out, r.body);
    out(`${r.body.length} bytes written to ${o.out}`);
  });
inventory.command('types').description('the same as profile-type list').option('--json', 'print the JSON answer').action(profileTypeList);
addTypeOptions(inventory.command('add-type').description('the same as profile-type add'));

program
  .command('ac')
  .description('activation codes')
  .command('show')
  .description('an activation code as text and a QR code in the terminal')
  .argument('<matching-id>')
  .addOption(new Option('--ecl <level>', 'QR error correction').choices(['L', 'M', 'Q', 'H', 'l', 'm', 'q', 'h']).default('M'))
  .option('--oid', "add the SM-DP+ OID")
  .option('--json', 'print {activationCode} only')
  .action(async (id: string, o: { ecl: string; oid?: boolean; json?: boolean }) => {
    const r = await admin.call('GET', `/admin/activation-codes/${encodeURIComponent(id)}${o.oid ? '?oid=1' : ''}`, undefined, 'no activation code', [200]);
    const text = r.text.trim();
    if (o.json) return printJson({ matchingId: id, activationCode: text });
    out(await QRCode.toString(text, { type: 'terminal', errorCorrectionLevel: o.ecl.toUpperCase() as 'L' | 'M' | 'Q' | 'H', small: true }));
    out(text);
  });

// ---- operators

const operator = program.command('operator').description('ES2+ callers (operators) and their API keys');

operator
  .command('create')
  .description('create an operator; prints its API key once')
  .requiredOption('--id <id>', 'operator id (functionRequesterIdentifier)')
  .requiredOption('--name <name>', 'display name')
  .option('--callback <url>', 'where handleDownloadProgressInfo goes')
  .option('--cc-max <n>', 'confirmation-code attempts per order')
  .option('--download-max <n>', 'download attempts per order')
  .option('--order-ttl <seconds>', 'order expiry')
  .option('--cert-sha256 <hex>', 'TLS client certificate fingerprint')
  .option('--no-key', 'no API key (client certificate only)')
  .option('--json', 'print the JSON answer')
  .action(async (o: { id: string; name: string; callback?: string; ccMax?: string; downloadMax?: string; orderTtl?: string; certSha256?: string; key: boolean; json?: boolean }) => {
    const body: Record<string, unknown> = { id: o.id, name: o.name };
    if (o.callback) body.callbackUrl = o.callback;
    if (o.ccMax !== undefined) body.ccMaxAttempts = int('--cc-max', o.ccMax, 1);
    if (o.downloadMax !== undefined) body.maxDownloadAttempts = int('--download-max', o.downloadMax, 1);
    if (o.orderTtl !== undefined) body.orderTtlSeconds = int('--order-ttl', o.orderTtl, 1);
    if (o.certSha256) body.clientCertSha256 = o.certSha256;
    if (!o.key) body.apiKey = false;
    const r = await admin.post('/admin/operators', body, 'operator not created');
    if (o.json) return printJson(r);
    out(`operator ${r.id} created`);
    if (r.apiKey) out(`API key (shown once; send as X-API-Key): ${r.apiKey}`);
  });

operator
  .command('list')
  .description('operators (never their keys)')
  .option('--json', 'print the JSON answer')
  .action(async (o: { json?: boolean }) => {
    const r = await admin.get('/admin/operators', 'cannot list operators');
    if (o.json) return printJson(r);
    if (!r.operators.length) return out('no operators');
    table(['ID', 'NAME', 'CALLBACK', 'API KEY', 'CC MAX', 'DOWNLOAD MAX', 'ORDER TTL'], r.operators.map((x: Json) => [
      x.id, x.name, x.callbackUrl, x.hasApiKey ? 'yes' : 'no', x.ccMaxAttempts, x.maxDownloadAttempts, x.orderTtlSeconds,
    ]));
  });

// ---- sim and family: their own parsers (src/sim/cli.ts, src/family/cli.ts), listed here for help

const PASSTHROUGH = {
  sim: 'a software device (LPA + virtual eUICC): download, notifications, profiles, enable|disable|delete, eid, apdu-stdio, discover, companion (mock-smdp sim --help)',
  family: 'family plans through the API: demo, usage, summary, events, clock, advance, rollover, controls, roaming, passes, buy, approve (mock-smdp family --help)',
} as const;
for (const [name, description] of Object.entries(PASSTHROUGH)) {
  program.command(name).description(description).helpOption(false).allowUnknownOption().allowExcessArguments().argument('[args...]');
}

async function passthrough(cmd: 'sim' | 'family', argv: string[]): Promise<number> {
  if (cmd === 'sim') {
    const { simCommand } = await import('./sim/cli.js');
    return simCommand(argv);
  }
  const { familyCommand } = await import('./family/cli.js');
  try {
    return await familyCommand(argv, admin.client, authHeaders());
  } finally {
    admin.close();
  }
}

// ---------------------------------------------------------------- main

let keepRunning = false;

/** Runs the command line; resolves with the exit code (undefined: a server keeps running). */
async function main(argv: string[]): Promise<number | undefined> {
  if (argv[0] === 'sim' || argv[0] === 'family') return passthrough(argv[0], argv.slice(1));
  if (argv.length === 0) {
    process.stderr.write(program.helpInformation());
    return 2;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help, help, --version: exit 0; a usage error (already printed by commander): exit 2.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  } finally {
    admin.close();
  }
  if (keepRunning) return undefined;
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof CliError || err instanceof ConfigError || err instanceof StartupError;
    const msg = err instanceof Error ? (known ? err.message : err.message || String(err)) : String(err);
    process.stderr.write(`${useColour(process.stderr) ? `\x1b[31m${msg}\x1b[0m` : msg}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
    // Nothing started may keep the process alive (a cluster worker's channel to its primary, a
    // database pool closing): a failed command exits now.
    process.exit(process.exitCode);
  },
);
