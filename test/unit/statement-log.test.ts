/**
 * The statement-log check's rules (test/support/statement-log.ts), on hand-written statements: the
 * suite-wide check runs as a root after-all hook (test/support/statement-check.ts) over what the
 * whole run sent; these make sure it can fail and what it accepts.
 */
import { expect } from 'chai';
import { tablesTouched, unscopedReason, violations } from '../support/statement-log';

const USER_TABLES = new Set(['users', 'tasks', 'events', 'operations', 'task_dependencies']);

describe('statement log check (unit)', () => {
  it('finds the user tables a statement reads or writes, not names in strings or comments', () => {
    expect(
      tablesTouched('SELECT * FROM tasks t JOIN "public"."operations" o ON true', USER_TABLES),
    ).to.deep.equal(['operations', 'tasks']);
    expect(tablesTouched(`SELECT 'FROM tasks' AS x -- FROM events`, USER_TABLES)).to.deep.equal([]);
    expect(tablesTouched('SELECT * FROM rollout_metrics', USER_TABLES)).to.deep.equal([]);
  });

  it('accepts statements routed by user_id', () => {
    for (const sql of [
      'SELECT * FROM tasks WHERE user_id = $1 AND id = ANY($2::uuid[])',
      'SELECT * FROM tasks WHERE user_id = ANY ($1)',
      'DELETE FROM task_dependencies x WHERE x.user_id = $1',
      'INSERT INTO events (user_id, seq, topic) VALUES ($1, $2, $3)',
      'UPDATE users SET op_seq = $2 WHERE id = $1',
      'WITH t AS (UPDATE tasks SET title = $2 WHERE user_id = $1) SELECT 1',
      'ALTER TABLE tasks DROP CONSTRAINT tasks_pkey',
    ])
      expect(unscopedReason(sql, USER_TABLES), sql).to.equal(null);
  });

  it('refuses statements that would fan out to every shard', () => {
    expect(unscopedReason('SELECT * FROM tasks WHERE id = $1', USER_TABLES)).to.equal(
      'touches tasks without a user_id predicate',
    );
    expect(unscopedReason('SELECT count(*) FROM events', USER_TABLES)).to.match(/events without a user_id/);
    expect(unscopedReason('SELECT * FROM users WHERE lower(email) = lower($1)', USER_TABLES)).to.match(
      /users without/,
    );
    expect(unscopedReason('INSERT INTO tasks (id, title) VALUES ($1, $2)', USER_TABLES)).to.match(
      /tasks without/,
    );
    // users by id is routed only when users is the only user table touched
    expect(
      unscopedReason('SELECT * FROM users u JOIN tasks t ON t.id = $1 WHERE u.id = $2', USER_TABLES),
    ).to.match(/tasks, users/);
  });

  it('accepts a listed marker and refuses an unlisted one', () => {
    expect(unscopedReason('/* background:events-retention */ DELETE FROM events', USER_TABLES)).to.equal(
      null,
    );
    expect(unscopedReason('/* background:made-up */ DELETE FROM events', USER_TABLES)).to.equal(
      'marker "background:made-up" is not in UNSCOPED_ALLOW_LIST',
    );
    expect(unscopedReason('/* admin:rollout-report */ SELECT count(*) FROM events', USER_TABLES)).to.equal(
      null,
    );
    expect(unscopedReason('/* admin:made-up */ SELECT count(*) FROM events', USER_TABLES)).to.match(/not in/);
    // a marker not at the start does not count
    expect(unscopedReason('DELETE FROM events /* background:events-retention */', USER_TABLES)).to.match(
      /events without/,
    );
  });

  it('reports only application (and driver) statements, with the file that sent them', () => {
    const found = violations(USER_TABLES, [
      { origin: 'fixture', file: 'test/x.test.ts', sql: 'SELECT count(*) FROM tasks', count: 3 },
      { origin: 'migration', file: 'src/migrations/x.ts', sql: 'UPDATE tasks SET title = title', count: 1 },
      { origin: 'application', file: 'src/world/x.ts', sql: 'SELECT * FROM tasks WHERE id = $1', count: 2 },
    ]);
    expect(found).to.have.length(1);
    expect(found[0]).to.match(/^src\/world\/x\.ts ×2: touches tasks without a user_id predicate/);
  });
});
