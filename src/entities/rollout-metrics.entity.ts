import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Rollout figures of one time bucket, flag or experiment, and variant, added up over every
 * instance (src/telemetry/rollout.ts writes them; src/telemetry/report.ts reads them).
 */
@Entity({ name: 'rollout_metrics' })
export class RolloutMetricsEntity {
  /** Start of the time bucket (one minute by default). */
  @PrimaryColumn('timestamptz', { name: 'bucket_start' })
  bucketStart!: Date;

  /** Flag or experiment key. */
  @PrimaryColumn('text')
  feature!: string;

  /** Experiment variant key, or "on"/"off" for a flag. */
  @PrimaryColumn('text')
  variant!: string;

  /** Operations counted. */
  @Column('bigint')
  count!: string;

  /** Operations that failed (span status ERROR). */
  @Column('bigint')
  errors!: string;

  @Column('double precision', { name: 'duration_sum_ms' })
  durationSumMs!: number;

  /** Counts per fixed log-scale latency bucket (src/telemetry/histogram.ts), 82 entries. */
  @Column('bigint', { array: true })
  hist!: string[];

  /** Sum of process RSS samples (bytes), one per flush that wrote this row. */
  @Column('double precision', { name: 'rss_sum_bytes', default: 0 })
  rssSumBytes!: number;

  @Column('bigint', { name: 'rss_samples', default: 0 })
  rssSamples!: string;

  @Column('timestamptz', { name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
