/**
 * Erasing a whole account (`planner forget --email`): the user's row and, by ON DELETE CASCADE,
 * every row keyed by the user — tasks, dependencies, goals, conflicts, the operation log, the
 * outbox, idempotency records, memory items and the learner's cursor, flag exposures and usage,
 * the account audit. The operation log is append-only (a trigger refuses DELETE); its guard allows
 * exactly this erasure when the transaction sets `planner.allow_user_erasure` (SET LOCAL: it ends
 * with the transaction). One transaction, under the user's row lock, so no operation of the user
 * interleaves.
 */
import type { DataSource } from 'typeorm';

/** The tables whose rows an account erasure removes (by cascade from users), for the report. */
export const USER_TABLES = [
  'tasks',
  'task_dependencies',
  'goals',
  'conflicts',
  'operations',
  'events',
  'idempotency_keys',
  'memory_items',
  'memory_learner_cursors',
  'experiment_exposures',
  'feature_usage',
  'user_auth_audit',
] as const;

/** Rows erased per table (null: no such user). */
export type ErasureReport = Record<(typeof USER_TABLES)[number], number>;

export async function eraseAccount(ds: DataSource, userId: string): Promise<ErasureReport | null> {
  const qr = ds.createQueryRunner();
  await qr.connect();
  try {
    await qr.startTransaction();
    const user = (await qr.query(`SELECT id FROM users WHERE id = $1 FOR UPDATE`, [userId])) as unknown[];
    if (user.length === 0) {
      await qr.rollbackTransaction();
      return null;
    }
    const counts = (await qr.query(
      `SELECT ${USER_TABLES.map((t) => `(SELECT count(*)::int FROM ${t} WHERE user_id = $1) AS ${t}`).join(', ')}`,
      [userId],
    )) as ErasureReport[];
    await qr.query(`SET LOCAL planner.allow_user_erasure = 'on'`);
    await qr.query(`DELETE FROM users WHERE id = $1`, [userId]);
    await qr.commitTransaction();
    return counts[0]!;
  } catch (err) {
    if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => undefined);
    throw err;
  } finally {
    await qr.release();
  }
}
