/**
 * After-commit signals. A committed operation wakes the event hubs: the one in this process directly
 * (an in-process signal, scoped to the DataSource), and those of other instances with a NOTIFY sent
 * after the commit (never inside the user's transaction: PostgreSQL serialises the commits of all
 * notifying transactions on one database-wide lock). NOTIFY is a hint only; the hubs' periodic
 * sweep and reconnect re-read are the safety net, so a lost hint delays an event, never loses it.
 */
import { EventEmitter } from 'node:events';
import type { DataSource } from 'typeorm';

/** The Postgres channel NOTIFY uses to wake event relays (payload: `<userId>:<seq>`, a hint only). */
export const EVENTS_CHANNEL = 'planner_events';

/** Emits `committed(userId: string, lastEventSeq: number)` after each commit on this DataSource. */
export type CommitSignals = EventEmitter;

const signals = new WeakMap<DataSource, EventEmitter>();

/** The in-process commit signals of a DataSource (one emitter per DataSource). */
export function commitSignals(ds: DataSource): CommitSignals {
  let e = signals.get(ds);
  if (!e) {
    e = new EventEmitter();
    e.setMaxListeners(0);
    signals.set(ds, e);
  }
  return e;
}

/**
 * Sends NOTIFY hints after commit, coalesced: while one is in flight, later hints queue and go
 * together in the next statement (one round trip for many commits under load).
 */
export class Notifier {
  private pending: string[] = [];
  private flushing: Promise<void> | null = null;

  constructor(private readonly ds: DataSource) {}

  hint(userId: string, seq: number): void {
    this.pending.push(`${userId}:${seq}`);
    if (!this.flushing) this.flushing = this.drain();
  }

  /** Resolves once every hint given so far has been sent (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        if (!this.ds.isInitialized) return;
        try {
          await this.ds.query('SELECT pg_notify($1, x) FROM unnest($2::text[]) AS x', [
            EVENTS_CHANNEL,
            batch,
          ]);
        } catch {
          // A hint only: the hubs' sweep re-reads what a lost NOTIFY would have announced.
        }
      }
    } finally {
      this.flushing = null;
    }
  }
}
