import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Scale-out keys: every table keyed by user carries user_id in its PRIMARY KEY, in every unique
 * constraint and in every foreign key, so the tables can be distributed on Citus colocated by
 * user_id without a rewrite (docs/scaling.md). Before: tasks, goals, operations, conflicts, events
 * and user_auth_audit had PRIMARY KEY (id); task_dependencies was keyed (task_id, depends_on_id);
 * operations.target_operation_id referenced operations (id) alone.
 *
 * tasks and goals already had UNIQUE (user_id, id) for their composite foreign keys: the new
 * primary key takes that role, so the unique constraint goes (one index fewer per write). The
 * foreign keys that used it are dropped first and recreated against the new primary key.
 * Data is untouched: every statement is a constraint change (validated against the existing rows).
 */
export class CitusKeys1796120000000 implements MigrationInterface {
  name = 'CitusKeys1796120000000';

  async up(q: QueryRunner): Promise<void> {
    await dropForeignKeys(q, 'operations_target_operation_id_fkey');

    for (const t of ['goals', 'tasks']) {
      await q.query(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_pkey`);
      await q.query(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_user_id_id_key`);
      await q.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_pkey PRIMARY KEY (user_id, id)`);
    }
    await q.query(`ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_pkey`);
    await q.query(
      `ALTER TABLE task_dependencies ADD CONSTRAINT task_dependencies_pkey PRIMARY KEY (user_id, task_id, depends_on_id)`,
    );
    for (const t of USER_ID_KEYED) {
      await q.query(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_pkey`);
      await q.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_pkey PRIMARY KEY (user_id, id)`);
    }

    await addTaskForeignKeys(q);
    await q.query(
      `ALTER TABLE operations ADD CONSTRAINT operations_target_operation_fk
       FOREIGN KEY (user_id, target_operation_id) REFERENCES operations (user_id, id)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await dropForeignKeys(q, 'operations_target_operation_fk');

    for (const t of [...USER_ID_KEYED].reverse()) {
      await q.query(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_pkey`);
      await q.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_pkey PRIMARY KEY (id)`);
    }
    await q.query(`ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_pkey`);
    await q.query(
      `ALTER TABLE task_dependencies ADD CONSTRAINT task_dependencies_pkey PRIMARY KEY (task_id, depends_on_id)`,
    );
    for (const t of ['tasks', 'goals']) {
      await q.query(`ALTER TABLE ${t} DROP CONSTRAINT ${t}_pkey`);
      await q.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_pkey PRIMARY KEY (id)`);
      await q.query(`ALTER TABLE ${t} ADD CONSTRAINT ${t}_user_id_id_key UNIQUE (user_id, id)`);
    }

    await addTaskForeignKeys(q);
    await q.query(
      `ALTER TABLE operations ADD CONSTRAINT operations_target_operation_id_fkey
       FOREIGN KEY (target_operation_id) REFERENCES operations (id)`,
    );
  }
}

/** Tables whose primary key moves from (id) to (user_id, id) with nothing depending on it but FKs. */
const USER_ID_KEYED = ['operations', 'conflicts', 'events', 'user_auth_audit'];

/** Drops the foreign keys that depend on the keys being replaced (the operations one by name). */
async function dropForeignKeys(q: QueryRunner, operationsFk: string): Promise<void> {
  await q.query(`ALTER TABLE operations DROP CONSTRAINT ${operationsFk}`);
  await q.query(`ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_dep_fk`);
  await q.query(`ALTER TABLE task_dependencies DROP CONSTRAINT task_dependencies_task_fk`);
  await q.query(`ALTER TABLE tasks DROP CONSTRAINT tasks_goal_fk`);
}

/** The composite foreign keys among goals, tasks and task_dependencies, exactly as Foundation made them. */
async function addTaskForeignKeys(q: QueryRunner): Promise<void> {
  await q.query(
    `ALTER TABLE tasks ADD CONSTRAINT tasks_goal_fk FOREIGN KEY (user_id, goal_id) REFERENCES goals (user_id, id)`,
  );
  await q.query(
    `ALTER TABLE task_dependencies ADD CONSTRAINT task_dependencies_task_fk
     FOREIGN KEY (user_id, task_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE`,
  );
  await q.query(
    `ALTER TABLE task_dependencies ADD CONSTRAINT task_dependencies_dep_fk
     FOREIGN KEY (user_id, depends_on_id) REFERENCES tasks (user_id, id) ON DELETE CASCADE`,
  );
}
