/**
 * The event hub: turns the transactional outbox into live, per-user streams.
 *
 * - Writers (the WorldUpdater) insert events with a per-user, gap-free `seq` under the user's row
 *   lock, so seq order is commit order for each user. After the commit they wake this process's hub
 *   directly ({@link EventHub.hint}, through the DataSource's commit signals) and the other
 *   instances with `pg_notify('planner_events', '<userId>:<seq>')`, so a hint only ever follows a
 *   commit.
 * - Every instance LISTENs on one dedicated connection. A notification is only a hint: the hub
 *   reads the events from the outbox (one query per user and wake-up, shared by all of that user's
 *   subscribers on this instance), so the 8,000-byte NOTIFY limit never matters and a missed hint
 *   is repaired by the next one, by the retry after a failed read, or by the reconnect sweep.
 * - A subscription with `since` first replays stored events after the cursor, then continues live;
 *   events are de-duplicated by seq at the seam, so none is lost and none is sent twice. Because
 *   seq is gap-free per user, a hole in a replay can only mean the clean-up deleted it: the stream
 *   then ends with CURSOR_EXPIRED instead of skipping silently.
 * - Memory per subscriber is bounded: events waiting for a consumer are counted (and, when the
 *   transport gives a DeliveryBudget, measured in bytes per connection); a consumer that falls
 *   behind is detached at once (its queue freed) and its transport told to close the connection.
 */
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { commitSignals } from '../world/commit-signals';
import { EVENTS_CHANNEL } from '../world/world-updater';

/** The NOTIFY channel the WorldUpdater announces commits on. */
export { EVENTS_CHANNEL };
const PAGE = 500;
/** setTimeout's largest delay (about 24.8 days); longer waits are re-armed. */
const MAX_TIMER_MS = 2_147_483_647;
/** Rows deleted per statement by the clean-up (short transactions, no long locks). */
const CLEANUP_BATCH = 10_000;
/** Delay before re-reading a user's events after a failed read. */
const FETCH_RETRY_MS = 1_000;

export interface StoredEvent {
  seq: number;
  topic: 'plan' | 'conflict' | 'undo';
  type: string;
  payload: Record<string, unknown>;
  createdAt: Date;
  /** Size of the payload as stored (JSON text, characters): what queue budgets count. */
  bytes: number;
}

/** An event as a subscription delivers it: with its cursor (the seq as a decimal string). */
export type CursoredEvent = StoredEvent & { cursor: string };

export type EventStreamErrorCode =
  'CURSOR_EXPIRED' | 'VALIDATION' | 'SUBSCRIPTION_OVERFLOW' | 'UNAUTHENTICATED';

/** Thrown when a subscription cannot start or continue; `code` goes to extensions.code. */
export class EventStreamError extends Error {
  constructor(
    readonly code: EventStreamErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EventStreamError';
  }
}

/**
 * A connection's send budget, shared by all of its subscriptions: the bytes of events queued for
 * them in the hub plus what the transport has not yet written must stay under `limitBytes`.
 */
export interface DeliveryBudget {
  /** Bytes of events queued in the hub for this connection and not yet handed to the transport. */
  queuedBytes: number;
  readonly limitBytes: number;
  /** Bytes accepted by the transport and not yet written to the network (ws `bufferedAmount`). */
  backlog(): number;
  /** Called (at most once per overflowing subscriber) when the budget is exceeded: close the connection. */
  overflow(): void;
}

export interface SubscribeOptions {
  userId: string;
  /** Replay strictly after this cursor first; null = only what happens from now on. */
  since: string | null;
  /** Only events for which this returns true are delivered (the cursor still advances). */
  filter: (e: StoredEvent) => boolean;
  /** Checked before each delivery; returning false ends the stream with UNAUTHENTICATED. */
  stillAllowed?: () => boolean;
  /** Epoch ms (on the hub's clock) at which the stream ends by itself (the token's expiry). */
  endAt?: number;
  /** The transport's per-connection send budget (WebSocket); absent = count-bounded only. */
  budget?: DeliveryBudget;
}

export interface EventHubOptions {
  /** Events kept for replay, in days (PLANNER_OUTBOX_RETENTION_DAYS). Default 7. */
  retentionDays?: number;
  /** How often the clean-up runs, ms. Default one hour. 0 disables it. */
  cleanupIntervalMs?: number;
  /** Live events buffered per subscription before it is ended as too slow. Default 10,000. */
  maxQueuedPerSubscription?: number;
  /** Clock for the retention cut-off and token expiry. */
  now?: () => Date;
  /**
   * Heartbeat of the LISTEN connection, ms: every period a `SELECT 1` must answer within the same
   * period, or the connection is dropped, re-opened and every served user re-read (a silently cut,
   * half-open socket is noticed within two periods). Default 5000. 0 disables it.
   */
  heartbeatMs?: number;
  /** TCP keep-alive initial delay of the LISTEN connection, ms (the OS default is two hours). Default 10000. */
  keepAliveInitialDelayMs?: number;
  /** Delay before re-opening a lost LISTEN connection, ms (doubled per failed attempt, up to 10 s). Default 500. */
  reconnectDelayMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Row {
  seq: string;
  topic: StoredEvent['topic'];
  type: string;
  payload: string;
  created_at: Date;
}

const SELECT_AFTER =
  'SELECT seq, topic, type, payload::text AS payload, created_at FROM events WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3';

function toEvent(r: Row): StoredEvent {
  return {
    seq: Number(r.seq),
    topic: r.topic,
    type: r.type,
    payload: JSON.parse(r.payload) as Record<string, unknown>,
    createdAt: r.created_at,
    bytes: r.payload.length,
  };
}

const tooSlow = () =>
  new EventStreamError('SUBSCRIPTION_OVERFLOW', 'The subscriber is too slow: too many undelivered events');

/** One subscriber's queue: live events are pushed in seq order; the consumer pulls. */
class Subscriber {
  pos: number;
  readonly queue: StoredEvent[] = [];
  private queuedBytes = 0;
  private wake: (() => void) | null = null;
  ended = false;
  error: Error | null = null;
  /** Set by the hub: removes this subscriber from its user's stream (idempotent). */
  detach: () => void = () => undefined;

  constructor(
    pos: number,
    readonly maxQueued: number,
    private readonly budget: DeliveryBudget | undefined,
  ) {
    this.pos = pos;
  }

  push(events: StoredEvent[]): void {
    if (this.ended) return;
    // What is still queued from earlier wake-ups (plus the transport's backlog) was not consumed in
    // a whole database round trip: over the budget, the consumer is not keeping up. A single large
    // batch on its own never trips it.
    const budget = this.budget;
    if (budget && budget.queuedBytes + budget.backlog() > budget.limitBytes) {
      this.overflow();
      return;
    }
    let bytes = 0;
    for (const e of events) {
      this.queue.push(e);
      bytes += e.bytes;
    }
    this.queuedBytes += bytes;
    if (budget) budget.queuedBytes += bytes;
    if (this.queue.length > this.maxQueued) {
      this.overflow();
      return;
    }
    this.notify();
  }

  /** Takes the next queued event (the caller checked the queue is not empty). */
  shift(): StoredEvent {
    const e = this.queue.shift()!;
    this.queuedBytes -= e.bytes;
    if (this.budget) this.budget.queuedBytes -= e.bytes;
    return e;
  }

  private overflow(): void {
    this.fail(tooSlow());
    this.budget?.overflow();
  }

  /** Ends the stream with an error; the queue is dropped at once (memory is freed now, not later). */
  fail(err: Error): void {
    if (this.ended) return;
    this.error = err;
    this.dropQueue();
    this.finish();
  }

  end(): void {
    if (this.ended) return;
    this.finish();
  }

  private finish(): void {
    this.ended = true;
    this.detach();
    this.notify();
  }

  /** Returns the budget's share of whatever is still queued (on any ending). */
  dropQueue(): void {
    if (this.budget) this.budget.queuedBytes -= this.queuedBytes;
    this.queuedBytes = 0;
    this.queue.length = 0;
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
  retry: NodeJS.Timeout | null;
}

export class EventHub {
  private listener: Client | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private heartbeatBusy = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectAttempts = 0;
  private listenerOpens = 0;
  private readonly users = new Map<string, UserStream>();
  private cleanupTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly opts: Required<Omit<EventHubOptions, 'log'>> & {
    log: NonNullable<EventHubOptions['log']>;
  };

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
      heartbeatMs: opts.heartbeatMs ?? 5000,
      keepAliveInitialDelayMs: opts.keepAliveInitialDelayMs ?? 10_000,
      reconnectDelayMs: opts.reconnectDelayMs ?? 500,
    };
  }

  /** Wakes a user's subscribers on this instance (a hint: they re-read the outbox). */
  hint(userId: string): void {
    if (!this.closed && this.users.has(userId)) this.wakeUser(userId);
  }

  private readonly onCommitted = (userId: string): void => this.hint(userId);

  /** Connects the LISTEN connection and starts the retention clean-up. */
  async start(): Promise<void> {
    commitSignals(this.ds).on('committed', this.onCommitted);
    await this.connectListener();
    if (this.opts.cleanupIntervalMs > 0) {
      this.cleanupTimer = setInterval(() => {
        this.cleanup().catch((err) => this.opts.log('outbox clean-up failed', { err: String(err) }));
      }, this.opts.cleanupIntervalMs);
      this.cleanupTimer.unref();
    }
  }

  /** How many times the LISTEN connection was opened (1 after start; more after reconnects). */
  get listenerConnections(): number {
    return this.listenerOpens;
  }

  private async connectListener(): Promise<void> {
    // TCP keep-alive with a short first probe, and the heartbeat below: a connection that died or was
    // silently cut (half-open) is noticed within seconds and replaced (reconnect + sweep).
    const client = new Client({
      connectionString: this.connectionUrl,
      application_name: 'planner-events',
      keepAlive: true,
      keepAliveInitialDelayMillis: this.opts.keepAliveInitialDelayMs,
    });
    client.on('notification', (msg) => {
      const userId = msg.payload?.split(':')[0];
      if (userId && this.users.has(userId)) this.wakeUser(userId);
    });
    client.on('error', (err) => this.dropListener(client, 'event listener connection lost', err));
    client.on('end', () => this.dropListener(client, 'event listener connection ended'));
    try {
      await client.connect();
      await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (err) {
      destroy(client);
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    this.listenerOpens++;
    this.startHeartbeat();
  }

  /** Every heartbeatMs: `SELECT 1` on the LISTEN connection must answer within heartbeatMs. */
  private startHeartbeat(): void {
    const period = this.opts.heartbeatMs;
    if (this.heartbeatTimer || period <= 0) return;
    this.heartbeatTimer = setInterval(() => {
      const client = this.listener;
      if (!client || this.heartbeatBusy) return;
      this.heartbeatBusy = true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no heartbeat answer within ${period} ms`)), period);
      });
      Promise.race([client.query('SELECT 1'), timeout])
        .catch((err: unknown) => this.dropListener(client, 'event listener heartbeat failed', err))
        .finally(() => {
          clearTimeout(timer);
          this.heartbeatBusy = false;
        });
    }, period);
    this.heartbeatTimer.unref();
  }

  /** Forgets a broken LISTEN connection (destroying its socket, which may be half-open) and reconnects. */
  private dropListener(client: Client, msg: string, err?: unknown): void {
    if (this.listener !== client) return; // already dropped, or never became the listener
    this.listener = null;
    this.opts.log(msg, err === undefined ? {} : { err: String(err) });
    destroy(client);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = Math.min(10_000, this.opts.reconnectDelayMs * 2 ** Math.min(this.reconnectAttempts, 5));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.reconnect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    if (this.closed || this.listener) return;
    try {
      await this.connectListener();
      this.reconnectAttempts = 0;
      // Hints may have been missed while disconnected: sweep every user with subscribers.
      for (const userId of this.users.keys()) this.wakeUser(userId);
    } catch (err) {
      this.reconnectAttempts++;
      this.opts.log('event listener reconnect failed', { err: String(err) });
      this.scheduleReconnect();
    }
  }

  /**
   * Deletes events older than the retention period (in batches, so no statement holds locks for
   * long). Returns how many were deleted. Safe to run on every instance at once.
   */
  async cleanup(): Promise<number> {
    const cutoff = new Date(this.opts.now().getTime() - this.opts.retentionDays * 86_400_000);
    let total = 0;
    for (;;) {
      const rows = (await this.ds.query(
        `/* background:events-retention */ WITH doomed AS (SELECT user_id, id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT ${CLEANUP_BATCH})
         DELETE FROM events e USING doomed WHERE e.user_id = doomed.user_id AND e.id = doomed.id RETURNING 1 AS x`,
        [cutoff],
      )) as unknown;
      // TypeORM answers a DELETE … RETURNING with [rows, affected].
      const n =
        Array.isArray(rows) && Array.isArray(rows[0])
          ? rows[0].length
          : Array.isArray(rows)
            ? rows.length
            : 0;
      total += n;
      if (n < CLEANUP_BATCH) return total;
    }
  }

  /** Events handed to subscribers on this instance since start (metrics). */
  delivered = 0;

  /**
   * The relay's lag: how old (by the hub's clock, ms) the newest event was when the relay last read
   * it from the outbox for live subscribers; null before the first read (metrics).
   */
  relayLagMs: number | null = null;

  /** Number of live subscriptions on this instance (metrics, tests). */
  get subscriptionCount(): number {
    let n = 0;
    for (const u of this.users.values()) n += u.subs.size;
    return n;
  }

  private countWaiters: Array<{ n: number; resolve: () => void }> = [];

  /** Resolves once exactly `n` subscriptions are live on this instance (tests, operations). */
  waitForSubscriptionCount(n: number): Promise<void> {
    if (this.subscriptionCount === n) return Promise.resolve();
    return new Promise((resolve) => this.countWaiters.push({ n, resolve }));
  }

  private countChanged(): void {
    if (this.countWaiters.length === 0) return;
    const count = this.subscriptionCount;
    const ready = this.countWaiters.filter((w) => w.n === count);
    this.countWaiters = this.countWaiters.filter((w) => w.n !== count);
    for (const w of ready) w.resolve();
  }

  /** Drops a user's stream once nobody listens and no read is running. */
  private forgetIfIdle(userId: string, u: UserStream): void {
    if (u.subs.size === 0 && !u.fetching && this.users.get(userId) === u) {
      if (u.retry) clearTimeout(u.retry);
      this.users.delete(userId);
    }
  }

  private wakeUser(userId: string): void {
    const u = this.users.get(userId);
    if (!u) return;
    if (u.fetching) {
      u.again = true;
      return;
    }
    if (u.retry) {
      clearTimeout(u.retry);
      u.retry = null;
    }
    u.fetching = (async () => {
      try {
        do {
          u.again = false;
          for (;;) {
            const rows = (await this.ds.query(SELECT_AFTER, [userId, u.lastSeq, PAGE])) as Row[];
            if (rows.length === 0) break;
            const events = rows.map(toEvent);
            const newest = events[events.length - 1]!;
            u.lastSeq = newest.seq;
            this.relayLagMs = Math.max(0, this.opts.now().getTime() - newest.createdAt.getTime());
            for (const s of [...u.subs]) s.push(events);
            if (rows.length < PAGE) break;
          }
        } while (u.again && u.subs.size > 0);
      } catch (err) {
        // The cursor did not move: the next hint, or this retry, reads the same events again.
        this.opts.log('event fetch failed', { userId, err: String(err) });
        if (!this.closed && u.subs.size > 0) {
          u.retry = setTimeout(() => {
            u.retry = null;
            this.wakeUser(userId);
          }, FETCH_RETRY_MS);
          u.retry.unref();
        }
      } finally {
        u.fetching = null;
        this.forgetIfIdle(userId, u);
      }
    })();
  }

  private async currentSeq(userId: string): Promise<number> {
    const rows = (await this.ds.query('SELECT event_seq FROM users WHERE id = $1', [userId])) as Array<{
      event_seq: string;
    }>;
    return rows[0] ? Number(rows[0].event_seq) : 0;
  }

  /**
   * Opens a stream of the user's events. Checks the cursor eagerly: throws EventStreamError
   * VALIDATION for a cursor this service did not issue, CURSOR_EXPIRED for one older than the
   * retention period. The returned stream replays what was missed, then continues live.
   */
  async open(opts: SubscribeOptions): Promise<AsyncIterableIterator<CursoredEvent>> {
    if (this.closed) throw new EventStreamError('VALIDATION', 'the server is shutting down');
    let since: number | null = null;
    if (opts.since !== null) {
      if (!/^\d{1,15}$/.test(opts.since))
        throw new EventStreamError('VALIDATION', 'since is not a cursor this service issued');
      since = Number(opts.since);
    }
    let u = this.users.get(opts.userId);
    if (!u) {
      const lastSeq = await this.currentSeq(opts.userId);
      u = this.users.get(opts.userId) ?? {
        lastSeq,
        subs: new Set(),
        fetching: null,
        again: false,
        retry: null,
      };
      this.users.set(opts.userId, u);
    }
    const stream = u;
    // Register first (live events buffer from here on), then decide where this stream starts.
    const sub = new Subscriber(Number.MAX_SAFE_INTEGER, this.opts.maxQueuedPerSubscription, opts.budget);
    stream.subs.add(sub);
    this.countChanged();
    sub.detach = () => {
      if (stream.subs.delete(sub)) this.countChanged();
      this.forgetIfIdle(opts.userId, stream);
    };
    const release = () => {
      sub.end();
      sub.dropQueue();
    };
    try {
      const head = await this.currentSeq(opts.userId);
      if (since === null) {
        sub.pos = head;
      } else {
        if (since > head)
          throw new EventStreamError(
            'VALIDATION',
            'since is ahead of every event: not a cursor this service issued',
          );
        if (since < head) {
          const oldest = (await this.ds.query('SELECT min(seq) AS m FROM events WHERE user_id = $1', [
            opts.userId,
          ])) as Array<{
            m: string | null;
          }>;
          const m = oldest[0]?.m == null ? null : Number(oldest[0].m);
          if (m === null || m > since + 1) throw expired();
        }
        sub.pos = since;
      }
    } catch (err) {
      release();
      throw err;
    }
    const stopTimer = opts.endAt === undefined ? () => undefined : this.expiryTimer(opts.endAt, sub);
    return new EventStream(
      this.ds,
      opts,
      sub,
      since !== null,
      () => {
        stopTimer();
        release();
      },
      () => void this.delivered++,
    );
  }

  /** Fails the subscriber at `endAt` (hub clock); re-arms past setTimeout's 24.8-day limit. */
  private expiryTimer(endAt: number, sub: Subscriber): () => void {
    let timer: NodeJS.Timeout | null = null;
    const arm = () => {
      const left = endAt - this.opts.now().getTime();
      if (left <= 0) {
        timer = null;
        sub.fail(tokenExpired());
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
      timer.unref();
    };
    arm();
    return () => {
      if (timer) clearTimeout(timer);
    };
  }

  /** Ends every stream and closes the LISTEN connection. */
  async close(): Promise<void> {
    this.closed = true;
    commitSignals(this.ds).off('committed', this.onCommitted);
    if (this.cleanupTimer) clearInterval(this.cleanupTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    for (const u of [...this.users.values()]) {
      if (u.retry) clearTimeout(u.retry);
      for (const s of [...u.subs]) s.end();
    }
    this.users.clear();
    const l = this.listener;
    this.listener = null;
    if (l) {
      // A half-open socket never answers the Terminate: wait a moment at most, then destroy it.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        l.end().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
      ]);
      clearTimeout(timer);
      destroy(l);
    }
  }
}

/** Closes a pg client at once: destroys its socket (a half-open one never answers a Terminate). */
function destroy(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  void client.end().catch(() => undefined);
}

const DONE: IteratorResult<CursoredEvent> = { done: true, value: undefined };

/**
 * One subscription's stream: replay from the outbox after the cursor, then the live queue.
 *
 * A hand-written iterator, not an async generator: a generator's return() waits behind a pending
 * next(), so a subscription stopped (or a socket closed) while waiting for the user's next event
 * stayed registered until that event came — for an idle user, forever. Here return() releases the
 * subscriber at once and the pending next() resolves as done.
 */
class EventStream implements AsyncIterableIterator<CursoredEvent> {
  private replayBuf: StoredEvent[] = [];
  private replaying: boolean;
  private replayDone = false;
  private finished = false;

  constructor(
    private readonly ds: DataSource,
    private readonly opts: SubscribeOptions,
    private readonly sub: Subscriber,
    replay: boolean,
    private readonly release: () => void,
    private readonly onDelivered: () => void = () => undefined,
  ) {
    this.replaying = replay;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<CursoredEvent>> {
    const { sub, opts } = this;
    try {
      for (;;) {
        if (this.finished) return DONE;
        if (sub.error) throw sub.error;
        let e: StoredEvent;
        if (this.replaying) {
          // Replay from the outbox up to the present; live events queued meanwhile are de-duplicated.
          if (this.replayBuf.length === 0) {
            if (this.replayDone) {
              this.replaying = false;
              continue;
            }
            const rows = (await this.ds.query(SELECT_AFTER, [opts.userId, sub.pos, PAGE])) as Row[];
            this.replayBuf = rows.map(toEvent);
            if (rows.length < PAGE) this.replayDone = true;
            continue;
          }
          e = this.replayBuf.shift()!;
          // seq is gap-free per user: a hole means the clean-up removed events this cursor needs.
          if (e.seq !== sub.pos + 1) throw expired();
        } else {
          if (sub.queue.length === 0) {
            if (sub.ended) {
              this.finish();
              return DONE;
            }
            await sub.waitForMore();
            continue;
          }
          e = sub.shift();
          if (e.seq <= sub.pos) continue;
        }
        sub.pos = e.seq;
        if (opts.stillAllowed && !opts.stillAllowed()) throw tokenExpired();
        if (opts.filter(e)) {
          this.onDelivered();
          return { done: false, value: { ...e, cursor: String(e.seq) } };
        }
      }
    } catch (err) {
      this.finish();
      throw err;
    }
  }

  return(): Promise<IteratorResult<CursoredEvent>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  throw(err: unknown): Promise<IteratorResult<CursoredEvent>> {
    this.finish();
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.release();
  }
}

function expired(): EventStreamError {
  return new EventStreamError(
    'CURSOR_EXPIRED',
    'since is older than the event retention period: refetch the current state and subscribe without since',
  );
}

function tokenExpired(): EventStreamError {
  return new EventStreamError('UNAUTHENTICATED', 'The token expired: reconnect with a fresh token');
}
