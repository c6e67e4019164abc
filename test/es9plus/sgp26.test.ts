/**
 * The server on a PKI nobody on this project generated: the GSMA SGP.26 test set (CI, DPauth,
 * DPpb, DP TLS for testsmdpplus1.example.com, SM-DP+ OID 2.999.10) and its one eUICC.
 */
import t from 'tap';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { Lpa } from '../../src/sim/lpa.js';
import { needs, SGP26 } from '../helpers/shared-data.js';
import { startWorld } from '../helpers/world.js';

const sgp26 = SGP26.dir;

t.test('download with the SGP.26 test PKI and its eUICC', { skip: needs(SGP26) }, async (t) => {
  const w = await startWorld(t, { pkiDir: sgp26, smdpAddress: 'testsmdpplus1.example.com' });
  t.equal(w.pki.smdpOid, '2.999.10');
  const card = await VirtualEuicc.create({ pkiDir: sgp26 });
  t.equal(card.eid, '89049032123451234512345678901235');
  const lpa = new Lpa(card, { http: w.http });
  const order = await w.order();
  t.match(order.activationCode, /^LPA:1\$TESTSMDPPLUS1\.EXAMPLE\.COM\$/);
  const r = await lpa.download(order.activationCode);
  t.equal(r.iccid, order.iccid);
  const p = await w.profile(order.iccid);
  t.equal(p!.state, 'Installed');
  t.equal(p!.eid, '89049032123451234512345678901235');
});

t.test('ES9+ over HTTPS with the generated DP TLS certificate, trusted through the CI', async (t) => {
  const w = await startWorld(t, { tls: true });
  t.match(w.url, /^https:/);
  const { eidWithCheckDigits } = await import('../../src/rsp/identifiers.js');
  const card = await VirtualEuicc.create({ pkiDir: w.pkiDir, eid: eidWithCheckDigits('890490320000000000000000000777') });
  const lpa = new Lpa(card, { http: w.http });
  const order = await w.order();
  await lpa.download(order.activationCode);
  t.equal((await w.profile(order.iccid))!.state, 'Installed');

  // A client that does not trust the CI refuses the server.
  const { HttpClient } = await import('../../src/http/client.js');
  const stranger = new HttpClient({ baseUrl: w.url, servername: 'localhost' });
  t.teardown(() => stranger.close());
  await t.rejects(stranger.get('/health'));
});
