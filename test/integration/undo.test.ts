/**
 * The operation log, undo/redo and idempotency, through the public GraphQL API (plus the database
 * itself for the append-only guarantee, and the world for actors GraphQL cannot yet express).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { ManualClock } from '../../src/world/clock';
import type { Actor } from '../../src/world/views';
import { testDatabaseUrl } from '../support/db';
import { gql } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const TASK = `id title notes status priority estimateMinutes dueAt scheduledStart scheduledEnd tags version
  goal { id } dependsOn { id } createdAt updatedAt`;
const OP = 'id seq kind actor state createdAt target { id seq kind state }';
const RESULT = `ok replayed errors { code message path } warnings
  operation { ${OP} }
  task { ${TASK} }
  goal { id }
  changes { entity id field before after }
  conflicts { id kind status }
  undo { canUndo canRedo depth nextUndo { id seq kind } }`;

interface Op {
  id: string;
  seq: number;
  kind: string;
  actor: string;
  state: string;
  createdAt: string;
  target: { id: string; seq: number; kind: string; state: string } | null;
}
interface TaskData {
  id: string;
  title: string;
  version: number;
  updatedAt: string;
  goal: { id: string } | null;
  dependsOn: Array<{ id: string }>;
  [k: string]: unknown;
}
interface Result {
  ok: boolean;
  replayed: boolean;
  errors: Array<{ code: string; message: string; path: string[] | null }>;
  operation: Op | null;
  task: TaskData | null;
  goal: { id: string } | null;
  changes: Array<{ entity: string; id: string; field: string; before: unknown; after: unknown }>;
  conflicts: Array<{ id: string; kind: string; status: string }>;
  undo: {
    canUndo: boolean;
    canRedo: boolean;
    depth: number;
    nextUndo: { id: string; seq: number; kind: string } | null;
  };
}

/** A task as the user sees it, minus the bookkeeping that moves forward on undo (version, updatedAt). */
function content(t: TaskData | null): Record<string, unknown> | null {
  if (t === null) return null;
  const { version: _v, updatedAt: _u, ...rest } = t;
  return rest;
}

/** A GraphQL client for one server. */
function client(server: () => TestServer) {
  async function mutate(
    token: string,
    field: string,
    decl: string,
    call: string,
    variables: Record<string, unknown> = {},
  ): Promise<Result> {
    const r = await gql<{ r: Result }>(
      server().url,
      token,
      `mutation${decl ? `(${decl})` : ''} { r: ${field}${call ? `(${call})` : ''} { ${RESULT} } }`,
      variables,
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.r;
  }
  const api = {
    mutate,
    createTask: (token: string, input: Record<string, unknown>, key?: string) =>
      mutate(
        token,
        'createTask',
        '$input: CreateTaskInput!, $key: String',
        'input: $input, idempotencyKey: $key',
        { input, key },
      ),
    updateTask: (
      token: string,
      id: string,
      input: Record<string, unknown>,
      expectedVersion?: number,
      key?: string,
    ) =>
      mutate(
        token,
        'updateTask',
        '$id: ID!, $input: UpdateTaskInput!, $v: Int, $key: String',
        'id: $id, input: $input, expectedVersion: $v, idempotencyKey: $key',
        {
          id,
          input,
          v: expectedVersion,
          key,
        },
      ),
    scheduleTask: (token: string, id: string, start: string, end: string) =>
      mutate(token, 'scheduleTask', '$id: ID!, $s: DateTime!, $e: DateTime', 'id: $id, start: $s, end: $e', {
        id,
        s: start,
        e: end,
      }),
    deleteTask: (token: string, id: string) => mutate(token, 'deleteTask', '$id: ID!', 'id: $id', { id }),
    createGoal: (token: string, title: string) =>
      mutate(token, 'createGoal', '$t: String!', 'input: { title: $t }', { t: title }),
    undo: (token: string, operationId?: string | null) =>
      mutate(token, 'undo', '$id: ID', 'operationId: $id', { id: operationId ?? null }),
    redo: (token: string) => mutate(token, 'redo', '', ''),
    async task(token: string, id: string): Promise<TaskData | null> {
      const r = await gql<{ task: TaskData | null }>(
        server().url,
        token,
        `query($id: ID!) { task(id: $id) { ${TASK} } }`,
        { id },
      );
      expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
      return r.data!.task;
    },
    async operations(token: string, first = 100): Promise<Op[]> {
      const r = await gql<{ operations: { edges: Array<{ node: Op }> } }>(
        server().url,
        token,
        `query($first: Int) { operations(first: $first) { edges { node { ${OP} } } } }`,
        { first },
      );
      expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
      return r.data!.operations.edges.map((e) => e.node);
    },
    async taskCount(token: string): Promise<number> {
      const r = await gql<{ tasks: { edges: unknown[] } }>(
        server().url,
        token,
        `{ tasks(first: 100) { edges { cursor } } }`,
      );
      return r.data!.tasks.edges.length;
    },
    async me(token: string): Promise<string> {
      const r = await gql<{ me: { id: string } }>(server().url, token, `{ me { id } }`);
      return r.data!.me.id;
    },
    async undoState(token: string): Promise<Result['undo']> {
      const r = await gql<{ undoState: Result['undo'] }>(
        server().url,
        token,
        `{ undoState { canUndo canRedo depth nextUndo { id seq kind } } }`,
      );
      return r.data!.undoState;
    },
  };
  return api;
}

function expectError(r: Result, code: string, path?: string[] | null): Result['errors'][number] {
  expect(r.ok, JSON.stringify(r.errors)).to.equal(false);
  expect(r.operation).to.equal(null);
  expect(r.errors[0]!.code, JSON.stringify(r.errors)).to.equal(code);
  if (path !== undefined) expect(r.errors[0]!.path).to.deep.equal(path);
  return r.errors[0]!;
}

describe('undo, redo, the audit trail and idempotent retries (GraphQL)', function () {
  let server: TestServer;
  const api = client(() => server);
  const fresh = (name: string) => server.token(`${name}-${randomUUID()}@example.com`);

  before(async () => {
    server = await startTestServer();
  });
  after(async () => server?.close());

  describe('the done-when scenario', () => {
    it('create, edit, delete, undo ×3 restores each earlier state with the same id; redo re-applies; the trail lists all six with actors', async () => {
      const alice = await fresh('alice');
      const aliceId = await api.me(alice);

      const created = await api.createTask(alice, {
        title: 'Write the report',
        notes: 'quarterly numbers',
        priority: 'HIGH',
        estimateMinutes: 45,
        dueAt: '2030-03-08T17:00:00Z',
        tags: ['work', 'writing'],
      });
      expect(created.ok).to.equal(true);
      expect(created.undo).to.deep.include({ canUndo: true, canRedo: false, depth: 1 });
      expect(created.undo.nextUndo!.id).to.equal(created.operation!.id);
      const original = created.task!;

      const edited = await api.updateTask(
        alice,
        original.id,
        { title: 'Write the final report', priority: 'LOW', notes: null, tags: ['x'] },
        1,
      );
      expect(edited.ok, JSON.stringify(edited.errors)).to.equal(true);
      expect(edited.undo.depth).to.equal(2);
      const afterEdit = edited.task!;

      const deleted = await api.deleteTask(alice, original.id);
      expect(deleted.ok).to.equal(true);
      expect(deleted.undo.depth).to.equal(3);
      expect(await api.task(alice, original.id)).to.equal(null);

      const u1 = await api.undo(alice);
      expect(u1.ok, JSON.stringify(u1.errors)).to.equal(true);
      expect(u1.operation!.kind).to.equal('UNDO');
      expect(u1.operation!.target).to.deep.include({
        id: deleted.operation!.id,
        kind: 'DELETE_TASK',
        state: 'UNDONE',
      });
      expect(u1.undo).to.deep.include({ canUndo: true, canRedo: true, depth: 2 });
      const back = await api.task(alice, original.id);
      expect(content(back)).to.deep.equal(content(afterEdit));
      expect(back!.version).to.be.greaterThan(afterEdit.version); // versions only move forward

      const u2 = await api.undo(alice);
      expect(u2.ok, JSON.stringify(u2.errors)).to.equal(true);
      expect(u2.operation!.target!.id).to.equal(edited.operation!.id);
      expect(content(await api.task(alice, original.id))).to.deep.equal(content(original));
      expect(content(u2.task)).to.deep.equal(content(original));

      const u3 = await api.undo(alice);
      expect(u3.ok, JSON.stringify(u3.errors)).to.equal(true);
      expect(u3.operation!.target!.id).to.equal(created.operation!.id);
      expect(await api.task(alice, original.id)).to.equal(null);
      expect(u3.undo).to.deep.include({ canUndo: false, canRedo: true, depth: 0, nextUndo: null });

      const trail = await api.operations(alice);
      expect(trail.map((o) => o.seq)).to.deep.equal([6, 5, 4, 3, 2, 1]);
      expect(trail.map((o) => o.kind)).to.deep.equal([
        'UNDO',
        'UNDO',
        'UNDO',
        'DELETE_TASK',
        'UPDATE_TASK',
        'CREATE_TASK',
      ]);
      expect(trail.map((o) => o.state)).to.deep.equal([
        'APPLIED',
        'APPLIED',
        'APPLIED',
        'UNDONE',
        'UNDONE',
        'UNDONE',
      ]);
      for (const o of trail) expect(o.actor).to.equal(`user:${aliceId}`);
      expect(trail.slice(0, 3).map((o) => o.target!.id)).to.deep.equal(
        [created, edited, deleted].map((r) => r.operation!.id),
      );

      const r1 = await api.redo(alice);
      expect(r1.ok, JSON.stringify(r1.errors)).to.equal(true);
      expect(r1.operation!.kind).to.equal('REDO');
      expect(r1.operation!.target!.id).to.equal(created.operation!.id);
      expect(content(await api.task(alice, original.id))).to.deep.equal(content(original));
      const r2 = await api.redo(alice);
      expect(r2.operation!.target!.id).to.equal(edited.operation!.id);
      expect(content(await api.task(alice, original.id))).to.deep.equal(content(afterEdit));
      const r3 = await api.redo(alice);
      expect(r3.operation!.target!.id).to.equal(deleted.operation!.id);
      expect(await api.task(alice, original.id)).to.equal(null);
      expect(r3.undo).to.deep.include({ canUndo: true, canRedo: false, depth: 3 });
      const none = await api.redo(alice);
      expectError(none, 'NOTHING_TO_REDO');
      expect(none.undo).to.deep.include({ canUndo: true, canRedo: false, depth: 3 }); // failures carry the undo state too

      const after = await api.operations(alice);
      expect(after.map((o) => o.kind)).to.deep.equal([
        'REDO',
        'REDO',
        'REDO',
        'UNDO',
        'UNDO',
        'UNDO',
        'DELETE_TASK',
        'UPDATE_TASK',
        'CREATE_TASK',
      ]);
      expect(after.slice(6).map((o) => o.state)).to.deep.equal(['APPLIED', 'APPLIED', 'APPLIED']);

      // operations(first, after) pages through the same trail, newest first.
      const seqs: number[][] = [];
      let cursor: string | null = null;
      for (;;) {
        const page: {
          data?: {
            operations: {
              edges: Array<{ node: { seq: number } }>;
              pageInfo: { hasNextPage: boolean; endCursor: string | null };
            };
          };
        } = await gql(
          server.url,
          alice,
          `query($a: String) { operations(first: 4, after: $a) { edges { node { seq } } pageInfo { hasNextPage endCursor } } }`,
          {
            a: cursor,
          },
        );
        seqs.push(page.data!.operations.edges.map((e) => e.node.seq));
        if (!page.data!.operations.pageInfo.hasNextPage) break;
        cursor = page.data!.operations.pageInfo.endCursor;
      }
      expect(seqs).to.deep.equal([[9, 8, 7, 6], [5, 4, 3, 2], [1]]);
    });

    it('brings a deleted task back with the same id, goal, dependencies and dependents', async () => {
      const t = await fresh('deps');
      const goalId = (await api.createGoal(t, 'Ship it')).goal!.id;
      const dep = (await api.createTask(t, { title: 'Prerequisite' })).task!;
      const main = (
        await api.createTask(t, {
          title: 'Main',
          goalId,
          dependsOn: [dep.id],
          tags: ['a'],
          estimateMinutes: 30,
        })
      ).task!;
      const dependent = (await api.createTask(t, { title: 'Follow-up', dependsOn: [main.id] })).task!;
      expect(main.goal).to.deep.equal({ id: goalId });
      expect(main.dependsOn).to.deep.equal([{ id: dep.id }]);

      const del = await api.deleteTask(t, main.id);
      expect(del.ok).to.equal(true);
      expect((await api.task(t, dependent.id))!.dependsOn).to.deep.equal([]);

      const undo = await api.undo(t);
      expect(undo.ok, JSON.stringify(undo.errors)).to.equal(true);
      const restored = await api.task(t, main.id);
      expect(content(restored)).to.deep.equal(content(main));
      expect(restored!.goal).to.deep.equal({ id: goalId });
      expect(restored!.dependsOn).to.deep.equal([{ id: dep.id }]);
      expect((await api.task(t, dependent.id))!.dependsOn).to.deep.equal([{ id: main.id }]);
    });
  });

  describe('undo rules', () => {
    it('answers UNDO_BLOCKED naming the later operation that changed the same entity, and writes nothing', async () => {
      const t = await fresh('blocked');
      const task = (await api.createTask(t, { title: 'Plan' })).task!;
      const a = await api.updateTask(t, task.id, { title: 'Plan A' });
      const b = await api.updateTask(t, task.id, { priority: 'URGENT' });
      const before = await api.operations(t);

      const r = await api.undo(t, a.operation!.id);
      const e = expectError(r, 'UNDO_BLOCKED', ['operationId']);
      expect(e.message).to.contain(`#${b.operation!.seq}`);
      expect(e.message).to.contain(b.operation!.id);
      const now = await api.task(t, task.id);
      expect(now).to.deep.include({ title: 'Plan A', priority: 'URGENT', version: b.task!.version });
      expect(await api.operations(t)).to.deep.equal(before);

      // Undo the blocker first, then the original is clean.
      expect((await api.undo(t)).ok).to.equal(true);
      const again = await api.undo(t, a.operation!.id);
      expect(again.ok, JSON.stringify(again.errors)).to.equal(true);
      expect((await api.task(t, task.id))!.title).to.equal('Plan');
    });

    it('undoes an older operation by id when no later one touched its entities', async () => {
      const t = await fresh('older');
      const first = await api.createTask(t, { title: 'First' });
      const second = await api.createTask(t, { title: 'Second' });
      const edit = await api.updateTask(t, second.task!.id, { title: 'Second, edited' });

      const r = await api.undo(t, first.operation!.id);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.operation!.target).to.deep.include({ id: first.operation!.id, state: 'UNDONE' });
      expect(await api.task(t, first.task!.id)).to.equal(null);
      expect((await api.task(t, second.task!.id))!.title).to.equal('Second, edited');
      expect(r.undo.nextUndo!.id).to.equal(edit.operation!.id);
      const states = Object.fromEntries((await api.operations(t)).map((o) => [o.id, o.state]));
      expect(states[first.operation!.id]).to.equal('UNDONE');
      expect(states[second.operation!.id]).to.equal('APPLIED');
      expect(states[edit.operation!.id]).to.equal('APPLIED');
    });

    it('refuses to undo a creation that a later task depends on (no silent loss of the dependency)', async () => {
      const t = await fresh('refs');
      const base = await api.createTask(t, { title: 'Base' });
      const user = await api.createTask(t, { title: 'Uses base', dependsOn: [base.task!.id] });
      const r = await api.undo(t, base.operation!.id);
      const e = expectError(r, 'UNDO_BLOCKED', ['operationId']);
      expect(e.message).to.contain(`#${user.operation!.seq}`);
      expect((await api.task(t, user.task!.id))!.dependsOn).to.deep.equal([{ id: base.task!.id }]);
    });

    it('answers NOTHING_TO_UNDO and NOTHING_TO_REDO when the stacks are empty, and refuses to undo an undo', async () => {
      const t = await fresh('empty');
      const u = await api.undo(t);
      expectError(u, 'NOTHING_TO_UNDO');
      expect(u.undo).to.deep.equal({ canUndo: false, canRedo: false, depth: 0, nextUndo: null });
      expectError(await api.redo(t), 'NOTHING_TO_REDO');

      const c = await api.createTask(t, { title: 'Once' });
      const undone = await api.undo(t);
      expect(undone.ok).to.equal(true);
      expectError(await api.undo(t), 'NOTHING_TO_UNDO');
      expectError(await api.undo(t, c.operation!.id), 'NOTHING_TO_UNDO', ['operationId']);
      expectError(await api.undo(t, undone.operation!.id), 'VALIDATION', ['operationId']);
      expect((await api.operations(t)).map((o) => o.kind)).to.deep.equal(['UNDO', 'CREATE_TASK']);
    });

    it('clears the redo stack on any new ordinary operation', async () => {
      const t = await fresh('redo');
      await api.createTask(t, { title: 'A' });
      const b = await api.createTask(t, { title: 'B' });
      const u = await api.undo(t);
      expect(u.undo.canRedo).to.equal(true);
      expect((await api.undoState(t)).canRedo).to.equal(true);

      const c = await api.createTask(t, { title: 'C' });
      expect(c.undo.canRedo).to.equal(false);
      expectError(await api.redo(t), 'NOTHING_TO_REDO');
      expect(await api.task(t, b.task!.id)).to.equal(null);
    });

    it('re-evaluates conflicts on undo and redo', async () => {
      const t = await fresh('conflicts');
      const x = await api.createTask(t, {
        title: 'Meeting',
        scheduledStart: '2030-03-04T10:00:00Z',
        scheduledEnd: '2030-03-04T11:00:00Z',
      });
      const y = (await api.createTask(t, { title: 'Call' })).task!;
      const s = await api.scheduleTask(t, y.id, '2030-03-04T10:30:00Z', '2030-03-04T11:30:00Z');
      expect(s.conflicts.map((c) => c.kind)).to.include('OVERLAP');
      const open = async () =>
        (
          await gql<{
            conflicts: { edges: Array<{ node: { kind: string; tasks: Array<{ id: string }> } }> };
          }>(server.url, t, `{ conflicts(status: OPEN) { edges { node { kind tasks { id } } } } }`)
        ).data!.conflicts.edges.map((e) => e.node);
      expect((await open()).filter((c) => c.kind === 'OVERLAP')).to.have.length(1);

      const u = await api.undo(t);
      expect(u.ok, JSON.stringify(u.errors)).to.equal(true);
      expect((await api.task(t, y.id))!.scheduledStart).to.equal(null);
      expect(await open()).to.deep.equal([]);

      const r = await api.redo(t);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      const again = (await open()).filter((c) => c.kind === 'OVERLAP');
      expect(again).to.have.length(1);
      expect(again[0]!.tasks.map((k) => k.id).sort()).to.deep.equal([x.task!.id, y.id].sort());
    });
  });

  describe('ownership', () => {
    it("answers NOT_FOUND for another user's operation id and never touches their data", async () => {
      const alice = await fresh('owner');
      const bob = await fresh('other');
      const c = await api.createTask(alice, { title: 'Private' });

      expectError(await api.undo(bob, c.operation!.id), 'NOT_FOUND', ['operationId']);
      expectError(await api.undo(bob, 'not-a-uuid'), 'NOT_FOUND', ['operationId']);
      expectError(await api.undo(bob, randomUUID()), 'NOT_FOUND', ['operationId']);
      expectError(await api.undo(bob), 'NOTHING_TO_UNDO');
      expect((await api.task(alice, c.task!.id))!.title).to.equal('Private');
      expect((await api.operations(alice)).map((o) => o.state)).to.deep.equal(['APPLIED']);
      expect(await api.operations(bob)).to.deep.equal([]);

      expect((await api.undo(alice)).ok).to.equal(true);
      expectError(await api.redo(bob), 'NOTHING_TO_REDO'); // alice's redo stack is hers alone
      expect((await api.undoState(alice)).canRedo).to.equal(true);
    });

    it('lets an agent acting for the user undo and redo that user’s operations once allowed, and no one else (world level)', async () => {
      const token = await fresh('agent-owner');
      const userId = await api.me(token);
      const u = server.world.updater;
      const agent: Actor = { userId, actor: 'agent:assistant' };
      const byAgent = await u.createTask(agent, { title: 'Drafted by the assistant' });
      expect(byAgent.operation!.actor).to.equal('agent:assistant');
      const byUser = await api.createTask(token, { title: 'Mine' });

      // By default an agent may undo only its own operations.
      const refused = await u.undo(agent, byUser.operation!.id);
      expect(refused.errors.map((e) => e.code)).to.deep.equal(['FORBIDDEN']);
      expect((await api.task(token, byUser.task!.id))!.title).to.equal('Mine');
      const allow = await u.updateSettings({ userId, actor: `user:${userId}` }, { agentsMayUndoMine: true });
      expect(allow.ok, JSON.stringify(allow.errors)).to.equal(true);

      const undone = await u.undo(agent, byUser.operation!.id);
      expect(undone.ok, JSON.stringify(undone.errors)).to.equal(true);
      expect(undone.operation!.actor).to.equal('agent:assistant');
      const redone = await u.redo(agent);
      expect(redone.ok, JSON.stringify(redone.errors)).to.equal(true);

      const intruder = await server.world.users.findOrCreateByEmail(`intruder-${randomUUID()}@example.com`);
      for (const actor of [`user:${intruder.id}`, 'system', 'agent:']) {
        const who: Actor = { userId, actor };
        const r1 = await u.undo(who, byUser.operation!.id);
        expect(r1.errors[0]?.code, actor).to.equal('NOT_FOUND');
        expect((await u.undo(who, null)).errors[0]?.code, actor).to.equal('NOT_FOUND');
        expect((await u.redo(who)).errors[0]?.code, actor).to.equal('NOT_FOUND');
      }
      // The intruder's own world sees nothing of it either.
      const own = await u.undo({ userId: intruder.id, actor: `user:${intruder.id}` }, byUser.operation!.id);
      expect(own.errors[0]?.code).to.equal('NOT_FOUND');

      const trail = await api.operations(token);
      expect(trail.map((o) => [o.kind, o.actor])).to.deep.equal([
        ['REDO', 'agent:assistant'],
        ['UNDO', 'agent:assistant'],
        ['UPDATE_SETTINGS', `user:${userId}`],
        ['CREATE_TASK', `user:${userId}`],
        ['CREATE_TASK', 'agent:assistant'],
      ]);
    });
  });

  describe('idempotent retries', () => {
    it('returns the first UpdateResult for a repeat with the same key and input, and writes nothing', async () => {
      const t = await fresh('idem');
      const key = `create-${randomUUID()}`;
      const input = { title: 'Pay rent', priority: 'HIGH', dueAt: '2030-03-01T09:00:00Z' };
      const first = await api.createTask(t, input, key);
      expect(first.ok).to.equal(true);
      expect(first.replayed).to.equal(false);
      const second = await api.createTask(t, input, key);
      expect(second.ok).to.equal(true);
      expect(second.replayed).to.equal(true);
      expect(second.operation!.id).to.equal(first.operation!.id);
      expect(second.task!.id).to.equal(first.task!.id);
      expect({ ...second, replayed: false }).to.deep.equal(first);
      expect(await api.taskCount(t)).to.equal(1);
      expect(await api.operations(t)).to.have.length(1);

      // A later retry still returns the first result (nothing re-applied), with the undo state of now.
      expect((await api.undo(t)).ok).to.equal(true);
      const third = await api.createTask(t, input, key);
      expect(third.replayed).to.equal(true);
      expect(third.operation!.id).to.equal(first.operation!.id);
      expect(third.undo).to.deep.include({ canUndo: false, canRedo: true, depth: 0 });
      expect(await api.taskCount(t)).to.equal(0);
    });

    it('answers VALIDATION (path idempotencyKey) for the same key with a different input or mutation', async () => {
      const t = await fresh('idem-diff');
      const key = `k-${randomUUID()}`;
      const first = await api.createTask(t, { title: 'One' }, key);
      expectError(await api.createTask(t, { title: 'Two' }, key), 'VALIDATION', ['idempotencyKey']);
      expectError(await api.updateTask(t, first.task!.id, { title: 'Two' }, undefined, key), 'VALIDATION', [
        'idempotencyKey',
      ]);
      expect(await api.taskCount(t)).to.equal(1);
      expect((await api.task(t, first.task!.id))!.title).to.equal('One');
      expect(await api.operations(t)).to.have.length(1);
    });

    it('keeps keys per user and bounds them at 255 characters', async () => {
      const a = await fresh('idem-a');
      const b = await fresh('idem-b');
      const key = 'shared-key';
      const ra = await api.createTask(a, { title: 'A' }, key);
      const rb = await api.createTask(b, { title: 'B' }, key);
      expect(rb.replayed).to.equal(false);
      expect(rb.operation!.id).to.not.equal(ra.operation!.id);

      expectError(await api.createTask(a, { title: 'long' }, 'k'.repeat(256)), 'VALIDATION', [
        'idempotencyKey',
      ]);
      expectError(await api.createTask(a, { title: 'empty' }, ''), 'VALIDATION', ['idempotencyKey']);
      expect((await api.createTask(a, { title: 'max' }, 'k'.repeat(255))).ok).to.equal(true);
      expect((await api.createTask(a, { title: 'max, astral' }, '📅'.repeat(255))).ok).to.equal(true); // characters, not UTF-16 units
      expect(await api.taskCount(a)).to.equal(3);
    });

    it('writes exactly once for 50 concurrent requests with one key', async function () {
      this.timeout(60_000);
      const t = await fresh('idem-burst');
      const key = `burst-${randomUUID()}`;
      const results = await Promise.all(
        Array.from({ length: 50 }, () => api.createTask(t, { title: 'Only once' }, key)),
      );
      for (const r of results) expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(new Set(results.map((r) => r.operation!.id)).size).to.equal(1);
      expect(new Set(results.map((r) => r.task!.id)).size).to.equal(1);
      expect(results.filter((r) => !r.replayed)).to.have.length(1);
      expect(await api.taskCount(t)).to.equal(1);
      expect(await api.operations(t)).to.have.length(1);
    });

    it('holds one key per user with a unique constraint in the database', async () => {
      const t = await fresh('idem-unique');
      const userId = await api.me(t);
      const key = `unique-${randomUUID()}`;
      await api.createTask(t, { title: 'Keyed' }, key);
      const db = new Client({ connectionString: testDatabaseUrl() });
      await db.connect();
      try {
        const rows = await db.query('SELECT * FROM idempotency_keys WHERE user_id = $1 AND key = $2', [
          userId,
          key,
        ]);
        expect(rows.rowCount).to.equal(1);
        let code: string | undefined;
        try {
          await db.query(
            `INSERT INTO idempotency_keys (user_id, key, request_hash, operation_id, result, created_at)
             VALUES ($1, $2, 'other', NULL, '{}'::jsonb, now())`,
            [userId, key],
          );
        } catch (e) {
          code = (e as { code?: string }).code;
        }
        expect(code).to.equal('23505');
      } finally {
        await db.end();
      }
    });
  });

  describe('concurrency', () => {
    it('lets exactly one of two concurrent updates with the same expectedVersion win', async () => {
      const t = await fresh('race');
      const c = await api.createTask(t, { title: 'Race' });
      const [a, b] = await Promise.all([
        api.updateTask(t, c.task!.id, { title: 'A' }, 1),
        api.updateTask(t, c.task!.id, { title: 'B' }, 1),
      ]);
      const winners = [a, b].filter((r) => r.ok);
      expect(winners).to.have.length(1);
      expectError(
        [a, b].find((r) => !r.ok)!,
        'VERSION_CONFLICT',
        ['expectedVersion'],
      );
      expect((await api.task(t, c.task!.id))!.title).to.equal(winners[0]!.task!.title);
      expect((await api.operations(t)).map((o) => o.kind)).to.deep.equal(['UPDATE_TASK', 'CREATE_TASK']);
    });

    it('never loses a change silently when undo(id) races a versioned update', async () => {
      for (let round = 0; round < 6; round++) {
        const t = await fresh(`undo-race-${round}`);
        const c = await api.createTask(t, { title: 'Original' });
        const edit = await api.updateTask(t, c.task!.id, { title: 'One' }, 1);
        // Alternate which request is sent first so that both orders are exercised.
        const sendUndo = () => api.undo(t, edit.operation!.id);
        const sendUpdate = () => api.updateTask(t, c.task!.id, { title: 'Two' }, edit.task!.version);
        const [undo, update] =
          round % 2 === 0
            ? await Promise.all([sendUndo(), sendUpdate()])
            : (await Promise.all([sendUpdate(), sendUndo()])).reverse();
        const final = (await api.task(t, c.task!.id))!;
        const trail = await api.operations(t);
        if (undo.ok) {
          // The undo went first: the update's expectedVersion is stale and it wrote nothing.
          expectError(update, 'VERSION_CONFLICT', ['expectedVersion']);
          expect(final.title).to.equal('Original');
          expect(trail.map((o) => [o.kind, o.state])).to.deep.equal([
            ['UNDO', 'APPLIED'],
            ['UPDATE_TASK', 'UNDONE'],
            ['CREATE_TASK', 'APPLIED'],
          ]);
        } else {
          // The update went first: the undo would overwrite it, so it is blocked, naming the update.
          expect(update.ok, JSON.stringify(update.errors)).to.equal(true);
          const e = expectError(undo, 'UNDO_BLOCKED', ['operationId']);
          expect(e.message).to.contain(update.operation!.id);
          expect(final.title).to.equal('Two');
          expect(trail.map((o) => [o.kind, o.state])).to.deep.equal([
            ['UPDATE_TASK', 'APPLIED'],
            ['UPDATE_TASK', 'APPLIED'],
            ['CREATE_TASK', 'APPLIED'],
          ]);
        }
      }
    });

    it('keeps the final state consistent with the audit trail when undo() races an unversioned update', async () => {
      for (let round = 0; round < 6; round++) {
        const t = await fresh(`undo-race-free-${round}`);
        const c = await api.createTask(t, { title: 'Original' });
        const edit = await api.updateTask(t, c.task!.id, { title: 'One' });
        const sendUndo = () => api.undo(t);
        const sendUpdate = () => api.updateTask(t, c.task!.id, { title: 'Two' });
        const [undo, update] =
          round % 2 === 0
            ? await Promise.all([sendUndo(), sendUpdate()])
            : (await Promise.all([sendUpdate(), sendUndo()])).reverse();
        expect(undo.ok, JSON.stringify(undo.errors)).to.equal(true);
        expect(update.ok, JSON.stringify(update.errors)).to.equal(true);
        const final = (await api.task(t, c.task!.id))!;
        const states = Object.fromEntries((await api.operations(t)).map((o) => [o.id, o.state]));
        if (undo.operation!.seq < update.operation!.seq) {
          // undo first (of "One"), then "Two" applied on top.
          expect(undo.operation!.target!.id).to.equal(edit.operation!.id);
          expect(states[edit.operation!.id]).to.equal('UNDONE');
          expect(final.title).to.equal('Two');
        } else {
          // "Two" first; the undo took back the latest operation, which was "Two".
          expect(undo.operation!.target!.id).to.equal(update.operation!.id);
          expect(states[update.operation!.id]).to.equal('UNDONE');
          expect(final.title).to.equal('One');
        }
      }
    });
  });

  describe('the audit trail is append-only in the database', () => {
    it('refuses UPDATE of recorded facts, DELETE and TRUNCATE, while the undo state columns can move', async () => {
      const t = await fresh('append-only');
      const c = await api.createTask(t, { title: 'Audited' });
      const id = c.operation!.id;
      const db = new Client({ connectionString: testDatabaseUrl() });
      await db.connect();
      const refused = async (sql: string, params: unknown[] = []) => {
        let err: { code?: string; message?: string } | null = null;
        try {
          await db.query(sql, params);
        } catch (e) {
          err = e as { code?: string };
        }
        expect(err, sql).to.not.equal(null);
        expect(err!.code, `${sql}: ${err!.message}`).to.equal('42501');
        expect(err!.message).to.match(/append-only/);
      };
      try {
        await refused(`UPDATE operations SET kind = 'X' WHERE id = $1`, [id]);
        await refused(`UPDATE operations SET input = '{}'::jsonb WHERE id = $1`, [id]);
        await refused(`UPDATE operations SET inverse = '[]'::jsonb WHERE id = $1`, [id]);
        await refused(`UPDATE operations SET actor = 'system', created_at = now() WHERE id = $1`, [id]);
        await refused(`DELETE FROM operations WHERE id = $1`, [id]);
        await refused(`DELETE FROM operations`);
        await refused(`TRUNCATE operations CASCADE`);

        await db.query('BEGIN');
        const moved = await db.query(
          `UPDATE operations SET state = 'UNDONE', state_changed_at = now(), undone_by_seq = 99, redoable = true WHERE id = $1`,
          [id],
        );
        expect(moved.rowCount).to.equal(1);
        await db.query('ROLLBACK');

        const row = await db.query(`SELECT kind, state, actor FROM operations WHERE id = $1`, [id]);
        expect(row.rows[0]).to.deep.include({ kind: 'CREATE_TASK', state: 'APPLIED' });
      } finally {
        await db.end();
      }
    });
  });
});

describe('undo depth and idempotency key lifetime (PLANNER_UNDO_DEPTH=3, manual clock)', function () {
  let server: TestServer;
  const clock = new ManualClock(new Date());
  const api = client(() => server);
  const fresh = (name: string) => server.token(`${name}-${randomUUID()}@example.com`);

  before(async () => {
    server = await startTestServer({ clock, env: { PLANNER_UNDO_DEPTH: '3' } });
  });
  after(async () => server?.close());

  it('keeps older operations in the trail but undoes only the last three', async () => {
    const t = await fresh('depth');
    const created: Result[] = [];
    for (let i = 1; i <= 5; i++) created.push(await api.createTask(t, { title: `Task ${i}` }));
    expect(created[4]!.undo).to.deep.include({ canUndo: true, depth: 3 });
    expect(created[4]!.undo.nextUndo!.id).to.equal(created[4]!.operation!.id);

    const tooOld = await api.undo(t, created[0]!.operation!.id);
    const e = expectError(tooOld, 'UNDO_BLOCKED', ['operationId']);
    expect(e.message).to.match(/undo depth/);

    for (let i = 0; i < 3; i++) expect((await api.undo(t)).ok).to.equal(true);
    const done = await api.undo(t);
    expectError(done, 'NOTHING_TO_UNDO');
    expect(done.undo).to.deep.include({ canUndo: false, canRedo: true, depth: 0 });
    expect(await api.taskCount(t)).to.equal(2);

    const trail = await api.operations(t);
    expect(trail).to.have.length(8);
    expect(trail.slice(3).map((o) => [o.kind, o.state])).to.deep.equal([
      ['CREATE_TASK', 'UNDONE'],
      ['CREATE_TASK', 'UNDONE'],
      ['CREATE_TASK', 'UNDONE'],
      ['CREATE_TASK', 'APPLIED'],
      ['CREATE_TASK', 'APPLIED'],
    ]);
  });

  it('keeps an idempotency key for 24 hours, then treats it as new', async () => {
    const email = `ttl-${randomUUID()}@example.com`;
    const key = `ttl-${randomUUID()}`;
    const first = await api.createTask(await server.token(email), { title: 'Water plants' }, key);
    clock.advance(23 * 3600_000);
    const retry = await api.createTask(await server.token(email), { title: 'Water plants' }, key);
    expect(retry.replayed).to.equal(true);
    expect(retry.operation!.id).to.equal(first.operation!.id);

    clock.advance(2 * 3600_000);
    const t = await server.token(email); // tokens are minted and checked on the same manual clock
    const later = await api.createTask(t, { title: 'Water plants' }, key);
    expect(later.ok, JSON.stringify(later.errors)).to.equal(true);
    expect(later.replayed).to.equal(false);
    expect(later.operation!.id).to.not.equal(first.operation!.id);
    expect(await api.taskCount(t)).to.equal(2);
  });
});
