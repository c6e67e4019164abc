import t from 'tap';
import { tlv } from '../../src/der/tlv.js';
import { Lpa } from '../../src/sim/lpa.js';
import { startWorld } from '../helpers/world.js';
import { newDevice } from '../helpers/device.js';

t.test('an unsigned cancellation cannot end an authenticated session', async (t) => {
  const w = await startWorld(t);
  const { card } = await newDevice(w);
  const order = await w.order();
  let answer: { header?: { functionExecutionStatus?: { status?: string; statusCodeData?: { subjectCode?: string; reasonCode?: string } } } } | undefined;
  const http = {
    post: async (path: string, body: Record<string, string>, headers?: Record<string, string>) => {
      if (path.endsWith('/getBoundProfilePackage')) {
        // Someone who knows the transactionId sends the eUICC's unsigned error form (invalidTransactionId).
        const r = await w.http.post('/gsma/rsp2/es9plus/cancelSession', {
          transactionId: body.transactionId,
          cancelSessionResponse: tlv(0xbf41, tlv(0x81, Buffer.from([5]))).toString('base64'),
        }, headers);
        answer = r.json as typeof answer;
      }
      return w.http.post(path, body, headers);
    },
  } as unknown as typeof w.http;
  const lpa = new Lpa(card, { http });
  await lpa.download(order.activationCode);
  t.match(answer?.header?.functionExecutionStatus, { status: 'Failed', statusCodeData: { subjectCode: '8.1', reasonCode: '6.1' } });
  t.equal((await w.profile(order.iccid))!.state, 'Installed', 'the session went on to install');
});

t.test('an unsigned cancellation ends a session that holds no eUICC yet', async (t) => {
  const w = await startWorld(t);
  const { card } = await newDevice(w);
  const order = await w.order();
  let tid = '';
  let answer: unknown;
  const http = {
    post: async (path: string, body: Record<string, string>, headers?: Record<string, string>) => {
      const r = await w.http.post(path, body, headers);
      if (path.endsWith('/initiateAuthentication')) {
        tid = (r.json as { transactionId: string }).transactionId;
        answer = (await w.http.post('/gsma/rsp2/es9plus/cancelSession', {
          transactionId: tid,
          cancelSessionResponse: tlv(0xbf41, tlv(0x81, Buffer.from([5]))).toString('base64'),
        }, headers)).json;
      }
      return r;
    },
  } as unknown as typeof w.http;
  const err = await new Lpa(card, { http }).download(order.activationCode).catch((e) => e);
  t.match(answer, { header: { functionExecutionStatus: { status: 'Executed-Success' } } });
  t.match(err, { subjectCode: '8.10.1', reasonCode: '3.9' }, 'the session is gone');
  t.equal((await w.profile(order.iccid))!.state, 'Released', 'the order is untouched');
});
