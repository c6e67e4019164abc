/**
 * What the simulator's commands share on the command line (`mock-smdp sim …` in cli.ts and
 * `mock-smdp sim companion` in companion.ts): the options for the card, the server and the output,
 * and the usage error (exit 2).
 */

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
