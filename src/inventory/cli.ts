/**
 * `mock-smdp inventory …` and `mock-smdp ac show …`: everything through the running server's admin
 * API (src/cli.ts passes its admin client in).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import QRCode from 'qrcode';
import type { HttpClient } from '../http/client.js';

export const INVENTORY_USAGE = `  mock-smdp inventory generate --type T --count N [--prefix P] [--mcc-mnc 00101] [--operator OP]
  mock-smdp inventory import FILE(.csv|.json) --type T [--operator OP] [--luhn]
  mock-smdp inventory list [--type T] [--state S] [--operator OP] [--limit N]
  mock-smdp inventory types | inventory add-type NAME ...   (the same as profile-type list | add)
  mock-smdp profile-type add NAME [--template FILE.der] [--spn NAME] [--profile-name NAME] [--class 0|1|2] [--replace]
  mock-smdp profile-type list | profile-type template NAME --out FILE.der
  mock-smdp ac show MATCHINGID [--ecl L|M|Q|H] [--oid]`;

type Json = { message?: string; details?: string[] } & Record<string, unknown>;

function failed(what: string, r: { status: number; json?: Json; text: string }): number {
  console.error(`${what} (HTTP ${r.status}): ${r.json?.message ?? r.text}`);
  return 1;
}

export async function inventoryCommand(argv: string[], client: HttpClient, headers: Record<string, string>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      type: { type: 'string' }, count: { type: 'string' }, prefix: { type: 'string' }, 'mcc-mnc': { type: 'string' },
      operator: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' }, luhn: { type: 'boolean' },
      format: { type: 'string' }, spn: { type: 'string' }, 'profile-name': { type: 'string' }, class: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [sub, arg] = positionals;
  if (sub === 'generate' && values.type && values.count) {
    const body: Record<string, unknown> = { type: values.type, count: Number(values.count) };
    if (values.prefix) body.prefix = values.prefix;
    if (values['mcc-mnc']) body.mccMnc = values['mcc-mnc'];
    if (values.operator) body.operator = values.operator;
    const r = await client.post<Json>('/admin/inventory/generate', body, headers);
    if (r.status !== 201) return failed('nothing generated', r);
    if (values.json) console.log(JSON.stringify(r.json, null, 2));
    else console.log(`${r.json!.generated} profile(s) of type ${values.type} generated\n${(r.json!.iccids as string[]).join('\n')}`);
    return 0;
  }
  if (sub === 'import' && arg && values.type) {
    const format = values.format ?? (extname(arg).toLowerCase() === '.json' ? 'json' : 'csv');
    const body: Record<string, unknown> = { type: values.type, format, data: readFileSync(arg, 'utf8') };
    if (values.operator) body.operator = values.operator;
    if (values.luhn) body.luhn = true;
    const r = await client.post<Json>('/admin/inventory/import', body, headers);
    if (r.status !== 201) {
      failed('nothing imported', r);
      return 1;
    }
    console.log(`${r.json!.imported} profile(s) imported as type ${values.type}`);
    return 0;
  }
  if (sub === 'list') {
    const q = new URLSearchParams();
    for (const k of ['type', 'state', 'operator', 'limit'] as const) if (values[k]) q.set(k, values[k]!);
    const r = await client.get<Json>(`/admin/inventory${q.size ? `?${q}` : ''}`, headers);
    if (r.status !== 200) return failed('cannot list', r);
    if (values.json) {
      console.log(JSON.stringify(r.json, null, 2));
      return 0;
    }
    const counts = r.json!.counts as Record<string, number>;
    console.log(`total ${r.json!.total}: ${Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}`);
    for (const p of r.json!.profiles as Array<Record<string, unknown>>) {
      console.log([p.iccid, p.imsi, p.profileType, p.state, p.operator ?? '-', p.matchingId ?? '-'].join('\t'));
    }
    return 0;
  }
  if (sub === 'types') return profileTypeCommand(['list', ...argv.slice(1)], client, headers);
  if (sub === 'add-type') return profileTypeCommand(['add', ...argv.slice(1)], client, headers);
  console.error(INVENTORY_USAGE);
  return 2;
}

/**
 * `mock-smdp profile-type add|list|template`: profile types through POST/GET /admin/profile-types. With
 * --template the file (an Unprotected Profile Package, SAIP DER) is sent as it is; the server checks it.
 */
export async function profileTypeCommand(argv: string[], client: HttpClient, headers: Record<string, string>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      template: { type: 'string' }, spn: { type: 'string' }, 'profile-name': { type: 'string' }, class: { type: 'string' },
      replace: { type: 'boolean' }, out: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const [sub, name] = positionals;
  if (sub === 'list') {
    const r = await client.get<Json>('/admin/profile-types', headers);
    console.log(JSON.stringify(r.json ?? r.text, null, 2));
    return r.status === 200 ? 0 : 1;
  }
  if (sub === 'add' && name) {
    if (values.class !== undefined && !['0', '1', '2'].includes(values.class)) {
      console.error(`--class takes 0 (test), 1 (provisioning) or 2 (operational): ${values.class}`);
      return 2;
    }
    const body: Record<string, unknown> = { name };
    if (values.template !== undefined) {
      let der: Buffer;
      try {
        der = readFileSync(values.template);
      } catch (err) {
        console.error(`cannot read the template ${values.template}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        return 1;
      }
      body.template = der.toString('base64');
    } else if (values.spn === undefined || values['profile-name'] === undefined) {
      console.error('a profile type without --template needs --spn and --profile-name');
      return 2;
    }
    if (values.spn !== undefined) body.serviceProviderName = values.spn;
    if (values['profile-name'] !== undefined) body.profileName = values['profile-name'];
    if (values.class !== undefined) body.profileClass = Number(values.class);
    if (values.replace) body.replace = true;
    const r = await client.post<Json>('/admin/profile-types', body, headers);
    if (r.status !== 201) return failed('profile type not created', r);
    console.log(JSON.stringify(r.json, null, 2));
    return 0;
  }
  if (sub === 'template' && name && values.out) {
    const r = await client.get<Json>(`/admin/profile-types/${encodeURIComponent(name)}/template`, headers);
    if (r.status !== 200) return failed('no template', r);
    writeFileSync(values.out, r.body);
    console.log(`${r.body.length} bytes written to ${values.out}`);
    return 0;
  }
  console.error(INVENTORY_USAGE);
  return 2;
}

export async function acCommand(argv: string[], client: HttpClient, headers: Record<string, string>): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ecl: { type: 'string' }, oid: { type: 'boolean' } },
  });
  const ecl = (values.ecl ?? 'M').toUpperCase();
  if (positionals[0] !== 'show' || !positionals[1] || !['L', 'M', 'Q', 'H'].includes(ecl)) {
    console.error(INVENTORY_USAGE);
    return 2;
  }
  const r = await client.get<Json>(`/admin/activation-codes/${encodeURIComponent(positionals[1])}${values.oid ? '?oid=1' : ''}`, headers);
  if (r.status !== 200) return failed('no activation code', r);
  const text = r.text.trim();
  console.log(await QRCode.toString(text, { type: 'terminal', errorCorrectionLevel: ecl as 'L' | 'M' | 'Q' | 'H', small: true }));
  console.log(text);
  return 0;
}
