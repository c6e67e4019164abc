/**
 * The console's live feed (docs/console.md): what changed in the database, pushed to the pages that
 * watch it as Server-Sent Events. One feed per server process, shared by all its watchers.
 *
 * It reads only what the rest of the server writes anyway, by id: the order history
 * (profile_events, one row for every state change, docs/state-machine.md), the outbox (new
 * callbacks, and the delivery state of those still pending), the catcher's requests and the family
 * groups' event and usage logs; and the built-in SM-DS's event records (docs/smds.md), which have no
 * id to follow (ES12 DeleteEvent removes the row): their count and newest creation time, one small
 * aggregate per poll, tell the pages that the records changed. It polls only while at least one page is connected, and not at all
 * otherwise: no trigger and no extra statement on the ES9+ path. Because it reads the database, a
 * page connected to one instance sees what any instance on the same PostgreSQL changed.
 */
import type { ServerResponse } from 'node:http';
import type { Config } from '../config.js';
import type { Database } from '../db/db.js';
import type { ProfileRow } from '../orders/store.js';
import { OUTBOX_COLUMNS, callbackView, orderView, type OutboxViewRow } from './views.js';

/**
 * Ids handed out by a sequence become visible in commit order, not in id order: on PostgreSQL a
 * transaction that took id 41 may commit after the one that took 42. The cursor keeps a missing id
 * open for `gapMs` (a transaction still in flight) before taking it for a rollback.
 */
export class IdCursor {
  /** Every id up to this one has been handled (or given up on). */
  private low: bigint;
  private readonly seen = new Set<bigint>();
  private readonly gaps = new Map<bigint, number>();

  constructor(start: bigint | string | number, private readonly gapMs = 10_000) {
    this.low = BigInt(start);
  }

  /** Fetch rows with id greater than this. */
  get after(): string {
    return this.low.toString();
  }

  /** Takes the ids read (ascending, all > after); returns the ones not handled before. */
  accept(ids: Array<string | number>, now = Date.now()): bigint[] {
    const fresh: bigint[] = [];
    let max = this.low;
    for (const raw of ids) {
      const id = BigInt(raw);
      if (id <= this.low || this.seen.has(id)) continue;
      this.seen.add(id);
      this.gaps.delete(id);
      fresh.push(id);
      if (id > max) max = id;
    }
    for (const id of this.seen) if (id > max) max = id;
    if (max - this.low > 5000n) {
      // Far behind (a burst, or a jump of the sequence): gaps that large are not in-flight transactions.
      this.low = max;
      this.seen.clear();
      this.gaps.clear();
      return fresh;
    }
    for (let id = this.low + 1n; id < max; id++) if (!this.seen.has(id) && !this.gaps.has(id)) this.gaps.set(id, now);
    for (;;) {
      const next = this.low + 1n;
      if (this.seen.delete(next)) this.low = next;
      else if ((this.gaps.get(next) ?? Infinity) <= now - this.gapMs) {
        this.gaps.delete(next);
        this.low = next;
      } else break;
    }
    return fresh;
  }
}

export interface FeedMessage {
  type: 'hello' | 'order' | 'callback' | 'caught' | 'family' | 'smds';
  [k: string]: unknown;
}

interface Watcher {
  res: ServerResponse;
}

const BATCH = 2000;
/** A watcher this far behind (bytes not yet sent) is dropped; its page reconnects and reloads. */
const MAX_BACKLOG = 4 * 1024 * 1024;
/** Pending outbox rows whose delivery state is followed, at most. */
const MAX_WATCHED = 5000;

export interface FeedOptions {
  /** Time between polls while someone watches (ms, default 500). */
  pollMs?: number;
  /** A comment line to keep idle connections open (ms, default 20 000). */
  heartbeatMs?: number;
  log?: { warn(obj: object, msg?: string): void };
}

export class ConsoleFeed {
  private readonly watchers = new Set<Watcher>();
  private starting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private cursors!: { events: IdCursor; outbox: IdCursor; caught: IdCursor; groups: IdCursor; usage: IdCursor };
  /** Pending outbox rows: id → what their delivery state was when last read. */
  private readonly pending = new Map<string, string>();
  private lastBeat = 0;
  /** The SM-DS event records as last read: `count|newest createdAt`. */
  private smdsSig = '';
  /** Polls run so far (tests: none while nobody watches). */
  polls = 0;
  readonly pollMs: number;
  private readonly heartbeatMs: number;

  constructor(private readonly db: Database, private readonly config: Pick<Config, 'smdpAddress'>, private readonly opts: FeedOptions = {}) {
    this.pollMs = opts.pollMs ?? 500;
    this.heartbeatMs = opts.heartbeatMs ?? 20_000;
  }

  get watching(): number {
    return this.watchers.size;
  }

  /** Adds a page's stream; the first one starts the polling. Sends `hello` once the feed follows the database. */
  async add(res: ServerResponse): Promise<() => void> {
    const w: Watcher = { res };
    this.watchers.add(w);
    const remove = () => this.remove(w);
    res.on('close', remove);
    try {
      if (!this.running) await (this.starting ??= this.start().finally(() => (this.starting = undefined)));
    } catch (err) {
      this.opts.log?.warn({ err }, 'console feed could not start');
      res.end();
      remove();
      return remove;
    }
    this.send(w, 'hello', { type: 'hello', pollMs: this.pollMs, pid: process.pid });
    return remove;
  }

  private remove(w: Watcher) {
    if (!this.watchers.delete(w)) return;
    if (!w.res.writableEnded) w.res.end();
    if (this.watchers.size === 0) this.stop();
  }

  /** Ends every stream (the server is closing). */
  closeAll() {
    for (const w of [...this.watchers]) this.remove(w);
    this.stop();
  }

  private stop() {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async start() {
    const [m] = await this.db.query<Record<string, string | number>>(
      `SELECT (SELECT COALESCE(max(id), 0) FROM profile_events) AS events,
              (SELECT COALESCE(max(id), 0) FROM outbox) AS outbox,
              (SELECT COALESCE(max(id), 0) FROM caught_requests) AS caught,
              (SELECT COALESCE(max(id), 0) FROM group_events) AS groups,
              (SELECT COALESCE(max(id), 0) FROM usage_events) AS usage`,
    );
    this.cursors = {
      events: new IdCursor(m!.events!), outbox: new IdCursor(m!.outbox!), caught: new IdCursor(m!.caught!),
      groups: new IdCursor(m!.groups!), usage: new IdCursor(m!.usage!),
    };
    this.smdsSig = (await this.smdsState()).sig;
    this.pending.clear();
    const open = await this.db.query<{ id: string | number; attempts: number; last_error: string | null }>(
      `SELECT id, attempts, last_error FROM outbox WHERE delivered_at IS NULL ORDER BY id LIMIT ${MAX_WATCHED}`,
    );
    for (const r of open) this.pending.set(String(r.id), `${r.attempts}|${r.last_error ?? ''}`);
    if (this.watchers.size === 0) return;
    this.running = true;
    this.lastBeat = Date.now();
    this.schedule();
  }

  private schedule() {
    if (!this.running) return;
    this.timer = setTimeout(() => void this.tick(), this.pollMs);
  }

  private async tick() {
    this.timer = undefined;
    if (!this.running) return;
    this.polls++;
    try {
      for (const m of await this.poll()) this.broadcast(m);
      if (Date.now() - this.lastBeat >= this.heartbeatMs) {
        this.lastBeat = Date.now();
        for (const w of this.watchers) this.write(w, ': keep-alive\n\n');
      }
    } catch (err) {
      this.opts.log?.warn({ err }, 'console feed poll failed');
    }
    this.schedule();
  }

  /** One round: what changed since the last one. */
  async poll(): Promise<FeedMessage[]> {
    const out: FeedMessage[] = [];
    const c = this.cursors;

    // Orders: every history event names its ICCID; the order is sent as it is now, with the events.
    const events = await this.db.query<{ id: string | number; iccid: string; event: string }>(
      `SELECT id, iccid, event FROM profile_events WHERE id > $1 ORDER BY id LIMIT ${BATCH}`, [c.events.after]);
    const freshEvents = new Set(c.events.accept(events.map((e) => e.id)));
    const byIccid = new Map<string, string[]>();
    for (const e of events) if (freshEvents.has(BigInt(e.id))) byIccid.set(e.iccid, [...(byIccid.get(e.iccid) ?? []), e.event]);
    if (byIccid.size) {
      const rows = await this.db.query<ProfileRow & { operator_id: string | null }>('SELECT * FROM profiles WHERE iccid = ANY($1::text[])', [[...byIccid.keys()]]);
      for (const p of rows) out.push({ type: 'order', order: orderView(p, this.config), events: byIccid.get(p.iccid) });
    }

    // Callbacks: new rows, and the pending ones whose delivery state changed.
    const added = await this.db.query<OutboxViewRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE id > $1 ORDER BY id LIMIT ${BATCH}`, [c.outbox.after]);
    const freshOutbox = new Set(c.outbox.accept(added.map((r) => r.id)));
    const changed: OutboxViewRow[] = [];
    const followed = [...this.pending.keys()];
    if (followed.length) {
      const rows = await this.db.query<OutboxViewRow>(`SELECT ${OUTBOX_COLUMNS} FROM outbox WHERE id = ANY($1::bigint[])`, [followed]);
      const found = new Set(rows.map((r) => String(r.id)));
      for (const id of followed) if (!found.has(id)) this.pending.delete(id); // pruned
      for (const r of rows) {
        const id = String(r.id);
        const sig = `${r.attempts}|${r.last_error ?? ''}`;
        if (r.delivered_at) {
          this.pending.delete(id);
          changed.push(r);
        } else if (this.pending.get(id) !== sig) {
          this.pending.set(id, sig);
          changed.push(r);
        }
      }
    }
    for (const r of added) {
      if (!freshOutbox.has(BigInt(r.id))) continue;
      if (!r.delivered_at && this.pending.size < MAX_WATCHED) this.pending.set(String(r.id), `${r.attempts}|${r.last_error ?? ''}`);
      if (!changed.some((x) => String(x.id) === String(r.id))) changed.push(r);
    }
    changed.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)));
    for (const r of changed) out.push({ type: 'callback', callback: callbackView(r) });

    // Requests the catcher received (without their bodies: the page reads those on demand).
    const caught = await this.db.query<{ id: string | number; bin: string; received_at: Date; method: string; path: string; answered: number; size: number }>(
      `SELECT id, bin, received_at, method, path, answered, length(body) AS size FROM caught_requests WHERE id > $1 ORDER BY id LIMIT ${BATCH}`, [c.caught.after]);
    const freshCaught = new Set(c.caught.accept(caught.map((r) => r.id)));
    for (const r of caught) {
      if (!freshCaught.has(BigInt(r.id))) continue;
      out.push({ type: 'caught', request: { id: String(r.id), bin: r.bin, receivedAt: new Date(r.received_at).toISOString(), method: r.method, path: r.path, answered: r.answered, size: Number(r.size) } });
    }

    // Family groups: their event log and their usage.
    const family = new Map<string, { events: string[]; usage: boolean }>();
    const groupEvents = await this.db.query<{ id: string | number; group_id: string; type: string }>(
      `SELECT id, group_id, type FROM group_events WHERE id > $1 ORDER BY id LIMIT ${BATCH}`, [c.groups.after]);
    const freshGroups = new Set(c.groups.accept(groupEvents.map((r) => r.id)));
    for (const r of groupEvents) {
      if (!freshGroups.has(BigInt(r.id))) continue;
      const f = family.get(r.group_id) ?? { events: [], usage: false };
      f.events.push(r.type);
      family.set(r.group_id, f);
    }
    const usage = await this.db.query<{ id: string | number; group_id: string }>(
      `SELECT id, group_id FROM usage_events WHERE id > $1 ORDER BY id LIMIT ${BATCH}`, [c.usage.after]);
    const freshUsage = new Set(c.usage.accept(usage.map((r) => r.id)));
    for (const r of usage) {
      if (!freshUsage.has(BigInt(r.id))) continue;
      const f = family.get(r.group_id) ?? { events: [], usage: false };
      f.usage = true;
      family.set(r.group_id, f);
    }
    for (const [groupId, f] of family) out.push({ type: 'family', groupId, events: f.events, usage: f.usage });

    // The SM-DS's event records: registered (a new newest one) or deleted (fewer), by any SM-DP+.
    const smds = await this.smdsState();
    if (smds.sig !== this.smdsSig) {
      this.smdsSig = smds.sig;
      out.push({ type: 'smds', count: smds.count, newest: smds.newest });
    }
    return out;
  }

  private async smdsState(): Promise<{ sig: string; count: number; newest: string | null }> {
    const [r] = await this.db.query<{ n: string | number; newest: Date | string | null }>('SELECT count(*) AS n, max(created_at) AS newest FROM smds_events');
    const count = Number(r?.n ?? 0);
    const newest = r?.newest ? new Date(r.newest).toISOString() : null;
    return { sig: `${count}|${newest ?? ''}`, count, newest };
  }

  private broadcast(m: FeedMessage) {
    for (const w of this.watchers) this.send(w, m.type, m);
  }

  private send(w: Watcher, event: string, data: unknown) {
    this.write(w, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private write(w: Watcher, chunk: string) {
    if (w.res.writableEnded || w.res.destroyed) return this.remove(w);
    if (w.res.writableLength > MAX_BACKLOG) return this.remove(w);
    w.res.write(chunk);
  }
}
