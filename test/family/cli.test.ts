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
  t.match(r.out, /^allowed \(withinPlan\); remaining pool 18432, member 0/);
  r = await run(['usage', d.groupId, kim.lines[0].id, '--kind', 'data', '--amount', '1', ...key], w.http);
  t.match(r.out, /^blocked \(memberCap\)/);
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
