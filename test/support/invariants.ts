/**
 * Checks on the stored data that must hold after ANY sequence of requests (model-based test, fuzzing,
 * fault tests), read straight from Postgres:
 *
 * - no row belongs to two users (ids are unique across users; dependencies, conflicts and idempotency
 *   records only point at rows of their own user);
 * - every operation has its changes (forward and inverse snapshots of the same entities) and its event
 *   in the outbox; every task and goal is the work of some recorded operation.
 *
 * Also a per-user fingerprint of everything a user owns, to prove that one user's requests leave
 * another user's data untouched.
 */
import { Client } from 'pg';

/** Runs `fn` with a short-lived client on `url`. */
export async function withClient<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: url, application_name: 'planner-test-invariants' });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

const CHECKS: Array<{ name: string; sql: string }> = [
  {
    name: 'a task id used by two users',
    sql: 'SELECT id::text AS id FROM tasks WHERE id IN (SELECT id FROM tasks WHERE user_id = ANY($1)) GROUP BY id HAVING count(DISTINCT user_id) > 1',
  },
  {
    name: 'a goal id used by two users',
    sql: 'SELECT id::text AS id FROM goals WHERE id IN (SELECT id FROM goals WHERE user_id = ANY($1)) GROUP BY id HAVING count(DISTINCT user_id) > 1',
  },
  {
    name: 'a conflict id used by two users',
    sql: 'SELECT id::text AS id FROM conflicts WHERE id IN (SELECT id FROM conflicts WHERE user_id = ANY($1)) GROUP BY id HAVING count(DISTINCT user_id) > 1',
  },
  {
    name: 'an operation id used by two users',
    sql: 'SELECT id::text AS id FROM operations WHERE id IN (SELECT id FROM operations WHERE user_id = ANY($1)) GROUP BY id HAVING count(DISTINCT user_id) > 1',
  },
  {
    name: "a dependency on another user's task",
    sql: `SELECT d.task_id::text AS id FROM task_dependencies d
          WHERE d.user_id = ANY($1) AND (NOT EXISTS (SELECT 1 FROM tasks t WHERE t.user_id = d.user_id AND t.id = d.task_id)
             OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.user_id = d.user_id AND t.id = d.depends_on_id))`,
  },
  {
    name: "a task in another user's goal",
    sql: `SELECT t.id::text AS id FROM tasks t WHERE t.user_id = ANY($1) AND t.goal_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM goals g WHERE g.user_id = t.user_id AND g.id = t.goal_id)`,
  },
  {
    name: "a conflict naming another user's task",
    sql: `SELECT c.id::text AS id FROM conflicts c, unnest(c.task_ids) AS tid
          WHERE c.user_id = ANY($1) AND EXISTS (SELECT 1 FROM tasks t WHERE t.id = tid AND t.user_id <> c.user_id)`,
  },
  {
    name: "an idempotency record pointing at another user's operation",
    sql: `SELECT k.key AS id FROM idempotency_keys k WHERE k.user_id = ANY($1) AND k.operation_id IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.user_id = k.user_id AND o.id = k.operation_id)`,
  },
  {
    name: 'an operation without its changes (forward and inverse of the same entities)',
    sql: `SELECT o.id::text AS id FROM operations o
          WHERE o.user_id = ANY($1) AND (jsonb_typeof(o.forward) <> 'array' OR jsonb_typeof(o.inverse) <> 'array'
             OR jsonb_array_length(o.forward) <> jsonb_array_length(o.inverse)
             OR (SELECT coalesce(array_agg(f->>'entity' || ':' || (f->>'id') ORDER BY 1), '{}') FROM jsonb_array_elements(o.forward) f)
                <> (SELECT coalesce(array_agg(i->>'entity' || ':' || (i->>'id') ORDER BY 1), '{}') FROM jsonb_array_elements(o.inverse) i))`,
  },
  {
    name: 'an operation without its event',
    sql: `SELECT o.id::text AS id FROM operations o
          WHERE o.user_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM events e WHERE e.user_id = o.user_id AND e.topic = 'plan'
                              AND e.payload->'operation'->>'id' = o.id::text)`,
  },
  {
    name: 'a task no recorded operation wrote',
    sql: `SELECT t.id::text AS id FROM tasks t
          WHERE t.user_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM operations o, jsonb_array_elements(o.forward) f
                            WHERE o.user_id = t.user_id AND f->>'entity' = 'Task' AND f->>'id' = t.id::text)`,
  },
  {
    name: 'a goal no recorded operation wrote',
    sql: `SELECT g.id::text AS id FROM goals g
          WHERE g.user_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM operations o, jsonb_array_elements(o.forward) f
                            WHERE o.user_id = g.user_id AND f->>'entity' = 'Goal' AND f->>'id' = g.id::text)`,
  },
  {
    name: 'a per-user event sequence with a gap or beyond the counter',
    sql: `SELECT u.id::text AS id FROM users u
          WHERE u.id = ANY($1) AND (SELECT count(*) FROM events e WHERE e.user_id = u.id) > 0
            AND ((SELECT max(seq) FROM events e WHERE e.user_id = u.id) > u.event_seq
              OR (SELECT max(seq) - min(seq) + 1 - count(*) FROM events e WHERE e.user_id = u.id) <> 0)`,
  },
];

/**
 * Every violated invariant among the rows of `userIds` (other tests' users are left out: some of them
 * delete events on purpose), as `<name>: <ids>`; empty when the stored data is consistent.
 */
export async function storedInvariantViolations(url: string, userIds: string[]): Promise<string[]> {
  return withClient(url, async (c) => {
    const out: string[] = [];
    for (const check of CHECKS) {
      const rows = (await c.query<{ id: string }>(check.sql, [userIds])).rows;
      if (rows.length > 0) {
        out.push(
          `${check.name}: ${rows
            .slice(0, 5)
            .map((r) => r.id)
            .join(', ')}`,
        );
      }
    }
    return out;
  });
}

/**
 * One SQL statement: a digest per user of everything the user owns (their users row, tasks,
 * dependencies, goals, conflicts, operation and event counts, idempotency records).
 */
export const FINGERPRINT_SQL = `
  SELECT u.id::text AS id, md5(concat_ws('|',
    row_to_json(u)::text,
    (SELECT string_agg(row_to_json(t)::text, ',' ORDER BY t.id) FROM tasks t WHERE t.user_id = u.id),
    (SELECT string_agg(d.task_id || '>' || d.depends_on_id, ',' ORDER BY d.task_id, d.depends_on_id)
       FROM task_dependencies d WHERE d.user_id = u.id),
    (SELECT string_agg(row_to_json(g)::text, ',' ORDER BY g.id) FROM goals g WHERE g.user_id = u.id),
    (SELECT string_agg(row_to_json(c)::text, ',' ORDER BY c.id) FROM conflicts c WHERE c.user_id = u.id),
    (SELECT count(*) || ':' || coalesce(max(seq), 0) FROM operations o WHERE o.user_id = u.id),
    (SELECT count(*) || ':' || coalesce(max(seq), 0) FROM events e WHERE e.user_id = u.id),
    (SELECT string_agg(k.key, ',' ORDER BY k.key) FROM idempotency_keys k WHERE k.user_id = u.id)
  )) AS digest
  FROM users u WHERE u.id = ANY($1::uuid[])`;

/** Fingerprints of the given users (see FINGERPRINT_SQL), by user id. */
export async function fingerprints(c: Client, userIds: string[]): Promise<Map<string, string>> {
  const rows = (await c.query<{ id: string; digest: string }>(FINGERPRINT_SQL, [userIds])).rows;
  return new Map(rows.map((r) => [r.id, r.digest]));
}
