/**
 * ES11 end to end on the built-in SM-DS (docs/smds.md#es11), both curves: an order confirmed with
 * smdsAddress is found by its eUICC through initiateAuthentication + authenticateClient, on the
 * /gsma/rsp2/es11 paths and on the ES9+ paths lpac uses (SM-DS with an address of its own); the
 * eUICC side is played here with its own certificate and key, checking CERT.DSauth as a card would.
 * Refusals: a bad euiccSignature1, an unknown session, another address; another EID sees nothing; a
 * deleted event is gone; a PKI without CERT.DSauth: the SM-DS's ES11 answers a clear refusal.
 */
import t from 'tap';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signRaw, verifyRaw } from '../../src/crypto/ecdsa.js';
import type { CurveName } from '../../src/crypto/curves.js';
import { Certificate, checkIssued, RSP_ROLE } from '../../src/crypto/x509.js';
import { decode } from '../../src/der/tlv.js';
import { generatePki } from '../../src/pki/generate.js';
import { certPath, CURVE_NAMES, keyPath } from '../../src/pki/layout.js';
import { issueEuiccCredentials, type EuiccCredentials } from '../../src/pki/load.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { encodeAuthenticateServerResponse, encodeCtxParams1, encodeEuiccSigned1 } from '../../src/rsp/authentication.js';
import { encodeEuiccInfo1, encodeEuiccInfo2 } from '../../src/rsp/euiccinfo.js';
import { startWorld, type World } from '../helpers/world.js';
import { addEs2Operator, statusOf, type Es2Operator } from '../helpers/es2plus.js';
import { until } from '../helpers/operator.js';

const SMDS = 'smds.localhost:8443';
let world: Promise<World> | undefined;
const getWorld = () => (world ??= startWorld(t, { config: { smdsAddress: SMDS } }));

let n = 0;
const newEid = () => eidWithCheckDigits(`8904903200000000${process.pid.toString().padStart(7, '0').slice(-7)}${String(5000 + n++).padStart(7, '0')}`);

async function ok(op: Es2Operator, fn: string, body: Record<string, unknown>) {
  const r = await op.call(fn, body);
  if (r.status !== 'Executed-Success') throw new Error(`${fn}: ${r.status} ${r.message}`);
  return r.body;
}

/** The eUICC's half of the common mutual authentication, as a card would run it (SGP.22 §3.0.1). */
function euiccInfo2(c: EuiccCredentials) {
  const skis = [c.eum.aki!];
  return encodeEuiccInfo2({
    profileVersion: Buffer.from([2, 1, 0]), svn: Buffer.from([2, 2, 2]), euiccFirmwareVer: Buffer.from([1, 0, 0]),
    extCardResource: Buffer.alloc(0), uiccCapability: [], rspCapability: [3], ciPkIdsForVerification: skis, ciPkIdsForSigning: skis,
    ppVersion: Buffer.from([0, 0, 1]), sasAccreditationNumber: 'TEST',
  });
}

async function discover(w: World, c: EuiccCredentials, opts: { prefix?: string; address?: string; tamper?: boolean; matchingId?: string; role?: string } = {}) {
  const prefix = opts.prefix ?? '/gsma/rsp2/es11';
  const euiccChallenge = randomBytes(16);
  const ski = c.eum.aki!;
  const init = await w.http.request<Record<string, any>>('POST', `${prefix}/initiateAuthentication`, {
    smdpAddress: opts.address ?? SMDS,
    euiccChallenge: euiccChallenge.toString('base64'),
    euiccInfo1: encodeEuiccInfo1({ svn: Buffer.from([2, 2, 2]), ciPkIdsForVerification: [ski], ciPkIdsForSigning: [ski] }).toString('base64'),
  });
  if (statusOf(init.json!) !== 'Executed-Success') return { init: statusOf(init.json!), message: init.json!.header.functionExecutionStatus.statusCodeData?.message as string };
  const b = init.json!;
  // What the eUICC checks in AuthenticateServer: CERT.DSauth under its CI, role ds-auth; serverSignature1; its challenge.
  const cert = Certificate.parse(Buffer.from(b.serverCertificate, 'base64'));
  const ci = c.cis.find((x) => x.ski!.equals(ski))!;
  checkIssued(cert, ci, { role: opts.role ?? RSP_ROLE.dsAuth });
  const signed1 = Buffer.from(b.serverSigned1, 'base64');
  const sig1 = decode(Buffer.from(b.serverSignature1, 'base64')).value;
  if (!verifyRaw(cert.publicKey, signed1, sig1)) throw new Error('serverSignature1 does not verify');
  const fields = decode(signed1).children();
  const field = (tag: number) => fields.find((f) => f.tag === tag)!.value;
  if (!field(0x81).equals(euiccChallenge)) throw new Error('euiccChallenge differs');

  const euiccSigned1 = encodeEuiccSigned1({
    transactionId: field(0x80),
    serverAddress: field(0x83).toString('utf8'),
    serverChallenge: field(0x84),
    euiccInfo2: euiccInfo2(c),
    ctxParams1: encodeCtxParams1({ ...(opts.matchingId ? { matchingId: opts.matchingId } : {}), deviceInfo: { tac: Buffer.from('35290611', 'hex'), deviceCapabilities: Buffer.from([0xa1, 0x00]) } }),
  });
  const signature = signRaw(c.key, euiccSigned1);
  if (opts.tamper) signature[5]! ^= 1;
  const asr = encodeAuthenticateServerResponse({ ok: { euiccSigned1, euiccSignature1: signature, euiccCertificate: c.cert.raw, eumCertificate: c.eum.raw } });
  const auth = await w.http.request<Record<string, any>>('POST', `${prefix}/authenticateClient`, { transactionId: b.transactionId, authenticateServerResponse: asr.toString('base64') });
  return { init: 'Executed-Success', tid: b.transactionId as string, auth: statusOf(auth.json!), entries: auth.json!.eventEntries as Array<{ eventId: string; rspServerAddress: string }> | undefined };
}

for (const curve of CURVE_NAMES) {
  t.test(`an order confirmed with smdsAddress is discovered by its eUICC (${curve})`, async (t) => {
    const w = await getWorld();
    const op = await addEs2Operator(w);
    await op.stock(1);
    const eid = newEid();
    const card = issueEuiccCredentials(w.pkiDir, eid, curve as CurveName);
    const d = await ok(op, 'downloadOrder', { profileType: 'default', eid });
    const c = await ok(op, 'confirmOrder', { iccid: d.iccid, smdsAddress: SMDS, releaseFlag: true });
    const want = [{ eventId: c.matchingId, rspServerAddress: w.config.smdpAddress }];

    const r = await discover(w, card);
    t.equal(r.auth, 'Executed-Success');
    t.same(r.entries, want, 'the event: its id and SM-DP+ address');
    t.ok(r.tid!.startsWith('534D4453'), 'an SM-DS transactionId');
    const lp = await discover(w, card, { prefix: '/gsma/rsp2/es9plus' });
    t.same(lp.entries, want, 'the same on the ES9+ paths (lpac)');
    t.same((await discover(w, card, { matchingId: c.matchingId })).entries, want, 'asked for that event');
    t.same((await discover(w, card, { matchingId: 'OTHER' })).entries, [], 'asked for another event');

    const other = issueEuiccCredentials(w.pkiDir, newEid(), curve as CurveName);
    t.same((await discover(w, other)).entries, [], 'another EID sees nothing');
    t.equal((await discover(w, card, { tamper: true })).auth, 'Failed 8.1/6.1', 'bad euiccSignature1');

    await ok(op, 'cancelOrder', { iccid: d.iccid, finalProfileStatusIndicator: 'Available' });
    await until(async () => ((await discover(w, card)).entries ?? ['x']).length === 0);
    t.pass('the cancelled order\'s event is gone');
  });
}

t.test('ES11 refusals', async (t) => {
  const w = await getWorld();
  const card = issueEuiccCredentials(w.pkiDir, newEid(), 'P-256');
  t.equal((await discover(w, card, { address: 'elsewhere.example' })).init, 'Failed 8.8.1/3.8', 'another address');
  const r = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es11/authenticateClient', { transactionId: '534D4453000000000000000000000000', authenticateServerResponse: 'vzgA' });
  t.equal(statusOf(r.json!), 'Failed 1.3.1/2.1', 'undecodable response');
  const r2 = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es11/authenticateClient', { transactionId: '534D4453000000000000000000000000', authenticateServerResponse: encodeAuthenticateServerResponse({ error: { code: 127 } }).toString('base64') });
  t.equal(statusOf(r2.json!), 'Failed 8.10.1/3.9', 'unknown session');
  const r3 = await w.http.request<Record<string, any>>('POST', '/gsma/rsp2/es11/initiateAuthentication', { smdpAddress: SMDS });
  t.equal(statusOf(r3.json!), 'Failed 1.3.1/2.2', 'missing fields');
  // The SM-DP+'s own ES9+ initiateAuthentication on the same paths is untouched.
  const sd = await discover(w, card, { prefix: '/gsma/rsp2/es9plus', address: w.config.smdpAddress, role: RSP_ROLE.dpAuth });
  t.equal(sd.init, 'Executed-Success', 'signed with CERT.DPauth');
  t.equal(sd.auth, 'Failed 8.1.1/3.8', 'the SM-DP+ answered (no order for this EID)');
});

t.test('a certs folder without CERT.DSauth: the SM-DP+ works, ES11 says what is missing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-nods-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await generatePki(dir, { hostname: 'localhost' });
  for (const c of CURVE_NAMES) { unlinkSync(join(dir, certPath('dsAuth', c))); unlinkSync(join(dir, keyPath('dsAuth', c))); }
  const w = await startWorld(t, { pkiDir: dir, config: { smdsAddress: SMDS } });
  const card = issueEuiccCredentials(dir, newEid(), 'P-256');
  const r = await discover(w, card);
  t.equal(r.init, 'Failed 8.8.4/3.7', 'no SM-DS certificate');
  t.match(r.message, /no CERT\.DSauth/);
  const order = await w.order({ eid: card.eid });
  t.ok(order.iccid, 'orders still work');
});
