/**
 * What the simulator's commands share on the command line (`mock-smdp sim …` in cli.ts and
 * `mock-smdp sim companion` in companion.ts): the options for the card, the server and the output,
 * the usage error (exit 2), and the EID of a new card.
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Certificate } from '../crypto/x509.js';
import { CURVE_NAMES, certPath } from '../pki/layout.js';
import { eidWithCheckDigits } from '../rsp/identifiers.js';

/** The card's credentials: an eUICC folder, or the server's PKI to issue a new card from. */
export const CARD_OPTIONS = {
  'euicc-dir': { type: 'string' },
  certs: { type: 'string' },
  eid: { type: 'string' },
  new: { type: 'boolean' },
} as const;

/** Where the server is and whom to trust for its TLS certificate. */
export const SERVER_OPTIONS = {
  url: { type: 'string' },
  insecure: { type: 'boolean' },
  ca: { type: 'string', multiple: true },
} as const;

export const OUTPUT_OPTIONS = {
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A command line the simulator cannot run: its message on stderr, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A random EID under the first EIN the PKI folder's EUM may issue (89049032 without one). */
export function randomEid(certsDir: string): string {
  let ein = '89049032';
  for (const curve of CURVE_NAMES) {
    const f = join(certsDir, certPath('eum', curve));
    if (!existsSync(f)) continue;
    const p = Certificate.parse(readFileSync(f)).permittedEins[0];
    if (p && /^\d{1,29}$/.test(p)) ein = p;
    break;
  }
  let digits = ein;
  while (digits.length < 30) digits += String(randomInt(10));
  return eidWithCheckDigits(digits);
}
