import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Foundation schema: users, goals, tasks, task dependencies, the operation log (audit trail and
 * undo/redo source), conflicts, the event outbox and idempotency keys.
 * Every user-owned table carries user_id and is keyed so that it can later be distributed by user.
 */
export class Foundation1764140000000 implements MigrationInterface {
  name = 'Foundation1764140000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS btree_gist`);
    await q.query(
      `CREATE TYPE task_status AS ENUM ('BACKLOG','TODO','SCHEDULED','IN_PROGRESS','DONE','CANCELLED')`,
    );
    await q.query(`CREATE TYPE task_priority AS ENUM ('LOW','MEDIUM','HIGH','URGENT')`);
    await q.query(`CREATE TYPE goal_status AS ENUM ('ACTIVE','PAUSED','ACHIEVED','ABANDONED')`);
    await q.query(
      `CREATE TYPE conflict_kind AS ENUM ('OVERLAP','OVER_CAPACITY','PAST_DUE','DEPENDENCY_ORDER','OUTSIDE_WORKING_HOURS')`,
    );
    await q.query(`CREATE TYPE conflict_status AS ENUM ('OPEN','RESOLVED','DISMISSED')`);
    await q.query(`CREATE TYPE operation_state AS ENUM ('APPLIED','UNDONE')`);

    await q.query(`
      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email text NOT NULL CHECK (char_length(email) BETWEEN 3 AND 320),
        display_name text NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 200),
        time_zone text NOT NULL DEFAULT 'UTC',
        working_hours jsonb NOT NULL,
        daily_capacity_minutes integer NOT NULL DEFAULT 480 CHECK (daily_capacity_minutes BETWEEN 1 AND 1440),
        role text NOT NULL DEFAULT 'USER' CHECK (role IN ('USER','ADMIN')),
        op_seq bigint NOT NULL DEFAULT 0,
        event_seq bigint NOT NULL DEFAULT 0,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email))`);

    await q.query(`
      CREATE TABLE goals (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
        status goal_status NOT NULL DEFAULT 'ACTIVE',
        priority task_priority NOT NULL DEFAULT 'MEDIUM',
        target_date timestamptz,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT goals_user_id_id_key UNIQUE (user_id, id)
      )`);
    await q.query(`CREATE INDEX goals_user_created_idx ON goals (user_id, created_at, id)`);

    await q.query(`
      CREATE TABLE tasks (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        title text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
        notes text CHECK (char_length(notes) <= 10000),
        status task_status NOT NULL DEFAULT 'BACKLOG',
        priority task_priority NOT NULL DEFAULT 'MEDIUM',
        estimate_minutes integer CHECK (estimate_minutes BETWEEN 1 AND 1440),
        due_at timestamptz,
        scheduled_start timestamptz,
        scheduled_end timestamptz,
        tags text[] NOT NULL DEFAULT '{}',
        goal_id uuid,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT tasks_user_id_id_key UNIQUE (user_id, id),
        CONSTRAINT tasks_schedule_both_or_neither CHECK ((scheduled_start IS NULL) = (scheduled_end IS NULL)),
        CONSTRAINT tasks_schedule_order CHECK (scheduled_end > scheduled_start),
        CONSTRAINT tasks_goal_fk FOREIGN KEY (user_id, goal_id) REFERENCES goals (user_id, id)
      )`);
    await q.query(`CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at, id)`);
    await q.query(`CREATE INDEX tasks_user_status_idx ON tasks (user_id, status)`);
    await q.query(`CREATE INDEX tasks_user_due_idx ON tasks (user_id, due_at) WHERE due_at IS NOT NULL`);
    await q.query(`CREATE INDEX tasks_user_goal_idx ON tasks (user_id, goal_id) WHERE goal_id IS NOT NULL`);
    await q.query(`CREATE INDEX tasks_tags_idx ON tasks USING gin (tags)`);
    // Overlap lookups: (user_id, [start, end)) in one GiST index (btree_gist supplies uuid equality).
    await q.query(
      `CREATE INDEX tasks_user_schedule_gist ON tasks USING gist (user_id, tstzrange(scheduled_start, scheduled_end, '[)'))
       WHERE scheduled_start IS NOT NULL`,
    );

    await q.query(`
      CREATE TABLE task_dependencies (
        user_id uuid NOT NULL,
        task_id uuid NOT NULL,
        depends_on_id uuid NOT NULL,
        PRIMARY KEY (task_id, depends_on_id),
        CONSTRAINT task_dependencies_not_self CHECK (task_id <> depends_on_id),
        CONSTRAINT task_dependencies_task_fk FOREIGN KEY (user_id, task_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE,
        CONSTRAINT task_dependencies_dep_fk FOREIGN KEY (user_id, depends_on_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE
      )`);
    await q.query(`CREATE INDEX task_dependencies_dep_idx ON task_dependencies (user_id, depends_on_id)`);

    await q.query(`
      CREATE TABLE operations (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        actor text NOT NULL,
        kind text NOT NULL,
        input jsonb NOT NULL,
        forward jsonb NOT NULL,
        inverse jsonb NOT NULL,
        entities text[] NOT NULL DEFAULT '{}',
        target_operation_id uuid REFERENCES operations(id),
        trace_id text,
        flags jsonb NOT NULL DEFAULT '[]',
        created_at timestamptz NOT NULL,
        state operation_state NOT NULL DEFAULT 'APPLIED',
        state_changed_at timestamptz,
        undone_by_seq bigint,
        redoable boolean NOT NULL DEFAULT false,
        CONSTRAINT operations_user_seq_key UNIQUE (user_id, seq)
      )`);
    await q.query(`CREATE INDEX operations_entities_idx ON operations USING gin (entities)`);
    // Append-only audit trail: the recorded facts never change; only the undo state columns move
    // (state, state_changed_at, undone_by_seq, redoable). Every other column, including any added
    // later, is protected; the history of undo/redo lives in the UNDO/REDO rows themselves.
    await q.query(`
      CREATE FUNCTION operations_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'DELETE' THEN
          IF current_setting('planner.allow_user_erasure', true) = 'on' THEN
            RETURN OLD;
          END IF;
          RAISE EXCEPTION 'operations are append-only (DELETE refused)' USING ERRCODE = 'insufficient_privilege';
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
      END $$`);
    await q.query(`
      CREATE TRIGGER operations_append_only BEFORE UPDATE OR DELETE ON operations
      FOR EACH ROW EXECUTE FUNCTION operations_append_only()`);
    await q.query(`
      CREATE TRIGGER operations_no_truncate BEFORE TRUNCATE ON operations
      FOR EACH STATEMENT EXECUTE FUNCTION operations_append_only()`);

    await q.query(`
      CREATE TABLE conflicts (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind conflict_kind NOT NULL,
        key text NOT NULL,
        status conflict_status NOT NULL DEFAULT 'OPEN',
        message text NOT NULL,
        task_ids uuid[] NOT NULL,
        alternatives jsonb NOT NULL DEFAULT '[]',
        chosen_alternative_id text,
        detected_at timestamptz NOT NULL,
        closed_at timestamptz,
        active boolean NOT NULL DEFAULT true,
        version integer NOT NULL DEFAULT 1
      )`);
    await q.query(`CREATE UNIQUE INDEX conflicts_open_key ON conflicts (user_id, key) WHERE status = 'OPEN'`);
    await q.query(
      `CREATE INDEX conflicts_user_status_idx ON conflicts (user_id, status, detected_at DESC, id)`,
    );
    await q.query(`CREATE INDEX conflicts_task_ids_idx ON conflicts USING gin (task_ids)`);

    await q.query(`
      CREATE TABLE events (
        id bigserial PRIMARY KEY,
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        seq bigint NOT NULL,
        topic text NOT NULL,
        type text NOT NULL,
        payload jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        CONSTRAINT events_user_seq_key UNIQUE (user_id, seq)
      )`);
    await q.query(`CREATE INDEX events_created_idx ON events (created_at)`);

    await q.query(`
      CREATE TABLE idempotency_keys (
        user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        key text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
        request_hash text NOT NULL,
        operation_id uuid,
        result jsonb NOT NULL,
        created_at timestamptz NOT NULL,
        PRIMARY KEY (user_id, key)
      )`);
    await q.query(`CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS idempotency_keys`);
    await q.query(`DROP TABLE IF EXISTS events`);
    await q.query(`DROP TABLE IF EXISTS conflicts`);
    await q.query(`DROP TABLE IF EXISTS operations`);
    await q.query(`DROP FUNCTION IF EXISTS operations_append_only()`);
    await q.query(`DROP TABLE IF EXISTS task_dependencies`);
    await q.query(`DROP TABLE IF EXISTS tasks`);
    await q.query(`DROP TABLE IF EXISTS goals`);
    await q.query(`DROP TABLE IF EXISTS users`);
    await q.query(`DROP TYPE IF EXISTS operation_state`);
    await q.query(`DROP TYPE IF EXISTS conflict_status`);
    await q.query(`DROP TYPE IF EXISTS conflict_kind`);
    await q.query(`DROP TYPE IF EXISTS goal_status`);
    await q.query(`DROP TYPE IF EXISTS task_priority`);
    await q.query(`DROP TYPE IF EXISTS task_status`);
  }
}
