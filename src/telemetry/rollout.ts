/**
 * Rollout figures computed in process from operation spans, kept in Postgres per time bucket so
 * that every instance's numbers combine (rows are upserted by adding counts and histogram buckets).
 *
 * - otel/rollout-processor.ts (a SpanProcessor) turns each ended operation span into an
 *   OperationSample and hands it to the sink registered for the span's instance id.
 * - RolloutCollector (one per app instance) adds samples up in memory: per (time bucket, flag or
 *   experiment, variant) a count, an error count, a duration sum and a log-scale histogram
 *   (src/telemetry/histogram.ts). No I/O on the request path.
 * - A timer (unref'd) flushes with ONE multi-row `INSERT … ON CONFLICT DO UPDATE` per period;
 *   close() flushes what is left. If the database is unreachable the rows stay (bounded) for the
 *   next flush. Each flush also samples the process RSS into the rows it writes (memory guardrail).
 */
import type { DataSource } from 'typeorm';
import { BUCKETS, bucketOf, emptyHistogram, mergeInto } from './histogram';

/** One finished operation, as the span processor sees it. */
export interface OperationSample {
  /** The app instance that served it (span attribute planner.instance.id). */
  instanceId: string | null;
  kind: string;
  /** End instant, ms since the epoch (the span's end time). */
  endedAtMs: number;
  durationMs: number;
  /** Span status ERROR (a thrown error; domain problems answered in the UpdateResult are not errors). */
  error: boolean;
  /** Flags and experiments in force with the variant counted ("on"/"off" for flags). */
  flags: Array<{ key: string; variant: string }>;
}

/** Where samples go. */
export interface OperationSink {
  record(sample: OperationSample): void;
}

// One registry per process, shared even if this module is loaded twice (preload vs app).
const REGISTRY = Symbol.for('planner.telemetry.rolloutSinks');
function registry(): Map<string, OperationSink> {
  const g = globalThis as unknown as Record<symbol, Map<string, OperationSink> | undefined>;
  return (g[REGISTRY] ??= new Map());
}

/** Registers the sink of an app instance; returns the unregister function. */
export function registerOperationSink(instanceId: string, sink: OperationSink): () => void {
  registry().set(instanceId, sink);
  return () => {
    if (registry().get(instanceId) === sink) registry().delete(instanceId);
  };
}

/** The sink of `instanceId` (or the only one registered when the span carries none). */
export function operationSinkFor(instanceId: string | null): OperationSink | undefined {
  const r = registry();
  if (instanceId !== null) return r.get(instanceId);
  return r.size === 1 ? r.values().next().value : undefined;
}

interface Row {
  bucketStart: number;
  feature: string;
  variant: string;
  count: number;
  errors: number;
  sumMs: number;
  hist: number[];
}

export interface RolloutCollectorOptions {
  /** Time bucket in ms. Default 60,000 (one minute). */
  bucketMs?: number;
  /** Flush period in ms. Default 5000. 0: no timer (flush() by hand). */
  flushIntervalMs?: number;
  /** Pending rows kept while the database is unreachable. Default 20,000. */
  maxPending?: number;
  /** Process RSS in bytes (memory guardrail). Default process.memoryUsage.rss. */
  rss?: () => number;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
}

export class RolloutCollector implements OperationSink {
  private rows = new Map<string, Row>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private readonly bucketMs: number;
  private readonly maxPending: number;
  private readonly rss: () => number;
  private readonly warn: (msg: string, fields?: Record<string, unknown>) => void;
  private flushedListeners = new Set<() => void>();

  constructor(
    private readonly ds: DataSource,
    private readonly opts: RolloutCollectorOptions = {},
  ) {
    this.bucketMs = opts.bucketMs ?? 60_000;
    this.maxPending = opts.maxPending ?? 20_000;
    this.rss = opts.rss ?? (() => process.memoryUsage.rss());
    this.warn = opts.warn ?? (() => undefined);
  }

  /** Starts the periodic flush (unref'd). */
  start(): void {
    const ms = this.opts.flushIntervalMs ?? 5000;
    if (ms <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.flush().catch(() => undefined), ms);
    this.timer.unref();
  }

  /** Adds one operation to every (flag, variant) in force. O(flags), no I/O. */
  record(s: OperationSample): void {
    const bucketStart = Math.floor(s.endedAtMs / this.bucketMs) * this.bucketMs;
    const b = bucketOf(s.durationMs);
    for (const f of s.flags) {
      const k = `${bucketStart}\u0000${f.key}\u0000${f.variant}`;
      let row = this.rows.get(k);
      if (!row) {
        if (this.rows.size >= this.maxPending) {
          this.warn('rollout rows full: sample dropped', { maxPending: this.maxPending });
          return;
        }
        row = {
          bucketStart,
          feature: f.key,
          variant: f.variant,
          count: 0,
          errors: 0,
          sumMs: 0,
          hist: emptyHistogram(),
        };
        this.rows.set(k, row);
      }
      row.count++;
      if (s.error) row.errors++;
      row.sumMs += s.durationMs;
      row.hist[b]!++;
    }
  }

  /** Rows waiting for the next flush. */
  get pending(): number {
    return this.rows.size;
  }

  /** Called after every flush attempt (tests wait on it instead of sleeping). */
  onFlushed(listener: () => void): () => void {
    this.flushedListeners.add(listener);
    return () => this.flushedListeners.delete(listener);
  }

  /** Writes what is pending: one statement. Concurrent calls share one flush. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = null;
      for (const l of this.flushedListeners) l();
    });
    return this.flushing;
  }

  /** Stops the timer and flushes what is left. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flushing?.catch(() => undefined);
    await this.flush();
  }

  private async doFlush(): Promise<void> {
    const rows = [...this.rows.values()];
    this.rows = new Map();
    if (rows.length === 0) return;
    const rss = this.rss();
    try {
      await this.ds.query(
        `INSERT INTO rollout_metrics AS r
           (bucket_start, feature, variant, count, errors, duration_sum_ms, hist, rss_sum_bytes, rss_samples)
         SELECT to_timestamp(x.b / 1000.0), x.f, x.v, x.c, x.e, x.s, x.h::bigint[], $8::float8, 1
         FROM unnest($1::float8[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::float8[], $7::text[])
           AS x(b, f, v, c, e, s, h)
         ON CONFLICT (bucket_start, feature, variant) DO UPDATE SET
           count = r.count + EXCLUDED.count,
           errors = r.errors + EXCLUDED.errors,
           duration_sum_ms = r.duration_sum_ms + EXCLUDED.duration_sum_ms,
           hist = (SELECT array_agg(coalesce(a, 0) + coalesce(b, 0) ORDER BY i)
                   FROM unnest(r.hist, EXCLUDED.hist) WITH ORDINALITY AS t(a, b, i)),
           rss_sum_bytes = r.rss_sum_bytes + EXCLUDED.rss_sum_bytes,
           rss_samples = r.rss_samples + EXCLUDED.rss_samples,
           updated_at = now()`,
        [
          rows.map((r) => r.bucketStart),
          rows.map((r) => r.feature),
          rows.map((r) => r.variant),
          rows.map((r) => r.count),
          rows.map((r) => r.errors),
          rows.map((r) => r.sumMs),
          rows.map((r) => `{${r.hist.join(',')}}`),
          rss,
        ],
      );
    } catch (err) {
      for (const r of rows) {
        const k = `${r.bucketStart}\u0000${r.feature}\u0000${r.variant}`;
        const mine = this.rows.get(k);
        if (mine) {
          mine.count += r.count;
          mine.errors += r.errors;
          mine.sumMs += r.sumMs;
          mergeInto(mine.hist, r.hist);
        } else if (this.rows.size < this.maxPending) this.rows.set(k, r);
      }
      this.warn('rollout flush failed; will retry', { err, pending: this.rows.size });
    }
  }
}

/** Histogram length stored per row (checked by the migration's CHECK constraint). */
export const HISTOGRAM_BUCKETS = BUCKETS;
