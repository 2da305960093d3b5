import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Provider sign-in and roles (issue 13). Users gain the identity provider's subject (unique per
 * issuer, so an email change never splits a person in two) and a "valid after" time (tokens issued
 * before it are refused: `planner users revoke`). Role changes and revocations are recorded in
 * user_auth_audit (who, when, before, after). auth_version is one row bumped by every such change:
 * each instance polls it and drops its cached roles / valid-after times when it moves.
 */
export class ProviderIdentity1796070000000 implements MigrationInterface {
  name = 'ProviderIdentity1796070000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users
        ADD COLUMN provider_issuer text,
        ADD COLUMN provider_subject text,
        ADD COLUMN valid_after timestamptz,
        ADD CONSTRAINT users_provider_pair CHECK ((provider_issuer IS NULL) = (provider_subject IS NULL)),
        ADD CONSTRAINT users_provider_subject_key UNIQUE (provider_issuer, provider_subject)`);
    await q.query(`
      CREATE TABLE user_auth_audit (
        id bigserial PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL CHECK (action IN ('ROLE', 'REVOKE', 'CREATE', 'EMAIL')),
        before text,
        after text
      )`);
    await q.query(`CREATE INDEX user_auth_audit_user_idx ON user_auth_audit (user_id, at)`);
    await q.query(`
      CREATE TABLE auth_version (
        id smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
        version bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`INSERT INTO auth_version (id, version) VALUES (1, 0)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS auth_version`);
    await q.query(`DROP TABLE IF EXISTS user_auth_audit`);
    await q.query(`
      ALTER TABLE users
        DROP CONSTRAINT IF EXISTS users_provider_subject_key,
        DROP CONSTRAINT IF EXISTS users_provider_pair,
        DROP COLUMN IF EXISTS valid_after,
        DROP COLUMN IF EXISTS provider_subject,
        DROP COLUMN IF EXISTS provider_issuer`);
  }
}
