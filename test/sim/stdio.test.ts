import { PassThrough } from 'node:stream';
import t from 'tap';
import type { Es10Card } from '../../src/sim/es10.js';
import { serveStdio } from '../../src/sim/stdio.js';
import { SKIP_CAPTURES, es10Sessions, stdioLines } from '../helpers/lpac-capture.js';

/** Runs request lines through serveStdio and collects the answer lines. */
async function run(card: Es10Card, lines: string[]): Promise<{ answers: unknown[]; other: string[] }> {
  const input = new PassThrough();
  const output = new PassThrough();
  const other: string[] = [];
  const chunks: Buffer[] = [];
  output.on('data', (c: Buffer) => chunks.push(c));
  const done = serveStdio(card, input, output, { onOther: (l) => other.push(l) });
  for (const l of lines) input.write(`${l}\n`);
  input.end();
  await done;
  const answers = Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
  return { answers, other };
}

t.test('lpac capture replayed over the stdio protocol gives lpac the same answers', { skip: SKIP_CAPTURES }, async (t) => {
  const answers = es10Sessions().flat().map((e) => e.response);
  const received: Buffer[] = [];
  const card: Es10Card = {
    async transmit(c) {
      received.push(Buffer.from(c));
      const a = answers.shift();
      if (!a) throw new Error('no more answers');
      return a;
    },
  };
  const lines = stdioLines();
  const requests = lines.map((l) => JSON.stringify({ type: 'apdu', payload: { func: l.func, param: l.c } }));
  const out = await run(card, requests);
  t.equal(out.answers.length, lines.length, 'one answer per request');
  for (let i = 0; i < lines.length; i++) {
    const want = lines[i]!.r;
    const got = out.answers[i] as { type: string; payload: { ecode: number; data?: string } };
    t.equal(got.type, 'apdu');
    t.equal(got.payload.ecode, want.ecode, `${lines[i]!.func} ecode`);
    t.equal(got.payload.data?.toUpperCase(), want.data?.toUpperCase(), `${lines[i]!.func} ${lines[i]!.c?.slice(0, 12) ?? ''}`);
  }
  t.equal(answers.length, 0, 'every captured ES10 command reached the card');
  t.same(received, es10Sessions().flat().map((e) => e.command));
});

t.test('other lines are passed on; bad requests get negative ecodes', async (t) => {
  const card: Es10Card = { transmit: async (c) => Buffer.from(c).reverse() };
  const out = await run(card, [
    '{"type":"lpa","payload":{"code":0,"message":"success","data":null}}',
    'not json',
    JSON.stringify({ type: 'apdu', payload: { func: 'connect', param: null } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'logic_channel_open', param: 'a000000087100200' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'logic_channel_open', param: 'A0000005591010FFFFFFFF8900000100' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'transmit', param: '81e2910003bf2e00' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'transmit', param: 'zz' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'logic_channel_close', param: '01' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'transmit', param: '81e2910003bf2e00' } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'frobnicate', param: null } }),
    JSON.stringify({ type: 'apdu', payload: { func: 'disconnect' } }),
  ]);
  t.same(out.other, ['{"type":"lpa","payload":{"code":0,"message":"success","data":null}}', 'not json']);
  t.same(
    out.answers.map((a) => (a as { payload: unknown }).payload),
    [
      { ecode: 0 },
      { ecode: -1 },
      { ecode: 1 },
      { ecode: 0, data: '002EBF9000' },
      { ecode: -1 },
      { ecode: 0 },
      { ecode: 0, data: '6881' },
      { ecode: -1 },
      { ecode: 0 },
    ],
  );
});
