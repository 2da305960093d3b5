import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Feature flags (issue 11): the GrowthBook payload every instance evaluates (one row, versioned),
 * the rollout audit trail, experiment exposures (once per user and experiment) and usage counters
 * per user, day, metric and experiment variant. The user-owned tables carry user_id first in their
 * primary keys, so they distribute by user like the rest.
 */
export class FeatureFlags1796058057502 implements MigrationInterface {
  name = 'FeatureFlags1796058057502';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE feature_payload (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        version bigint NOT NULL CHECK (version >= 1),
        payload jsonb NOT NULL CHECK (jsonb_typeof(payload -> 'features') = 'object'),
        updated_at timestamptz NOT NULL DEFAULT now(),
        updated_by text NOT NULL
      )`);
    await q.query(`
      CREATE TABLE feature_audit (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        command text NOT NULL,
        feature text,
        before jsonb NOT NULL,
        after jsonb NOT NULL,
        version bigint NOT NULL
      )`);
    await q.query(`
      CREATE TABLE experiment_exposures (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        experiment text NOT NULL,
        variant text NOT NULL,
        variation_id integer NOT NULL,
        first_seen_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, experiment)
      )`);
    await q.query(
      `CREATE INDEX experiment_exposures_experiment_idx ON experiment_exposures (experiment, variant)`,
    );
    await q.query(`
      CREATE TABLE feature_usage (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        day date NOT NULL,
        metric text NOT NULL,
        experiment text NOT NULL,
        variant text NOT NULL,
        count bigint NOT NULL CHECK (count > 0),
        PRIMARY KEY (user_id, day, metric, experiment, variant)
      )`);
    await q.query(`CREATE INDEX feature_usage_experiment_idx ON feature_usage (experiment, variant, metric)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS feature_usage`);
    await q.query(`DROP TABLE IF EXISTS experiment_exposures`);
    await q.query(`DROP TABLE IF EXISTS feature_audit`);
    await q.query(`DROP TABLE IF EXISTS feature_payload`);
  }
}
