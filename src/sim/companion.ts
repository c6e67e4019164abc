/**
 * `mock-smdp sim companion …`: the phone's TS.43 entitlement client for a companion device (a watch),
 * then the watch itself. The phone runs CheckEligibility and ManageSubscription (subscribe, unsubscribe
 * or transfer) at the entitlement endpoint with the family member's token (docs/entitlement.md); for a
 * subscription or a transfer, the watch — a second virtual eUICC with its own state file — downloads
 * the profile with the activation code of the answer's DownloadInfo, as `sim download` does.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { addressHost, defaultConfig } from '../config.js';
import { APP_ODSA_COMPANION, parseAnswer, XML_TYPE } from '../entitlement/ts43.js';
import { HttpClient } from '../http/client.js';
import { parseActivationCode } from '../rsp/activation-code.js';
import { VirtualEuicc } from './euicc.js';
import { Lpa, type DownloadResult } from './lpa.js';
import { CARD_OPTIONS, OUTPUT_OPTIONS, randomEid, SERVER_OPTIONS, UsageError } from './cli-options.js';

export const COMPANION_USAGE = `mock-smdp sim companion — the phone's TS.43 entitlement client, then the watch (a second virtual eUICC)

  mock-smdp sim companion --token fam_… [--service SharedNumber|DiffNumber] [--watch-state FILE]
                          [--terminal-id ID] [--companion-id ID] [--terminal-iccid ICCID]
                          [--check-only] [--no-download] [--entitlement-url URL] [--url URL] [--insecure] [--json]
  mock-smdp sim companion --unsubscribe --token fam_… [--companion-id ID | --watch-state FILE]
  mock-smdp sim companion --transfer-from OLD_ID --token fam_… --watch-state NEW_FILE [--companion-id NEW_ID]

The phone: CheckEligibility, then ManageSubscription (subscribe; --unsubscribe; --transfer-from OLD_ID
moves the subscription of the companion OLD_ID to this watch) at --entitlement-url (default: --url,
else https://<SM-DP+ address>) + /ts43, app ${APP_ODSA_COMPANION}, with the member's token (--token or
FAMILY_TOKEN). The watch: its card state is --watch-state FILE (default .sim/watch.json), created when
missing from --certs DIR (the server's PKI: a new eUICC under its EUM, random EID or --eid) or
--euicc-dir DIR. Its EID is the companion_terminal_eid; --companion-id (default: derived from the EID)
its companion_terminal_id. After a subscription the watch downloads the profile with the answer's
activation code (--no-download: only print it).`;

const OPTIONS = {
  token: { type: 'string' },
  service: { type: 'string' },
  'watch-state': { type: 'string' },
  'terminal-id': { type: 'string' },
  'companion-id': { type: 'string' },
  'terminal-iccid': { type: 'string' },
  'transfer-from': { type: 'string' },
  unsubscribe: { type: 'boolean' },
  'check-only': { type: 'boolean' },
  'no-download': { type: 'boolean' },
  'entitlement-url': { type: 'string' },
  ...SERVER_OPTIONS,
  ...CARD_OPTIONS,
  ...OUTPUT_OPTIONS,
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];


/** A refusal by the entitlement server: an HTTP error, or an OperationResult other than 1. */
class EntitlementError extends Error {
  override name = 'EntitlementError';
  constructor(
    message: string,
    readonly details: Record<string, unknown>,
  ) {
    super(message);
  }
}

async function openWatch(values: Values, log: (s: string) => void): Promise<VirtualEuicc> {
  const file = values['watch-state'] ?? '.sim/watch.json';
  if (existsSync(file) && !values.new) return VirtualEuicc.open(file);
  if (existsSync(file)) rmSync(file);
  if (values['euicc-dir']) return VirtualEuicc.create({ pkiDir: values['euicc-dir'], persistTo: file });
  const dir = values.certs ?? defaultConfig().certsDir;
  if (!existsSync(dir)) throw new UsageError(`no watch card in ${file}: give --certs DIR (the server's PKI) or --euicc-dir DIR`);
  const card = await VirtualEuicc.create({ pkiDir: dir, eid: values.eid ?? randomEid(dir), persistTo: file });
  log(`new watch eUICC ${card.eid} saved in ${file}`);
  return card;
}

/** The card's CI certificates plus --ca files: the TLS trust of both clients. */
function trust(card: VirtualEuicc | undefined, values: Values): string[] {
  const out = new Map<string, string>();
  for (const c of card?.credentials ?? []) for (const ci of c.cis) out.set(ci.raw.toString('hex'), ci.toPem());
  return [...out.values(), ...(values.ca ?? []).map((f) => readFileSync(f, 'utf8'))];
}

interface Answer {
  operationResult: string;
  parms: Record<string, string>;
  sections: Record<string, Record<string, string>>;
}

async function ts43(http: HttpClient, params: Record<string, string>, json: boolean, log?: (s: string) => void): Promise<Answer> {
  const query = new URLSearchParams(params).toString();
  log?.(`GET /ts43 operation=${params.operation}${params.operation_type ? ` operation_type=${params.operation_type}` : ''}`);
  const r = await http.get(`/ts43?${query}`, { accept: json ? 'application/json' : XML_TYPE });
  if (r.status !== 200) {
    let message = r.text;
    try {
      message = (JSON.parse(r.text) as { message?: string }).message ?? r.text;
    } catch {
      // not JSON: the text as it came
    }
    throw new EntitlementError(`entitlement server: HTTP ${r.status}: ${message}`, { httpStatus: r.status });
  }
  const sections = Object.fromEntries(parseAnswer(r.text, json));
  const app = sections.APPLICATION ?? {};
  const result = app.OperationResult ?? '';
  if (result !== '1') {
    throw new EntitlementError(`${params.operation}: OperationResult ${result}${app.GeneralErrorText ? `: ${app.GeneralErrorText}` : ''}`, { operationResult: result, generalErrorText: app.GeneralErrorText });
  }
  return { operationResult: result, parms: app, sections };
}

/** The download information of a ManageSubscription answer: the activation code (base64 in DownloadInfo), ICCID, SM-DP+ address. */
function downloadInfoOf(a: Answer): { activationCode: string; iccid?: string; smdpAddress?: string } {
  const d = a.sections['APPLICATION|DownloadInfo'];
  if (!d?.ProfileActivationCode) throw new EntitlementError('ManageSubscription: no DownloadInfo with a ProfileActivationCode in the answer', {});
  return {
    activationCode: Buffer.from(d.ProfileActivationCode, 'base64').toString('utf8'),
    ...(d.ProfileIccid ? { iccid: d.ProfileIccid } : {}),
    ...(d.ProfileSmdpAddress ? { smdpAddress: d.ProfileSmdpAddress } : {}),
  };
}

export async function companionCommand(argv: string[]): Promise<number> {
  let values: Values;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, allowPositionals: false, strict: true }).values;
  } catch (err) {
    console.error(`${(err as Error).message.split('\n')[0]!.replace(/\. To specify .*/, '')} (mock-smdp sim companion --help for usage)`);
    return 2;
  }
  if (values.help) {
    console.log(COMPANION_USAGE);
    return 0;
  }
  const json = !!values.json;
  const log = (s: string) => console.error(s);
  const clients: HttpClient[] = [];
  try {
    const token = values.token ?? process.env.FAMILY_TOKEN;
    if (!token) throw new UsageError('sim companion needs the member token: --token fam_… (or FAMILY_TOKEN)');
    const service = values.service ?? 'SharedNumber';
    if (service !== 'SharedNumber' && service !== 'DiffNumber') throw new UsageError('--service is SharedNumber or DiffNumber');
    if (values.unsubscribe && values['transfer-from']) throw new UsageError('--unsubscribe and --transfer-from exclude each other');

    // The watch: needed for its EID except when unsubscribing by --companion-id.
    const needWatch = !(values.unsubscribe && values['companion-id']);
    const watch = needWatch ? await openWatch(values, log) : undefined;
    const companionId = values['companion-id'] ?? (watch ? `watch-${watch.eid.slice(-12)}` : '');

    const config = defaultConfig();
    const ca = trust(watch, values);
    const entitlementUrl = values['entitlement-url'] ?? values.url ?? `https://${config.smdpAddress}`;
    const phone = new HttpClient({ baseUrl: entitlementUrl, ca, verifyTls: !values.insecure });
    clients.push(phone);
    const base: Record<string, string> = {
      app: APP_ODSA_COMPANION,
      vers: '0',
      entitlement_version: '2.0',
      terminal_id: values['terminal-id'] ?? '356938035643809',
      token,
      ...(values['terminal-iccid'] ? { terminal_iccid: values['terminal-iccid'] } : {}),
    };
    const progress = values.verbose ? log : undefined;

    if (values.unsubscribe) {
      await ts43(phone, { ...base, operation: 'ManageSubscription', operation_type: '1', companion_terminal_id: companionId }, json, progress);
      if (json) console.log(JSON.stringify({ ok: true, unsubscribed: companionId }, null, 2));
      else console.log(`companion ${companionId} unsubscribed (its line removed; delete the profile on the watch: sim delete ICCID --state …)`);
      return 0;
    }

    const companion = {
      companion_terminal_id: companionId,
      companion_terminal_vendor: 'mock-smdp',
      companion_terminal_model: 'virtual watch',
      companion_terminal_sw_version: '1.0',
      companion_terminal_friendly_name: `watch ${companionId}`,
      companion_terminal_eid: watch!.eid,
    };
    const elig = await ts43(phone, { ...base, operation: 'CheckEligibility', ...companion }, json, progress);
    const eligibility = { companionAppEligibility: elig.parms.CompanionAppEligibility, companionDeviceServices: elig.parms.CompanionDeviceServices?.split(',') ?? [], ...(elig.parms.NotEnabledUserData ? { notEnabled: elig.parms.NotEnabledUserData } : {}) };
    if (values['check-only']) {
      if (json) console.log(JSON.stringify({ ok: true, eid: watch!.eid, companionTerminalId: companionId, ...eligibility }, null, 2));
      else console.log(`CompanionAppEligibility ${eligibility.companionAppEligibility}${eligibility.companionDeviceServices.length ? `, services ${eligibility.companionDeviceServices.join(', ')}` : ''}${eligibility.notEnabled ? ` (${eligibility.notEnabled})` : ''}`);
      return eligibility.companionAppEligibility === '1' ? 0 : 1;
    }
    if (eligibility.companionAppEligibility !== '1') throw new EntitlementError(`not eligible (CompanionAppEligibility ${eligibility.companionAppEligibility}${eligibility.notEnabled ? `: ${eligibility.notEnabled}` : ''})`, eligibility);
    const transferFrom = values['transfer-from'];
    if (!transferFrom && !eligibility.companionDeviceServices.includes(service)) throw new EntitlementError(`${service} is not offered (services: ${eligibility.companionDeviceServices.join(', ') || 'none'})`, eligibility);

    const sub = await ts43(phone, {
      ...base,
      operation: 'ManageSubscription',
      operation_type: transferFrom ? '3' : '0',
      ...companion,
      ...(transferFrom ? { old_terminal_id: transferFrom } : { companion_terminal_service: service }),
    }, json, progress);
    const info = downloadInfoOf(sub);
    let installed: DownloadResult | undefined;
    if (!values['no-download']) {
      const address = parseActivationCode(info.activationCode).smdpAddress;
      const smdp = new HttpClient({ baseUrl: values.url ?? `https://${address}`, ca, servername: addressHost(address).toLowerCase(), verifyTls: !values.insecure });
      clients.push(smdp);
      const lpa = new Lpa(watch!, { http: smdp, ...(progress ? { progress: (s: string) => progress(s) } : {}) });
      installed = await lpa.download(info.activationCode);
    }
    if (json) {
      console.log(JSON.stringify({ ok: true, eid: watch!.eid, companionTerminalId: companionId, service: transferFrom ? undefined : service, ...(transferFrom ? { transferredFrom: transferFrom } : {}), eligibility, downloadInfo: info, ...(installed ? { installed } : {}) }, null, 2));
    } else {
      console.log(`companion ${companionId} (EID ${watch!.eid}) ${transferFrom ? `took over the subscription of ${transferFrom}` : `subscribed, ${service}`}`);
      console.log(`  activation code ${info.activationCode}${info.iccid ? `, ICCID ${info.iccid}` : ''}${info.smdpAddress ? ` at ${info.smdpAddress}` : ''}`);
      if (installed) console.log(`  Installed ICCID ${installed.iccid} on the watch (EID ${watch!.eid})`);
    }
    return 0;
  } catch (err) {
    if (json) console.log(JSON.stringify({ ok: false, error: { code: (err as { name?: string }).name ?? 'error', message: (err as Error).message, ...((err as EntitlementError).details ?? {}) } }, null, 2));
    else console.error(`error: ${(err as Error).message}`);
    return err instanceof UsageError ? 2 : 1;
  } finally {
    for (const c of clients) c.close();
  }
}
