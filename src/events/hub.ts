/**
 * The event hub: turns the transactional outbox into live, per-user streams.
 *
 * - Writers (the WorldUpdater) insert events with a per-user, gap-free `seq` under the user's row
 *   lock and `pg_notify('planner_events', '<userId>:<seq>')` in the same transaction, so a
 *   notification only ever follows a commit, and seq order is commit order for each user.
 * - Every instance LISTENs on one dedicated connection. A notification is only a hint: the hub
 *   reads the events from the outbox (one query per user and wake-up, shared by all of that user's
 *   subscribers on this instance), so the 8,000-byte NOTIFY limit never matters and a missed hint
 *   is repaired by the next one or by the reconnect sweep.
 * - A subscription with `since` first replays stored events after the cursor, then continues live;
 *   events are de-duplicated by seq at the seam, so none is lost and none is sent twice.
 */
import { Client } from 'pg';
import type { DataSource } from 'typeorm';

/** The NOTIFY channel (kept equal to the WorldUpdater's EVENTS_CHANNEL). */
export const EVENTS_CHANNEL = 'planner_events';
const PAGE = 500;

export interface StoredEvent {
  seq: number;
  topic: 'plan' | 'conflict' | 'undo';
  type: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** Thrown when a subscription cannot start or continue; `code` goes to extensions.code. */
export class EventStreamError extends Error {
  constructor(
    readonly code: 'CURSOR_EXPIRED' | 'VALIDATION' | 'SUBSCRIPTION_OVERFLOW',
    message: string,
  ) {
    super(message);
    this.name = 'EventStreamError';
  }
}

export interface SubscribeOptions {
  userId: string;
  /** Replay strictly after this cursor first; null = only what happens from now on. */
  since: string | null;
  /** Only events for which this returns true are delivered (the cursor still advances). */
  filter: (e: StoredEvent) => boolean;
  /** Checked before each delivery; returning false ends the stream (e.g. an expired token). */
  stillAllowed?: () => boolean;
  /** Epoch ms at which the stream ends by itself (the token's expiry). */
  endAt?: number;
}

export interface EventHubOptions {
  /** Events kept for replay, in days (PLANNER_OUTBOX_RETENTION_DAYS). Default 7. */
  retentionDays?: number;
  /** How often the clean-up runs, ms. Default one hour. 0 disables it. */
  cleanupIntervalMs?: number;
  /** Live events buffered per subscription before it is ended as too slow. Default 10,000. */
  maxQueuedPerSubscription?: number;
  /** Clock for the retention cut-off. */
  now?: () => Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Row {
  seq: string;
  topic: StoredEvent['topic'];
  type: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

function toEvent(r: Row): StoredEvent {
  return { seq: Number(r.seq), topic: r.topic, type: r.type, payload: r.payload, createdAt: r.created_at };
}

/** One subscriber's queue: live events are pushed in seq order; the consumer pulls. */
class Subscriber {
  pos: number;
  readonly queue: StoredEvent[] = [];
  private wake: (() => void) | null = null;
  ended = false;
  error: Error | null = null;

  constructor(
    pos: number,
    readonly maxQueued: number,
  ) {
    this.pos = pos;
  }

  push(events: StoredEvent[]): void {
    if (this.ended) return;
    for (const e of events) this.queue.push(e);
    if (this.queue.length > this.maxQueued) {
      this.fail(new EventStreamError('SUBSCRIPTION_OVERFLOW', 'The subscriber is too slow: too many undelivered events'));
    }
    this.notify();
  }

  fail(err: Error): void {
    this.error = err;
    this.ended = true;
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  waitForMore(): Promise<void> {
    if (this.queue.length > 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => (this.wake = resolve));
  }
}

interface UserStream {
  lastSeq: number;
  subs: Set<Subscriber>;
  fetching: Promise<void> | null;
  again: boolean;
}

export class EventHub {
  private listener: Client | null = null;
  private readonly users = new Map<string, UserStream>();
  private cleanupTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly opts: Required<Omit<EventHubOptions, 'log'>> & { log: NonNullable<EventHubOptions['log']> };

  constructor(
    private readonly ds: DataSource,
    private readonly connectionUrl: string,
    opts: EventHubOptions = {},
  ) {
    this.opts = {
      retentionDays: opts.retentionDays ?? 7,
      cleanupIntervalMs: opts.cleanupIntervalMs ?? 3_600_000,
      maxQueuedPerSubscription: opts.maxQueuedPerSubscription ?? 10_000,
      now: opts.now ?? (() => new Date()),
      log: opts.log ?? (() => undefined),
    };
  }

  /** Connects the LISTEN connection and starts the retention clean-up. */
  async start(): Promise<void> {
    await this.connectListener();
    if (this.opts.cleanupIntervalMs > 0) {
      this.cleanupTimer = setInterval(() => {
        this.cleanup().catch((err) => this.opts.log('outbox clean-up failed', { err: String(err) }));
      }, this.opts.cleanupIntervalMs);
      this.cleanupTimer.unref();
    }
  }

  private async connectListener(): Promise<void> {
    const client = new Client({ connectionString: this.connectionUrl, application_name: 'planner-events' });
    client.on('notification', (msg) => {
      const userId = msg.payload?.split(':')[0];
      if (userId && this.users.has(userId)) this.wakeUser(userId);
    });
    client.on('error', (err) => {
      this.opts.log('event listener connection lost', { err: String(err) });
      this.listener = null;
      void client.end().catch(() => undefined);
      if (!this.closed) setTimeout(() => void this.reconnect(), 500).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    this.listener = client;
  }

  private async reconnect(): Promise<void> {
    if (this.closed) return;
    try {
      await this.connectListener();
      // Hints may have been missed while disconnected: sweep every user with subscribers.
      for (const userId of this.users.keys()) this.wakeUser(userId);
    } catch (err) {
      this.opts.log('event listener reconnect failed', { err: String(err) });
      if (!this.closed) setTimeout(() => void this.reconnect(), 1000).unref();
    }
  }

  /** Deletes events older than the retention period. Returns how many were deleted. */
  async cleanup(): Promise<number> {
    const cutoff = new Date(this.opts.now().getTime() - this.opts.retentionDays * 86_400_000);
    const res = (await this.ds.query('DELETE FROM events WHERE created_at < $1', [cutoff])) as unknown;
    return Array.isArray(res) && typeof res[1] === 'number' ? res[1] : 0;
  }

  /** Number of live subscriptions on this instance (metrics, tests). */
  get subscriptionCount(): number {
    let n = 0;
    for (const u of this.users.values()) n += u.subs.size;
    return n;
  }

  private wakeUser(userId: string): void {
    const u = this.users.get(userId);
    if (!u) return;
    if (u.fetching) {
      u.again = true;
      return;
    }
    u.fetching = (async () => {
      try {
        do {
          u.again = false;
          for (;;) {
            const rows = (await this.ds.query(
              'SELECT seq, topic, type, payload, created_at FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
              [userId, u.lastSeq, PAGE],
            )) as Row[];
            if (rows.length === 0) break;
            const events = rows.map(toEvent);
            u.lastSeq = events[events.length - 1]!.seq;
            for (const s of u.subs) s.push(events);
            if (rows.length < PAGE) break;
          }
        } while (u.again);
      } catch (err) {
        this.opts.log('event fetch failed', { userId, err: String(err) });
      } finally {
        u.fetching = null;
      }
    })();
  }

  private async currentSeq(userId: string): Promise<number> {
    const rows = (await this.ds.query('SELECT event_seq FROM users WHERE id = $1', [userId])) as Array<{ event_seq: string }>;
    return rows[0] ? Number(rows[0].event_seq) : 0;
  }

  /**
   * Opens a stream of the user's events. Checks the cursor eagerly: throws EventStreamError
   * VALIDATION for a cursor this service did not issue, CURSOR_EXPIRED for one older than the
   * retention period. The returned stream replays what was missed, then continues live.
   */
  async open(opts: SubscribeOptions): Promise<AsyncGenerator<StoredEvent & { cursor: string }>> {
    if (this.closed) throw new EventStreamError('VALIDATION', 'the server is shutting down');
    let since: number | null = null;
    if (opts.since !== null) {
      if (!/^\d{1,15}$/.test(opts.since)) throw new EventStreamError('VALIDATION', 'since is not a cursor this service issued');
      since = Number(opts.since);
    }
    let u = this.users.get(opts.userId);
    if (!u) {
      const lastSeq = await this.currentSeq(opts.userId);
      u = this.users.get(opts.userId) ?? { lastSeq, subs: new Set(), fetching: null, again: false };
      this.users.set(opts.userId, u);
    }
    const stream = u;
    // Register first (live events buffer from here on), then decide where this stream starts.
    const sub = new Subscriber(Number.MAX_SAFE_INTEGER, this.opts.maxQueuedPerSubscription);
    stream.subs.add(sub);
    const release = () => {
      sub.end();
      stream.subs.delete(sub);
      if (stream.subs.size === 0 && this.users.get(opts.userId) === stream && !stream.fetching) this.users.delete(opts.userId);
    };
    try {
      const head = await this.currentSeq(opts.userId);
      if (since === null) {
        sub.pos = head;
      } else {
        if (since > head) throw new EventStreamError('VALIDATION', 'since is ahead of every event: not a cursor this service issued');
        if (since < head) {
          const oldest = (await this.ds.query('SELECT min(seq) AS m FROM events WHERE user_id = $1', [opts.userId])) as Array<{
            m: string | null;
          }>;
          const m = oldest[0]?.m == null ? null : Number(oldest[0].m);
          if (m === null || m > since + 1) {
            throw new EventStreamError(
              'CURSOR_EXPIRED',
              'since is older than the event retention period: refetch the current state and subscribe without since',
            );
          }
        }
        sub.pos = since;
      }
    } catch (err) {
      release();
      throw err;
    }
    const timer =
      opts.endAt === undefined
        ? null
        : setTimeout(() => sub.fail(new EventStreamError('VALIDATION', 'the token expired')), Math.max(0, opts.endAt - this.opts.now().getTime()));
    timer?.unref();
    return this.stream(opts, sub, since !== null, () => {
      if (timer) clearTimeout(timer);
      release();
    });
  }

  private async *stream(
    opts: SubscribeOptions,
    sub: Subscriber,
    replay: boolean,
    release: () => void,
  ): AsyncGenerator<StoredEvent & { cursor: string }> {
    try {
      if (replay) {
        // Replay from the outbox up to the present; live events buffered meanwhile are de-duplicated.
        for (;;) {
          const rows = (await this.ds.query(
            'SELECT seq, topic, type, payload, created_at FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3',
            [opts.userId, sub.pos, PAGE],
          )) as Row[];
          for (const r of rows) {
            const e = toEvent(r);
            sub.pos = e.seq;
            if (opts.stillAllowed && !opts.stillAllowed()) return;
            if (opts.filter(e)) yield { ...e, cursor: String(e.seq) };
          }
          if (rows.length < PAGE) break;
        }
      }
      for (;;) {
        await sub.waitForMore();
        while (sub.queue.length > 0) {
          const e = sub.queue.shift()!;
          if (e.seq <= sub.pos) continue;
          sub.pos = e.seq;
          if (opts.stillAllowed && !opts.stillAllowed()) return;
          if (opts.filter(e)) yield { ...e, cursor: String(e.seq) };
        }
        if (sub.error) throw sub.error;
        if (sub.ended) return;
      }
    } finally {
      release();
    }
  }

  /** Ends every stream and closes the LISTEN connection. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    for (const u of this.users.values()) for (const s of u.subs) s.end();
    this.users.clear();
    const l = this.listener;
    this.listener = null;
    if (l) await l.end().catch(() => undefined);
  }
}
