/**
 * Deletes expired idempotency keys of every user, periodically (the write path only forgets a
 * user's expired keys on that user's next keyed request, so keys of users who never come back would
 * stay forever). A background job, off the hot path: short batched DELETEs, safe on every instance
 * at once. Expiry follows the injected clock.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from './clock';

/** How long an idempotency key is honoured (the write path's rule: 24 hours). */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3600 * 1000;
/** Rows deleted per statement. */
const BATCH = 5000;

export interface IdempotencySweeperOptions {
  /** How often to sweep, ms (PLANNER_IDEMPOTENCY_SWEEP_MS). 0: never on its own (sweepOnce only). */
  intervalMs: number;
  /** Key lifetime, ms. Default IDEMPOTENCY_KEY_TTL_MS. */
  ttlMs?: number;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class IdempotencySweeper {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private waiters: Array<(deleted: number) => void> = [];

  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
    private readonly opts: IdempotencySweeperOptions,
  ) {}

  /** Starts the periodic sweep (unref'd timer). Idempotent. */
  start(): void {
    if (this.timer || this.opts.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.sweepOnce().catch((err) => this.opts.log?.('idempotency key sweep failed', { err: String(err) }));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a sweep in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** Resolves with the number deleted by the next sweep that completes (tests, operations). */
  nextSweep(): Promise<number> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Deletes every key older than the TTL (all users), in batches. Returns how many. */
  sweepOnce(): Promise<number> {
    this.running ??= (async () => {
      try {
        const cutoff = new Date(this.clock.now().getTime() - (this.opts.ttlMs ?? IDEMPOTENCY_KEY_TTL_MS));
        let total = 0;
        for (;;) {
          const rows = (await this.ds.query(
            `/* background:idempotency-sweep */ WITH doomed AS (SELECT user_id, key FROM idempotency_keys WHERE created_at <= $1 LIMIT ${BATCH})
             DELETE FROM idempotency_keys k USING doomed
             WHERE k.user_id = doomed.user_id AND k.key = doomed.key RETURNING 1 AS x`,
            [cutoff],
          )) as unknown;
          // TypeORM answers a DELETE … RETURNING with [rows, affected].
          const n = Array.isArray(rows) && Array.isArray(rows[0]) ? rows[0].length : 0;
          total += n;
          if (n < BATCH) break;
        }
        for (const w of this.waiters.splice(0)) w(total);
        return total;
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }
}
