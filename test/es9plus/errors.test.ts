/**
 * Refused orders, refused eUICCs and malformed requests: each gives its documented status
 * (docs/protocol.md#es9-functions) with HTTP 200 and leaves no trace in state; no request on an ES9+
 * path is ever answered with HTTP 500.
 */
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePki } from '../../src/pki/generate.js';
import { eidWithCheckDigits } from '../../src/rsp/identifiers.js';
import { issueEuiccCredentials, loadEuiccCredentials, type EuiccCredentials } from '../../src/pki/load.js';
import { decodeEuiccInfo1, encodeEuiccInfo1 } from '../../src/rsp/euiccinfo.js';
import { Lpa } from '../../src/sim/lpa.js';
import { SGP26 } from '../helpers/shared-data.js';
import { startWorld } from '../helpers/world.js';
import {
  device,
  ES9,
  ES9_FUNCTIONS,
  failedWith,
  fromB64,
  lpaFailed,
  rawPost,
  resignEuiccSigned1,
  retouchAsr,
  snapshot,
  succeeded,
  toB64,
  untouched,
  type Asserts,
  type Body,
  type Es9Function,
  type Exchange,
} from '../helpers/wire.js';

const w = await startWorld(t);
const sessions = async () => Number((await w.db.query<{ n: string | number }>('SELECT count(*) AS n FROM rsp_sessions'))[0]!.n);

/** initiateAuthentication refused: no profile change and no RSP session opened. */
async function refusedInitiate(t: Asserts, hook: (b: Body) => Body, sc: string, rc: string) {
  const { lpa, wire } = await device(w, { request: { initiateAuthentication: hook } });
  const order = await w.order();
  const n = await sessions();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'initiateAuthentication', sc, rc);
  failedWith(t, wire.tampered, sc, rc);
  untouched(t, wire.tampered);
  t.equal(await sessions(), n, 'no RSP session opened');
  t.same(wire.exchanges.map((e) => e.fn), ['initiateAuthentication']);
}

t.test('wrong smdpAddress → 8.8.1/3.8', (t) => refusedInitiate(t, (b) => ({ ...b, smdpAddress: 'smdp.example.org' }), '8.8.1', '3.8'));

t.test('smdpAddress in other letter case is this SM-DP+', async (t) => {
  const { lpa, wire } = await device(w, { request: { initiateAuthentication: (b) => ({ ...b, smdpAddress: b.smdpAddress!.toUpperCase() }) } });
  const order = await w.order();
  await lpa.download(order.activationCode);
  succeeded(t, wire.tampered);
});

t.test('euiccInfo1 naming only an unknown CI for signing → 8.8.2/3.1', (t) =>
  refusedInitiate(t, (b) => {
    const info = decodeEuiccInfo1(fromB64(b.euiccInfo1!));
    return { ...b, euiccInfo1: toB64(encodeEuiccInfo1({ svn: info.svn, ciPkIdsForVerification: info.ciPkIdsForVerification, ciPkIdsForSigning: [randomBytes(20)] })) };
  }, '8.8.2', '3.1'));

t.test('euiccInfo1 trusting no CI of this SM-DP+ for verification → 8.8.4/3.7', (t) =>
  refusedInitiate(t, (b) => {
    const info = decodeEuiccInfo1(fromB64(b.euiccInfo1!));
    return { ...b, euiccInfo1: toB64(encodeEuiccInfo1({ svn: info.svn, ciPkIdsForVerification: [randomBytes(20)], ciPkIdsForSigning: info.ciPkIdsForSigning })) };
  }, '8.8.4', '3.7'));

t.test('euiccChallenge of 8 bytes → 1.3.1/2.1', (t) => refusedInitiate(t, (b) => ({ ...b, euiccChallenge: toB64(randomBytes(8)) }), '1.3.1', '2.1'));

t.test('unknown MatchingID → 8.2.6/3.8', async (t) => {
  const { lpa, wire } = await device(w, { request: { authenticateClient: (b) => b } });
  const order = await w.order();
  const err = await lpa.download(`LPA:1$${w.config.smdpAddress}$NO-SUCH-ORDER-42`).catch((e) => e);
  lpaFailed(t, err, 'authenticateClient', '8.2.6', '3.8');
  failedWith(t, wire.tampered, '8.2.6', '3.8');
  untouched(t, wire.tampered);
  t.equal((await w.profile(order.iccid))!.state, 'Released');
});

t.test('order bound to another EID → 8.1.1/3.8', async (t) => {
  const { lpa, wire, card } = await device(w, { request: { authenticateClient: (b) => b } });
  const other = eidWithCheckDigits('890490320000000000000000000999');
  t.not(other, card.eid);
  const order = await w.order({ eid: other });
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.1.1', '3.8');
  failedWith(t, wire.tampered, '8.1.1', '3.8');
  untouched(t, wire.tampered);
  t.same([(await w.profile(order.iccid))!.eid, (await w.profile(order.iccid))!.download_attempts], [other, 0]);
});

t.test('expired order → 8.8.5/4.10', async (t) => {
  const { lpa, wire } = await device(w, { request: { authenticateClient: (b) => b } });
  const order = await w.order({ expiresIn: 3600 });
  await w.db.query(`UPDATE profiles SET expires_at = now() - interval '1 minute' WHERE iccid = $1`, [order.iccid]);
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.8.5', '4.10');
  failedWith(t, wire.tampered, '8.8.5', '4.10');
  untouched(t, wire.tampered);
});

t.test('download attempt limit → 8.8.5/6.4', async (t) => {
  const order = await w.order({ maxDownloadAttempts: 2 });
  const { lpa, card } = await device(w);
  for (let i = 1; i <= 2; i++) {
    const err = await lpa.download(order.activationCode, { onMetadata: () => false }).catch((e) => e);
    t.equal(err.code, 'cancelled', `attempt ${i} refused by the user`);
    t.equal(err.cancel?.es9, 'Executed-Success');
  }
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.download_attempts], ['Released', 2]);
  const d = await device(w, { request: { authenticateClient: (b) => b } });
  // Same eUICC (the order is bound to it now), through a watched wire.
  const lpa3 = new Lpa(card, { http: d.wire.http });
  lpaFailed(t, await lpa3.download(order.activationCode).catch((e) => e), 'authenticateClient', '8.8.5', '6.4');
  failedWith(t, d.wire.tampered, '8.8.5', '6.4');
  untouched(t, d.wire.tampered);
});

// ---------------------------------------------------------------------------------------------
// eUICC certificates from elsewhere

const sgp26 = SGP26.dir;

/** eUICC credentials under a CI this server does not use: SGP.26's if present beside the project, else a second generated PKI. */
async function foreignCredentials(): Promise<{ creds: EuiccCredentials; from: string }> {
  if (SGP26.present) return { creds: loadEuiccCredentials(sgp26, { curve: 'P-256' }), from: 'the SGP.26 test EUM' };
  const dir = mkdtempSync(join(tmpdir(), 'mock-smdp-other-pki-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const g = await generatePki(dir, { curves: ['P-256'] });
  return { creds: issueEuiccCredentials(dir, g.eid, 'P-256'), from: 'a second generated PKI' };
}

/** authenticateClient carrying another eUICC's certificates, euiccSigned1 correctly signed with that eUICC's key. */
async function foreignEuicc(t: Asserts, creds: EuiccCredentials, sc: string, rc: string) {
  const { lpa, wire } = await device(w, {
    request: {
      authenticateClient: (b) => ({
        ...b,
        authenticateServerResponse: retouchAsr(b.authenticateServerResponse!, (ok) => ({
          ...resignEuiccSigned1(ok, creds.key, {}),
          euiccCertificate: creds.cert.raw,
          eumCertificate: creds.eum.raw,
        })),
      }),
    },
  });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', sc, rc);
  failedWith(t, wire.tampered, sc, rc);
  untouched(t, wire.tampered);
}

t.test('EUM certificate from another CI → 8.11.1/3.9', async (t) => {
  const { creds, from } = await foreignCredentials();
  t.comment(`foreign eUICC from ${from}`);
  t.notOk(w.pki.cis.some((ci) => ci.ski?.equals(creds.eum.aki!)), 'the server does not know that CI');
  await foreignEuicc(t, creds, '8.11.1', '3.9');
});

t.test('EUM certificate from a known CI, but not the one chosen for the session → 8.11.1/3.9', async (t) => {
  const bp = issueEuiccCredentials(w.pkiDir, eidWithCheckDigits('890490320000000000000000000555'), 'brainpoolP256r1');
  t.ok(w.pki.cis.some((ci) => ci.ski?.equals(bp.eum.aki!)), 'the server knows the brainpool CI');
  await foreignEuicc(t, bp, '8.11.1', '3.9');
});

// ---------------------------------------------------------------------------------------------
// Malformed requests

t.test('authenticateServerResponse cut in the middle → 1.3.1/2.1', async (t) => {
  const { lpa, wire } = await device(w, {
    request: { authenticateClient: (b) => { const der = fromB64(b.authenticateServerResponse!); return { ...b, authenticateServerResponse: toB64(der.subarray(0, der.length >> 1)) }; } },
  });
  const order = await w.order();
  lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'authenticateClient', '1.3.1', '2.1');
  failedWith(t, wire.tampered, '1.3.1', '2.1');
  untouched(t, wire.tampered);
});

for (const [what, mangle] of [
  ['a character outside the alphabet', (s: string) => `${s.slice(0, 10)}*${s.slice(11)}`],
  ['missing padding', (s: string) => s.replace(/=+$/, '').slice(0, -1)],
  ['URL-safe alphabet', (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/^(.)/, '-')],
] as const) {
  t.test(`bad base64 (${what}) → 1.3.1/2.1`, async (t) => {
    const { lpa, wire } = await device(w, { request: { getBoundProfilePackage: (b) => ({ ...b, prepareDownloadResponse: mangle(b.prepareDownloadResponse!) }) } });
    const order = await w.order();
    lpaFailed(t, await lpa.download(order.activationCode).catch((e) => e), 'getBoundProfilePackage', '1.3.1', '2.1');
    failedWith(t, wire.tampered, '1.3.1', '2.1');
    untouched(t, wire.tampered);
  });
}

t.test('missing field → 1.3.1/2.2', async (t) => {
  for (const [fn, field] of [['initiateAuthentication', 'euiccInfo1'], ['authenticateClient', 'authenticateServerResponse'], ['getBoundProfilePackage', 'prepareDownloadResponse'], ['cancelSession', 'cancelSessionResponse']] as const) {
    const { lpa, wire } = await device(w, {
      request: { [fn]: (b: Body) => Object.fromEntries(Object.entries(b).filter(([k]) => k !== field)) },
      ...(fn === 'cancelSession' ? { response: { getBoundProfilePackage: () => { throw new Error('lost'); } } } : {}),
    });
    const order = await w.order();
    const err = await lpa.download(order.activationCode).catch((e) => e);
    if (fn === 'cancelSession') t.equal(err.cancel?.es9, 'Failed 1.3.1/2.2', 'cancelSession: 1.3.1/2.2');
    else lpaFailed(t, err, fn, '1.3.1', '2.2');
    failedWith(t, wire.tampered, '1.3.1', '2.2');
    untouched(t, wire.tampered);
  }
});

/** A raw request with state snapshots around it. */
async function raw(fn: string, body: Buffer | string, headers: Record<string, string>): Promise<Exchange> {
  const before = await snapshot(w.db);
  const r = await rawPost(w.url, `${ES9}/${fn}`, body, headers);
  const after = await snapshot(w.db);
  return { fn, original: body, sent: body, tampered: true, status: r.status, text: r.text, json: r.json, before, after };
}

const JSON_CT = { 'content-type': 'application/json' };

t.test('malformed JSON body → HTTP 200 with 1.3.1/2.1 (handleNotification: 204)', async (t) => {
  for (const fn of ES9_FUNCTIONS) {
    const ex = await raw(fn, '{"transactionId": "0011", "authenticateServerResponse": "vzg', JSON_CT);
    if (fn === 'handleNotification') {
      t.equal(ex.status, 204, `${fn}: 204`);
      t.equal(ex.text, '', `${fn}: empty body`);
      t.same(ex.after, ex.before, `${fn}: no trace`);
    } else {
      failedWith(t, ex, '1.3.1', '2.1');
      untouched(t, ex);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Never a 500

interface Variant {
  name: string;
  body: (fn: Es9Function) => string | Buffer | undefined;
  headers?: Record<string, string>;
  /**
   * Expected function-level status; 'refused': some function-level refusal (the format is fine, the
   * content is not); a number: the HTTP status where no function answer is possible.
   */
  expect: [string, string] | 'refused' | number;
}

/** A plausible body for each function, with `over` replacing fields. */
function bodyFor(fn: Es9Function, over: Record<string, unknown> = {}): string {
  const base: Record<Es9Function, Record<string, unknown>> = {
    initiateAuthentication: { euiccChallenge: toB64(randomBytes(16)), euiccInfo1: 'vyAA', smdpAddress: w.config.smdpAddress },
    authenticateClient: { transactionId: 'A1B2C3D4', authenticateServerResponse: 'vzgA' },
    getBoundProfilePackage: { transactionId: 'A1B2C3D4', prepareDownloadResponse: 'vyEA' },
    handleNotification: { pendingNotification: 'vzcA' },
    cancelSession: { transactionId: 'A1B2C3D4', cancelSessionResponse: 'v0EA' },
  };
  const b: Record<string, unknown> = { ...base[fn] };
  for (const [k, v] of Object.entries(over)) if (k in b || k === '*') b[k === '*' ? Object.keys(b).at(-1)! : k] = v;
  return JSON.stringify(b);
}

const hasTid = (fn: Es9Function) => fn !== 'initiateAuthentication' && fn !== 'handleNotification';

const variants: Variant[] = [
  { name: 'empty body without content-type', body: () => '', headers: {}, expect: ['1.3.1', '2.1'] },
  { name: 'empty JSON body', body: () => '', expect: ['1.3.1', '2.1'] },
  { name: 'JSON null', body: () => 'null', expect: ['1.3.1', '2.1'] },
  { name: 'JSON array', body: () => '[]', expect: ['1.3.1', '2.1'] },
  { name: 'JSON string', body: () => '"transactionId"', expect: ['1.3.1', '2.1'] },
  { name: 'JSON number', body: () => '42', expect: ['1.3.1', '2.1'] },
  { name: 'truncated JSON', body: (fn) => bodyFor(fn).slice(0, -5), expect: ['1.3.1', '2.1'] },
  // Invalid UTF-8 decodes to U+FFFD: a well-formed object without the mandatory fields.
  { name: 'a key that is not UTF-8', body: () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), expect: ['1.3.1', '2.2'] },
  { name: '__proto__ key', body: () => '{"__proto__": {"polluted": true}}', expect: ['1.3.1', '2.1'] },
  { name: 'constructor.prototype key', body: () => '{"constructor": {"prototype": {"polluted": true}}}', expect: ['1.3.1', '2.1'] },
  { name: 'deeply nested extra field', body: (fn) => bodyFor(fn).replace(/^\{/, `{"deep": ${'['.repeat(100_000)}${']'.repeat(100_000)}, `), expect: 'refused' },
  { name: 'fields of the wrong type', body: (fn) => bodyFor(fn, { '*': { nested: [1, 2, 3] } }), expect: ['1.3.1', '2.1'] },
  { name: 'field of 2.1 million characters', body: (fn) => bodyFor(fn, { '*': 'A'.repeat(2_100_000) }), expect: ['1.3.1', '2.1'] },
  { name: 'body of 5 MB', body: (fn) => bodyFor(fn, { '*': 'A'.repeat(5 * 1024 * 1024) }), expect: 413 },
  { name: 'JSON sent as text/plain', body: (fn) => bodyFor(fn), headers: { 'content-type': 'text/plain' }, expect: ['1.3.1', '2.1'] },
  { name: 'JSON sent as application/xml', body: (fn) => bodyFor(fn), headers: { 'content-type': 'application/xml' }, expect: 415 },
  { name: 'unsupported X-Admin-Protocol', body: (fn) => bodyFor(fn), headers: { ...JSON_CT, 'x-admin-protocol': 'gsma/rsp/v9.0.0' }, expect: ['1.3.2', '3.1'] },
  { name: 'non-hex transactionId', body: (fn) => (hasTid(fn) ? bodyFor(fn, { transactionId: 'ZZ00ZZ00' }) : undefined), expect: ['8.10.1', '3.9'] },
  { name: 'odd-length transactionId', body: (fn) => (hasTid(fn) ? bodyFor(fn, { transactionId: 'ABC' }) : undefined), expect: ['8.10.1', '3.9'] },
  { name: '17-byte transactionId', body: (fn) => (hasTid(fn) ? bodyFor(fn, { transactionId: 'AB'.repeat(17) }) : undefined), expect: ['1.3.1', '2.1'] },
  { name: 'numeric transactionId', body: (fn) => (hasTid(fn) ? bodyFor(fn, { transactionId: 12345 }) : undefined), expect: ['8.10.1', '3.9'] },
];

t.test('no request on an ES9+ path is answered with HTTP 500', async (t) => {
  for (const v of variants) {
    for (const fn of ES9_FUNCTIONS) {
      const body = v.body(fn);
      if (body === undefined) continue;
      const ex = await raw(fn, body, v.headers ?? JSON_CT);
      const label = `${fn}, ${v.name}`;
      t.not(ex.status, 500, `${label}: not 500`);
      if (fn === 'handleNotification') {
        // A notification that arrives is logged, whatever it holds; nothing else changes.
        t.same([ex.after!.profiles, ex.after!.events], [ex.before!.profiles, ex.before!.events], `${label}: no trace in profiles and events`);
        t.ok(ex.after!.notifications.slice(ex.before!.notifications.length).every((n) => !n.verified), `${label}: recorded unverified, if at all`);
      } else {
        t.same(ex.after, ex.before, `${label}: no trace in state`);
      }
      if (typeof v.expect === 'number') {
        t.equal(ex.status, v.expect, `${label}: HTTP ${v.expect}`);
      } else if (fn === 'handleNotification') {
        t.equal(ex.status, 204, `${label}: 204`);
      } else if (Array.isArray(v.expect)) {
        failedWith(t, ex, ...v.expect);
      } else {
        // A well-formed call that fails for its content: a function-level answer, not a format error.
        t.equal(ex.status, 200, `${label}: HTTP 200`);
        t.equal(ex.json?.header?.functionExecutionStatus?.status, 'Failed', `${label}: Failed`);
      }
    }
  }
  for (const [method, path, status] of [['POST', `${ES9}/noSuchFunction`, 404], ['GET', `${ES9}/authenticateClient`, 404]] as const) {
    const r = method === 'POST' ? await rawPost(w.url, path, '{}', JSON_CT) : await w.http.get(path);
    t.equal(r.status, status, `${method} ${path}: ${status}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Mutations of a genuine authenticateServerResponse, all against one live session

const ALLOWED = new Set(['1.3.1/2.1', '8.1/6.1', '8.1.2/6.1', '8.1.2/6.3', '8.1.3/6.1', '8.1.3/6.3', '8.10.1/3.9', '8.11.1/3.9']);

t.test('truncated or bit-flipped authenticateServerResponse: a documented refusal every time, the session survives', async (t) => {
  const mutants: Array<{ what: string; der: Buffer }> = [];
  const tried: Exchange[] = [];
  const { lpa } = await device(w, {
    request: {
      authenticateClient: async (b, wire) => {
        const der = fromB64(b.authenticateServerResponse!);
        for (let n = 1; n < der.length; n += Math.max(1, Math.floor(der.length / 40))) mutants.push({ what: `cut to ${n} bytes`, der: der.subarray(0, n) });
        mutants.push({ what: 'one byte short', der: der.subarray(0, -1) }, { what: 'one byte extra', der: Buffer.concat([der, Buffer.from([0])]) });
        for (let i = 0; i < der.length; i += 3) {
          const m = Buffer.from(der);
          m[i] = m[i]! ^ (1 << (i % 8));
          mutants.push({ what: `bit ${i % 8} of byte ${i} flipped`, der: m });
        }
        for (const m of mutants) tried.push(await wire.send('authenticateClient', { ...b, authenticateServerResponse: toB64(m.der) }));
        return b;
      },
    },
  });
  const order = await w.order();
  const r = await lpa.download(order.activationCode);
  t.equal(r.iccid, order.iccid, 'the genuine message, sent last, still completes the download');
  t.ok(mutants.length > 100, `${mutants.length} mutants`);
  const tally: Record<string, number> = {};
  const bad: string[] = [];
  tried.forEach((ex, i) => {
    const fes = ex.json?.header?.functionExecutionStatus;
    const code = `${fes?.statusCodeData?.subjectCode}/${fes?.statusCodeData?.reasonCode}`;
    tally[code] = (tally[code] ?? 0) + 1;
    const ok = ex.status === 200 && fes?.status === 'Failed' && ALLOWED.has(code) && JSON.stringify(ex.after) === JSON.stringify(ex.before);
    if (!ok) bad.push(`${mutants[i]!.what}: HTTP ${ex.status} ${fes?.status} ${code} ${fes?.statusCodeData?.message ?? ''}`);
    if (mutants[i]!.what.startsWith('cut') || mutants[i]!.what.includes('byte short') || mutants[i]!.what.includes('extra')) {
      if (code !== '1.3.1/2.1') bad.push(`${mutants[i]!.what}: ${code}, expected 1.3.1/2.1`);
    }
  });
  t.comment(`outcomes: ${JSON.stringify(tally)}`);
  t.same(bad, [], 'every mutant refused with a documented code and no trace');
  const p = (await w.profile(order.iccid))!;
  t.same([p.state, p.download_attempts], ['Installed', 1], 'only the genuine attempt counted');
});
