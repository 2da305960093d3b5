import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Indexes for the write path's hot look-ups, and one fewer index to maintain on every operation:
 * - the redo stack (`WHERE user_id = $1 AND redoable`, newest undo first): a partial index holding
 *   only redoable operations, so ending the redo stack on every ordinary operation no longer scans
 *   the user's whole audit trail;
 * - operations.target_operation_id (a self-reference, set on UNDO/REDO rows only): a partial index,
 *   without which deleting a user's operations checked every deleted row against the whole table
 *   (quadratic: 100k operations did not delete in minutes);
 * - the GIN index on operations.entities goes: its only reader names the operation blocking an
 *   undo (an error path), which reads the few operations after the target through
 *   operations_user_seq_key instead, while every operation paid for its GIN entries.
 */
export class WritePathIndexes1764900000000 implements MigrationInterface {
  name = 'WritePathIndexes1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE INDEX operations_user_redoable_idx ON operations (user_id, undone_by_seq DESC) WHERE redoable`,
    );
    await q.query(
      `CREATE INDEX operations_target_idx ON operations (target_operation_id) WHERE target_operation_id IS NOT NULL`,
    );
    await q.query(`DROP INDEX IF EXISTS operations_entities_idx`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX IF NOT EXISTS operations_entities_idx ON operations USING gin (entities)`);
    await q.query(`DROP INDEX IF EXISTS operations_target_idx`);
    await q.query(`DROP INDEX IF EXISTS operations_user_redoable_idx`);
  }
}
