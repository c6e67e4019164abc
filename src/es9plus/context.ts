import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import type { ServerPki } from '../pki/load.js';
import type { Snapshots } from './snapshots.js';
import type { TransactionIds } from './transaction-ids.js';

/** What every ES9+ function needs; nothing here is per-session state (that lives in the database). */
export interface Es9Deps {
  db: Database;
  pki: ServerPki;
  config: Config;
  log: FastifyBaseLogger;
  /** Set by the route once fault injections were matched against this call (src/es9plus/faults.ts). */
  faultsChecked?: boolean;
  /** What this process wrote at each session's last step (src/es9plus/snapshots.ts); none: every step reads. */
  snapshots?: Snapshots;
  /** The transactionIds that open sessions without a write (src/es9plus/transaction-ids.ts). */
  tids: TransactionIds;
}

/**
 * The ES9+ functions' transactions look rows up by their keys only: their plans may be made once per
 * connection (src/db/db.ts TxOptions.keyLookups).
 */
export const KEY_LOOKUPS = { keyLookups: true } as const;
