import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rollout metrics (issue 12): per time bucket, flag or experiment, and variant, the operations
 * counted by every instance (count, errors, duration sum, a fixed log-scale latency histogram of
 * 82 buckets, process RSS samples). Instances upsert by adding, so their figures combine. Not
 * user-owned (aggregates across users): read by reports and `rollout check`, never by requests.
 */
export class RolloutMetrics1796060284731 implements MigrationInterface {
  name = 'RolloutMetrics1796060284731';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE rollout_metrics (
        bucket_start timestamptz NOT NULL,
        feature text NOT NULL,
        variant text NOT NULL,
        count bigint NOT NULL CHECK (count >= 0),
        errors bigint NOT NULL CHECK (errors >= 0 AND errors <= count),
        duration_sum_ms double precision NOT NULL,
        hist bigint[] NOT NULL CHECK (cardinality(hist) = 82),
        rss_sum_bytes double precision NOT NULL DEFAULT 0,
        rss_samples bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (bucket_start, feature, variant)
      )`);
    await q.query(`CREATE INDEX rollout_metrics_feature_idx ON rollout_metrics (feature, bucket_start)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS rollout_metrics`);
  }
}
