/**
 * Exposures and usage counters, recorded OUTSIDE any user transaction: calls only append to an
 * in-memory queue (no I/O, no await); a timer flushes the queue with one multi-row INSERT per table
 * (`INSERT ... SELECT FROM unnest(...) ON CONFLICT ...`), and close() flushes what is left.
 *
 * - Exposures: once per user and experiment (first variant seen wins): de-duplicated in memory per
 *   instance and by the primary key (user_id, experiment) across instances and restarts.
 * - Usage: counters per user, UTC day, metric and experiment variant; added up in memory and upserted
 *   (`count = count + EXCLUDED.count`).
 *
 * If the database is unreachable the rows stay queued (bounded) and the next flush retries.
 *
 * The same events also count on OpenTelemetry counters (`planner.flags.exposures` by experiment and
 * variant, `planner.flags.usage` by metric, experiment and variant) for the rollout dashboards; a
 * no-op when no metrics SDK is registered.
 */
import { metrics, type Counter } from '@opentelemetry/api';
import type { DataSource } from 'typeorm';
import { EXPERIMENT_KEYS, type UsageMetric } from './keys';
import type { Exposure, ExposureSink, UserFlags } from './service';

export interface RecorderOptions {
  /** Flush period in ms. Default 2000. 0: no timer (flush() by hand). */
  flushIntervalMs?: number;
  /** Queued rows kept while the database is unreachable; older ones are dropped beyond it. Default 50,000. */
  maxQueued?: number;
  /** Time source. Default Date. */
  now?: () => Date;
  /** Warnings (flush failures, drops). */
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface QueuedExposure extends Exposure {
  at: Date;
}

/** The experiment a usage row is attributed to ('' when the user is in none) and its variant. */
export interface UsageKey {
  userId: string;
  metric: UsageMetric;
  experiment: string;
  variant: string;
}

/** Per-instance memory of exposures already queued or written, bounded. */
const SEEN_LIMIT = 200_000;

export class ExposureRecorder implements ExposureSink {
  private exposures: QueuedExposure[] = [];
  private usage = new Map<string, { key: UsageKey; day: string; count: number }>();
  private seen = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private readonly now: () => Date;
  private readonly maxQueued: number;
  private readonly warn: (msg: string, fields?: Record<string, unknown>) => void;
  private readonly exposureCounter: Counter;
  private readonly usageCounter: Counter;

  constructor(
    private readonly ds: DataSource,
    private readonly opts: RecorderOptions = {},
  ) {
    this.now = opts.now ?? (() => new Date());
    this.maxQueued = opts.maxQueued ?? 50_000;
    this.warn = opts.warn ?? (() => undefined);
    // Looked up here, not at module load: the metrics SDK (otel/) registers its provider first.
    const meter = metrics.getMeter('planner-flags');
    this.exposureCounter = meter.createCounter('planner.flags.exposures', {
      description: 'Experiment exposures (first per user and experiment on this instance)',
    });
    this.usageCounter = meter.createCounter('planner.flags.usage', {
      description: 'Uses of a capability, attributed to the experiment variant of the user',
    });
  }

  /** Starts the periodic flush (unref'd: it never keeps the process alive). */
  start(): void {
    const ms = this.opts.flushIntervalMs ?? 2000;
    if (ms <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.flush().catch(() => undefined), ms);
    this.timer.unref();
  }

  /** ExposureSink (the SDK's trackingCallback): queue once per user and experiment. No I/O. */
  exposure(e: Exposure): void {
    const k = `${e.userId}\u0000${e.experiment}`;
    if (this.seen.has(k)) return;
    if (this.seen.size >= SEEN_LIMIT) this.seen.clear(); // the primary key still de-duplicates
    this.seen.add(k);
    this.exposures.push({ ...e, at: this.now() });
    this.exposureCounter.add(1, { experiment: e.experiment, variant: e.variant });
    if (this.exposures.length > this.maxQueued) {
      this.exposures.splice(0, this.exposures.length - this.maxQueued);
      this.warn('exposure queue full: oldest dropped', { maxQueued: this.maxQueued });
    }
  }

  /**
   * Counts one use (or `count`) of a capability by this user, attributed to each experiment variant
   * the user is assigned to (without recording an exposure), or to experiment '' when in none.
   * No I/O: written by the next flush.
   */
  recordUsage(flags: UserFlags, metric: UsageMetric, count = 1): void {
    let attributed = false;
    for (const experiment of EXPERIMENT_KEYS) {
      const variant = flags.assignment(experiment);
      if (variant === null) continue;
      attributed = true;
      this.addUsage({ userId: flags.userId, metric, experiment, variant }, count);
    }
    if (!attributed) this.addUsage({ userId: flags.userId, metric, experiment: '', variant: '' }, count);
  }

  /** Counts usage with an explicit attribution (agents or jobs that hold no UserFlags). No I/O. */
  addUsage(key: UsageKey, count = 1): void {
    if (!Number.isInteger(count) || count < 1)
      throw new RangeError(`count: expected a positive integer, got ${count}`);
    this.usageCounter.add(count, { metric: key.metric, experiment: key.experiment, variant: key.variant });
    const day = this.now().toISOString().slice(0, 10);
    const k = [key.userId, day, key.metric, key.experiment, key.variant].join('\u0000');
    const row = this.usage.get(k);
    if (row) row.count += count;
    else {
      if (this.usage.size >= this.maxQueued) {
        this.warn('usage queue full: counter dropped', { maxQueued: this.maxQueued });
        return;
      }
      this.usage.set(k, { key, day, count });
    }
  }

  /** Rows waiting for the next flush. */
  get pending(): { exposures: number; usage: number } {
    return { exposures: this.exposures.length, usage: this.usage.size };
  }

  /** Writes what is queued: at most one INSERT per table. Concurrent calls share one flush. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** Stops the timer and flushes what is left (shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushing?.catch(() => undefined);
    await this.flush();
  }

  private async doFlush(): Promise<void> {
    const exposures = this.exposures;
    const usage = [...this.usage.values()];
    this.exposures = [];
    this.usage = new Map();
    if (exposures.length > 0) {
      try {
        // Users deleted meanwhile are skipped (JOIN users) instead of failing the whole batch.
        await this.ds.query(
          `INSERT INTO experiment_exposures (user_id, experiment, variant, variation_id, first_seen_at)
           SELECT x.user_id, x.experiment, x.variant, x.variation_id, x.at
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::timestamptz[])
             AS x(user_id, experiment, variant, variation_id, at)
           JOIN users u ON u.id = x.user_id
           ON CONFLICT (user_id, experiment) DO NOTHING`,
          [
            exposures.map((e) => e.userId),
            exposures.map((e) => e.experiment),
            exposures.map((e) => e.variant),
            exposures.map((e) => e.variationId),
            exposures.map((e) => e.at.toISOString()),
          ],
        );
      } catch (err) {
        this.exposures = [...exposures, ...this.exposures].slice(-this.maxQueued);
        this.warn('exposure flush failed; will retry', { err, queued: this.exposures.length });
      }
    }
    if (usage.length > 0) {
      try {
        await this.ds.query(
          `INSERT INTO feature_usage (user_id, day, metric, experiment, variant, count)
           SELECT x.user_id, x.day, x.metric, x.experiment, x.variant, x.count
           FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[], $5::text[], $6::bigint[])
             AS x(user_id, day, metric, experiment, variant, count)
           JOIN users u ON u.id = x.user_id
           ON CONFLICT (user_id, day, metric, experiment, variant)
           DO UPDATE SET count = feature_usage.count + EXCLUDED.count`,
          [
            usage.map((u) => u.key.userId),
            usage.map((u) => u.day),
            usage.map((u) => u.key.metric),
            usage.map((u) => u.key.experiment),
            usage.map((u) => u.key.variant),
            usage.map((u) => u.count),
          ],
        );
      } catch (err) {
        for (const u of usage) {
          const k = [u.key.userId, u.day, u.key.metric, u.key.experiment, u.key.variant].join('\u0000');
          const row = this.usage.get(k);
          if (row) row.count += u.count;
          else this.usage.set(k, u);
        }
        this.warn('usage flush failed; will retry', { err, queued: this.usage.size });
      }
    }
  }
}
