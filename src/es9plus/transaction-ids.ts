/**
 * Sessions opened without a write (docs/state-machine.md, "Sessions opened without a write"): the
 * transactionId that initiateAuthentication hands out (SGP.22 §5.6.1, 16 bytes) carries what
 * authenticateClient needs of the session's opening, under a tag only the server can make, and the
 * serverChallenge is derived from it. So initiateAuthentication stores nothing, and any instance
 * holding the same key (read from the database, `transactionIdKey`) continues the session.
 *
 *   bytes 0–5    when the session was opened, in milliseconds since 1970 (big-endian)
 *   byte  6      the CI chosen: its place in the sorted list of the CIs this server holds keys for
 *   bytes 7–11   random
 *   bytes 12–15  the tag: HMAC-SHA-256 over bytes 0–11 and the chosen CI's key identifier
 *
 * serverChallenge = the first 16 bytes of HMAC-SHA-256 over the transactionId and the SM-DP+
 * address the server signed, so the challenge is unpredictable without the key and bound to both.
 * What makes a transactionId single-use is the session row authenticateClient writes (its primary
 * key); a session that ends keeps its row until it expires (state 'ended').
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Database } from '../db/db.js';

const KEY_NAME = 'rsp-transaction-ids';

/** The key of the transactionIds: written once by the first instance that needs it, read by all. */
export async function transactionIdKey(db: Database): Promise<Buffer> {
  // One statement: the key inserted now, or (the insert conflicting) the one there before it. An
  // instance inserting at the same moment commits after this statement's snapshot: then neither
  // is seen, and the next try reads the other's.
  for (let i = 0; ; i++) {
    const [row] = await db.query<{ secret: Buffer }>(
      `WITH ins AS (INSERT INTO server_secrets (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING secret)
       SELECT secret FROM ins UNION ALL SELECT secret FROM server_secrets WHERE name = $1`,
      [KEY_NAME, randomBytes(32)],
    );
    if (row) return Buffer.from(row.secret);
    if (i >= 2) throw new Error('the transactionId key could not be read');
  }
}

/** What a transactionId says of its session once its tag is verified. */
export interface OpenedSession {
  ciSki: string;
  openedAt: Date;
  serverChallenge: Buffer;
}

export class TransactionIds {
  private readonly cis: string[];
  #key?: Buffer;
  #loading?: Promise<Buffer>;

  /**
   * `key`: the key, or how to get it (read on first use, so building the app needs no database;
   * a failed read is tried again by the next call). `ciSkis`: the key identifiers (hex) of the
   * CIs this server signs for; at most 256.
   */
  constructor(private readonly key: Buffer | (() => Promise<Buffer>), ciSkis: Iterable<string>) {
    this.cis = [...new Set([...ciSkis].map((s) => s.toUpperCase()))].sort();
    if (this.cis.length > 256) throw new Error('at most 256 CIs');
    if (Buffer.isBuffer(key)) this.#key = key;
  }

  /** A new transactionId for a session opened now with the CI `ciSki`, and its serverChallenge. */
  async issue(ciSki: string, serverAddress: string, now = Date.now()): Promise<{ transactionId: Buffer; serverChallenge: Buffer }> {
    const ci = this.cis.indexOf(ciSki.toUpperCase());
    if (ci < 0) throw new Error(`no CI ${ciSki}`);
    const key = this.#key ?? await this.load();
    const tid = Buffer.alloc(16);
    tid.writeUIntBE(now, 0, 6);
    tid[6] = ci;
    randomBytes(5).copy(tid, 7);
    tag(key, tid.subarray(0, 12), this.cis[ci]!).copy(tid, 12);
    return { transactionId: tid, serverChallenge: challenge(key, tid, serverAddress) };
  }

  /** The session a transactionId opened, or undefined when this server did not issue it. */
  async open(tid: Buffer, serverAddress: string): Promise<OpenedSession | undefined> {
    if (tid.length !== 16) return undefined;
    const ciSki = this.cis[tid[6]!];
    if (ciSki === undefined) return undefined;
    const key = this.#key ?? await this.load();
    if (!timingSafeEqual(tag(key, tid.subarray(0, 12), ciSki), tid.subarray(12))) return undefined;
    return { ciSki, openedAt: new Date(tid.readUIntBE(0, 6)), serverChallenge: challenge(key, tid, serverAddress) };
  }

  /** Reads the key now (at start, so the first session does not wait for it); a failure is left to the next call. */
  warm(): void {
    if (!this.#key) this.load().catch(() => {});
  }

  private load(): Promise<Buffer> {
    const get = this.key as () => Promise<Buffer>;
    return (this.#loading ??= get().then(
      (k) => (this.#key = k),
      (err: unknown) => {
        this.#loading = undefined;
        throw err;
      },
    ));
  }
}

function tag(key: Buffer, head: Buffer, ciSki: string): Buffer {
  return createHmac('sha256', key).update('tid').update(head).update(Buffer.from(ciSki, 'hex')).digest().subarray(0, 4);
}

function challenge(key: Buffer, tid: Buffer, serverAddress: string): Buffer {
  return createHmac('sha256', key).update('challenge').update(tid).update(serverAddress.toLowerCase()).digest().subarray(0, 16);
}
