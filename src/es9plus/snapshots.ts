/**
 * Snapshots (docs/state-machine.md, "Snapshots"): what this process wrote at an RSP session's last
 * step (the session and its profile as they are now in the database, with the profile's new row
 * version), kept so the session's next step, when it reaches the same process, may skip its read
 * and go straight to its guarded write (applyChange with `snapshot`).
 *
 * Nothing here is state another instance needs: a step that finds no snapshot reads the database,
 * as any instance does. A snapshot is trusted only as far as its write's guard verifies it (the
 * session in the state kept, the profile's row version and listener columns unchanged, no fault
 * injection pending); a step that fails on a snapshot for any reason runs again from a fresh read
 * (`fromSnapshot`), so a stale snapshot can cost a retry but never changes an answer.
 */
import { FunctionFailed } from '../errors.js';
import { ChangedMeanwhile } from '../orders/state-machine.js';
import type { SessionRead } from './sessions.js';

/** A session and its profile as last written by this process. */
export type Snapshot = SessionRead & { profile: NonNullable<SessionRead['profile']>; faults_pending: false };

/** What a snapshot holds in bytes, roughly: its buffers (certificate, metadata, template) and a little more. */
function bytesOf(s: Snapshot): number {
  let n = 512;
  for (const row of [s.session, s.profile] as object[]) for (const v of Object.values(row)) if (Buffer.isBuffer(v)) n += v.length;
  return n;
}

export class Snapshots {
  private readonly kept = new Map<string, { snapshot: Snapshot; bytes: number }>();
  private bytes = 0;

  /**
   * At most `max` snapshots and `maxBytes` of them (a profile type's template is kept from
   * authenticateClient to getBoundProfilePackage and may be large), the oldest pushed out first.
   */
  constructor(private readonly max = 1024, private readonly maxBytes = 16 * 1024 * 1024) {}

  /**
   * Keeps what a step wrote, unless a part of it is unknown here: a row version left out (after
   * work wrote the row again) or fault injections pending (every call then reads and matches them).
   */
  keep(read: SessionRead & { profile: NonNullable<SessionRead['profile']> }): void {
    if (!read.profile.row_version || read.faults_pending) return;
    const tid = read.session.transaction_id;
    this.drop(tid);
    const snapshot = { ...read, faults_pending: false } as Snapshot;
    const bytes = bytesOf(snapshot);
    if (bytes > this.maxBytes) return;
    // Oldest first: a session abandoned half-way is pushed out by newer ones.
    while (this.kept.size >= this.max || this.bytes + bytes > this.maxBytes) this.drop(this.kept.keys().next().value!);
    this.kept.set(tid, { snapshot, bytes });
    this.bytes += bytes;
  }

  /** The session's snapshot, removed: each is used once (its step either writes a new one or reads afresh). */
  take(tid: string): Snapshot | undefined {
    const e = this.kept.get(tid);
    if (!e) return undefined;
    this.drop(tid);
    return e.snapshot.session.expires_at > new Date() ? e.snapshot : undefined;
  }

  drop(tid: string): void {
    const e = this.kept.get(tid);
    if (!e) return;
    this.kept.delete(tid);
    this.bytes -= e.bytes;
  }

  /** The bytes the kept snapshots hold (roughly, see bytesOf). */
  get heldBytes(): number {
    return this.bytes;
  }

  get size(): number {
    return this.kept.size;
  }
}

/**
 * Runs a step on a snapshot: a refusal found on it (FunctionFailed) or a guard that no longer
 * holds becomes ChangedMeanwhile, so `optimistically` reruns the step from a fresh read, which
 * gives the answer the database holds.
 */
export async function fromSnapshot<T>(snapshot: Snapshot | undefined, step: () => Promise<T>): Promise<T> {
  if (!snapshot) return step();
  try {
    return await step();
  } catch (err) {
    if (err instanceof FunctionFailed) throw new ChangedMeanwhile(`snapshot refused: ${err.message}`);
    throw err;
  }
}
