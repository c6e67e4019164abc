/**
 * The published test data some tests use, found in one place: the folder `shared/` beside the
 * project (`../shared` from the repository root; `SHARED_DATA_DIR` overrides it). Nothing in it is
 * needed: a test that needs a set asks `needs(set)` for its tap `skip` option, which is `false` when
 * the set is there and otherwise a message naming what is missing, where it was looked for and where
 * to get it. The first skip of a process also prints that message on stderr, so a run on a fresh
 * clone says what it did not test.
 *
 * Everything that can run without these sets runs on the project's own generated PKI
 * (`testPkiDir()` in world.ts) and the template built by src/saip.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The folder holding the sets (`../shared`, or SHARED_DATA_DIR). */
export const sharedDir = resolve(repoRoot, process.env.SHARED_DATA_DIR ?? '../shared');

export interface SharedSet {
  /** Sub-folder of sharedDir. */
  readonly name: string;
  /** Absolute path of the set. */
  readonly dir: string;
  /** The file (relative to dir) whose presence means the set is there. */
  readonly marker: string;
  /** What the set is and where a user gets it. */
  readonly about: string;
  readonly present: boolean;
  /** tap skip option: false when present, else the message. */
  readonly skip: false | string;
}

function set(name: string, marker: string, about: string): SharedSet {
  const dir = join(sharedDir, name);
  const present = existsSync(join(dir, marker));
  return { name, dir, marker, about, present, skip: present ? false : `${about} not found at ${dir} (no ${marker}); to run these tests, put there ${where[name]}` };
}

const where: Record<string, string> = {
  sgp26: 'the GSMA SGP.26 test certificates and keys, published with SGP.26 (RSP Test Certificate Definition), in their SGP.26 folder layout',
  upp: 'the GSMA TS.48 Generic eUICC Test Profiles (.der), from github.com/GSMATerminals/Generic-eUICC-Test-Profile-for-Device-Testing-Public',
  interop: 'lpac wire captures (JSON lines): record them with lpac downloading a TS.48 profile from a reference SM-DP+ through a software eUICC',
};

/** GSMA SGP.26 test PKI (CI, DPauth, DPpb, DPtls, EUM, eUICC). */
export const SGP26 = set('sgp26', 'CertificateIssuer', 'SGP.26 test PKI');
/** GSMA TS.48 test profiles as Unprotected Profile Packages. */
export const TS48 = set('upp', 'ts48-v7-saip2.3-nobertlv.der', 'TS.48 test profiles');
/** lpac's ES9+ and ES10 wire captures. */
export const INTEROP = set('interop', 'es10-apdus-lpac-to-euicc.jsonl', 'lpac interop captures');

const told = new Set<string>();

/** The tap `skip` option for a test that needs these sets; the first skip per set is printed on stderr. */
export function needs(...sets: SharedSet[]): false | string {
  const missing = sets.filter((s) => !s.present);
  if (!missing.length) return false;
  for (const s of missing) {
    if (told.has(s.name)) continue;
    told.add(s.name);
    process.stderr.write(`# skipped (needs ${s.name}): ${s.skip}\n`);
  }
  return missing.map((s) => s.skip).join('; ');
}
