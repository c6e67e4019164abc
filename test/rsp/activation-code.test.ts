import t from 'tap';
import { ActivationCodeError, buildActivationCode, parseActivationCode } from '../../src/rsp/activation-code.js';

t.test('builds positional codes with upper-case address', async (t) => {
  t.equal(buildActivationCode({ smdpAddress: 'smdp.example.com', matchingId: 'ABC-123' }), 'LPA:1$SMDP.EXAMPLE.COM$ABC-123');
  t.equal(buildActivationCode({ smdpAddress: 'localhost:8443', matchingId: 'X1', confirmationCodeRequired: true }), 'LPA:1$LOCALHOST:8443$X1$$1');
  t.equal(buildActivationCode({ smdpAddress: 'h.example', matchingId: 'X1', smdpOid: '2.999.10' }, { lpaPrefix: false }), '1$H.EXAMPLE$X1$2.999.10');
  t.equal(buildActivationCode({ smdpAddress: 'h.example', matchingId: 'X1', smdpOid: '2.999.10', confirmationCodeRequired: true }), 'LPA:1$H.EXAMPLE$X1$2.999.10$1');
  t.throws(() => buildActivationCode({ smdpAddress: 'h$x', matchingId: 'A' }), ActivationCodeError);
  t.throws(() => buildActivationCode({ smdpAddress: 'h', matchingId: 'a_b' }), ActivationCodeError);
});

t.test('parses what it builds and the empty-OID form', async (t) => {
  t.same(parseActivationCode('LPA:1$host$TOKEN$$1'), { smdpAddress: 'host', matchingId: 'TOKEN', confirmationCodeRequired: true });
  t.same(parseActivationCode('1$smdp.gsma.com$ABC$1.3.6.1.4.1.31746'), { smdpAddress: 'smdp.gsma.com', matchingId: 'ABC', smdpOid: '1.3.6.1.4.1.31746' });
  t.same(parseActivationCode('LPA:1$LOCALHOST:8443$K3T9Q-2M8XA'), { smdpAddress: 'LOCALHOST:8443', matchingId: 'K3T9Q-2M8XA' });
  for (const bad of ['LPA:2$h$T', 'LPA:1$h', 'LPA:1$h$T$x.y', 'LPA:1$h$T$$2', 'LPA:1$h$T$1.2$1$extra']) {
    t.throws(() => parseActivationCode(bad), ActivationCodeError, bad);
  }
});
