/**
 * `mock-smdp family …`: a demo family and the usage/clock calls, through the running server's API
 * (src/cli.ts passes its client and the admin headers in). The family API authenticates the
 * operator by its API key: `--key` or MOCK_SMDP_OPERATOR_KEY (`demo` creates an operator and prints
 * its key).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { HttpClient } from '../http/client.js';

const FAMILY_USAGE = `  mock-smdp family demo [--type T] [--callback URL] [--key OPERATOR_KEY] [--json] [--controls]
                                  creates an operator (unless --key), 4 profiles of stock, a group (20 GB pool,
                                  5 GB hotspot), Alex (owner: phone + watch), Sam (adult: phone), Kim (child,
                                  2 GB: phone), issues the four profiles and prints their activation codes;
                                  --controls also sets the controls: time zone Europe/London, home GB with 1 GB
                                  of roaming, two passes on sale, Kim's school and night windows, Alex as her
                                  trusted number and a spend limit of 5.00 EUR
  mock-smdp family usage GROUP LINE --kind data|voice|sms --amount N [--hotspot] [--to NUMBER] [--country CC]
                                  --to: the number called or texted; --country: the visited country (ISO alpha-2)
  mock-smdp family summary|clock GROUP      (JSON)
  mock-smdp family events GROUP [--json]
  mock-smdp family advance GROUP --days N
  mock-smdp family rollover GROUP
  mock-smdp family controls GROUP [MEMBER] [--window NAME=KINDS@DAYS/HH:MM-HH:MM]… [--no-windows]
                                  [--trusted N,N…] [--spend-limit CENTS|none] [--roaming-data MB|none]
                                  without options: shows the controls (the group's, or one member's); e.g.
                                  --window school=data,voice,sms@mon-fri/08:00-15:00 --window night=data@sun-thu/21:00-07:00
  mock-smdp family time-zone GROUP ZONE             e.g. Europe/Berlin
  mock-smdp family roaming GROUP [--home CC] [--data MB] [--voice MIN] [--sms N] [--throttle]
  mock-smdp family passes GROUP [--currency EUR] [--pass ID=KIND:MB[:MIN[:SMS]]/HOURS/PRICE]…
                                  e.g. --pass roam-day=roaming:500:30:30/24/500; without --pass: the passes on sale
  mock-smdp family buy GROUP MEMBER PASS
  mock-smdp family purchases GROUP [--pending]
  mock-smdp family approve|decline GROUP PURCHASE [--note TEXT]
  (operator key: --key or MOCK_SMDP_OPERATOR_KEY; --token fam_… calls as that member instead, e.g. a child buying
   or the owner approving)`;

class CliError extends Error {}

export async function familyCommand(argv: string[], client: HttpClient, adminHeaders: Record<string, string>): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        key: { type: 'string' }, type: { type: 'string' }, callback: { type: 'string' }, json: { type: 'boolean' },
        kind: { type: 'string' }, amount: { type: 'string' }, hotspot: { type: 'boolean' }, days: { type: 'string' },
        to: { type: 'string' }, country: { type: 'string' }, token: { type: 'string' }, window: { type: 'string', multiple: true },
        'no-windows': { type: 'boolean' }, trusted: { type: 'string' }, 'spend-limit': { type: 'string' }, 'roaming-data': { type: 'string' },
        home: { type: 'string' }, data: { type: 'string' }, voice: { type: 'string' }, sms: { type: 'string' }, throttle: { type: 'boolean' },
        currency: { type: 'string' }, pass: { type: 'string', multiple: true }, pending: { type: 'boolean' }, note: { type: 'string' },
        help: { type: 'boolean', short: 'h' }, controls: { type: 'boolean' },
      },
    });
  } catch (err) {
    console.error(`${(err as Error).message.split('\n')[0]!.replace(/\. To specify .*/, '')} (mock-smdp family --help for usage)`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals[0] === 'help') {
    console.log(`usage:\n${FAMILY_USAGE}`);
    return 0;
  }
  let key = values.key ?? process.env.MOCK_SMDP_OPERATOR_KEY;
  const call = async (method: string, path: string, body?: unknown, expect = [200, 201]): Promise<any> => {
    const auth: Record<string, string> | undefined = values.token ? { authorization: `Bearer ${values.token}` } : key ? { 'x-api-key': key } : undefined;
    if (!auth) throw new CliError('no operator key: give --key KEY or set MOCK_SMDP_OPERATOR_KEY (mock-smdp family demo prints one), or --token fam_…');
    const r = await client.request<any>(method, path, body, auth);
    if (!expect.includes(r.status)) throw new CliError(`${method} ${path}: HTTP ${r.status} ${r.json?.message ?? r.text}`);
    return r.json;
  };
  const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));
  const [cmd, group, line, third] = positionals;
  try {
    switch (cmd) {
      case 'demo': {
        const type = values.type ?? 'default';
        let operatorId: string | undefined;
        if (!key) {
          operatorId = `demo-${randomBytes(3).toString('hex')}`;
          const r = await client.post<any>('/admin/operators', { id: operatorId, name: `Demo operator ${operatorId}`, ...(values.callback ? { callbackUrl: values.callback } : {}) }, adminHeaders);
          if (r.status !== 201) throw new CliError(`operator not created (HTTP ${r.status}): ${r.json?.message ?? r.text}`);
          key = r.json.apiKey as string;
          const stock = await client.post<any>('/admin/inventory/generate', { type, count: 4, operator: operatorId }, adminHeaders);
          if (stock.status !== 201 && stock.status !== 200) throw new CliError(`no profiles generated (HTTP ${stock.status}): ${stock.json?.message ?? stock.text}`);
        }
        const g = await call('POST', '/family/groups', { name: 'Demo family' });
        await call('PUT', `/family/groups/${g.id}/plan`, { profileType: type, dataMb: 20 * 1024, voiceMin: 3000, sms: 1000, hotspotMb: 5 * 1024 });
        const spec = [
          { name: 'Alex', role: 'owner', devices: ['phone', 'watch'] },
          { name: 'Sam', role: 'adult', devices: ['phone'] },
          { name: 'Kim', role: 'child', caps: { dataMb: 2 * 1024 }, devices: ['phone'] },
        ];
        const out: any = { operatorId, operatorKey: operatorId ? key : undefined, groupId: g.id, members: [] };
        for (const m of spec) {
          const mm = await call('POST', `/family/groups/${g.id}/members`, { name: m.name, role: m.role, ...(m.caps ? { caps: m.caps } : {}) });
          const member = { id: mm.id, name: m.name, role: m.role, token: mm.token, lines: [] as any[] };
          for (const device of m.devices) {
            const l = await call('POST', `/family/groups/${g.id}/members/${mm.id}/lines`, { device, numberMode: 'shared', name: `${m.name}'s ${device}` });
            const p = await call('POST', `/family/groups/${g.id}/members/${mm.id}/lines/${l.id}/profile`, {});
            member.lines.push({ id: l.id, device, iccid: p.iccid, activationCode: p.activationCode });
          }
          out.members.push(member);
        }
        if (values.controls) {
          const kim = out.members.find((m: any) => m.name === 'Kim');
          await call('PUT', `/family/groups/${g.id}/time-zone`, { timeZone: 'Europe/London' });
          await call('PUT', `/family/groups/${g.id}/roaming`, { homeCountry: 'GB', dataMb: 1024, voiceMin: 100, sms: 100, atAllowance: 'block' });
          await call('PUT', `/family/groups/${g.id}/passes`, {
            currency: 'EUR',
            passes: [
              { id: 'roam-day', name: 'Roaming day pass', kind: 'roaming', dataMb: 500, voiceMin: 30, sms: 30, validityHours: 24, price: 500 },
              { id: 'data-1gb', name: 'Extra 1 GB', kind: 'data', dataMb: 1024, validityHours: 720, price: 300 },
            ],
          });
          out.controls = await call('PUT', `/family/groups/${g.id}/members/${kim.id}/controls`, {
            timeWindows: [
              { name: 'school', blocks: ['data', 'voice', 'sms'], days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '08:30', to: '15:00' },
              { name: 'night', blocks: ['data'], days: ['sun', 'mon', 'tue', 'wed', 'thu'], from: '21:00', to: '07:00' },
            ],
            trustedNumbers: ['447700900001'],
            spendLimit: 500,
          });
        }
        if (values.json) {
          print(out);
          return 0;
        }
        if (operatorId) console.log(`operator ${operatorId} created; API key (shown once): ${key}\n  export MOCK_SMDP_OPERATOR_KEY=${key}`);
        console.log(`group ${g.id}`);
        if (out.controls) console.log(`controls set: Kim has school and night windows, trusted 447700900001, spend limit 500 (EUR cents); passes roam-day, data-1gb`);
        for (const m of out.members) {
          console.log(`${m.name} (${m.role}) ${m.id}  token ${m.token}`);
          for (const l of m.lines) {
            console.log(`  ${l.device} line ${l.id}  ICCID ${l.iccid}\n    ${l.activationCode}`);
            console.log(`    mock-smdp sim download '${l.activationCode}' --state .sim/${m.name.toLowerCase()}-${l.device}.json`);
          }
        }
        return 0;
      }
      case 'usage': {
        if (!group || !line || !values.kind || !values.amount) break;
        const r = await call('POST', `/family/groups/${group}/lines/${line}/usage`, {
          kind: values.kind, amount: Number(values.amount), ...(values.hotspot ? { hotspot: true } : {}),
          ...(values.to ? { otherParty: values.to } : {}), ...(values.country ? { visitedCountry: values.country } : {}),
        });
        if (values.json) print(r);
        else {
          const roam = r.remaining.roaming ? `; roaming left ${r.remaining.roaming.pool}${r.remaining.roaming.member !== null ? `, member ${r.remaining.roaming.member}` : ''}` : '';
          const pass = r.remaining.pass !== undefined ? `; pass ${r.purchaseId} left ${r.remaining.pass}` : '';
          console.log(`${r.decision} (${r.reason}, rule ${r.rule}) at ${r.localTime.at} ${r.localTime.zone}; remaining pool ${r.remaining.pool}${r.remaining.member !== null ? `, member ${r.remaining.member}` : ''}${r.remaining.hotspot !== null ? `, hotspot ${r.remaining.hotspot}` : ''}${roam}${pass}`);
        }
        return 0;
      }
      case 'summary':
        if (!group) break;
        print(await call('GET', `/family/groups/${group}/usage`));
        return 0;
      case 'events': {
        if (!group) break;
        const r = await call('GET', `/family/groups/${group}/events`);
        if (values.json) print(r);
        else for (const e of r.events) console.log(`${e.id}\t${e.at}\t${e.type}\t${JSON.stringify(e.detail)}`);
        return 0;
      }
      case 'clock':
        if (!group) break;
        print(await call('GET', `/family/groups/${group}/clock`));
        return 0;
      case 'advance':
        if (!group || !values.days) break;
        print(await call('POST', `/family/groups/${group}/clock/advance`, { days: Number(values.days) }));
        return 0;
      case 'rollover':
        if (!group) break;
        print(await call('POST', `/family/groups/${group}/rollover`));
        return 0;
      case 'controls': {
        if (!group) break;
        const body: Record<string, unknown> = {};
        if (values['no-windows']) body.timeWindows = [];
        if (values.window?.length) body.timeWindows = values.window.map(parseWindow);
        if (values.trusted !== undefined) body.trustedNumbers = values.trusted.split(',').map((n) => n.trim()).filter(Boolean);
        if (values['spend-limit'] !== undefined) body.spendLimit = numberOrNone(values['spend-limit'], '--spend-limit');
        if (values['roaming-data'] !== undefined) body.roaming = { dataMb: numberOrNone(values['roaming-data'], '--roaming-data') };
        if (!line) {
          if (Object.keys(body).length) throw new CliError('setting controls needs the MEMBER: mock-smdp family controls GROUP MEMBER --window …');
          print(await call('GET', `/family/groups/${group}/controls`));
        } else {
          print(Object.keys(body).length ? await call('PUT', `/family/groups/${group}/members/${line}/controls`, body) : await call('GET', `/family/groups/${group}/members/${line}/controls`));
        }
        return 0;
      }
      case 'time-zone':
        if (!group || !line) break;
        print(await call('PUT', `/family/groups/${group}/time-zone`, { timeZone: line }));
        return 0;
      case 'roaming': {
        if (!group) break;
        print(await call('PUT', `/family/groups/${group}/roaming`, {
          ...(values.home ? { homeCountry: values.home } : {}), ...(values.data ? { dataMb: whole(values.data, '--data') } : {}),
          ...(values.voice ? { voiceMin: whole(values.voice, '--voice') } : {}), ...(values.sms ? { sms: whole(values.sms, '--sms') } : {}),
          atAllowance: values.throttle ? 'throttle' : 'block',
        }));
        return 0;
      }
      case 'passes':
        if (!group) break;
        print(values.pass?.length
          ? await call('PUT', `/family/groups/${group}/passes`, { ...(values.currency ? { currency: values.currency } : {}), passes: values.pass.map(parsePass) })
          : await call('GET', `/family/groups/${group}/passes`));
        return 0;
      case 'buy': {
        if (!group || !line || !third) break;
        const r = await call('POST', `/family/groups/${group}/members/${line}/purchases`, { pass: third });
        if (values.json) print(r);
        else console.log(`${r.purchase.id} ${r.purchase.status}${r.overLimit ? ' (over the spend limit)' : ''}; spent ${r.spend.spent}${r.spend.limit === null ? '' : ` of ${r.spend.limit}`} ${r.spend.currency}`);
        return 0;
      }
      case 'purchases': {
        if (!group) break;
        const r = await call('GET', `/family/groups/${group}/purchases${values.pending ? '?status=pending' : ''}`);
        if (values.json) print(r);
        else for (const p of r.purchases) console.log(`${p.id}\t${p.memberId}\t${p.passId}\t${p.price} ${p.currency}\t${p.state}\t${p.requestedBy}`);
        return 0;
      }
      case 'approve':
      case 'decline': {
        if (!group || !line) break;
        const r = await call('POST', `/family/groups/${group}/purchases/${line}/${cmd}`, values.note ? { note: values.note } : {});
        if (values.json) print(r);
        else {
          const p = cmd === 'approve' ? r.purchase : r;
          console.log(`${p.id} ${p.state}${p.expiresAt ? ` until ${p.expiresAt}` : ''} (by ${p.decidedBy})`);
        }
        return 0;
      }
    }
  } catch (err) {
    if (err instanceof CliError) {
      console.error(err.message);
      return 1;
    }
    throw err;
  }
  console.error(`usage:\n${FAMILY_USAGE}`);
  return 2;
}

const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** 'mon-fri' or 'sun,mon,tue' → the day list. */
function parseDays(s: string): string[] {
  const out: string[] = [];
  for (const part of s.split(',')) {
    const [a, b] = part.split('-');
    const i = DAY_NAMES.indexOf(a ?? '');
    const j = b === undefined ? i : DAY_NAMES.indexOf(b);
    if (i < 0 || j < 0) throw new CliError(`days: ${part} is not mon…sun or a range like mon-fri`);
    for (let k = i; ; k = (k + 1) % 7) {
      out.push(DAY_NAMES[k]!);
      if (k === j) break;
    }
  }
  return [...new Set(out)];
}

/** --window NAME=KINDS@DAYS/FROM-TO, e.g. school=data,voice,sms@mon-fri/08:00-15:00. */
function parseWindow(s: string) {
  const m = /^([A-Za-z0-9_-]+)=([a-z,]+)@([a-z,-]+)\/(\d{2}:\d{2})-(\d{2}:\d{2})$/.exec(s);
  if (!m) throw new CliError(`--window ${s}: expected NAME=KINDS@DAYS/HH:MM-HH:MM, e.g. school=data,voice,sms@mon-fri/08:00-15:00`);
  return { name: m[1]!, blocks: m[2]!.split(',').filter(Boolean), days: parseDays(m[3]!), from: m[4]!, to: m[5]! };
}

/** --pass ID=KIND:MB[:MIN[:SMS]]/HOURS/PRICE, e.g. roam-day=roaming:500:30:30/24/500. */
function parsePass(s: string) {
  const m = /^([A-Za-z0-9_-]+)=(roaming|data):(\d+)(?::(\d+))?(?::(\d+))?\/(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new CliError(`--pass ${s}: expected ID=roaming|data:MB[:MIN[:SMS]]/HOURS/PRICE, e.g. roam-day=roaming:500:30:30/24/500`);
  return { id: m[1]!, name: m[1]!, kind: m[2]!, dataMb: Number(m[3]), voiceMin: Number(m[4] ?? 0), sms: Number(m[5] ?? 0), validityHours: Number(m[6]), price: Number(m[7]) };
}

function whole(s: string, what: string): number {
  if (!/^\d+$/.test(s)) throw new CliError(`${what} takes a whole number: ${s}`);
  return Number(s);
}

function numberOrNone(s: string, what: string): number | null {
  return s === 'none' ? null : whole(s, what);
}
