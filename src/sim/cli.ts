/**
 * `mock-smdp sim …`: a software device (LPA + virtual eUICC) whose card state persists in a JSON
 * file between commands.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addressHost, defaultConfig } from '../config.js';
import type { CurveName } from '../crypto/curves.js';
import { HttpClient } from '../http/client.js';
import { CURVE_NAMES, certPath, keyPath } from '../pki/layout.js';
import { ActivationCodeError, parseActivationCode } from '../rsp/activation-code.js';
import { ApduCard, ApduFront } from './apdu.js';
import { decode, tlv } from '../der/tlv.js';
import { ES10, type Es10Card } from './es10.js';
import { VirtualEuicc } from './euicc.js';
import { Lpa, LpaError, type DownloadResult, type NotificationOutcome } from './lpa.js';
import { serveStdio } from './stdio.js';
import { CARD_OPTIONS, OUTPUT_OPTIONS, randomEid, SERVER_OPTIONS, UsageError } from './cli-options.js';

export const SIM_USAGE = `mock-smdp sim — a software device: LPA (lpac's behaviour) + virtual eUICC

  mock-smdp sim download 'LPA:1$HOST[:PORT]$MATCHINGID' [--cc CODE] [--url URL] [--insecure] [--ca PEM]...
                         [--imei 15DIGITS|16HEX] [--no-pir]
  mock-smdp sim discover [--smds ADDRESS] [--download] [--es9-paths] [--url URL] [--insecure] [--ca PEM]...
                         (events for this card at the SM-DS, default its root SM-DS; --download installs them;
                          --es9-paths posts ES11 to the ES9+ paths, as lpac does)
  mock-smdp sim notifications [--process [--seq N]... [--keep]] [--url URL]
  mock-smdp sim profiles
  mock-smdp sim package ICCID [--out FILE]   (the installed profile package, DER; hex on stdout without --out)
  mock-smdp sim enable|disable|delete ICCID
  mock-smdp sim eid
  mock-smdp sim apdu-stdio [-- COMMAND ARGS...]
  mock-smdp sim companion --token fam_… [--service SharedNumber|DiffNumber] [--watch-state FILE] [--unsubscribe] [--transfer-from ID]
                         (a phone's TS.43 entitlement client, then the watch downloads: mock-smdp sim companion --help)

Card state: --state FILE (default .sim/card.json, or SIM_STATE). A missing state file creates a new
eUICC from
  --euicc-dir DIR   eUICC credentials in the SGP.26 layout (e.g. ../shared/sgp26; its EID), or
  --certs DIR       the server's generated PKI: a new eUICC certificate is issued by its EUM for
                    --eid EID or a random EID (default DIR: CERTS_DIR or ./certs)
  --new             replace an existing state file with a new card.

TLS: the SM-DP+ is reached at --url (default https://<address>) and must present a certificate that
chains to the card's CI certificates (plus --ca files) for the address's host name; --insecure
accepts any certificate (like lpac). Notifications go to https://<their notificationAddress>, or
to --url with that host name when --url is given.
Other options: --apdu (the LPA talks to the card through STORE DATA APDUs), --json, --verbose.

apdu-stdio serves lpac's stdio APDU protocol (LPAC_APDU=stdio) on stdin/stdout; with a command
after '--' it runs that command (e.g. lpac chip info) with LPAC_APDU=stdio and serves its pipes.`;

const OPTIONS = {
  state: { type: 'string' },
  ...CARD_OPTIONS,
  cc: { type: 'string' },
  ...SERVER_OPTIONS,
  imei: { type: 'string' },
  'no-pir': { type: 'boolean' },
  smds: { type: 'string' },
  'es9-paths': { type: 'boolean' },
  download: { type: 'boolean' },
  out: { type: 'string' },
  process: { type: 'boolean' },
  seq: { type: 'string', multiple: true },
  keep: { type: 'boolean' },
  apdu: { type: 'boolean' },
  ...OUTPUT_OPTIONS,
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function hasEumKey(dir: string): boolean {
  return CURVE_NAMES.some((c) => existsSync(join(dir, certPath('eum', c))) && existsSync(join(dir, keyPath('eum', c))));
}

/** The card of the state file, created first when missing (or when --new). */
async function openCard(values: Values, log: (s: string) => void): Promise<VirtualEuicc> {
  const file = values.state ?? process.env.SIM_STATE ?? '.sim/card.json';
  const fresh = !!values.new || !existsSync(file);
  if (!fresh) {
    if (values['euicc-dir'] || values.certs || values.eid) log(`using the existing card in ${file} (--new to replace it)`);
    return VirtualEuicc.open(file);
  }
  if (values.new && existsSync(file)) rmSync(file);
  let card: VirtualEuicc;
  if (values['euicc-dir']) {
    if (values.eid) throw new UsageError('--eid needs --certs (the EID of --euicc-dir comes from its certificate)');
    card = await VirtualEuicc.create({ pkiDir: values['euicc-dir'], persistTo: file });
  } else {
    const dir = values.certs ?? defaultConfig().certsDir;
    if (!existsSync(dir) || !hasEumKey(dir)) {
      throw new UsageError(`no card state in ${file}: give --euicc-dir DIR (eUICC credentials) or --certs DIR (a PKI with an EUM key${values.certs ? '' : `; ${dir} has none`})`);
    }
    card = await VirtualEuicc.create({ pkiDir: dir, eid: values.eid ?? randomEid(dir), persistTo: file });
  }
  log(`new eUICC ${card.eid} (${card.credentials.map((c) => c.curve).join(', ')}) saved in ${file}`);
  return card;
}

function readCaFiles(files: string[] = []): string[] {
  return files.map((f) => readFileSync(f, 'utf8'));
}

/** HTTP clients per SM-DP+ address, with the card's CI certificates as TLS trust. */
class Clients {
  readonly #cache = new Map<string, HttpClient>();
  readonly #ca: string[];
  constructor(
    card: VirtualEuicc,
    private readonly values: Values,
  ) {
    const cis = new Map<string, string>();
    for (const c of card.credentials) for (const ci of c.cis) cis.set(ci.raw.toString('hex'), ci.toPem());
    this.#ca = [...cis.values(), ...readCaFiles(values.ca)];
  }

  for(address: string): HttpClient {
    const key = address.toLowerCase();
    let c = this.#cache.get(key);
    if (!c) {
      const host = addressHost(address).toLowerCase();
      c = new HttpClient({
        baseUrl: this.values.url ?? `https://${key}`,
        ca: this.#ca,
        servername: host,
        verifyTls: !this.values.insecure,
      });
      this.#cache.set(key, c);
    }
    return c;
  }

  close(): void {
    for (const c of this.#cache.values()) c.close();
  }
}

/** The card's root SM-DS address (ES10a GetEuiccConfiguredAddresses, `BF3C { 81 rootDsAddress }`). */
async function lpaSmdsDefault(card: Es10Card): Promise<string> {
  const r = decode(await card.transmit(tlv(ES10.GetEuiccConfiguredAddresses)));
  const root = r.find(0x81)?.value.toString('utf8');
  if (!root) throw new UsageError('the card has no root SM-DS address: give --smds ADDRESS');
  return root;
}

function imeiBytes(s: string): Buffer {
  if (/^[0-9a-fA-F]{16}$/.test(s)) return Buffer.from(s, 'hex');
  if (!/^\d{14,16}$/.test(s)) throw new UsageError('--imei takes 14-16 digits (IMEI/IMEISV) or 16 hex digits (8 bytes TBCD)');
  // TBCD: digits pairwise swapped, F-padded to 16 nibbles
  const d = s.padEnd(16, 'F');
  let hex = '';
  for (let i = 0; i < 16; i += 2) hex += d[i + 1]! + d[i]!;
  return Buffer.from(hex, 'hex');
}

const ms = (n: number) => `${n.toFixed(1)} ms`;

function errorJson(err: unknown): Record<string, unknown> {
  if (err instanceof LpaError) {
    const { code, message } = err;
    const out: Record<string, unknown> = { code, message };
    for (const k of ['function', 'subjectCode', 'reasonCode', 'httpStatus', 'cardErrorCode', 'bppCommandId', 'errorReason', 'transactionId', 'cancel'] as const) {
      if (err[k] !== undefined) out[k] = err[k];
    }
    return out;
  }
  return { code: (err as { code?: string }).code ?? 'error', message: (err as Error).message ?? String(err) };
}

function printDownload(r: DownloadResult, eid: string): void {
  console.log(`Installed ICCID ${r.iccid}${r.profileName ? ` "${r.profileName}"` : ''}${r.serviceProviderName ? ` (${r.serviceProviderName})` : ''} on EID ${eid}`);
  console.log(`  ISD-P ${r.isdpAid}, transactionId ${r.transactionId}`);
  console.log(
    r.notificationSent
      ? `  install notification #${r.seqNumber} delivered to ${r.notificationAddress} and removed`
      : `  install notification #${r.seqNumber} for ${r.notificationAddress} pending${r.notificationError ? ` (${r.notificationError})` : ''}`,
  );
  const t = r.timings;
  console.log(
    `  initiateAuthentication ${ms(t.initiateAuthentication)}, authenticateClient ${ms(t.authenticateClient)}, getBoundProfilePackage ${ms(t.getBoundProfilePackage)}, handleNotification ${ms(t.handleNotification)}; eUICC ${ms(t.es10)}; total ${ms(t.total)}`,
  );
}

function printError(err: unknown, json: boolean): void {
  if (json) {
    console.log(JSON.stringify({ ok: false, error: errorJson(err) }, null, 2));
    return;
  }
  const message = (err as Error).message ?? String(err);
  console.error(`error: ${message}`);
  if (err instanceof LpaError && err.code === 'http' && /certificate|altnames|self.signed/i.test(message)) {
    console.error('  (TLS: the server certificate must chain to the card\'s CI or a --ca file; --insecure accepts any, like lpac)');
  }
  if (err instanceof LpaError && err.cancel) {
    const c = err.cancel;
    console.error(`  session cancelled (reason ${c.reason}): eUICC ${c.cardOk ? 'signed the cancellation' : 'refused'}${c.es9 ? `, ES9+ cancelSession ${c.es9}` : ''}`);
  }
}

function printNotifications(list: NotificationOutcome[]): void {
  if (!list.length) console.log('no pending notifications');
  for (const n of list) {
    const what = n.sent ? (n.removed ? 'delivered, removed' : 'delivered, kept') : `not delivered: ${n.error ?? ''}`;
    console.log(`#${n.seqNumber} ${n.operation} ${n.iccid ?? '-'} -> ${n.notificationAddress}: ${what} (${ms(n.ms)})`);
  }
}

/** `mock-smdp sim apdu-stdio`: lpac's stdio APDU protocol, on our stdio or a child's. */
async function apduStdio(card: Es10Card, command: string[], verbose: boolean): Promise<number> {
  const trace = verbose ? (f: string, p: string | null, a: { ecode: number; data?: string }) => console.error(`${f} ${p ?? ''} -> ${a.ecode} ${a.data ?? ''}`) : undefined;
  if (!command.length) {
    await serveStdio(card, process.stdin, process.stdout, { onOther: (l) => console.error(l), ...(trace ? { onExchange: trace } : {}) });
    return 0;
  }
  const child = spawn(command[0]!, command.slice(1), { env: { ...process.env, LPAC_APDU: 'stdio' }, stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const served = serveStdio(card, child.stdout!, child.stdin!, { onOther: (l) => console.log(l), ...(trace ? { onExchange: trace } : {}) });
  const code = await exited;
  await served;
  return code;
}

export async function simCommand(argv: string[]): Promise<number> {
  // The companion device flow has its own options (src/sim/companion.ts).
  if (argv[0] === 'companion') return (await import('./companion.js')).companionCommand(argv.slice(1));
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const passthrough = dash >= 0 ? argv.slice(dash + 1) : [];
  let parsed;
  try {
    parsed = parseArgs({ args: own, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`${(err as Error).message.split('\n')[0]!.replace(/\. To specify .*/, '')} (mock-smdp sim --help for usage)`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [cmd, ...args] = positionals;
  if (values.help || cmd === 'help') {
    console.log(SIM_USAGE);
    return 0;
  }
  if (!cmd) {
    console.error(SIM_USAGE);
    return 2;
  }
  const json = !!values.json;
  const log = (s: string) => console.error(s);
  const known = ['download', 'discover', 'notifications', 'profiles', 'package', 'enable', 'disable', 'delete', 'eid', 'apdu-stdio'];
  if (!known.includes(cmd)) {
    console.error(`unknown sim command ${cmd} (mock-smdp sim --help for usage)`);
    return 2;
  }

  let card: VirtualEuicc;
  try {
    card = await openCard(values, log);
  } catch (err) {
    printError(err, json);
    return err instanceof UsageError ? 2 : 1;
  }
  if (cmd === 'apdu-stdio') return apduStdio(card, passthrough, !!values.verbose);

  const es10: Es10Card = values.apdu ? new ApduCard(new ApduFront(card)) : card;
  const clients = new Clients(card, values);
  const progress = values.verbose ? (step: string, detail?: string) => log(`${step}${detail ? ` ${detail}` : ''}`) : undefined;
  try {
    switch (cmd) {
      case 'download': {
        const code = args[0];
        if (!code) throw new UsageError('sim download needs an activation code');
        let address: string;
        try {
          address = parseActivationCode(code).smdpAddress;
        } catch (err) {
          if (err instanceof ActivationCodeError) throw new UsageError(err.message);
          throw err;
        }
        const http = clients.for(address);
        const lpa = new Lpa(es10, { http, clientFor: (a) => clients.for(a), ...(progress ? { progress } : {}) });
        const r = await lpa.download(code, {
          ...(values.cc ? { confirmationCode: values.cc } : {}),
          ...(values.imei ? { imei: imeiBytes(values.imei) } : {}),
          ...(values['no-pir'] ? { sendPir: false } : {}),
        });
        if (json) console.log(JSON.stringify({ ok: true, eid: card.eid, ...r }, null, 2));
        else printDownload(r, card.eid);
        return 0;
      }
      case 'discover': {
        // ES11 at the SM-DS (docs/smds.md#es11), then with --download each event over ES9+ with no activation code.
        const smds = values.smds ?? (await lpaSmdsDefault(es10));
        const lpa = new Lpa(es10, { http: clients.for(smds), clientFor: (a) => clients.for(a), ...(progress ? { progress } : {}) });
        const events = await lpa.discover(smds, { ...(values.imei ? { imei: imeiBytes(values.imei) } : {}), es9Paths: values['es9-paths'] ?? false });
        const installed: DownloadResult[] = [];
        if (values.download) {
          for (const e of events) installed.push(await lpa.download(`1$${e.rspServerAddress}$${e.eventId}`, values.imei ? { imei: imeiBytes(values.imei) } : {}));
        }
        if (json) console.log(JSON.stringify({ ok: true, eid: card.eid, smdsAddress: smds, events, ...(values.download ? { installed } : {}) }, null, 2));
        else {
          if (!events.length) console.log(`no events for EID ${card.eid} at ${smds}`);
          for (const e of events) console.log(`event ${e.eventId} at ${e.rspServerAddress}`);
          for (const r of installed) printDownload(r, card.eid);
        }
        return 0;
      }
      case 'notifications': {
        const lpa = new Lpa(es10, { clientFor: (a) => clients.for(a), ...(progress ? { progress } : {}) });
        if (!values.process) {
          const list = await lpa.listNotifications();
          if (json) console.log(JSON.stringify(list, null, 2));
          else if (!list.length) console.log('no pending notifications');
          else for (const n of list) console.log(`#${n.seqNumber} ${n.operation} ${n.iccid ?? '-'} -> ${n.notificationAddress}`);
          return 0;
        }
        const seqNumbers = values.seq?.map((s) => {
          if (!/^\d+$/.test(s)) throw new UsageError(`--seq takes a number: ${s}`);
          return Number(s);
        });
        const out = await lpa.processNotifications({ ...(seqNumbers ? { seqNumbers } : {}), remove: !values.keep });
        if (json) console.log(JSON.stringify(out, null, 2));
        else printNotifications(out);
        return out.every((o) => o.sent) ? 0 : 1;
      }
      case 'profiles': {
        const lpa = new Lpa(es10, {});
        const list = await lpa.listProfiles();
        if (json) console.log(JSON.stringify(list, null, 2));
        else if (!list.length) console.log(`no profiles on EID ${card.eid}`);
        else for (const p of list) console.log(`${p.iccid}  ${p.state.padEnd(8)}  ${p.profileName ?? ''}${p.serviceProviderName ? ` (${p.serviceProviderName})` : ''}${p.nickname ? ` "${p.nickname}"` : ''}${p.profileClass ? ` [${p.profileClass}]` : ''}`);
        return 0;
      }
      case 'package': {
        const iccid = args[0];
        if (!iccid) throw new UsageError('sim package needs an ICCID');
        const digits = iccid.toUpperCase().replace(/F$/, '');
        const p = card.profiles.find((x) => x.iccid === digits);
        if (!p) throw new UsageError(`no profile ${iccid} on EID ${card.eid}`);
        if (!p.package) throw new UsageError(`profile ${iccid} was installed before the card kept profile packages`);
        const der = Buffer.from(p.package, 'base64');
        if (values.out) writeFileSync(values.out, der);
        else console.log(der.toString('hex').toUpperCase());
        return 0;
      }
      case 'enable':
      case 'disable':
      case 'delete': {
        const iccid = args[0];
        if (!iccid) throw new UsageError(`sim ${cmd} needs an ICCID`);
        const lpa = new Lpa(es10, {});
        const before = card.notifications.length;
        if (cmd === 'enable') await lpa.enableProfile(iccid);
        else if (cmd === 'disable') await lpa.disableProfile(iccid);
        else await lpa.deleteProfile(iccid);
        const added = card.notifications.length - before;
        if (json) console.log(JSON.stringify({ ok: true, iccid, operation: cmd, newNotifications: added }, null, 2));
        else console.log(`profile ${iccid} ${cmd}d${added > 0 ? `; ${added} notification(s) pending (mock-smdp sim notifications --process)` : ''}`);
        return 0;
      }
      case 'eid': {
        const lpa = new Lpa(es10, {});
        const eid = await lpa.getEid();
        if (json) console.log(JSON.stringify({ eid, curves: card.credentials.map((c) => c.curve as CurveName) }, null, 2));
        else console.log(eid);
        return 0;
      }
    }
    return 2;
  } catch (err) {
    printError(err, json);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    clients.close();
  }
}
