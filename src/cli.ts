#!/usr/bin/env node
/** mock-smdp command line: serve, certs, order, sim. */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addressHost, ConfigError, defaultConfig, type Config } from './config.js';
import { HttpClient } from './http/client.js';
import { generatePki } from './pki/generate.js';
import { layoutFiles } from './pki/layout.js';
import { startServer } from './server.js';

const USAGE = `mock-smdp — GSMA SGP.22 SM-DP+ test server and device simulator

  mock-smdp serve [--port N] [--host IP] [--address HOST[:PORT]] [--certs DIR] [--data DIR] [--plain-http] [--workers N]
  mock-smdp certs [--dir DIR] [--hostname NAME] [--smdp-oid OID] [--ein PREFIX] [--force]
  mock-smdp order create [--iccid ICCID] [--matching-id ID] [--eid EID] [--cc CODE] [--expires-in SEC] [--profile-type T]
  mock-smdp order show ICCID
  mock-smdp fault add (--iccid ICCID | --matching-id ID | --eid EID) [--function F] (--fail S/R | --delay MS | --drop) [--count N] [--message TEXT]
  mock-smdp fault list [--all]
  mock-smdp fault clear ID
  mock-smdp inventory generate --type T --count N [--prefix P] [--mcc-mnc 00101] [--operator OP]
  mock-smdp inventory import FILE --type T [--operator OP]   (CSV iccid,imsi,ki,opc[,type] or JSON)
  mock-smdp inventory list [--type T] [--state S] [--operator OP]   (mock-smdp inventory help)
  mock-smdp profile-type add NAME [--template FILE.der] [--spn NAME] [--profile-name NAME] [--class 0|1|2] [--replace]
  mock-smdp profile-type list | profile-type template NAME --out FILE.der
  mock-smdp ac show MATCHINGID [--ecl L|M|Q|H] [--oid]
  mock-smdp operator create --id ID --name N [--callback URL] [--cc-max N] [--download-max N] [--order-ttl SEC]   (prints the API key)
  mock-smdp operator list
  mock-smdp sim download 'LPA:1$HOST$MATCHINGID' [--cc CODE] [--state FILE] [--url URL] ...
  mock-smdp sim notifications|profiles|enable|disable|delete ...   (mock-smdp sim --help)
  mock-smdp family demo | usage | summary | events | clock | advance | rollover ...   (mock-smdp family help)

Environment: PORT, HOST, SMDP_ADDRESS, SMDP_HOSTNAME, CERTS_DIR, DATA_DIR, DATABASE_URL, TLS=0,
TLS_PROFILE=sgp22|compat (sgp22, the default: TLS 1.2 with SGP.22's cipher suites only; compat:
Node's defaults, TLS 1.3 too), ADMIN_TOKEN, SESSION_TTL_SECONDS, LOG_LEVEL, DB_POOL_SIZE,
RETENTION_DAYS (history kept, default 7, 0 = all), WORKERS (server processes on one port, like
--workers; more than 1 needs DATABASE_URL). 'order' talks to the running server's admin API
(MOCK_SMDP_URL, default the local server).`;

function serverConfig(values: Record<string, string | boolean | undefined>): Config {
  const c = defaultConfig();
  if (values.port) c.port = Number(values.port);
  if (values.host) c.listenHost = String(values.host);
  if (values.certs) c.certsDir = String(values.certs);
  if (values.data) c.dataDir = String(values.data);
  if (values['plain-http']) c.tls = false;
  if (values.workers !== undefined) {
    const n = Number(values.workers);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--workers must be a positive integer (got ${JSON.stringify(values.workers)})`);
    c.workers = n;
  }
  if (values.address) c.smdpAddress = String(values.address);
  else if (values.port && !process.env.SMDP_ADDRESS) c.smdpAddress = `${process.env.SMDP_HOSTNAME ?? 'localhost'}:${c.port}`;
  return c;
}

/** A client for the local server's admin API, trusting the CI of the certificate folder. */
export function adminClient(config: Config): HttpClient {
  const url = process.env.MOCK_SMDP_URL ?? `${config.tls ? 'https' : 'http'}://127.0.0.1:${config.port}`;
  const ca = Object.values(layoutFiles.ci).map((f) => {
    try {
      return `-----BEGIN CERTIFICATE-----\n${readFileSync(join(config.certsDir, f)).toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    } catch {
      return '';
    }
  }).filter(Boolean);
  return new HttpClient({ baseUrl: url, ca, servername: addressHost(config.smdpAddress) });
}

function authHeaders(): Record<string, string> {
  return process.env.ADMIN_TOKEN ? { authorization: `Bearer ${process.env.ADMIN_TOKEN}` } : {};
}

async function orderCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      iccid: { type: 'string' }, 'matching-id': { type: 'string' }, eid: { type: 'string' }, cc: { type: 'string' },
      'expires-in': { type: 'string' }, 'profile-type': { type: 'string' }, 'max-attempts': { type: 'string' },
      count: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const client = adminClient(defaultConfig());
  try {
    if (positionals[0] === 'create') {
      const body: Record<string, unknown> = {};
      if (values.iccid) body.iccid = values.iccid;
      if (values['matching-id']) body.matchingId = values['matching-id'];
      if (values.eid) body.eid = values.eid;
      if (values.cc) body.confirmationCode = values.cc;
      if (values['expires-in']) body.expiresIn = Number(values['expires-in']);
      if (values['profile-type']) body.profileType = values['profile-type'];
      if (values['max-attempts']) body.maxDownloadAttempts = Number(values['max-attempts']);
      if (values.count) body.count = Number(values.count);
      const r = await client.post<{ activationCode?: string; iccid?: string; message?: string }>('/admin/orders', body, authHeaders());
      if (r.status !== 201) {
        console.error(`order not created (HTTP ${r.status}): ${r.json?.message ?? r.text}`);
        return 1;
      }
      if (values.json || values.count) console.log(JSON.stringify(r.json, null, 2));
      else console.log(`ICCID ${r.json!.iccid}\n${r.json!.activationCode}`);
      return 0;
    }
    if (positionals[0] === 'show' && positionals[1]) {
      const r = await client.get(`/admin/profiles/${encodeURIComponent(positionals[1])}`, authHeaders());
      console.log(JSON.stringify(r.json ?? r.text, null, 2));
      return r.status === 200 ? 0 : 1;
    }
    console.error(USAGE);
    return 2;
  } finally {
    client.close();
  }
}

/** Fault injection through the admin API: the next ES9+ call(s) of an order or eUICC fail, wait or drop. */
async function faultCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      iccid: { type: 'string' }, 'matching-id': { type: 'string' }, eid: { type: 'string' }, function: { type: 'string' },
      fail: { type: 'string' }, delay: { type: 'string' }, drop: { type: 'boolean' }, count: { type: 'string' },
      message: { type: 'string' }, all: { type: 'boolean' },
    },
  });
  const client = adminClient(defaultConfig());
  try {
    if (positionals[0] === 'add') {
      const modes = [values.fail !== undefined, values.delay !== undefined, !!values.drop].filter(Boolean).length;
      if (modes !== 1) {
        console.error('fault add: give exactly one of --fail SUBJECT/REASON, --delay MS, --drop');
        return 2;
      }
      const body: Record<string, unknown> = {};
      if (values.iccid) body.iccid = values.iccid;
      if (values['matching-id']) body.matchingId = values['matching-id'];
      if (values.eid) body.eid = values.eid;
      if (values.function) body.function = values.function;
      if (values.count) body.count = Number(values.count);
      if (values.message) body.message = values.message;
      if (values.fail !== undefined) {
        const m = values.fail.match(/^([\d.]+)\/([\d.]+)$/);
        if (!m) {
          console.error(`fault add: --fail wants SUBJECT/REASON, e.g. 8.2.6/3.8 (got ${values.fail})`);
          return 2;
        }
        Object.assign(body, { mode: 'fail', subjectCode: m[1], reasonCode: m[2] });
      } else if (values.delay !== undefined) Object.assign(body, { mode: 'delay', delayMs: Number(values.delay) });
      else body.mode = 'drop';
      const r = await client.post<{ id?: string; message?: string }>('/admin/faults', body, authHeaders());
      if (r.status !== 201) {
        console.error(`fault not added (HTTP ${r.status}): ${r.json?.message ?? r.text}`);
        return 1;
      }
      console.log(JSON.stringify(r.json, null, 2));
      return 0;
    }
    if (positionals[0] === 'list') {
      const r = await client.get(`/admin/faults${values.all ? '?all=true' : ''}`, authHeaders());
      console.log(JSON.stringify(r.json ?? r.text, null, 2));
      return r.status === 200 ? 0 : 1;
    }
    if (positionals[0] === 'clear' && positionals[1]) {
      const r = await client.request('DELETE', `/admin/faults/${encodeURIComponent(positionals[1])}`, undefined, authHeaders());
      if (r.status !== 204) {
        console.error(`fault ${positionals[1]} not cleared (HTTP ${r.status})`);
        return 1;
      }
      console.log(`fault ${positionals[1]} cleared`);
      return 0;
    }
    console.error(USAGE);
    return 2;
  } finally {
    client.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'serve': {
      const { values } = parseArgs({
        args: rest,
        options: {
          port: { type: 'string' }, host: { type: 'string' }, address: { type: 'string' }, certs: { type: 'string' }, data: { type: 'string' },
          'plain-http': { type: 'boolean' }, workers: { type: 'string' },
        },
      });
      const config = serverConfig(values);
      const { checkClusterConfig, isClusterWorker, runPrimary } = await import('./cluster.js');
      checkClusterConfig(config);
      // The primary of `--workers N` forks N processes that run this same command as workers.
      if (config.workers > 1 && !isClusterWorker()) return runPrimary(config);
      const server = await startServer(config);
      const stop = async (signal: string) => {
        server.app.log.info(`${signal}: shutting down`);
        await server.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      return -1; // keep running
    }
    case 'certs': {
      const { values } = parseArgs({
        args: rest,
        options: { dir: { type: 'string' }, hostname: { type: 'string' }, 'smdp-oid': { type: 'string' }, ein: { type: 'string' }, force: { type: 'boolean' } },
      });
      const c = defaultConfig();
      const dir = values.dir ?? c.certsDir;
      await generatePki(dir, {
        hostname: values.hostname ?? addressHost(c.smdpAddress),
        ...(values['smdp-oid'] ? { smdpOid: values['smdp-oid'] } : {}),
        ...(values.ein ? { einPrefix: values.ein } : {}),
        force: values.force ?? false,
      });
      console.log(`test PKI written to ${dir}`);
      return 0;
    }
    case 'order':
      return orderCommand(rest);
    case 'fault':
      return faultCommand(rest);
    case 'inventory':
    case 'profile-type':
    case 'ac': {
      const inv = await import('./inventory/cli.js');
      const client = adminClient(defaultConfig());
      const run = cmd === 'ac' ? inv.acCommand : cmd === 'profile-type' ? inv.profileTypeCommand : inv.inventoryCommand;
      try {
        return await run(rest, client, authHeaders());
      } finally {
        client.close();
      }
    }
    case 'operator': {
      const { operatorCommand } = await import('./operators/cli.js');
      const client = adminClient(defaultConfig());
      try {
        return await operatorCommand(rest, client, authHeaders());
      } finally {
        client.close();
      }
    }
    case 'family': {
      const { familyCommand } = await import('./family/cli.js');
      const client = adminClient(defaultConfig());
      try {
        return await familyCommand(rest, client, authHeaders());
      } finally {
        client.close();
      }
    }
    case 'sim': {
      const { simCommand } = await import('./sim/cli.js');
      return simCommand(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 2 : 0;
    default:
      console.error(`unknown command ${cmd}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
    // A cluster worker's channel to its primary would keep it running.
    if (cluster.isWorker) process.exit(1);
  },
);
