/**
 * The GSMA TS.43 entitlement wire format as this server speaks it (docs/entitlement.md): the request
 * parameters (HTTP GET query, or the same names in a JSON POST body), and the answer, a tree of
 * characteristics holding named parameters, rendered as the WAP provisioning XML document or as JSON.
 * Nothing here touches the database.
 */

/** The ODSA application for companion devices; the only one this server serves. */
export const APP_ODSA_COMPANION = 'ap2006';

export const OPERATION = {
  checkEligibility: 'CheckEligibility',
  manageSubscription: 'ManageSubscription',
  manageService: 'ManageService',
  acquireConfiguration: 'AcquireConfiguration',
  acquireTemporaryToken: 'AcquireTemporaryToken',
  getPhoneNumber: 'GetPhoneNumber',
  acquirePlan: 'AcquirePlan',
  verifyPhoneNumber: 'VerifyPhoneNumber',
} as const;

/** operation_type of ManageSubscription. */
export const OPERATION_TYPE = { subscribe: 0, unsubscribe: 1, change: 2, transfer: 3, update: 4 } as const;

/** OperationResult of every ODSA answer. */
export const OPERATION_RESULT = {
  success: 1,
  errorGeneral: 100,
  errorInvalidOperation: 101,
  errorInvalidParameter: 102,
  warningNotSupportedOperation: 103,
} as const;

/** CompanionAppEligibility of CheckEligibility. */
export const ELIGIBILITY = { disabled: 0, enabled: 1, incompatible: 2 } as const;

/** SubscriptionResult of ManageSubscription. */
export const SUBSCRIPTION_RESULT = { continueToWebsheet: 1, downloadProfile: 2, done: 3, delayedDownload: 4, dismiss: 5 } as const;

/** ServiceStatus of a companion configuration. */
export const SERVICE_STATUS = { activated: 1, activating: 2, deactivated: 3, deactivatedNoReuse: 4 } as const;

export const COMPANION_SERVICES = ['SharedNumber', 'DiffNumber'] as const;
export type CompanionService = (typeof COMPANION_SERVICES)[number];

/** The request parameters this server reads (all others are accepted and ignored). */
export interface Ts43Request {
  app: string;
  vers: string;
  entitlement_version?: string;
  terminal_id: string;
  terminal_vendor?: string;
  terminal_model?: string;
  terminal_sw_version?: string;
  token?: string;
  notif_token?: string;
  notif_action?: string;
  operation?: string;
  operation_type?: string;
  companion_terminal_id?: string;
  companion_terminal_vendor?: string;
  companion_terminal_model?: string;
  companion_terminal_sw_version?: string;
  companion_terminal_friendly_name?: string;
  companion_terminal_service?: string;
  companion_terminal_iccid?: string;
  companion_terminal_eid?: string;
  terminal_iccid?: string;
  terminal_eid?: string;
  target_terminal_id?: string;
  old_terminal_id?: string;
  old_terminal_iccid?: string;
}

/** The parameters whose failure is the protocol's (HTTP 400), not the ODSA operation's (OperationResult 102). */
export const PROTOCOL_PARAMS = new Set(['app', 'vers', 'entitlement_version', 'terminal_id', 'token']);

/** A request's values as strings: a JSON POST body may carry numbers (vers, operation_type). */
export function normaliseParams(raw: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' && Number.isFinite(v)) out[k] = String(v);
  }
  return out;
}

// ---------------------------------------------------------------- the answer

export interface Characteristic {
  type: string;
  parms: Array<[string, string]>;
  children: Characteristic[];
}

export const characteristic = (type: string, parms: Array<[string, string | number]> = [], children: Characteristic[] = []): Characteristic => ({
  type,
  parms: parms.map(([n, v]) => [n, String(v)]),
  children,
});

/** VERS: the configuration version and its validity in seconds (an ODSA answer is not cached: 0). */
export const versCharacteristic = () => characteristic('VERS', [['version', 1], ['validity', 0]]);

/**
 * TOKEN: the token the client keeps for its next request. Here it is the member token the request
 * was authenticated with (this server hands out no tokens of its own; docs/entitlement.md).
 */
export const tokenCharacteristic = (token: string) => characteristic('TOKEN', [['token', token]]);

/** The APPLICATION characteristic of ap2006 with its OperationResult first. */
export function application(result: number, parms: Array<[string, string | number]> = [], children: Characteristic[] = []): Characteristic {
  return characteristic('APPLICATION', [['AppID', APP_ODSA_COMPANION], ['OperationResult', result], ...parms], children);
}

/** An ODSA failure: OperationResult 100–103 with a GeneralErrorText saying why. */
export function failure(result: number, text: string): Characteristic {
  return application(result, [['GeneralErrorText', text]]);
}

/**
 * An attribute value, quoted. Android's TS.43 client library turns
 * every `&` into `&amp;` before it parses, so of the references only `&amp;` reaches it intact
 * (docs/entitlement.md, "Android's parser"). A value is therefore quoted with the quote it does not
 * contain, so neither quote needs a reference; `&` and `<` (never allowed bare in an attribute) are
 * escaped, and characters XML 1.0 does not allow become U+FFFD.
 */
function attr(v: string): string {
  const e = v.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;');
  if (!e.includes('"')) return `"${e}"`;
  if (!e.includes("'")) return `'${e}'`;
  return `"${e.replace(/"/g, '&quot;')}"`;
}

function xmlOf(c: Characteristic, indent: string): string {
  const inner = indent + '  ';
  const lines = [`${indent}<characteristic type=${attr(c.type)}>`];
  for (const [n, v] of c.parms) lines.push(`${inner}<parm name=${attr(n)} value=${attr(v)}/>`);
  for (const ch of c.children) lines.push(xmlOf(ch, inner));
  lines.push(`${indent}</characteristic>`);
  return lines.join('\n');
}

/** The WAP provisioning document (text/vnd.wap.connectivity-xml). */
export function renderXml(top: Characteristic[]): string {
  return `<?xml version="1.0" encoding="utf-8"?>\n<wap-provisioningdoc version="1.1">\n${top.map((c) => xmlOf(c, '  ')).join('\n')}\n</wap-provisioningdoc>\n`;
}

type JsonNode = { [k: string]: string | JsonNode | JsonNode[] };

function jsonOf(c: Characteristic): JsonNode {
  const o: JsonNode = {};
  for (const [n, v] of c.parms) o[n] = v;
  // Repeated child characteristics (CompanionConfiguration) become an array.
  const counts = new Map<string, number>();
  for (const ch of c.children) counts.set(ch.type, (counts.get(ch.type) ?? 0) + 1);
  for (const ch of c.children) {
    const node = jsonOf(ch);
    if ((counts.get(ch.type) ?? 0) > 1 || ch.type === 'CompanionConfiguration') ((o[ch.type] ??= []) as JsonNode[]).push(node);
    else o[ch.type] = node;
  }
  return o;
}

/** The same tree as JSON: `Vers`, `Token`, then each APPLICATION under its AppID (`ap2006`). */
export function renderJson(top: Characteristic[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of top) {
    if (c.type === 'VERS') out.Vers = jsonOf(c);
    else if (c.type === 'TOKEN') out.Token = jsonOf(c);
    else if (c.type === 'APPLICATION') {
      const node = jsonOf(c);
      const id = String(node.AppID ?? APP_ODSA_COMPANION);
      out[id] = node;
    } else out[c.type] = jsonOf(c);
  }
  return out;
}

export const XML_TYPE = 'text/vnd.wap.connectivity-xml';

/** JSON when the Accept header asks for JSON and not for the XML document; XML otherwise (TS.43's default). */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const a = accept.toLowerCase();
  return /json/.test(a) && !a.includes(XML_TYPE);
}

// ---------------------------------------------------------------- the client side (simulator, tests)

/**
 * Reads an answer back (XML or JSON) into a map "APPLICATION|DownloadInfo" → { parm → value },
 * parameter names kept as sent; repeated characteristics get their index ("…|CompanionConfiguration#1").
 */
export function parseAnswer(body: string, json: boolean): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const put = (path: string, name: string, value: string) => {
    const m = out.get(path) ?? {};
    m[name] = value;
    out.set(path, m);
  };
  if (json) {
    const walk = (path: string, node: unknown) => {
      if (!node || typeof node !== 'object') return;
      for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
        if (typeof v === 'string') put(path, k, v);
        else if (Array.isArray(v)) v.forEach((x, i) => walk(`${path}|${k}${i ? `#${i}` : ''}`, x));
        else walk(`${path}|${k}`, v);
      }
    };
    const doc = JSON.parse(body) as Record<string, unknown>;
    for (const [k, v] of Object.entries(doc)) walk(k === 'Vers' ? 'VERS' : k === 'Token' ? 'TOKEN' : /^ap\d+$/.test(k) ? 'APPLICATION' : k, v);
    return out;
  }
  const stack: string[] = [];
  const seen = new Map<string, number>();
  const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  // Attribute values in either quote (as attr() writes them).
  const q = (name: string) => `${name}=(?:"([^"]*)"|'([^']*)')`;
  const re = new RegExp(`<characteristic\\s+${q('type')}\\s*>|<\\/characteristic>|<parm\\s+${q('name')}\\s+${q('value')}\\s*\\/>`, 'g');
  for (const m of body.matchAll(re)) {
    const type = m[1] ?? m[2];
    const name = m[3] ?? m[4];
    if (type !== undefined) {
      const base = [...stack, unescape(type)].join('|');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      stack.push(n ? `${unescape(type)}#${n}` : unescape(type));
    } else if (name !== undefined) put(stack.join('|'), unescape(name), unescape(m[5] ?? m[6] ?? ''));
    else stack.pop();
  }
  return out;
}
