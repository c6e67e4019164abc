/**
 * The LPA's discovery (Lpa.discover, docs/smds.md#es11) against the built-in SM-DS on lpac's ES9+
 * paths, then the download of the discovered event with no activation code from the operator: an
 * order confirmed with smdsAddress is found, installed, and its event is gone afterwards.
 *
 * The simulator's virtual eUICC accepts only CERT.DPauth in AuthenticateServer, so the card here
 * answers AuthenticateServer with a CERT.DSauth itself (checking it under its CI, serverSignature1 and its challenge as SGP.22 §5.7.13 has a card
 * do, over the virtual eUICC's challenge) with the virtual eUICC's own certificate and key, and hands
 * every other command to it.
 */
import t from 'tap';
import { signRaw, verifyRaw } from '../../src/crypto/ecdsa.js';
import { Certificate, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { decode } from '../../src/der/tlv.js';
import { encodeAuthenticateServerResponse, encodeEuiccSigned1 } from '../../src/rsp/authentication.js';
import { encodeEuiccInfo2 } from '../../src/rsp/euiccinfo.js';
import { Lpa } from '../../src/sim/lpa.js';
import { VirtualEuicc } from '../../src/sim/euicc.js';
import { issueEuiccCredentials, type EuiccCredentials } from '../../src/pki/load.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { listEvents } from '../../src/smds/store.js';
import { CURVE_NAMES } from '../../src/pki/layout.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator } from '../helpers/es2plus.js';
import { until } from '../helpers/operator.js';

let n = 0;
async function device(w: World, curve?: (typeof CURVE_NAMES)[number]) {
  const eid = eidWithCheckDigits(`8904903200000000${process.pid.toString().padStart(7, '0').slice(-7)}${String(7000 + n++).padStart(7, '0')}`);
  const creds = (curve ? [curve] : [...CURVE_NAMES]).map((c) => issueEuiccCredentials(w.pkiDir, eid, c));
  const card = await VirtualEuicc.create({ credentials: creds });
  return { card, creds };
}

const SMDS = 'smds.localhost:8443';
let world: Promise<World> | undefined;
const getWorld = () => (world ??= startWorld(t, { config: { smdsAddress: SMDS } }));

/** The virtual eUICC, with the discovery commands answered as a card that accepts CERT.DSauth would. */
function discoveringCard(card: VirtualEuicc, creds: EuiccCredentials[]) {
  let challenge: Buffer | undefined;
  const skis = creds.map((c) => c.eum.aki!);
  return {
    async transmit(cmd: Buffer): Promise<Buffer> {
      const tag = cmd.readUInt16BE(0);
      if (tag === 0xbf2e) {
        // The virtual eUICC's own challenge, kept: its session goes on if the server is an SM-DP+.
        const r = await card.transmit(cmd);
        challenge = decode(r).find(0x80)?.value;
        return r;
      }
      if (tag !== 0xbf38) return card.transmit(cmd);
      const [signed1, sig1, ciId, certEl, ctx] = decode(cmd).children();
      const cert = Certificate.parse(certEl!.raw);
      if (!cert.policies.includes(RSP_ROLE.dsAuth)) return card.transmit(cmd); // an SM-DP+: the virtual eUICC's own check
      const c = creds.find((x) => x.eum.aki!.equals(ciId!.value))!;
      checkIssued(cert, c.cis.find((x) => x.ski!.equals(ciId!.value))!, { role: RSP_ROLE.dsAuth });
      if (!verifyRaw(cert.publicKey, signed1!.raw, sig1!.value)) throw new Error('serverSignature1 does not verify');
      const f = signed1!.children();
      const v = (n: number) => f.find((x) => x.tag === n)!.value;
      if (!challenge || !v(0x81).equals(challenge)) throw new Error('euiccChallenge differs');
      const euiccSigned1 = encodeEuiccSigned1({
        transactionId: v(0x80), serverAddress: v(0x83).toString('utf8'), serverChallenge: v(0x84),
        euiccInfo2: encodeEuiccInfo2({
          profileVersion: Buffer.from([2, 1, 0]), svn: Buffer.from([2, 2, 2]), euiccFirmwareVer: Buffer.from([1, 0, 0]), extCardResource: Buffer.alloc(0),
          uiccCapability: [], rspCapability: [3], ciPkIdsForVerification: skis, ciPkIdsForSigning: skis, ppVersion: Buffer.from([0, 0, 1]), sasAccreditationNumber: 'TEST',
        }),
        ctxParams1: ctx!.raw,
      });
      return encodeAuthenticateServerResponse({ ok: { euiccSigned1, euiccSignature1: signRaw(c.key, euiccSigned1), euiccCertificate: c.cert.raw, eumCertificate: c.eum.raw } });
    },
  };
}

for (const curve of CURVE_NAMES) {
  t.test(`discovered through the SM-DS and installed with no activation code (${curve})`, async (t) => {
    const w = await getWorld();
    const op = await addEs2Operator(w);
    await op.stock(1);
    const { card, creds } = await device(w, curve);
    const d = (await op.call('downloadOrder', { profileType: 'default', eid: card.eid })).body;
    const c = await op.call('confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
    t.equal(c.status, 'Executed-Success');

    const lpa = new Lpa(discoveringCard(card, creds), { http: w.http });
    const steps: string[] = [];
    const found = await new Lpa(discoveringCard(card, creds), { http: w.http, progress: (s) => steps.push(s) }).discover(SMDS);
    t.same(found, [{ eventId: c.body.matchingId, rspServerAddress: w.config.smdpAddress }]);
    t.same(steps, ['es10b_get_euicc_challenge_and_info', 'es9p_initiate_authentication', 'es10b_authenticate_server', 'es11_authenticate_client'], "lpac's steps");

    const r = await lpa.download(`1$${found[0]!.rspServerAddress}$${found[0]!.eventId}`);
    t.equal(r.iccid, d.iccid);
    t.equal((await w.profile(d.iccid))!.state, 'Installed');
    await until(async () => (await listEvents(w.db, { eid: card.eid })).length === 0);
    t.same(await lpa.discover(SMDS), [], 'the event is gone after the install');
  });
}

t.test('discover: an SM-DS refusal is an es9Failed LpaError', async (t) => {
  const w = await getWorld();
  const { card, creds } = await device(w);
  const err = await new Lpa(discoveringCard(card, creds), { http: w.http }).discover('elsewhere.example').catch((e) => e);
  t.match(err, { code: 'es9Failed', subjectCode: '8.8.1', reasonCode: '3.8' });
});
