/**
 * Helpers of the operations tests (migrations, backup/restore, verify, check): a plan seeded
 * through the API, every table's count and checksum, a user's plan as the API serves it.
 */
import { expect } from 'chai';
import { Client } from 'pg';
import {
  listTables,
  setCanonicalSession,
  tableChecksum,
  type Query,
  type TableChecksum,
} from '../../src/db/catalog';
import { gql } from './graphql';
import type { TestServer } from './server';

async function ok<T = Record<string, any>>( // eslint-disable-line @typescript-eslint/no-explicit-any
  server: TestServer,
  token: string,
  query: string,
  variables?: Record<string, unknown>,
): Promise<T> {
  const r = await gql<T>(server.url, token, query, variables);
  expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
  return r.data!;
}

const RESULT = 'ok operation { id } task { id } goal { id } conflicts { id kind }';

/**
 * Seeds `users` users through the API: per user a goal, scheduled tasks of which two overlap (an
 * open conflict), a dependency, a completed task, an undo and a redo, a deletion, and an undone
 * creation (redo stack). Returns the users' emails.
 */
export async function seedPlan(server: TestServer, users = 2, tag = 'seed'): Promise<string[]> {
  const emails: string[] = [];
  for (let u = 0; u < users; u++) {
    const email = `${tag}-${u}@example.com`;
    emails.push(email);
    const token = await server.token(email);
    const goal = await ok(
      server,
      token,
      `mutation { createGoal(input: { title: "Goal ${u}" }) { ${RESULT} } }`,
    );
    const goalId = goal['createGoal'].goal.id as string;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const start = new Date(Date.UTC(2031, 0, 6 + i, 9 + (i % 2), 0));
      const end = new Date(start.getTime() + 90 * 60_000);
      const r = await ok(
        server,
        token,
        `mutation ($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
        {
          input: {
            title: `Task ${u}.${i} — "quoted", back\\slash, (parens), comma`,
            notes: i === 0 ? 'line one\nline two\ttab' : null,
            priority: 'HIGH',
            estimateMinutes: 60,
            scheduledStart: start.toISOString(),
            scheduledEnd: end.toISOString(),
            tags: ['a', 'b c', `t${i}`],
            goalId: i < 3 ? goalId : null,
            dependsOn: i === 2 ? [ids[0]] : null,
          },
        },
      );
      ids.push(r['createTask'].task.id as string);
    }
    // Overlap with task 0: an open conflict.
    await ok(
      server,
      token,
      `mutation ($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
      {
        input: {
          title: 'Overlapping',
          scheduledStart: '2031-01-06T09:30:00.000Z',
          scheduledEnd: '2031-01-06T10:00:00.000Z',
        },
      },
    );
    await ok(server, token, `mutation ($id: ID!) { completeTask(id: $id) { ok } }`, { id: ids[1] });
    await ok(server, token, `mutation ($id: ID!) { deleteTask(id: $id) { ok } }`, { id: ids[4] });
    await ok(server, token, `mutation { undo { ok } }`);
    await ok(server, token, `mutation { redo { ok } }`);
    await ok(server, token, `mutation { createTask(input: { title: "Undone" }) { ok } }`);
    await ok(server, token, `mutation { undo { ok } }`);
  }
  return emails;
}

/** A user's plan as the API serves it (tasks, conflicts, undo state). */
export async function planOf(server: TestServer, email: string): Promise<unknown> {
  const token = await server.token(email);
  return ok(
    server,
    token,
    `{ me { id email }
       tasks(first: 100) { edges { node { id title notes status priority scheduledStart scheduledEnd tags version } } }
       conflicts(first: 100) { edges { node { id kind status message } } }
       undoState { canUndo canRedo depth nextUndo { id seq kind } } }`,
  );
}

/** Every table of the database at `url` (migrations table aside) → row count and checksum. */
export async function tableChecksums(url: string): Promise<Record<string, TableChecksum>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const q: Query = async (sql, params) => (await client.query(sql, params as unknown[])).rows;
    await q('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await setCanonicalSession(q);
    const out: Record<string, TableChecksum> = {};
    for (const t of await listTables(q)) out[t.name] = await tableChecksum(q, t.name, t.columns);
    await q('COMMIT');
    return out;
  } finally {
    await client.end();
  }
}
