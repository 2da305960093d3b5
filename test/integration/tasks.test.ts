import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { gql } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const TASK_FIELDS = `id title notes status priority estimateMinutes dueAt scheduledStart scheduledEnd tags version
  goal { id title } dependsOn { id } createdAt updatedAt`;
const RESULT = `ok errors { code message path } warnings
  operation { id seq kind actor state }
  task { ${TASK_FIELDS} }
  changes { entity id field before after }
  conflicts { id } undo { canUndo canRedo depth } memory { text } flags { key }`;

interface Result {
  ok: boolean;
  errors: Array<{ code: string; message: string; path: string[] | null }>;
  operation: { id: string; seq: number; kind: string; actor: string; state: string } | null;
  task: Record<string, unknown> & { id: string; version: number };
  changes: Array<{ entity: string; id: string; field: string; before: unknown; after: unknown }>;
  conflicts: unknown[];
  undo: { canUndo: boolean; canRedo: boolean; depth: number };
}

describe('tasks and goals through GraphQL', function () {
  let server: TestServer;
  let alice: string;
  let bob: string;

  before(async () => {
    server = await startTestServer();
    alice = await server.token(`alice-${randomUUID()}@example.com`);
    bob = await server.token(`bob-${randomUUID()}@example.com`);
  });
  after(async () => server.close());

  async function create(token: string, input: Record<string, unknown>): Promise<Result> {
    const r = await gql<{ createTask: Result }>(
      server.url,
      token,
      `mutation($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
      { input },
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.createTask;
  }

  async function count(token: string): Promise<number> {
    let n = 0;
    let after: string | null = null;
    for (;;) {
      const r: {
        data?: { tasks: { edges: unknown[]; pageInfo: { hasNextPage: boolean; endCursor: string } } };
      } = await gql(
        server.url,
        token,
        `query($after: String) { tasks(first: 100, after: $after) { edges { cursor } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      n += r.data!.tasks.edges.length;
      if (!r.data!.tasks.pageInfo.hasNextPage) return n;
      after = r.data!.tasks.pageInfo.endCursor;
    }
  }

  it('creates a task and returns a rich UpdateResult', async () => {
    const r = await create(alice, {
      title: '  Write report  ',
      notes: 'quarterly',
      priority: 'HIGH',
      estimateMinutes: 90,
      tags: ['work', 'work', ' writing '],
      dueAt: '2026-12-03T17:00:00+01:00',
    });
    expect(r.ok).to.equal(true);
    expect(r.errors).to.deep.equal([]);
    expect(r.task.title).to.equal('Write report');
    expect(r.task.tags).to.deep.equal(['work', 'writing']);
    expect(r.task.status).to.equal('BACKLOG');
    expect(r.task.dueAt).to.equal('2026-12-03T16:00:00.000Z');
    expect(r.task.version).to.equal(1);
    expect(r.operation!.kind).to.equal('CREATE_TASK');
    expect(r.operation!.actor).to.match(/^user:/);
    expect(r.operation!.state).to.equal('APPLIED');
    const title = r.changes.find((c) => c.field === 'title');
    expect(title).to.deep.include({ entity: 'Task', id: r.task.id, before: null, after: 'Write report' });
    expect(r.undo.canUndo).to.equal(true);
    expect(r.conflicts).to.deep.equal([]);

    const read = await gql<{ task: Record<string, unknown> }>(
      server.url,
      alice,
      `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`,
      {
        id: r.task.id,
      },
    );
    expect(read.data!.task).to.deep.equal(r.task);
  });

  it('updates a task, bumps the version and lists field-level changes', async () => {
    const c = await create(alice, { title: 'Draft', estimateMinutes: 30 });
    const r = await gql<{ updateTask: Result }>(
      server.url,
      alice,
      `mutation($id: ID!) { updateTask(id: $id, expectedVersion: 1, input: { title: "Final", estimateMinutes: 45, notes: null }) { ${RESULT} } }`,
      { id: c.task.id },
    );
    const u = r.data!.updateTask;
    expect(u.ok).to.equal(true);
    expect(u.task.title).to.equal('Final');
    expect(u.task.version).to.equal(2);
    const fields = u.changes
      .filter((x) => x.entity === 'Task')
      .map((x) => x.field)
      .sort();
    expect(fields).to.include.members(['title', 'estimateMinutes', 'version', 'updatedAt']);
    expect(u.changes.find((x) => x.field === 'title')).to.deep.include({ before: 'Draft', after: 'Final' });
  });

  it('answers VERSION_CONFLICT on a stale expectedVersion and writes nothing', async () => {
    const c = await create(alice, { title: 'Versioned' });
    const ok = await gql<{ updateTask: Result }>(
      server.url,
      alice,
      `mutation($id: ID!) { updateTask(id: $id, expectedVersion: 1, input: { title: "v2" }) { ok task { version } } }`,
      { id: c.task.id },
    );
    expect(ok.data!.updateTask.ok).to.equal(true);
    const stale = await gql<{ updateTask: Result }>(
      server.url,
      alice,
      `mutation($id: ID!) { updateTask(id: $id, expectedVersion: 1, input: { title: "lost update" }) { ${RESULT} } }`,
      { id: c.task.id },
    );
    const s = stale.data!.updateTask;
    expect(s.ok).to.equal(false);
    expect(s.operation).to.equal(null);
    expect(s.errors[0]!.code).to.equal('VERSION_CONFLICT');
    expect(s.errors[0]!.path).to.deep.equal(['expectedVersion']);
    const read = await gql<{ task: { title: string; version: number } }>(
      server.url,
      alice,
      `query($id: ID!) { task(id: $id) { title version } }`,
      { id: c.task.id },
    );
    expect(read.data!.task).to.deep.equal({ title: 'v2', version: 2 });
  });

  it('lets exactly one of two concurrent updates with the same expectedVersion win', async () => {
    const c = await create(alice, { title: 'Race' });
    const run = (title: string) =>
      gql<{ updateTask: Result }>(
        server.url,
        alice,
        `mutation($id: ID!, $t: String!) { updateTask(id: $id, expectedVersion: 1, input: { title: $t }) { ok errors { code } } }`,
        {
          id: c.task.id,
          t: title,
        },
      );
    const [a, b] = await Promise.all([run('A'), run('B')]);
    const oks = [a, b].filter((r) => r.data!.updateTask.ok);
    expect(oks).to.have.length(1);
    const loser = [a, b].find((r) => !r.data!.updateTask.ok)!;
    expect(loser.data!.updateTask.errors[0]!.code).to.equal('VERSION_CONFLICT');
  });

  describe('validation: each rule answers VALIDATION with a path, and nothing is written', () => {
    const cases: Array<[string, Record<string, unknown>, string[]]> = [
      ['empty title after trimming', { title: '   ' }, ['input', 'title']],
      ['title over 200 characters', { title: 'x'.repeat(201) }, ['input', 'title']],
      ['notes over 10,000 characters', { title: 't', notes: 'n'.repeat(10_001) }, ['input', 'notes']],
      ['estimate below 1', { title: 't', estimateMinutes: 0 }, ['input', 'estimateMinutes']],
      ['estimate above 1440', { title: 't', estimateMinutes: 1441 }, ['input', 'estimateMinutes']],
      [
        'start without end',
        { title: 't', scheduledStart: '2026-12-01T09:00:00Z' },
        ['input', 'scheduledEnd'],
      ],
      [
        'end without start',
        { title: 't', scheduledEnd: '2026-12-01T09:00:00Z' },
        ['input', 'scheduledStart'],
      ],
      [
        'end before start',
        { title: 't', scheduledStart: '2026-12-01T10:00:00Z', scheduledEnd: '2026-12-01T09:00:00Z' },
        ['input', 'scheduledEnd'],
      ],
      [
        'end equal to start',
        { title: 't', scheduledStart: '2026-12-01T10:00:00Z', scheduledEnd: '2026-12-01T10:00:00Z' },
        ['input', 'scheduledEnd'],
      ],
      [
        'span over 7 days',
        { title: 't', scheduledStart: '2026-12-01T10:00:00Z', scheduledEnd: '2026-12-08T10:00:01Z' },
        ['input', 'scheduledEnd'],
      ],
      [
        'more than 20 tags',
        { title: 't', tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
        ['input', 'tags'],
      ],
      ['a tag over 40 characters', { title: 't', tags: ['ok', 'y'.repeat(41)] }, ['input', 'tags', '1']],
      ['an empty tag', { title: 't', tags: [' '] }, ['input', 'tags', '0']],
      [
        'a dependency that does not exist',
        { title: 't', dependsOn: [randomUUID()] },
        ['input', 'dependsOn', '0'],
      ],
      ['a goal that does not exist', { title: 't', goalId: randomUUID() }, ['input', 'goalId']],
    ];
    for (const [name, input, path] of cases) {
      it(name, async () => {
        const token = await server.token(`v-${randomUUID()}@example.com`);
        const r = await create(token, input);
        expect(r.ok).to.equal(false);
        expect(r.operation).to.equal(null);
        expect(r.errors.map((e) => e.code)).to.include('VALIDATION');
        expect(r.errors.map((e) => e.path)).to.deep.include(path);
        expect(await count(token)).to.equal(0);
      });
    }

    it('rejects a DateTime without an offset with a VALIDATION error', async () => {
      const r = await gql(
        server.url,
        alice,
        `mutation { createTask(input: { title: "t", dueAt: "2026-12-01T09:00:00" }) { ok } }`,
      );
      expect(r.errors).to.have.length(1);
      expect(r.errors![0]!.extensions!.code).to.equal('VALIDATION');
      expect(r.errors![0]!.message).to.match(/offset/);
    });

    it("refuses another user's task as a dependency, indistinguishably from an absent one", async () => {
      const bobs = await create(bob, { title: 'bob private' });
      const r = await create(alice, { title: 't', dependsOn: [bobs.task.id] });
      expect(r.ok).to.equal(false);
      expect(r.errors[0]).to.deep.include({ code: 'VALIDATION', path: ['input', 'dependsOn', '0'] });
    });

    it('refuses a dependency cycle', async () => {
      const a = await create(alice, { title: 'A' });
      const b = await create(alice, { title: 'B', dependsOn: [a.task.id] });
      const c = await create(alice, { title: 'C', dependsOn: [b.task.id] });
      const r = await gql<{ updateTask: Result }>(
        server.url,
        alice,
        `mutation($id: ID!, $d: [ID!]) { updateTask(id: $id, input: { dependsOn: $d }) { ok errors { code path } } }`,
        {
          id: a.task.id,
          d: [c.task.id],
        },
      );
      expect(r.data!.updateTask.ok).to.equal(false);
      expect(r.data!.updateTask.errors[0]).to.deep.include({
        code: 'VALIDATION',
        path: ['input', 'dependsOn'],
      });
      const self = await gql<{ updateTask: Result }>(
        server.url,
        alice,
        `mutation($id: ID!) { updateTask(id: $id, input: { dependsOn: [$id] }) { ok errors { code } } }`,
        {
          id: a.task.id,
        },
      );
      expect(self.data!.updateTask.errors[0]!.code).to.equal('VALIDATION');
    });

    it('refuses an idempotencyKey over 255 characters', async () => {
      const r = await gql<{ createTask: Result }>(
        server.url,
        alice,
        `mutation($k: String) { createTask(input: { title: "t" }, idempotencyKey: $k) { ok errors { code path } } }`,
        {
          k: 'k'.repeat(256),
        },
      );
      expect(r.data!.createTask.errors[0]).to.deep.include({ code: 'VALIDATION', path: ['idempotencyKey'] });
    });
  });

  describe('two users are isolated', () => {
    it("never shows or changes another user's task: it answers as an absent one", async () => {
      const mine = await create(alice, { title: 'alice secret' });
      const id = mine.task.id;
      const absent = randomUUID();
      const seen = await gql<{ task: unknown }>(server.url, bob, `query($id: ID!) { task(id: $id) { id } }`, {
        id,
      });
      expect(seen.data!.task).to.equal(null);
      for (const target of [id, absent]) {
        for (const m of [
          'updateTask(id: $id, input: { title: "x" })',
          'deleteTask(id: $id)',
          'completeTask(id: $id)',
          'scheduleTask(id: $id, start: "2026-12-01T09:00:00Z")',
          'unscheduleTask(id: $id)',
        ]) {
          const r = await gql<Record<string, Result>>(
            server.url,
            bob,
            `mutation($id: ID!) { m: ${m} { ok errors { code path } } }`,
            { id: target },
          );
          expect(r.data!.m!.ok, m).to.equal(false);
          expect(r.data!.m!.errors[0]).to.deep.equal({ code: 'NOT_FOUND', path: ['id'] });
        }
      }
      const list = await gql<{ tasks: { edges: Array<{ node: { id: string } }> } }>(
        server.url,
        bob,
        `{ tasks(first: 100) { edges { node { id } } } }`,
      );
      expect(list.data!.tasks.edges.map((e) => e.node.id)).to.not.include(id);
      const still = await gql<{ task: { title: string } }>(
        server.url,
        alice,
        `query($id: ID!) { task(id: $id) { title } }`,
        { id },
      );
      expect(still.data!.task.title).to.equal('alice secret');
    });

    it('answers a malformed id as absent', async () => {
      const r = await gql<{ task: unknown }>(server.url, alice, `{ task(id: "not-a-uuid") { id } }`);
      expect(r.data!.task).to.equal(null);
    });
  });

  it('pages through 250 tasks: every task exactly once, in a stable order, first capped at 100', async () => {
    const token = await server.token(`pager-${randomUUID()}@example.com`);
    const created: string[] = [];
    for (let i = 0; i < 250; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) => create(token, { title: `task ${i + j}` })),
      );
      created.push(...batch.map((b) => b.task.id));
    }
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const r: {
        data?: {
          tasks: {
            edges: Array<{ node: { id: string } }>;
            pageInfo: { hasNextPage: boolean; endCursor: string };
          };
        };
      } = await gql(
        server.url,
        token,
        `query($after: String) { tasks(first: 100, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      const edges = r.data!.tasks.edges;
      expect(edges.length).to.be.at.most(100);
      seen.push(...edges.map((e) => e.node.id));
      pages++;
      if (!r.data!.tasks.pageInfo.hasNextPage) break;
      after = r.data!.tasks.pageInfo.endCursor;
    }
    expect(pages).to.equal(3);
    // Above the cap, a page still holds at most 100.
    const big = await gql<{ tasks: { edges: unknown[] } }>(
      server.url,
      token,
      `{ tasks(first: 150) { edges { cursor } } }`,
    );
    expect(big.errors, JSON.stringify(big.errors)).to.equal(undefined);
    expect(big.data!.tasks.edges).to.have.length(100);
    expect(seen).to.have.length(250);
    expect(new Set(seen).size).to.equal(250);
    expect([...seen].sort()).to.deep.equal([...created].sort());
    // Stable: the same walk gives the same order.
    const again = await gql<{ tasks: { edges: Array<{ node: { id: string } }> } }>(
      server.url,
      token,
      `{ tasks(first: 100) { edges { node { id } } } }`,
    );
    expect(again.data!.tasks.edges.map((e) => e.node.id)).to.deep.equal(seen.slice(0, 100));
  });

  it('rejects a forged cursor with a VALIDATION error', async () => {
    const r = await gql(server.url, alice, `{ tasks(after: "bm9wZQ") { edges { cursor } } }`);
    expect(r.errors![0]!.extensions!.code).to.equal('VALIDATION');
  });

  it('filters by status, priority, tag, goal, due range, text and scheduled', async () => {
    const token = await server.token(`filter-${randomUUID()}@example.com`);
    const g = await gql<{ createGoal: { ok: boolean; goal: { id: string } } }>(
      server.url,
      token,
      `mutation { createGoal(input: { title: "Fitness", priority: HIGH }) { ok goal { id } } }`,
    );
    const goalId = g.data!.createGoal.goal.id;
    await create(token, {
      title: 'Run 5k',
      tags: ['health'],
      goalId,
      priority: 'HIGH',
      dueAt: '2026-12-02T00:00:00Z',
    });
    await create(token, {
      title: 'Buy milk',
      tags: ['errand'],
      priority: 'LOW',
      dueAt: '2026-12-10T00:00:00Z',
    });
    await create(token, {
      title: 'Dentist',
      notes: 'bring the 50% voucher',
      scheduledStart: '2026-12-01T10:00:00Z',
      scheduledEnd: '2026-12-01T11:00:00Z',
    });
    const titles = async (filter: Record<string, unknown>) => {
      const r = await gql<{ tasks: { edges: Array<{ node: { title: string } }> } }>(
        server.url,
        token,
        `query($f: TaskFilter) { tasks(filter: $f) { edges { node { title } } } }`,
        { f: filter },
      );
      expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
      return r.data!.tasks.edges.map((e) => e.node.title).sort();
    };
    expect(await titles({ status: ['SCHEDULED'] })).to.deep.equal(['Dentist']);
    expect(await titles({ priority: ['HIGH', 'URGENT'] })).to.deep.equal(['Run 5k']);
    expect(await titles({ tag: 'errand' })).to.deep.equal(['Buy milk']);
    expect(await titles({ goalId })).to.deep.equal(['Run 5k']);
    expect(await titles({ dueBefore: '2026-12-05T00:00:00Z' })).to.deep.equal(['Run 5k']);
    expect(await titles({ dueAfter: '2026-12-05T00:00:00Z' })).to.deep.equal(['Buy milk']);
    expect(await titles({ text: 'MILK' })).to.deep.equal(['Buy milk']);
    expect(await titles({ text: '50%' })).to.deep.equal(['Dentist']);
    expect(await titles({ text: '%' })).to.deep.equal(['Dentist']);
    expect(await titles({ scheduled: true })).to.deep.equal(['Dentist']);
    expect(await titles({ scheduled: false })).to.deep.equal(['Buy milk', 'Run 5k']);
    const goalTasks = await gql<{
      goals: {
        edges: Array<{ node: { title: string; tasks: { edges: Array<{ node: { title: string } }> } } }>;
      };
    }>(server.url, token, `{ goals { edges { node { title tasks { edges { node { title } } } } } } }`);
    expect(goalTasks.data!.goals.edges[0]!.node.tasks.edges.map((e) => e.node.title)).to.deep.equal([
      'Run 5k',
    ]);
  });

  it('schedules, lists the schedule, unschedules, completes and deletes', async () => {
    const token = await server.token(`sched-${randomUUID()}@example.com`);
    const t = await create(token, { title: 'Focus block', estimateMinutes: 60 });
    const s = await gql<{ scheduleTask: Result }>(
      server.url,
      token,
      `mutation($id: ID!) { scheduleTask(id: $id, start: "2026-12-01T10:00:00Z") { ${RESULT} } }`,
      { id: t.task.id },
    );
    expect(s.data!.scheduleTask.ok).to.equal(true);
    expect(s.data!.scheduleTask.task).to.deep.include({
      status: 'SCHEDULED',
      scheduledStart: '2026-12-01T10:00:00.000Z',
      scheduledEnd: '2026-12-01T11:00:00.000Z',
    });
    const inRange = await gql<{ schedule: Array<{ id: string }> }>(
      server.url,
      token,
      `{ schedule(from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z") { id } }`,
    );
    expect(inRange.data!.schedule.map((x) => x.id)).to.deep.equal([t.task.id]);
    const outside = await gql<{ schedule: Array<{ id: string }> }>(
      server.url,
      token,
      `{ schedule(from: "2026-12-01T11:00:00Z", to: "2026-12-02T00:00:00Z") { id } }`,
    );
    expect(outside.data!.schedule).to.deep.equal([]);
    const badRange = await gql(
      server.url,
      token,
      `{ schedule(from: "2026-12-02T00:00:00Z", to: "2026-12-01T00:00:00Z") { id } }`,
    );
    expect(badRange.errors![0]!.extensions!.code).to.equal('VALIDATION');

    const u = await gql<{ unscheduleTask: Result }>(
      server.url,
      token,
      `mutation($id: ID!) { unscheduleTask(id: $id) { ${RESULT} } }`,
      { id: t.task.id },
    );
    expect(u.data!.unscheduleTask.task).to.deep.include({
      status: 'BACKLOG',
      scheduledStart: null,
      scheduledEnd: null,
    });
    const c = await gql<{ completeTask: Result }>(
      server.url,
      token,
      `mutation($id: ID!) { completeTask(id: $id) { ${RESULT} } }`,
      { id: t.task.id },
    );
    expect(c.data!.completeTask.task.status).to.equal('DONE');
    const d = await gql<{ deleteTask: Result }>(
      server.url,
      token,
      `mutation($id: ID!) { deleteTask(id: $id) { ${RESULT} } }`,
      { id: t.task.id },
    );
    expect(d.data!.deleteTask.ok).to.equal(true);
    expect(d.data!.deleteTask.task).to.equal(null);
    expect(d.data!.deleteTask.changes.find((x) => x.field === 'title')).to.deep.include({
      before: 'Focus block',
      after: null,
    });
    const gone = await gql<{ task: unknown }>(server.url, token, `query($id: ID!) { task(id: $id) { id } }`, {
      id: t.task.id,
    });
    expect(gone.data!.task).to.equal(null);
  });

  it('creates and updates goals with versions', async () => {
    const token = await server.token(`goals-${randomUUID()}@example.com`);
    const g = await gql<{
      createGoal: { ok: boolean; goal: { id: string; version: number; status: string } };
    }>(
      server.url,
      token,
      `mutation { createGoal(input: { title: " Learn Spanish ", targetDate: "2027-06-01T00:00:00Z" }) { ok goal { id version status title } } }`,
    );
    expect(g.data!.createGoal.goal).to.deep.include({ version: 1, status: 'ACTIVE', title: 'Learn Spanish' });
    const id = g.data!.createGoal.goal.id;
    const u = await gql<{ updateGoal: { ok: boolean; goal: { status: string; version: number } } }>(
      server.url,
      token,
      `mutation($id: ID!) { updateGoal(id: $id, expectedVersion: 1, input: { status: PAUSED }) { ok goal { status version } } }`,
      { id },
    );
    expect(u.data!.updateGoal.goal).to.deep.equal({ status: 'PAUSED', version: 2 });
    const stale = await gql<{ updateGoal: Result }>(
      server.url,
      token,
      `mutation($id: ID!) { updateGoal(id: $id, expectedVersion: 1, input: { title: "x" }) { ok errors { code } } }`,
      { id },
    );
    expect(stale.data!.updateGoal.errors[0]!.code).to.equal('VERSION_CONFLICT');
    const bad = await gql<{ createGoal: Result }>(
      server.url,
      token,
      `mutation { createGoal(input: { title: "" }) { ok errors { code path } } }`,
    );
    expect(bad.data!.createGoal.errors[0]).to.deep.include({ code: 'VALIDATION', path: ['input', 'title'] });
    const other = await gql<{ updateGoal: Result }>(
      server.url,
      alice,
      `mutation($id: ID!) { updateGoal(id: $id, input: { title: "mine now" }) { ok errors { code } } }`,
      { id },
    );
    expect(other.data!.updateGoal.errors[0]!.code).to.equal('NOT_FOUND');
  });

  it('reads me with default settings', async () => {
    const r = await gql<{
      me: {
        email: string;
        timeZone: string;
        dailyCapacityMinutes: number;
        workingHours: Array<{ weekday: string; intervals: unknown[] }>;
      };
    }>(
      server.url,
      alice,
      `{ me { id email displayName timeZone dailyCapacityMinutes workingHours { weekday intervals { start end } } } }`,
    );
    expect(r.data!.me.timeZone).to.equal('UTC');
    expect(r.data!.me.dailyCapacityMinutes).to.equal(480);
    expect(r.data!.me.workingHours).to.have.length(7);
    expect(r.data!.me.workingHours[0]).to.deep.equal({
      weekday: 'MONDAY',
      intervals: [{ start: '09:00', end: '17:00' }],
    });
  });
});
