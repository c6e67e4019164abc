/**
 * The lpac wire captures in ../shared/interop, read for tests: the stdio APDU log (with each ES10
 * command and answer reassembled from its STORE DATA / GET RESPONSE APDUs, independently of
 * src/sim/apdu.ts) and the ES9+ HTTP exchanges.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { INTEROP, needs } from './shared-data.js';

export const interopDir = INTEROP.dir;
export const capturesPresent = INTEROP.present;
/** tap `skip` option of a test that replays the captures (see shared-data.ts). */
export const SKIP_CAPTURES = needs(INTEROP);

export interface StdioLine {
  func: string;
  c: string | null;
  r: { ecode: number; data?: string };
}

export interface Es10Exchange {
  command: Buffer;
  response: Buffer;
  /** The APDUs that carried it (command hex, answer hex incl. SW). */
  apdus: Array<{ c: string; r: string }>;
}

export interface Es9Exchange {
  url: string;
  fn: string;
  req_headers: string[];
  req: string;
  status: number;
  resp: string;
}

function jsonl<T>(name: string): T[] {
  return readFileSync(resolve(interopDir, name), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

export function stdioLines(): StdioLine[] {
  return jsonl<StdioLine>('es10-apdus-lpac-to-euicc.jsonl');
}

/** Sessions (connect … disconnect) of ES10 exchanges, reassembled. */
export function es10Sessions(): Es10Exchange[][] {
  const sessions: Es10Exchange[][] = [];
  let cur: Es10Exchange[] = [];
  let cmd: Buffer[] = [];
  let resp: Buffer[] = [];
  let apdus: Array<{ c: string; r: string }> = [];
  for (const l of stdioLines()) {
    if (l.func === 'connect') cur = [];
    if (l.func === 'disconnect') sessions.push(cur);
    if (l.func !== 'transmit') continue;
    const c = Buffer.from(l.c!, 'hex');
    const r = Buffer.from(l.r.data!, 'hex');
    apdus.push({ c: l.c!, r: l.r.data! });
    const sw1 = r[r.length - 2]!;
    if (c[1] === 0xe2) {
      const lc = c[4]!;
      cmd.push(c.subarray(5, 5 + lc));
      if ((c[2]! & 0x80) === 0) continue; // more blocks follow
    }
    resp.push(r.subarray(0, r.length - 2));
    if (sw1 === 0x61) continue;
    cur.push({ command: Buffer.concat(cmd), response: Buffer.concat(resp), apdus });
    cmd = [];
    resp = [];
    apdus = [];
  }
  return sessions;
}

export function es9Exchanges(file: 'es9plus-lpac-to-reference-smdp.jsonl' | 'es9plus-lpac-cancel-session.jsonl'): Es9Exchange[] {
  return jsonl<Omit<Es9Exchange, 'fn'>>(file).map((e) => ({ ...e, fn: e.url.split('/').pop()! }));
}

/** The activation code of the captured download (matchingId as seen in ctxParams1). */
export const CAPTURE_AC = 'LPA:1$testsmdpplus1.example.com$TS48V1-A-UNIQUE';
