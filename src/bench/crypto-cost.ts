#!/usr/bin/env node
/**
 * The crypto-only cost of one download on the server: exactly the cryptographic operations the
 * SM-DP+ performs for one complete download (src/es9plus), with the same src/crypto functions, the
 * same curve and a profile package of the size the bench actually received, and nothing else (no
 * HTTP, JSON, ASN.1 encoding, profile generation or database). The bench runs it in a process of its
 * own (`node dist/src/bench/crypto-cost.js --json …`) right after its timed run, and divides the
 * server's measured CPU per download by it.
 *
 * Run alone: node dist/src/bench/crypto-cost.js [--curve P-256|brainpoolP256r1] [--upp-bytes N]
 *            [--metadata-bytes N] [--iterations N] [--warmup N] [--pki DIR] [--json]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CurveName } from '../crypto/curves.js';
import { signRaw, verifyRaw } from '../crypto/ecdsa.js';
import { eckaWithFreshKey, generateOtKeyPair } from '../crypto/ecka.js';
import { deriveSessionKeys } from '../crypto/kdf.js';
import { chunk, MAX_ENCRYPTED_PLAINTEXT, MAX_MAC_ONLY_PLAINTEXT, Scp03tWriter } from '../crypto/scp03t.js';
import { checkIssued, RSP_ROLE, type Certificate } from '../crypto/x509.js';
import { tlv } from '../der/tlv.js';
import { generatePki, sampleEid } from '../pki/generate.js';
import { certPath, CURVE_NAMES, keyPath } from '../pki/layout.js';
import { issueEuiccCredentials, loadServerPki, type DpCredentials } from '../pki/load.js';
import { encodeServerSigned1 } from '../rsp/authentication.js';
import { smdpSignInput } from '../rsp/bpp.js';
import { encodeSmdpSigned2 } from '../rsp/download.js';

/**
 * Lengths of the signed eUICC data objects in a download by our simulator (measured once; the
 * hash over them is a negligible part of a signature check): EUICCSigned1 (with euiccInfo2 and
 * ctxParams1), EUICCSigned2 (with euiccOtpk) and the PIR's ProfileInstallationResultData.
 */
const EUICC_SIGNED1_BYTES = 240;
const EUICC_SIGNED2_BYTES = 88;
const PIR_DATA_BYTES = 98;
/** The bench's default orders: a generated profile package and its StoreMetadataRequest. */
export const DEFAULT_UPP_BYTES = 621;
export const DEFAULT_METADATA_BYTES = 124;

/** Everything the operations work on, made once (the eUICC's signatures included: not server work). */
export interface CryptoFixture {
  curve: CurveName;
  dp: DpCredentials;
  ci: Certificate;
  eum: Certificate;
  euiccCert: Certificate;
  eid: string;
  serverSigned1: Buffer;
  euiccSigned1: Buffer;
  euiccSignature1: Buffer;
  euiccSignature1Do: Buffer;
  smdpSigned2: Buffer;
  euiccSigned2: Buffer;
  smdpSignature2Do: Buffer;
  euiccSignature2: Buffer;
  euiccOtpk: Buffer;
  transactionId: Buffer;
  pirData: Buffer;
  pirSignature: Buffer;
  metadata: Buffer;
  upp: Buffer;
}

/** Names of the timed steps, in order (a breakdown pass reports each). */
export const CRYPTO_STEPS = [
  'sign serverSigned1 (DPauth)',
  'verify EUM certificate (CI)',
  'verify eUICC certificate (EUM)',
  'verify euiccSignature1',
  'sign smdpSigned2 (DPpb)',
  'verify euiccSignature2',
  'one-time key pair + ECKA (ECDH)',
  'KDF (session keys)',
  'sign smdpSign (DPpb)',
  'SCP03t: 87 ConfigureISDP',
  'SCP03t: 88 metadata (MAC)',
  'SCP03t: 86 profile (enc+MAC)',
  'verify PIR signature',
] as const;
export type CryptoStep = (typeof CRYPTO_STEPS)[number];
/** Steps the server skips for an eUICC it has seen: src/es9plus/certificates.ts caches verified chains. */
export const CHAIN_STEPS: readonly CryptoStep[] = ['verify EUM certificate (CI)', 'verify eUICC certificate (EUM)'];

const NO_LAP = (_step: CryptoStep) => {};

/**
 * The server-side cryptography of one complete download, as src/es9plus does it:
 *
 *  ES9+.InitiateAuthentication (SGP.22 §5.6.1)
 *   1. sign serverSigned1 with SK.DPauth (ECDSA, signRaw)
 *  ES9+.AuthenticateClient (§5.6.3)
 *   2. verify CERT.EUM against CERT.CI and 3. CERT.EUICC against CERT.EUM (checkIssued: ECDSA
 *      verification of each certificate's signature, plus the issuer/role/validity checks)
 *   4. verify euiccSignature1 over euiccSigned1 (verifyRaw)
 *   5. sign smdpSigned2 ‖ euiccSignature1 DO with SK.DPpb (signRaw)
 *  ES9+.GetBoundProfilePackage (§5.6.2; bindProfilePackage)
 *   6. verify euiccSignature2 over euiccSigned2 ‖ smdpSignature2 DO (verifyRaw)
 *   7. generate the one-time key pair and ECKA with euiccOtpk (eckaWithFreshKey)
 *   8. X9.63 KDF to S-ENC, S-MAC, MCV (deriveSessionKeys), with a random hostId
 *   9. sign smdpSign over the InitialiseSecureChannel data with SK.DPpb (signRaw)
 *  10. SCP03t-protect the 87 ConfigureISDP segment, 11. the 88 metadata segments (C-MAC) and
 *      12. the 86 profile package segments (AES-CBC + C-MAC), chunked as the server chunks them
 *  ES9+.HandleNotification (§5.6.4)
 *  13. verify the PIR's euiccSignature (verifyRaw)
 *
 * Not included: making the transactionId and serverChallenge of step 1 and checking them in step 2
 * (HMAC-SHA-256 over a few bytes, src/es9plus/transaction-ids.ts, a few µs), the
 * hashCc check (orders without a confirmation code, as the bench's), TLS, and everything that is
 * not cryptography. Note that for an eUICC whose certificates it has already verified, the server
 * skips steps 2-3 (CHAIN_STEPS; parsed and verified certificates are cached by their bytes).
 * Throws if any verification fails, so a broken fixture cannot make it look cheap.
 */
export function serverCryptoOfOneDownload(fx: CryptoFixture, lap: (step: CryptoStep) => void = NO_LAP): void {
  const ok = (v: boolean, what: string) => {
    if (!v) throw new Error(`crypto-only download: ${what} failed`);
  };
  signRaw(fx.dp.auth.key, fx.serverSigned1);
  lap('sign serverSigned1 (DPauth)');

  const at = new Date();
  checkIssued(fx.eum, fx.ci, { at, role: RSP_ROLE.eum });
  lap('verify EUM certificate (CI)');
  checkIssued(fx.euiccCert, fx.eum, { at, role: RSP_ROLE.euicc });
  lap('verify eUICC certificate (EUM)');
  const euiccKey = fx.euiccCert.publicKey;
  ok(verifyRaw(euiccKey, fx.euiccSigned1, fx.euiccSignature1), 'euiccSignature1');
  lap('verify euiccSignature1');
  signRaw(fx.dp.pb.key, Buffer.concat([fx.smdpSigned2, fx.euiccSignature1Do]));
  lap('sign smdpSigned2 (DPpb)');

  ok(verifyRaw(euiccKey, Buffer.concat([fx.euiccSigned2, fx.smdpSignature2Do]), fx.euiccSignature2), 'euiccSignature2');
  lap('verify euiccSignature2');
  const ot = eckaWithFreshKey(fx.curve, fx.euiccOtpk);
  lap('one-time key pair + ECKA (ECDH)');
  const hostId = randomBytes(8);
  const keys = deriveSessionKeys(ot.z, hostId, fx.eid);
  lap('KDF (session keys)');
  signRaw(fx.dp.pb.key, smdpSignInput(fx.transactionId, hostId, ot.publicPoint, fx.euiccOtpk));
  lap('sign smdpSign (DPpb)');
  const w = new Scp03tWriter(keys);
  w.encrypted(0x87, Buffer.from([0xbf, 0x24, 0x00]));
  lap('SCP03t: 87 ConfigureISDP');
  for (const p of chunk(fx.metadata, MAX_MAC_ONLY_PLAINTEXT)) w.macOnly(0x88, p);
  lap('SCP03t: 88 metadata (MAC)');
  for (const p of chunk(fx.upp, MAX_ENCRYPTED_PLAINTEXT)) w.encrypted(0x86, p);
  lap('SCP03t: 86 profile (enc+MAC)');

  ok(verifyRaw(euiccKey, fx.pirData, fx.pirSignature), 'PIR signature');
  lap('verify PIR signature');
}

export interface FixtureOptions {
  curve: CurveName;
  uppBytes?: number;
  metadataBytes?: number;
  /** A PKI folder with DPauth, DPpb and an EUM key for the curve (the server's); default a new one in a temp folder. */
  pkiDir?: string;
  smdpAddress?: string;
}

function hasKeys(dir: string, curve: CurveName): boolean {
  return ['dpAuth', 'dpPb', 'eum'].every((k) => existsSync(join(dir, certPath(k as 'eum', curve))) && existsSync(join(dir, keyPath(k as 'eum', curve))));
}

/** Keys, certificates and the eUICC's signed data for serverCryptoOfOneDownload. */
export async function makeFixture(o: FixtureOptions): Promise<CryptoFixture & { pkiSource: string }> {
  let dir = o.pkiDir;
  let tmp: string | undefined;
  let pkiSource = `the PKI folder ${dir}`;
  if (!dir || !hasKeys(dir, o.curve)) {
    tmp = mkdtempSync(join(tmpdir(), 'mock-smdp-crypto-'));
    dir = tmp;
    await generatePki(dir, { curves: [o.curve] });
    pkiSource = 'a test PKI generated for the measurement';
  }
  try {
    const pki = loadServerPki(dir);
    const dp = pki.credentials.find((c) => c.curve === o.curve);
    if (!dp) throw new Error(`no ${o.curve} DPauth/DPpb credentials in ${dir}`);
    const eid = sampleEid();
    const euicc = issueEuiccCredentials(dir, eid, o.curve);
    const transactionId = randomBytes(16);
    const euiccSign = (data: Buffer) => signRaw(euicc.key, data);
    const euiccSigned1 = randomBytes(EUICC_SIGNED1_BYTES);
    const euiccSignature1 = euiccSign(euiccSigned1);
    const smdpSigned2 = encodeSmdpSigned2({ transactionId, ccRequiredFlag: false });
    const euiccSignature1Do = tlv(0x5f37, euiccSignature1);
    const smdpSignature2Do = tlv(0x5f37, signRaw(dp.pb.key, Buffer.concat([smdpSigned2, euiccSignature1Do])));
    const euiccSigned2 = randomBytes(EUICC_SIGNED2_BYTES);
    const pirData = randomBytes(PIR_DATA_BYTES);
    return {
      curve: o.curve,
      dp,
      ci: dp.ci,
      eum: euicc.eum,
      euiccCert: euicc.cert,
      eid,
      serverSigned1: encodeServerSigned1({ transactionId, euiccChallenge: randomBytes(16), serverAddress: o.smdpAddress ?? 'localhost', serverChallenge: randomBytes(16) }),
      euiccSigned1,
      euiccSignature1,
      euiccSignature1Do,
      smdpSigned2,
      euiccSigned2,
      smdpSignature2Do,
      euiccSignature2: euiccSign(Buffer.concat([euiccSigned2, smdpSignature2Do])),
      euiccOtpk: generateOtKeyPair(o.curve).publicPoint,
      transactionId,
      pirData,
      pirSignature: euiccSign(pirData),
      metadata: randomBytes(o.metadataBytes ?? DEFAULT_METADATA_BYTES),
      upp: randomBytes(o.uppBytes ?? DEFAULT_UPP_BYTES),
      pkiSource,
    };
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

export interface CryptoCost {
  curve: CurveName;
  uppBytes: number;
  metadataBytes: number;
  iterations: number;
  warmup: number;
  pki: string;
  /** CPU time (user + system, this process) per download's crypto, ms. */
  cpuMs: number;
  /** Wall time per download's crypto, ms (≈ cpuMs on an idle core). */
  wallMs: number;
  /** cpuMs without the certificate-chain steps the server caches per eUICC (CHAIN_STEPS). */
  cpuMsWithoutChain: number;
  /** CPU time per step, ms, from a second pass timing each step (its sum is cpuMs plus the timer's own cost). */
  steps: Array<{ step: CryptoStep; ms: number }>;
  node: string;
  pid: number;
}

/** Runs serverCryptoOfOneDownload `warmup` times untimed, then `iterations` times timed, then a per-step pass. */
export async function measureServerCrypto(o: FixtureOptions & { iterations: number; warmup?: number }): Promise<CryptoCost> {
  const fx = await makeFixture(o);
  const warmup = o.warmup ?? Math.min(200, Math.max(10, Math.floor(o.iterations / 5)));
  for (let i = 0; i < warmup; i++) serverCryptoOfOneDownload(fx);

  const c0 = process.cpuUsage();
  const w0 = performance.now();
  for (let i = 0; i < o.iterations; i++) serverCryptoOfOneDownload(fx);
  const wall = performance.now() - w0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000 / o.iterations;
  const wallMs = wall / o.iterations;

  // CPU time per step (user + system of this process, µs), robust to a busy machine unlike wall time.
  const cpuNow = () => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const sums = new Map<CryptoStep, number>(CRYPTO_STEPS.map((s) => [s, 0]));
  const passes = Math.max(1, Math.floor(o.iterations / 2));
  for (let i = 0; i < passes; i++) {
    let t = cpuNow();
    serverCryptoOfOneDownload(fx, (step) => {
      const now = cpuNow();
      sums.set(step, sums.get(step)! + (now - t) / 1000);
      t = now;
    });
  }
  const steps = CRYPTO_STEPS.map((step) => ({ step, ms: sums.get(step)! / passes }));
  const stepTotal = steps.reduce((a, s) => a + s.ms, 0);
  const chainShare = stepTotal > 0 ? steps.filter((s) => CHAIN_STEPS.includes(s.step)).reduce((a, s) => a + s.ms, 0) / stepTotal : 0;
  return {
    curve: o.curve,
    uppBytes: fx.upp.length,
    metadataBytes: fx.metadata.length,
    iterations: o.iterations,
    warmup,
    pki: fx.pkiSource,
    cpuMs,
    wallMs,
    cpuMsWithoutChain: cpuMs * (1 - chainShare),
    steps,
    node: process.version,
    pid: process.pid,
  };
}

// ---------------------------------------------------------------------------------------------
// Run as a program (the bench's separate measuring process)

function nonNegativeInt(v: string | undefined, name: string, fallback: number, min = 0): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}: ${v}`);
  return n;
}

async function cli(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        curve: { type: 'string' },
        'upp-bytes': { type: 'string' },
        'metadata-bytes': { type: 'string' },
        iterations: { type: 'string' },
        warmup: { type: 'string' },
        pki: { type: 'string' },
        'smdp-address': { type: 'string' },
        json: { type: 'boolean' },
      },
    }));
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  try {
    const curve = (values.curve ?? 'P-256') as CurveName;
    if (!CURVE_NAMES.includes(curve)) throw new Error(`--curve must be one of ${CURVE_NAMES.join(', ')}`);
    const r = await measureServerCrypto({
      curve,
      uppBytes: nonNegativeInt(values['upp-bytes'], 'upp-bytes', DEFAULT_UPP_BYTES),
      metadataBytes: nonNegativeInt(values['metadata-bytes'], 'metadata-bytes', DEFAULT_METADATA_BYTES, 1),
      iterations: nonNegativeInt(values.iterations, 'iterations', 2000, 1),
      ...(values.warmup !== undefined ? { warmup: nonNegativeInt(values.warmup, 'warmup', 0) } : {}),
      ...(values.pki ? { pkiDir: values.pki } : {}),
      ...(values['smdp-address'] ? { smdpAddress: values['smdp-address'] } : {}),
    });
    if (values.json) {
      console.log(JSON.stringify(r));
    } else {
      console.log(`crypto-only cost of one download (${r.curve}, profile package ${r.uppBytes} B, metadata ${r.metadataBytes} B, ${r.iterations} iterations):`);
      console.log(`  ${r.cpuMs.toFixed(3)} ms CPU, ${r.wallMs.toFixed(3)} ms wall; ${r.cpuMsWithoutChain.toFixed(3)} ms CPU without the certificate chain`);
      for (const s of r.steps) console.log(`  ${s.step.padEnd(34)}${s.ms.toFixed(3).padStart(8)} ms CPU`);
    }
    return 0;
  } catch (err) {
    console.error((err as Error).message);
    return 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  cli(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
