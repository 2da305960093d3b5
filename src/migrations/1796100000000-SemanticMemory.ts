import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Semantic memory (issue 14). `memory_items` holds what is known about a user's habits: FACTs they
 * stated (`remember`), PREFERENCEs and PATTERNs learned from their operations (a learned item has a
 * stable `key` per user and its counts in `rule`; it shapes plans once `active`). Text and
 * embeddings live here and nowhere else, so `forgetMemories` erases them completely.
 * `memory_learner_cursors` is the learner's position in each user's outbox (the last event seq it
 * has learned from): a crash resumes from it, and it moves in the same transaction as the items.
 * Both are keyed by user (Citus: PK and every unique constraint and foreign key carry user_id).
 * The operation log's append-only guard now says, when it refuses a DELETE, which erasure it allows
 * (a whole account, `planner forget`), and its comment records it.
 */
/** The append-only guard of the operation log (Foundation), with or without its hint. */
function guard(hint: boolean): string {
  const how = hint
    ? ` USING ERRCODE = 'insufficient_privilege',
            HINT = 'The one erasure allowed is of a whole account: planner forget --email <address> (it sets planner.allow_user_erasure for its transaction).'`
    : ` USING ERRCODE = 'insufficient_privilege'`;
  return `
      CREATE OR REPLACE FUNCTION operations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          IF current_setting('planner.allow_user_erasure', true) = 'on' THEN
            RETURN OLD;
          END IF;
          RAISE EXCEPTION 'operations are append-only (DELETE refused)'${how};
        END IF;
        IF TG_OP = 'TRUNCATE' THEN
          RAISE EXCEPTION 'operations are append-only (TRUNCATE refused)' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF (to_jsonb(NEW) - ARRAY['state','state_changed_at','undone_by_seq','redoable'])
           IS DISTINCT FROM (to_jsonb(OLD) - ARRAY['state','state_changed_at','undone_by_seq','redoable']) THEN
          RAISE EXCEPTION 'operations are append-only (recorded facts cannot be updated)'
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$`;
}

export class SemanticMemory1796100000000 implements MigrationInterface {
  name = 'SemanticMemory1796100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE memory_items (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('PREFERENCE', 'PATTERN', 'FACT')),
        key text,
        text text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 1000),
        rule jsonb,
        embedding real[] NOT NULL,
        confidence real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
        evidence uuid[] NOT NULL DEFAULT '{}',
        active boolean NOT NULL DEFAULT true,
        uses integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        last_used_at timestamptz,
        expires_at timestamptz,
        PRIMARY KEY (user_id, id),
        CONSTRAINT memory_items_key_learned CHECK ((key IS NULL) = (kind = 'FACT'))
      )`);
    await q.query(
      `CREATE UNIQUE INDEX memory_items_user_key ON memory_items (user_id, key) WHERE key IS NOT NULL`,
    );
    // What the write path loads with its lock: a user's active learned items (usually none).
    await q.query(
      `CREATE INDEX memory_items_shaping_idx ON memory_items (user_id, confidence DESC) WHERE active AND kind <> 'FACT'`,
    );
    await q.query(
      `CREATE INDEX memory_items_expires_idx ON memory_items (expires_at) WHERE expires_at IS NOT NULL`,
    );
    await q.query(`
      CREATE TABLE memory_learner_cursors (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        event_seq bigint NOT NULL,
        updated_at timestamptz NOT NULL,
        PRIMARY KEY (user_id)
      )`);
    await q.query(guard(true));
    await q.query(
      `COMMENT ON FUNCTION operations_append_only() IS 'Append-only operation log: refuses UPDATE of recorded facts, TRUNCATE and DELETE, except the erasure of a whole account (planner forget), whose transaction sets planner.allow_user_erasure = on.'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`COMMENT ON FUNCTION operations_append_only() IS NULL`);
    await q.query(guard(false));
    await q.query(`DROP TABLE IF EXISTS memory_learner_cursors`);
    await q.query(`DROP INDEX IF EXISTS memory_items_expires_idx`);
    await q.query(`DROP INDEX IF EXISTS memory_items_shaping_idx`);
    await q.query(`DROP INDEX IF EXISTS memory_items_user_key`);
    await q.query(`DROP TABLE IF EXISTS memory_items`);
  }
}
