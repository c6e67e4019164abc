/** `mock-smdp family …` against a running server: the demo family, usage and rollover through the API. */
import t from 'tap';
import { familyCommand } from '../../src/family/cli.js';
import { startWorld } from '../helpers/world.js';

async function run(argv: string[], client: Parameters<typeof familyCommand>[1]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await familyCommand(argv, client, {});
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

t.test('family demo creates an operator, a group and four issued profiles; usage and rollover commands', async (t) => {
  const w = await startWorld(t);
  delete process.env.MOCK_SMDP_OPERATOR_KEY;
  const demo = await run(['demo', '--json'], w.http);
  t.equal(demo.code, 0, demo.err);
  const d = JSON.parse(demo.out);
  t.match(d.operatorKey, /^msk_/);
  t.same(d.members.map((m: any) => `${m.name}:${m.role}:${m.lines.map((l: any) => l.device).join('+')}`), ['Alex:owner:phone+watch', 'Sam:adult:phone', 'Kim:child:phone']);
  const lines = d.members.flatMap((m: any) => m.lines);
  t.equal(lines.length, 4);
  for (const l of lines) {
    t.match(l.activationCode, /^LPA:1\$/);
    const p = await w.profile(l.iccid);
    t.equal(p?.state, 'Released', `${l.device} profile released`);
    const [owner] = await w.db.query<{ operator_id: string | null }>('SELECT operator_id FROM profiles WHERE iccid = $1', [l.iccid]);
    t.equal(owner?.operator_id, d.operatorId);
  }

  const kim = d.members.find((m: any) => m.name === 'Kim');
  const key = ['--key', d.operatorKey];
  let r = await run(['usage', d.groupId, kim.lines[0].id, '--kind', 'data', '--amount', '2048', ...key], w.http);
  t.match(r.out, /^allowed \(withinPlan, rule pool\) at \w{3} \d{2}:\d{2} UTC; remaining pool 18432, member 0/);
  r = await run(['usage', d.groupId, kim.lines[0].id, '--kind', 'data', '--amount', '1', ...key], w.http);
  t.match(r.out, /^blocked \(memberCap, rule member-cap\)/);
  r = await run(['rollover', d.groupId, ...key], w.http);
  t.equal(JSON.parse(r.out).rolledOver, true);
  r = await run(['summary', d.groupId, ...key], w.http);
  t.equal(JSON.parse(r.out).pool.data.used, 0);
  r = await run(['events', d.groupId, ...key], w.http);
  t.match(r.out, /\tcap-reached\t/);
  t.match(r.out, /\tcycle-rolled-over\t/);
  t.equal((r.out.match(/\tprofile-issued\t/g) ?? []).length, 4);

  r = await run(['summary', d.groupId], w.http);
  t.equal(r.code, 1, 'no key: refused');
  t.match(r.err, /operator key/);
  t.equal((await run(['usage', d.groupId], w.http)).code, 2, 'missing arguments: usage');
});

t.test('family controls, time-zone, roaming, passes, buy, purchases, approve and decline', async (t) => {
  const w = await startWorld(t);
  delete process.env.MOCK_SMDP_OPERATOR_KEY;
  const d = JSON.parse((await run(['demo', '--json'], w.http)).out);
  const key = ['--key', d.operatorKey];
  const g = d.groupId as string;
  const kim = d.members.find((m: any) => m.name === 'Kim');
  const alex = d.members.find((m: any) => m.name === 'Alex');
  const ok = async (argv: string[]) => {
    const r = await run(argv, w.http);
    t.equal(r.code, 0, `${argv.slice(0, 2).join(' ')}: ${r.err}`);
    return r.out;
  };

  t.match(JSON.parse(await ok(['time-zone', g, 'Asia/Tokyo', ...key])), { timeZone: 'Asia/Tokyo' });
  const set = JSON.parse(await ok(['controls', g, kim.id, '--window', 'always=data@mon-sun/00:00-24:00', '--window', 'night=voice,sms@sun-thu/21:00-07:00',
    '--trusted', '+44 7700 900001', '--spend-limit', '100', '--roaming-data', '50', ...key]));
  t.same(set.controls.timeWindows[0], { name: 'always', blocks: ['data'], days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '24:00' });
  t.same(set.controls.timeWindows[1].days, ['sun', 'mon', 'tue', 'wed', 'thu'], 'a range across the week end');
  t.match(set.controls, { trustedNumbers: ['447700900001'], spendLimit: 100, roaming: { dataMb: 50 } });
  t.match(JSON.parse(await ok(['controls', g, ...key])).members.find((m: any) => m.name === 'Kim').controls.spendLimit, 100, 'the group\'s controls');
  let r = await run(['controls', g, kim.id, '--window', 'school=data@someday/08:00-15:00', ...key], w.http);
  t.equal(r.code, 1);
  t.match(r.err, /days: someday/);

  t.match(await ok(['usage', g, kim.lines[0].id, '--kind', 'data', '--amount', '5', ...key]), /^blocked \(timeWindow, rule time-window:always\) at \w{3} \d{2}:\d{2} Asia\/Tokyo/);
  t.match(await ok(['usage', g, kim.lines[0].id, '--kind', 'voice', '--amount', '2', '--to', '112', ...key]), /^allowed \(emergencyNumber, rule emergency-number\)/);

  await ok(['roaming', g, '--home', 'GB', '--data', '100', '--throttle', ...key]);
  await ok(['controls', g, kim.id, '--no-windows', ...key]);
  t.match(await ok(['usage', g, kim.lines[0].id, '--kind', 'data', '--amount', '50', '--country', 'FR', ...key]), /^allowed \(roamingAllowance, rule roaming-allowance\).*roaming left 50, member 0/);
  t.match(await ok(['usage', g, kim.lines[0].id, '--kind', 'data', '--amount', '1', '--country', 'FR', ...key]), /^throttled \(roamingMemberAllowance, rule roaming-member-allowance\)/);

  const passes = JSON.parse(await ok(['passes', g, '--currency', 'GBP', '--pass', 'roam-day=roaming:500:30:30/24/500', '--pass', 'gb1=data:1024/720/300', ...key]));
  t.same(passes.passes.map((p: any) => `${p.id}:${p.kind}:${p.dataMb}:${p.voiceMin}:${p.validityHours}:${p.price}`), ['roam-day:roaming:500:30:24:500', 'gb1:data:1024:0:720:300']);
  t.match(JSON.parse(await ok(['passes', g, '--token', kim.token])).currency, 'GBP', 'a member reads the passes');

  const bought = await ok(['buy', g, kim.id, 'roam-day', '--token', kim.token]);
  t.match(bought, /^fp_\w+ pending \(over the spend limit\); spent 0 of 100 GBP/);
  const pid = bought.split(' ')[0]!;
  t.match(await ok(['purchases', g, '--pending', ...key]), new RegExp(`^${pid}\t${kim.id}\troam-day\t500 GBP\tpending\tmember:${kim.id}`));
  r = await run(['approve', g, pid, '--token', kim.token], w.http);
  t.equal(r.code, 1, 'a child cannot approve');
  t.match(r.err, /HTTP 403/);
  t.match(await ok(['approve', g, pid, '--token', alex.token, '--note', 'ok for the trip']), new RegExp(`^${pid} active until \\S+ \\(by member:${alex.id} \\(ok for the trip\\)\\)`));
  t.match(await ok(['usage', g, kim.lines[0].id, '--kind', 'data', '--amount', '100', '--country', 'FR', ...key]), new RegExp(`^allowed \\(roamingPass, rule roaming-pass\\).*pass ${pid} left 400`));
  const second = (await ok(['buy', g, kim.id, 'gb1', '--token', kim.token])).split(' ')[0]!;
  t.match(await ok(['decline', g, second, ...key]), new RegExp(`^${second} declined \\(by operator:`));
  t.equal((await run(['buy', g, kim.id], w.http)).code, 2, 'buy needs the pass');
});

t.test('family demo --controls sets the controls for QA', async (t) => {
  const w = await startWorld(t);
  delete process.env.MOCK_SMDP_OPERATOR_KEY;
  const r = await run(['demo', '--controls', '--json'], w.http);
  t.equal(r.code, 0, r.err);
  const d = JSON.parse(r.out);
  t.same(d.controls.controls.timeWindows.map((x: any) => x.name), ['school', 'night']);
  const c = JSON.parse((await run(['controls', d.groupId, '--key', d.operatorKey], w.http)).out);
  t.match(c, { timeZone: 'Europe/London', roaming: { homeCountry: 'GB', dataMb: 1024 }, passes: { currency: 'EUR', passes: [{ id: 'roam-day' }, { id: 'data-1gb' }] } });
  t.match(c.members.find((m: any) => m.name === 'Kim').controls, { trustedNumbers: ['447700900001'], spendLimit: 500 });
});
