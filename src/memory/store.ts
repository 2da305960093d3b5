/**
 * Memory storage rules shared by the write path, the learner and the operator commands: the order
 * of usefulness that eviction keeps, the per-user cap, the TTL sweep and the resource figures.
 * Background statements here (sweep, totals) span users; request-path statements carry `user_id = $1`.
 */
import type { DataSource } from 'typeorm';

/**
 * The order of usefulness, most useful first, that the per-user cap keeps: active items before the
 * not-yet-confirmed learned ones, then the most used, the most recently used or confirmed, the most
 * confident. An SQL ORDER BY over memory_items.
 */
export const MOST_USEFUL_FIRST = `active DESC, uses DESC, COALESCE(last_used_at, updated_at) DESC, confidence DESC, id`;

/** Rows deleted per statement by the sweep (short statements, no long locks). */
const SWEEP_BATCH = 5000;

type Query = (sql: string, params?: unknown[]) => Promise<unknown>;

/** Deletes every memory item past its expiry (all users), in batches. Returns how many. */
export async function sweepExpired(query: Query, now: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const res = (await query(
      `/* background:learner */ WITH doomed AS (SELECT user_id, id FROM memory_items WHERE expires_at <= $1 LIMIT ${SWEEP_BATCH})
       DELETE FROM memory_items m USING doomed WHERE m.user_id = doomed.user_id AND m.id = doomed.id RETURNING 1 AS x`,
      [now],
    )) as unknown;
    const n = rowCount(res);
    total += n;
    if (n < SWEEP_BATCH) return total;
  }
}

/** Evicts a user's least useful items beyond `maxItems`. Returns how many. */
export async function capUser(query: Query, userId: string, maxItems: number): Promise<number> {
  const res = await query(
    `DELETE FROM memory_items WHERE user_id = $1 AND id IN (
       SELECT id FROM memory_items WHERE user_id = $1 ORDER BY ${MOST_USEFUL_FIRST} OFFSET $2) RETURNING 1 AS x`,
    [userId, maxItems],
  );
  return rowCount(res);
}

/** Items held and their bytes (text, rule, evidence and embedding as stored), all users. */
export async function memoryTotals(ds: DataSource): Promise<{ items: number; bytes: number }> {
  const rows = (await ds.query(
    `/* background:memory-metrics */ SELECT count(*)::float8 AS items, COALESCE(sum(pg_column_size(m.*)), 0)::float8 AS bytes FROM memory_items m`,
  )) as Array<{ items: number; bytes: number }>;
  return { items: Number(rows[0]!.items), bytes: Number(rows[0]!.bytes) };
}

/** Rows of a DELETE … RETURNING (pg answers `{ rows }`, TypeORM answers `[rows, count]`). */
function rowCount(res: unknown): number {
  if (Array.isArray(res)) return Array.isArray(res[0]) ? res[0].length : res.length;
  const rows = (res as { rows?: unknown[] } | null)?.rows;
  return rows ? rows.length : 0;
}
