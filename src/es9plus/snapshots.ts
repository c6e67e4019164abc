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

export class Snapshots {
  private readonly kept = new Map<string, Snapshot>();

  constructor(private readonly max = 1024) {}

  /**
   * Keeps what a step wrote, unless a part of it is unknown here: a row version left out (after
   * work wrote the row again) or fault injections pending (every call then reads and matches them).
   */
  keep(read: SessionRead & { profile: NonNullable<SessionRead['profile']> }): void {
    if (!read.profile.row_version || read.faults_pending) return;
    const tid = read.session.transaction_id;
    this.kept.delete(tid);
    // Oldest first: a session abandoned half-way is pushed out by newer ones.
    if (this.kept.size >= this.max) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(tid, { ...read, faults_pending: false } as Snapshot);
  }

  /** The session's snapshot, removed: each is used once (its step either writes a new one or reads afresh). */
  take(tid: string): Snapshot | undefined {
    const s = this.kept.get(tid);
    if (!s) return undefined;
    this.kept.delete(tid);
    return s.session.expires_at > new Date() ? s : undefined;
  }

  drop(tid: string): void {
    this.kept.delete(tid);
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
