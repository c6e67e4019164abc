/**
 * `mock-smdp family …`: a demo family and the usage/clock calls, through the running server's API
 * (src/cli.ts passes its client and the admin headers in). The family API authenticates the
 * operator by its API key: `--key` or MOCK_SMDP_OPERATOR_KEY (`demo` creates an operator and prints
 * its key).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { HttpClient } from '../http/client.js';

const FAMILY_USAGE = `  mock-smdp family demo [--type T] [--callback URL] [--key OPERATOR_KEY] [--json]
                                  creates an operator (unless --key), 4 profiles of stock, a group (20 GB pool,
                                  5 GB hotspot), Alex (owner: phone + watch), Sam (adult: phone), Kim (child,
                                  2 GB: phone), issues the four profiles and prints their activation codes
  mock-smdp family usage GROUP LINE --kind data|voice|sms --amount N [--hotspot]
  mock-smdp family summary|clock GROUP      (JSON)
  mock-smdp family events GROUP [--json]
  mock-smdp family advance GROUP --days N
  mock-smdp family rollover GROUP
  (operator key: --key or MOCK_SMDP_OPERATOR_KEY)`;

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
        help: { type: 'boolean', short: 'h' },
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
    if (!key) throw new CliError('no operator key: give --key KEY or set MOCK_SMDP_OPERATOR_KEY (mock-smdp family demo prints one)');
    const r = await client.request<any>(method, path, body, { 'x-api-key': key });
    if (!expect.includes(r.status)) throw new CliError(`${method} ${path}: HTTP ${r.status} ${r.json?.message ?? r.text}`);
    return r.json;
  };
  const print = (x: unknown) => console.log(JSON.stringify(x, null, 2));
  const [cmd, group, line] = positionals;
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
        if (values.json) {
          print(out);
          return 0;
        }
        if (operatorId) console.log(`operator ${operatorId} created; API key (shown once): ${key}\n  export MOCK_SMDP_OPERATOR_KEY=${key}`);
        console.log(`group ${g.id}`);
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
        const r = await call('POST', `/family/groups/${group}/lines/${line}/usage`, { kind: values.kind, amount: Number(values.amount), ...(values.hotspot ? { hotspot: true } : {}) });
        if (values.json) print(r);
        else console.log(`${r.decision} (${r.reason}); remaining pool ${r.remaining.pool}${r.remaining.member !== null ? `, member ${r.remaining.member}` : ''}${r.remaining.hotspot !== null ? `, hotspot ${r.remaining.hotspot}` : ''}`);
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
