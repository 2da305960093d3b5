/**
 * Conflict detection, alternatives, policies, resolveConflict / dismissConflict, settings, autoSchedule and
 * the DST cases, all through GraphQL against a started server with an injected clock (never the wall clock).
 *
 * "Now" is Monday 2026-11-30 08:00Z; most plans use Tuesday 2026-12-01. New users are in UTC with working
 * hours 09:00–17:00 Monday to Friday and a daily capacity of 480 minutes unless a test changes them.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../src/world/clock';
import { gql } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const NOW = '2026-11-30T08:00:00.000Z';
const WEEKDAYS = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'] as const;

const TASK =
  'id title status priority estimateMinutes dueAt scheduledStart scheduledEnd version dependsOn { id }';
const ALTERNATIVE = 'id description action taskId start end score';
const CONFLICT = `id kind status message detectedAt closedAt chosenAlternativeId tasks { id } alternatives { ${ALTERNATIVE} }`;
const RESULT = `ok errors { code message path } warnings operation { id kind state }
  task { ${TASK} } tasks { ${TASK} } changes { entity id field before after }
  conflicts { ${CONFLICT} } placements { taskId start end } unplaced { taskId code reason }`;

interface Alternative {
  id: string;
  description: string;
  action: 'MOVE' | 'BACKLOG';
  taskId: string | null;
  start: string | null;
  end: string | null;
  score: number;
}
interface Conflict {
  id: string;
  kind: string;
  status: string;
  message: string;
  detectedAt: string;
  closedAt: string | null;
  chosenAlternativeId: string | null;
  tasks: Array<{ id: string }>;
  alternatives: Alternative[];
}
interface Task {
  id: string;
  title: string;
  status: string;
  priority: string;
  estimateMinutes: number | null;
  dueAt: string | null;
  scheduledStart: string | null;
  scheduledEnd: string | null;
  version: number;
  dependsOn: Array<{ id: string }>;
}
interface Result {
  ok: boolean;
  errors: Array<{ code: string; message: string; path: string[] | null }>;
  warnings: string[];
  operation: { id: string; kind: string; state: string } | null;
  task: Task | null;
  tasks: Task[];
  changes: Array<{ entity: string; id: string; field: string; before: unknown; after: unknown }>;
  conflicts: Conflict[];
  placements: Array<{ taskId: string; start: string; end: string }>;
  unplaced: Array<{ taskId: string; code: string; reason: string }>;
}
type Policy = 'ALLOW' | 'REJECT' | 'AUTO_RESOLVE';

const ms = (iso: string): number => Date.parse(iso);

describe('conflicts through GraphQL', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clock = new ManualClock(NOW);

  before(async () => {
    server = await startTestServer({ clock });
  });
  afterEach(() => clock.set(NOW));
  after(async () => server.close());

  // ------------------------------------------------------------------------------------------- helpers

  async function mutate<K extends string>(
    token: string,
    field: K,
    query: string,
    variables: Record<string, unknown>,
  ): Promise<Result> {
    const r = await gql<Record<K, Result>>(server.url, token, query, variables);
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data![field];
  }

  async function user(settings?: Record<string, unknown>): Promise<string> {
    const token = await server.token(`conflicts-${randomUUID()}@example.com`);
    if (settings) {
      const r = await updateSettings(token, settings);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    }
    return token;
  }

  function create(
    token: string,
    input: Record<string, unknown>,
    onConflict: Policy = 'ALLOW',
  ): Promise<Result> {
    return mutate(
      token,
      'createTask',
      `mutation($input: CreateTaskInput!, $p: ConflictPolicy) { createTask(input: $input, onConflict: $p) { ${RESULT} } }`,
      {
        input,
        p: onConflict,
      },
    );
  }

  /** Creates a scheduled task and returns its id. */
  async function slot(
    token: string,
    title: string,
    start: string,
    end: string,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const r = await create(token, { title, scheduledStart: start, scheduledEnd: end, ...extra });
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    return r.task!.id;
  }

  function scheduleTask(
    token: string,
    id: string,
    start: string,
    end: string | null,
    onConflict: Policy = 'ALLOW',
  ): Promise<Result> {
    return mutate(
      token,
      'scheduleTask',
      `mutation($id: ID!, $s: DateTime!, $e: DateTime, $p: ConflictPolicy) { scheduleTask(id: $id, start: $s, end: $e, onConflict: $p) { ${RESULT} } }`,
      { id, s: start, e: end, p: onConflict },
    );
  }

  function updateTask(
    token: string,
    id: string,
    input: Record<string, unknown>,
    onConflict: Policy = 'ALLOW',
  ): Promise<Result> {
    return mutate(
      token,
      'updateTask',
      `mutation($id: ID!, $input: UpdateTaskInput!, $p: ConflictPolicy) { updateTask(id: $id, input: $input, onConflict: $p) { ${RESULT} } }`,
      {
        id,
        input,
        p: onConflict,
      },
    );
  }

  function unscheduleTask(token: string, id: string): Promise<Result> {
    return mutate(token, 'unscheduleTask', `mutation($id: ID!) { unscheduleTask(id: $id) { ${RESULT} } }`, {
      id,
    });
  }

  function updateSettings(token: string, input: Record<string, unknown>): Promise<Result> {
    return mutate(
      token,
      'updateSettings',
      `mutation($input: SettingsInput!) { updateSettings(input: $input) { ${RESULT} } }`,
      { input },
    );
  }

  function resolveConflict(token: string, conflictId: string, alternativeId: string): Promise<Result> {
    return mutate(
      token,
      'resolveConflict',
      `mutation($c: ID!, $a: ID!) { resolveConflict(conflictId: $c, alternativeId: $a) { ${RESULT} } }`,
      {
        c: conflictId,
        a: alternativeId,
      },
    );
  }

  function dismissConflict(token: string, conflictId: string): Promise<Result> {
    return mutate(
      token,
      'dismissConflict',
      `mutation($c: ID!) { dismissConflict(conflictId: $c) { ${RESULT} } }`,
      { c: conflictId },
    );
  }

  function autoSchedule(token: string, taskIds: string[] | null, from: string, to: string): Promise<Result> {
    return mutate(
      token,
      'autoSchedule',
      `mutation($ids: [ID!], $f: DateTime!, $t: DateTime!) { autoSchedule(taskIds: $ids, from: $f, to: $t) { ${RESULT} } }`,
      {
        ids: taskIds,
        f: from,
        t: to,
      },
    );
  }

  async function conflicts(
    token: string,
    status: 'OPEN' | 'RESOLVED' | 'DISMISSED' | null = null,
  ): Promise<Conflict[]> {
    const r = await gql<{ conflicts: { edges: Array<{ node: Conflict }> } }>(
      server.url,
      token,
      `query($s: ConflictStatus) { conflicts(status: $s, first: 20) { edges { node { ${CONFLICT} } } } }`,
      { s: status },
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.conflicts.edges.map((e) => e.node);
  }

  async function schedule(token: string, from: string, to: string): Promise<Task[]> {
    const r = await gql<{ schedule: Task[] }>(
      server.url,
      token,
      `query($f: DateTime!, $t: DateTime!) { schedule(from: $f, to: $t) { ${TASK} } }`,
      {
        f: from,
        t: to,
      },
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.schedule;
  }

  async function task(token: string, id: string): Promise<Task | null> {
    const r = await gql<{ task: Task | null }>(
      server.url,
      token,
      `query($id: ID!) { task(id: $id) { ${TASK} } }`,
      { id },
    );
    return r.data!.task;
  }

  async function operationIds(token: string): Promise<string[]> {
    const r = await gql<{ operations: { edges: Array<{ node: { id: string } }> } }>(
      server.url,
      token,
      `{ operations(first: 100) { edges { node { id } } } }`,
    );
    return r.data!.operations.edges.map((e) => e.node.id);
  }

  function ofKind(list: Conflict[], kind: string): Conflict[] {
    return list.filter((c) => c.kind === kind);
  }

  function overlapping(tasks: Task[]): Array<[string, string]> {
    const out: Array<[string, string]> = [];
    for (let i = 0; i < tasks.length; i++) {
      for (let j = i + 1; j < tasks.length; j++) {
        const a = tasks[i]!;
        const b = tasks[j]!;
        if (ms(a.scheduledStart!) < ms(b.scheduledEnd!) && ms(b.scheduledStart!) < ms(a.scheduledEnd!))
          out.push([a.title, b.title]);
      }
    }
    return out;
  }

  /** Every MOVE alternative: not before now, inside 09:00–17:00 UTC on a weekday, and its slot holds no other task. */
  async function expectMovesFree(token: string, c: Conflict): Promise<void> {
    for (const a of c.alternatives.filter((x) => x.action === 'MOVE')) {
      expect(ms(a.start!), a.description).to.be.at.least(ms(NOW));
      const s = new Date(a.start!);
      const e = new Date(a.end!);
      expect(s.getUTCHours() * 60 + s.getUTCMinutes(), a.description).to.be.at.least(9 * 60);
      expect(e.getUTCHours() * 60 + e.getUTCMinutes() || 24 * 60, a.description).to.be.at.most(17 * 60);
      expect([0, 6], a.description).not.to.include(s.getUTCDay());
      const others = (await schedule(token, a.start!, a.end!)).filter((t) => t.id !== a.taskId);
      expect(
        others.map((t) => t.title),
        a.description,
      ).to.deep.equal([]);
    }
  }

  /** The shared checks of one detected conflict: returned, stored OPEN, listed, with ranked alternatives. */
  async function expectDetected(
    token: string,
    r: Result,
    kind: string,
    taskIds: string[],
  ): Promise<Conflict> {
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    const found = ofKind(r.conflicts, kind);
    expect(found, `${kind} in ${JSON.stringify(r.conflicts.map((c) => c.kind))}`).to.have.length(1);
    const c = found[0]!;
    expect(c.status).to.equal('OPEN');
    expect(c.detectedAt).to.equal(clock.now().toISOString());
    expect(c.tasks.map((t) => t.id)).to.include.members(taskIds);
    expect(c.message).to.be.a('string').and.not.equal('');
    expect(c.alternatives.length).to.be.within(1, 5);
    const scores = c.alternatives.map((a) => a.score);
    expect(scores).to.deep.equal([...scores].sort((x, y) => y - x));
    for (const a of c.alternatives) {
      expect(a.description.length).to.be.greaterThan(10);
      expect(c.tasks.map((t) => t.id)).to.include(a.taskId);
    }
    expect(r.changes).to.deep.include({
      entity: 'Conflict',
      id: c.id,
      field: 'status',
      before: null,
      after: 'OPEN',
    });
    const open = await conflicts(token, 'OPEN');
    expect(open.map((x) => x.id)).to.include(c.id);
    expect(open.find((x) => x.id === c.id)!.alternatives).to.deep.equal(c.alternatives);
    return c;
  }

  /** After `r` removed the cause, the conflict is RESOLVED (by itself), reported in the changes. */
  async function expectResolvedBy(token: string, r: Result, c: Conflict): Promise<void> {
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    expect(r.conflicts.map((x) => x.id)).not.to.include(c.id);
    expect(r.changes).to.deep.include({
      entity: 'Conflict',
      id: c.id,
      field: 'status',
      before: 'OPEN',
      after: 'RESOLVED',
    });
    const resolved = await conflicts(token, 'RESOLVED');
    const stored = resolved.find((x) => x.id === c.id);
    expect(stored, 'listed as RESOLVED').to.not.equal(undefined);
    expect(stored!.closedAt).to.equal(clock.now().toISOString());
    expect((await conflicts(token, 'OPEN')).map((x) => x.id)).not.to.include(c.id);
  }

  // ------------------------------------------------------------------------------------------- kinds

  describe('each kind is detected, stored, listed, offered alternatives, and resolves by itself', () => {
    it('OVERLAP', async () => {
      const t = await user();
      const a = await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const r = await create(t, {
        title: 'B',
        scheduledStart: '2026-12-01T10:30:00Z',
        scheduledEnd: '2026-12-01T11:30:00Z',
      });
      const b = r.task!.id;
      const c = await expectDetected(t, r, 'OVERLAP', [a, b]);
      expect(c.tasks[0]!.id, 'the task just changed is the subject').to.equal(b);
      expect(c.message).to.contain('"B" overlaps "A"');
      expect(c.alternatives[0]!.action).to.equal('MOVE');
      expect(c.alternatives[0]!.description).to.match(/same day/);
      await expectMovesFree(t, c);
      // Only the tasks the change touched are checked: an unrelated change leaves the conflict alone.
      const other = await create(t, {
        title: 'unrelated',
        scheduledStart: '2026-12-02T10:00:00Z',
        scheduledEnd: '2026-12-02T11:00:00Z',
      });
      expect(other.conflicts).to.deep.equal([]);
      expect((await conflicts(t, 'OPEN')).map((x) => x.id)).to.deep.equal([c.id]);
      await expectResolvedBy(t, await scheduleTask(t, b, '2026-12-01T12:00:00Z', '2026-12-01T13:00:00Z'), c);
    });

    it('OVER_CAPACITY (scheduled minutes in one local day over the capacity)', async () => {
      const t = await user({ dailyCapacityMinutes: 120 });
      const a = await slot(t, 'A', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z');
      const b = await slot(t, 'B', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const r = await create(t, {
        title: 'C',
        scheduledStart: '2026-12-01T11:00:00Z',
        scheduledEnd: '2026-12-01T11:30:00Z',
      });
      const c3 = r.task!.id;
      const c = await expectDetected(t, r, 'OVER_CAPACITY', [a, b, c3]);
      expect(c.message).to.contain('2026-12-01').and.contain('150 min').and.contain('120 min');
      // Moving a task to another day relieves the day.
      const move = c.alternatives.find((x) => x.action === 'MOVE');
      expect(move, 'a MOVE to another day').to.not.equal(undefined);
      expect(move!.start!.slice(0, 10)).to.not.equal('2026-12-01');
      await expectResolvedBy(t, await unscheduleTask(t, c3), c);
    });

    it('PAST_DUE (scheduled end after the due time)', async () => {
      const t = await user();
      const r = await create(t, {
        title: 'Report',
        dueAt: '2026-12-01T12:00:00Z',
        scheduledStart: '2026-12-01T11:30:00Z',
        scheduledEnd: '2026-12-01T12:30:00Z',
      });
      const c = await expectDetected(t, r, 'PAST_DUE', [r.task!.id]);
      for (const a of c.alternatives.filter((x) => x.action === 'MOVE')) {
        expect(ms(a.end!), a.description).to.be.at.most(ms('2026-12-01T12:00:00Z'));
        expect(a.description).to.contain('before its due time');
      }
      await expectMovesFree(t, c);
      await expectResolvedBy(t, await updateTask(t, r.task!.id, { dueAt: '2026-12-01T18:00:00Z' }), c);
    });

    it('DEPENDENCY_ORDER (a task starts before a task it depends on ends)', async () => {
      const t = await user();
      const a = await slot(t, 'Design', '2026-12-01T14:00:00Z', '2026-12-01T15:00:00Z');
      const r = await create(t, {
        title: 'Build',
        dependsOn: [a],
        scheduledStart: '2026-12-01T13:00:00Z',
        scheduledEnd: '2026-12-01T14:00:00Z',
      });
      const b = r.task!.id;
      const c = await expectDetected(t, r, 'DEPENDENCY_ORDER', [b, a]);
      expect(c.tasks.map((x) => x.id)).to.deep.equal([b, a]);
      for (const alt of c.alternatives.filter((x) => x.action === 'MOVE' && x.taskId === b)) {
        expect(ms(alt.start!), alt.description).to.be.at.least(ms('2026-12-01T15:00:00Z'));
      }
      for (const alt of c.alternatives.filter((x) => x.action === 'MOVE' && x.taskId === a)) {
        expect(ms(alt.end!), alt.description).to.be.at.most(ms('2026-12-01T13:00:00Z'));
      }
      await expectMovesFree(t, c);
      // Moving the dependency earlier also removes the cause: detected from the dependency's side.
      await expectResolvedBy(t, await scheduleTask(t, a, '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z'), c);
    });

    it('DEPENDENCY_ORDER for each of several dependencies, seen from either side', async () => {
      const t = await user();
      const d1 = await slot(t, 'D1', '2026-12-01T13:00:00Z', '2026-12-01T14:00:00Z');
      const d2 = await slot(t, 'D2', '2026-12-01T14:00:00Z', '2026-12-01T15:00:00Z');
      const d3 = await slot(t, 'D3', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z');
      const r = await create(t, {
        title: 'Late starter',
        dependsOn: [d1, d2, d3],
        scheduledStart: '2026-12-01T13:30:00Z',
        scheduledEnd: '2026-12-01T13:45:00Z',
      });
      const deps = ofKind(r.conflicts, 'DEPENDENCY_ORDER').map((c) => c.tasks[1]!.id);
      expect(deps).to.have.members([d1, d2]);
      // Moving a dependency later (touching only it) opens the conflict from the dependency's side.
      const moved = await scheduleTask(t, d3, '2026-12-01T15:00:00Z', '2026-12-01T16:00:00Z');
      expect(ofKind(moved.conflicts, 'DEPENDENCY_ORDER').map((c) => c.tasks.map((x) => x.id))).to.deep.equal([
        [r.task!.id, d3],
      ]);
    });

    it('OUTSIDE_WORKING_HOURS (any part outside the working hours)', async () => {
      const t = await user();
      const r = await create(t, {
        title: 'Late',
        scheduledStart: '2026-12-01T16:30:00Z',
        scheduledEnd: '2026-12-01T17:30:00Z',
      });
      const c = await expectDetected(t, r, 'OUTSIDE_WORKING_HOURS', [r.task!.id]);
      expect(c.message).to.contain('partly').and.contain('30 min outside');
      await expectMovesFree(t, c);
      // Widening the working hours removes the cause (settings changes re-check the plan).
      const s = await updateSettings(t, {
        workingHours: [{ weekday: 'TUESDAY', intervals: [{ start: '09:00', end: '18:00' }] }],
      });
      await expectResolvedBy(t, s, c);
    });

    it('ignores DONE and CANCELLED tasks, and resolves a conflict when its task is completed or deleted', async () => {
      const t = await user();
      const a = await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const done = await create(t, {
        title: 'done',
        scheduledStart: '2026-12-01T10:00:00Z',
        scheduledEnd: '2026-12-01T11:00:00Z',
      });
      const cancelled = await updateTask(t, done.task!.id, { status: 'CANCELLED' });
      expect(cancelled.conflicts).to.deep.equal([]);
      const b = await create(t, {
        title: 'B',
        scheduledStart: '2026-12-01T10:30:00Z',
        scheduledEnd: '2026-12-01T11:30:00Z',
      });
      const c = await expectDetected(t, b, 'OVERLAP', [a, b.task!.id]);
      const completed = await mutate(
        t,
        'completeTask',
        `mutation($id: ID!) { completeTask(id: $id) { ${RESULT} } }`,
        { id: a },
      );
      await expectResolvedBy(t, completed, c);
      const d = await create(t, {
        title: 'D',
        scheduledStart: '2026-12-01T11:00:00Z',
        scheduledEnd: '2026-12-01T12:00:00Z',
      });
      const c2 = await expectDetected(t, d, 'OVERLAP', [b.task!.id, d.task!.id]);
      const deleted = await mutate(
        t,
        'deleteTask',
        `mutation($id: ID!) { deleteTask(id: $id) { ${RESULT} } }`,
        { id: d.task!.id },
      );
      await expectResolvedBy(t, deleted, c2);
    });
  });

  // ------------------------------------------------------------------------------------------- policies

  describe('onConflict policies', () => {
    it('ALLOW applies the change and reports the conflict', async () => {
      const t = await user();
      await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const b = await create(t, { title: 'B' });
      const r = await scheduleTask(t, b.task!.id, '2026-12-01T10:30:00Z', '2026-12-01T11:30:00Z', 'ALLOW');
      expect(r.ok).to.equal(true);
      expect(r.operation!.kind).to.equal('SCHEDULE_TASK');
      expect(r.task!.scheduledStart).to.equal('2026-12-01T10:30:00.000Z');
      expect(ofKind(r.conflicts, 'OVERLAP')).to.have.length(1);
    });

    it('REJECT writes nothing and answers CONFLICT_REJECTED with the conflicts and their alternatives', async () => {
      const t = await user();
      const a = await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const b = await create(t, { title: 'B', estimateMinutes: 60 });
      const before = await task(t, b.task!.id);
      const opsBefore = await operationIds(t);
      const conflictsBefore = await conflicts(t);

      const r = await scheduleTask(t, b.task!.id, '2026-12-01T10:30:00Z', null, 'REJECT');
      expect(r.ok).to.equal(false);
      expect(r.operation).to.equal(null);
      expect(r.changes).to.deep.equal([]);
      expect(r.errors).to.have.length(1);
      expect(r.errors[0]!.code).to.equal('CONFLICT_REJECTED');
      const overlap = ofKind(r.conflicts, 'OVERLAP');
      expect(overlap).to.have.length(1);
      expect(overlap[0]!.tasks.map((x) => x.id)).to.have.members([a, b.task!.id]);
      expect(overlap[0]!.alternatives.length).to.be.at.least(1);

      expect(await task(t, b.task!.id)).to.deep.equal(before);
      expect(await operationIds(t)).to.deep.equal(opsBefore);
      expect(await conflicts(t)).to.deep.equal(conflictsBefore);

      // A creation under REJECT leaves no task behind either.
      const c = await create(
        t,
        { title: 'C', scheduledStart: '2026-12-01T10:15:00Z', scheduledEnd: '2026-12-01T10:45:00Z' },
        'REJECT',
      );
      expect(c.ok).to.equal(false);
      expect(c.errors[0]!.code).to.equal('CONFLICT_REJECTED');
      expect(
        (await schedule(t, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z')).map((x) => x.title),
      ).to.deep.equal(['A']);
      expect(await operationIds(t)).to.deep.equal(opsBefore);

      // A conflict-free change under REJECT goes through.
      const ok = await scheduleTask(t, b.task!.id, '2026-12-01T11:00:00Z', null, 'REJECT');
      expect(ok.ok).to.equal(true);
      expect(ok.conflicts).to.deep.equal([]);
    });

    it('AUTO_RESOLVE applies the best alternative in the same operation and shows what was asked and done', async () => {
      const t = await user();
      const a = await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const b = await create(t, { title: 'B' });
      const r = await scheduleTask(
        t,
        b.task!.id,
        '2026-12-01T10:30:00Z',
        '2026-12-01T11:30:00Z',
        'AUTO_RESOLVE',
      );
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.operation!.kind).to.equal('SCHEDULE_TASK');
      const note = r.warnings.find((w) => w.startsWith('AUTO_RESOLVE'));
      expect(note, JSON.stringify(r.warnings)).to.match(/overlaps .* → applied: Move "(A|B)"/);
      expect(r.conflicts).to.deep.equal([]);
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);
      const day = await schedule(t, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z');
      expect(day.map((x) => x.id)).to.have.members([a, b.task!.id]);
      expect(overlapping(day)).to.deep.equal([]);
      // The changes show where things ended up; the operation is one step for undo.
      const moved = r.tasks.find(
        (x) =>
          x.scheduledStart !== '2026-12-01T10:00:00.000Z' && x.scheduledStart !== '2026-12-01T10:30:00.000Z',
      );
      expect(moved, 'the task the alternative moved').to.not.equal(undefined);
      expect(
        r.changes.some((c) => c.entity === 'Task' && c.id === moved!.id && c.field === 'scheduledStart'),
      ).to.equal(true);
      const undo = await mutate(t, 'undo', `mutation { undo { ${RESULT} } }`, {});
      expect(undo.ok).to.equal(true);
      expect((await task(t, b.task!.id))!.scheduledStart).to.equal(null);
      expect((await task(t, a))!.scheduledStart).to.equal('2026-12-01T10:00:00.000Z');
    });
  });

  // ------------------------------------------------------------------------------------------- resolve / dismiss

  describe('resolveConflict and dismissConflict', () => {
    async function overlapSetup(t: string): Promise<{ a: string; b: string; conflict: Conflict }> {
      const a = await slot(t, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
      const r = await create(t, {
        title: 'B',
        scheduledStart: '2026-12-01T10:30:00Z',
        scheduledEnd: '2026-12-01T11:30:00Z',
      });
      const conflict = ofKind(r.conflicts, 'OVERLAP')[0]!;
      expect(conflict.alternatives.length).to.be.at.least(1);
      return { a, b: r.task!.id, conflict };
    }

    it('applies an alternative in one call: the conflict is RESOLVED and the schedule overlap-free', async () => {
      const t = await user();
      const { a, b, conflict } = await overlapSetup(t);
      const alt = conflict.alternatives[0]!;
      const r = await resolveConflict(t, conflict.id, alt.id);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.operation!.kind).to.equal('RESOLVE_CONFLICT');
      expect(r.task!.id).to.equal(alt.taskId);
      expect(r.task!.scheduledStart).to.equal(alt.start);
      expect(r.task!.scheduledEnd).to.equal(alt.end);
      expect(r.conflicts).to.deep.equal([]);
      const stored = (await conflicts(t, 'RESOLVED')).find((c) => c.id === conflict.id)!;
      expect(stored.chosenAlternativeId).to.equal(alt.id);
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);
      const day = await schedule(t, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z');
      expect(day.map((x) => x.id)).to.have.members([a, b]);
      expect(overlapping(day)).to.deep.equal([]);
      // A resolved conflict cannot be resolved again.
      const again = await resolveConflict(t, conflict.id, alt.id);
      expect(again.ok).to.equal(false);
      expect(again.errors[0]).to.deep.include({ code: 'VALIDATION', path: ['conflictId'] });
    });

    it('answers ALTERNATIVE_STALE with fresh alternatives when the slot was taken since, and a fresh one works', async () => {
      const t = await user();
      const { conflict } = await overlapSetup(t);
      // A MOVE into a slot clear of both tasks' current times, so that a task put there collides with nothing.
      const alt = conflict.alternatives.find(
        (x) =>
          x.action === 'MOVE' &&
          (ms(x.end!) <= ms('2026-12-01T10:00:00Z') || ms(x.start!) >= ms('2026-12-01T11:30:00Z')),
      )!;
      expect(alt, JSON.stringify(conflict.alternatives)).to.not.equal(undefined);
      // Another task takes the alternative's slot (a change that does not touch the conflict's tasks).
      const blocker = await create(t, { title: 'Blocker', scheduledStart: alt.start, scheduledEnd: alt.end });
      expect(blocker.conflicts).to.deep.equal([]);
      const opsBefore = await operationIds(t);

      const stale = await resolveConflict(t, conflict.id, alt.id);
      expect(stale.ok).to.equal(false);
      expect(stale.operation).to.equal(null);
      expect(stale.errors[0]).to.deep.include({ code: 'ALTERNATIVE_STALE', path: ['alternativeId'] });
      expect(stale.errors[0]!.message).to.match(/no longer fits/);
      expect(stale.conflicts).to.have.length(1);
      const fresh = stale.conflicts[0]!;
      expect(fresh.id).to.equal(conflict.id);
      expect(fresh.alternatives.length).to.be.at.least(1);
      expect(fresh.alternatives.map((x) => x.id)).not.to.include(alt.id);
      expect(await operationIds(t)).to.deep.equal(opsBefore);
      expect((await conflicts(t, 'OPEN')).map((c) => c.id)).to.deep.equal([conflict.id]);

      const ok = await resolveConflict(t, conflict.id, fresh.alternatives[0]!.id);
      expect(ok.ok, JSON.stringify(ok.errors)).to.equal(true);
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);
      expect(overlapping(await schedule(t, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'))).to.deep.equal(
        [],
      );
    });

    it('applies a stored alternative that still fits even when fresher ones now rank above it', async () => {
      const t = await user();
      // A blocker right after B keeps the nearest later slot busy while the alternatives are offered.
      const blocker = await slot(t, 'Blocker', '2026-12-01T11:30:00Z', '2026-12-01T12:30:00Z');
      const setup = await overlapSetup(t);
      // The same plan without the blocker (another user) shows what a fresh computation ranks first.
      const twin = await overlapSetup(await user());
      const label = (ids: { a: string; b: string }, x: Alternative) =>
        `${x.taskId === ids.a ? 'A' : 'B'}@${x.start}`;
      const freshLabels = twin.conflict.alternatives.map((x) => label(twin, x));
      const pushedOut = setup.conflict.alternatives.find(
        (x) => x.action === 'MOVE' && !freshLabels.includes(label(setup, x)),
      );
      expect(pushedOut, 'a stored alternative that a fresh top 5 no longer lists').to.not.equal(undefined);

      const deleted = await mutate(
        t,
        'deleteTask',
        `mutation($id: ID!) { deleteTask(id: $id) { ${RESULT} } }`,
        { id: blocker },
      );
      expect(deleted.ok).to.equal(true);
      const r = await resolveConflict(t, setup.conflict.id, pushedOut!.id);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.task!.scheduledStart).to.equal(pushedOut!.start);
      expect(
        (await conflicts(t, 'RESOLVED')).find((c) => c.id === setup.conflict.id)!.chosenAlternativeId,
      ).to.equal(pushedOut!.id);
      expect(overlapping(await schedule(t, '2026-12-01T00:00:00Z', '2026-12-02T00:00:00Z'))).to.deep.equal(
        [],
      );
    });

    it('answers NOT_FOUND for an unknown alternative or conflict', async () => {
      const t = await user();
      const { conflict } = await overlapSetup(t);
      const r = await resolveConflict(t, conflict.id, 'alt_0000000000000000');
      expect(r.ok).to.equal(false);
      expect(r.errors[0]).to.deep.include({ code: 'NOT_FOUND', path: ['alternativeId'] });
      const other = await user();
      const r2 = await resolveConflict(other, conflict.id, conflict.alternatives[0]!.id);
      expect(r2.errors[0]).to.deep.include({ code: 'NOT_FOUND', path: ['conflictId'] });
      const r3 = await dismissConflict(other, conflict.id);
      expect(r3.errors[0]).to.deep.include({ code: 'NOT_FOUND', path: ['conflictId'] });
    });

    it('dismissConflict keeps the plan, marks it DISMISSED, and it is not re-reported while the condition lasts', async () => {
      const t = await user();
      const { a, b, conflict } = await overlapSetup(t);
      const d = await dismissConflict(t, conflict.id);
      expect(d.ok).to.equal(true);
      expect(d.operation!.kind).to.equal('DISMISS_CONFLICT');
      expect(d.changes).to.deep.include({
        entity: 'Conflict',
        id: conflict.id,
        field: 'status',
        before: 'OPEN',
        after: 'DISMISSED',
      });
      expect((await task(t, a))!.scheduledStart).to.equal('2026-12-01T10:00:00.000Z');
      expect((await task(t, b))!.scheduledStart).to.equal('2026-12-01T10:30:00.000Z');
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);
      expect((await conflicts(t, 'DISMISSED')).map((c) => c.id)).to.deep.equal([conflict.id]);

      // Still overlapping after another change to B: not re-reported (REJECT does not refuse it either).
      const r = await scheduleTask(t, b, '2026-12-01T10:15:00Z', '2026-12-01T11:15:00Z');
      expect(ofKind(r.conflicts, 'OVERLAP')).to.deep.equal([]);
      const rej = await updateTask(t, b, { title: 'B2' }, 'REJECT');
      expect(rej.ok).to.equal(true);
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);

      // Once the cause is gone and comes back, it is a new conflict.
      await scheduleTask(t, b, '2026-12-01T12:00:00Z', '2026-12-01T13:00:00Z');
      const back = await scheduleTask(t, b, '2026-12-01T10:30:00Z', '2026-12-01T11:30:00Z');
      const again = ofKind(back.conflicts, 'OVERLAP');
      expect(again).to.have.length(1);
      expect(again[0]!.id).to.not.equal(conflict.id);
      expect((await conflicts(t, 'DISMISSED')).map((c) => c.id)).to.deep.equal([conflict.id]);
    });
  });

  // ------------------------------------------------------------------------------------------- settings

  describe('updateSettings and me', () => {
    const ME = `{ me { id timeZone dailyCapacityMinutes workingHours { weekday intervals { start end } } } }`;
    interface Me {
      timeZone: string;
      dailyCapacityMinutes: number;
      workingHours: Array<{ weekday: string; intervals: Array<{ start: string; end: string }> }>;
    }
    const me = async (t: string): Promise<Me> => (await gql<{ me: Me }>(server.url, t, ME)).data!.me;

    it('changes time zone, working hours and capacity (an undoable operation) and me reads them', async () => {
      const t = await user();
      const initial = await me(t);
      expect(initial.timeZone).to.equal('UTC');
      expect(initial.dailyCapacityMinutes).to.equal(480);
      expect(initial.workingHours.map((d) => d.weekday)).to.deep.equal([...WEEKDAYS]);

      const r = await updateSettings(t, {
        timeZone: 'Europe/Berlin',
        dailyCapacityMinutes: 300,
        workingHours: [
          {
            weekday: 'MONDAY',
            intervals: [
              { start: '08:00', end: '12:00' },
              { start: '13:00', end: '18:00' },
            ],
          },
          { weekday: 'SATURDAY', intervals: [{ start: '10:00', end: '24:00' }] },
        ],
      });
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.operation!.kind).to.equal('UPDATE_SETTINGS');
      expect(r.changes).to.deep.include({
        entity: 'User',
        id: r.changes.find((c) => c.entity === 'User')!.id,
        field: 'timeZone',
        before: 'UTC',
        after: 'Europe/Berlin',
      });
      const now = await me(t);
      expect(now.timeZone).to.equal('Europe/Berlin');
      expect(now.dailyCapacityMinutes).to.equal(300);
      const hours = Object.fromEntries(now.workingHours.map((d) => [d.weekday, d.intervals]));
      expect(hours['MONDAY']).to.deep.equal([
        { start: '08:00', end: '12:00' },
        { start: '13:00', end: '18:00' },
      ]);
      expect(hours['SATURDAY']).to.deep.equal([{ start: '10:00', end: '24:00' }]);
      expect(hours['TUESDAY']).to.deep.equal(
        [{ start: '09:00', end: '17:00' }],
        'days not listed keep their hours',
      );
      expect(hours['SUNDAY']).to.deep.equal([]);

      const undo = await mutate(t, 'undo', `mutation { undo { ${RESULT} } }`, {});
      expect(undo.ok).to.equal(true);
      expect(await me(t)).to.deep.equal(initial);
    });

    const invalid: Array<[string, Record<string, unknown>, string[]]> = [
      ['an unknown time zone', { timeZone: 'Mars/Olympus_Mons' }, ['input', 'timeZone']],
      ['a fixed offset instead of a zone', { timeZone: '+01:00' }, ['input', 'timeZone']],
      [
        'hours that end before they start',
        { workingHours: [{ weekday: 'MONDAY', intervals: [{ start: '17:00', end: '09:00' }] }] },
        ['input', 'workingHours'],
      ],
      [
        'overlapping intervals',
        {
          workingHours: [
            {
              weekday: 'MONDAY',
              intervals: [
                { start: '09:00', end: '12:00' },
                { start: '11:00', end: '13:00' },
              ],
            },
          ],
        },
        ['input', 'workingHours'],
      ],
      [
        'a malformed time',
        { workingHours: [{ weekday: 'MONDAY', intervals: [{ start: '9am', end: '17:00' }] }] },
        ['input', 'workingHours'],
      ],
      [
        'a weekday listed twice',
        {
          workingHours: [
            { weekday: 'MONDAY', intervals: [] },
            { weekday: 'MONDAY', intervals: [] },
          ],
        },
        ['input', 'workingHours', '1', 'weekday'],
      ],
      ['a capacity of 0', { dailyCapacityMinutes: 0 }, ['input', 'dailyCapacityMinutes']],
      ['a capacity over 1440', { dailyCapacityMinutes: 1441 }, ['input', 'dailyCapacityMinutes']],
    ];
    for (const [name, input, path] of invalid) {
      it(`refuses ${name} with VALIDATION and a path, writing nothing`, async () => {
        const t = await user();
        const before = await me(t);
        const r = await updateSettings(t, input);
        expect(r.ok).to.equal(false);
        expect(r.operation).to.equal(null);
        expect(r.errors.map((e) => e.code)).to.include('VALIDATION');
        expect(r.errors.map((e) => e.path)).to.deep.include(path);
        expect(await me(t)).to.deep.equal(before);
      });
    }
  });

  // ------------------------------------------------------------------------------------------- autoSchedule

  describe('autoSchedule', () => {
    const FROM = '2026-12-01T00:00:00Z';
    const TO = '2026-12-03T00:00:00Z';

    it('places by priority and due time, respects dependencies, hours and capacity, and explains what it could not place', async () => {
      const t = await user({ dailyCapacityMinutes: 240 });
      const existing = await slot(t, 'Existing', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z');
      const mk = async (input: Record<string, unknown>) => (await create(t, input)).task!.id;
      const low = await mk({ title: 'low', priority: 'LOW', estimateMinutes: 60 });
      const urgent = await mk({ title: 'urgent', priority: 'URGENT', estimateMinutes: 60 });
      const highLate = await mk({
        title: 'high, due later',
        priority: 'HIGH',
        estimateMinutes: 30,
        dueAt: '2026-12-02T17:00:00Z',
      });
      const highSoon = await mk({
        title: 'high, due sooner',
        priority: 'HIGH',
        estimateMinutes: 30,
        dueAt: '2026-12-01T17:00:00Z',
      });
      const after = await mk({
        title: 'after urgent',
        priority: 'URGENT',
        estimateMinutes: 30,
        dependsOn: [urgent],
      });
      const huge = await mk({ title: 'huge', estimateMinutes: 600 });
      const overdue = await mk({ title: 'overdue', estimateMinutes: 30, dueAt: '2026-11-30T07:00:00Z' });
      const blocked = await mk({ title: 'blocked', estimateMinutes: 30, dependsOn: [huge] });
      // A task depending on `early` is already scheduled before the window: `early` cannot go in the window.
      const early = await mk({ title: 'early', estimateMinutes: 30 });
      await slot(t, 'scheduled dependent', '2026-11-27T10:00:00Z', '2026-11-27T11:00:00Z', {
        dependsOn: [early],
      });

      const ids = [low, urgent, highLate, highSoon, after, huge, overdue, blocked, early];
      const r = await autoSchedule(t, ids, FROM, TO);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.operation!.kind).to.equal('AUTO_SCHEDULE');
      expect(r.conflicts).to.deep.equal([]);
      const at = new Map(r.placements.map((p) => [p.taskId, p]));
      expect([...at.keys()]).to.have.members([low, urgent, highLate, highSoon, after]);
      const why = new Map(r.unplaced.map((u) => [u.taskId, u]));
      expect(why.get(huge)!.code).to.equal('NO_ESTIMATE_SLOT');
      expect(why.get(overdue)!.code).to.equal('NO_SLOT_BEFORE_DUE');
      expect(why.get(blocked)!.code).to.equal('DEPENDENCY_UNPLACED');
      expect(why.get(early)!.code).to.equal('NO_SLOT_IN_WINDOW');
      expect(why.get(early)!.reason).to.match(/depending on it starts/);
      for (const u of r.unplaced) expect(u.reason).to.contain('"');

      const start = (id: string) => ms(at.get(id)!.start);
      expect(start(urgent)).to.be.lessThan(start(highSoon));
      expect(start(highSoon)).to.be.lessThan(start(highLate));
      expect(start(highLate)).to.be.lessThan(start(low));
      expect(start(after)).to.be.at.least(ms(at.get(urgent)!.end));
      expect(ms(at.get(highSoon)!.end)).to.be.at.most(ms('2026-12-01T17:00:00Z'));
      for (const p of r.placements) {
        const s = new Date(p.start);
        const e = new Date(p.end);
        expect(s.getUTCHours()).to.be.at.least(9);
        expect(e.getUTCHours() * 60 + e.getUTCMinutes()).to.be.at.most(17 * 60);
        expect(ms(p.start)).to.be.at.least(ms(FROM));
        expect(ms(p.end)).to.be.at.most(ms(TO));
      }
      const window = await schedule(t, FROM, TO);
      expect(overlapping(window)).to.deep.equal([]);
      expect(window.map((x) => x.id)).to.include(existing);
      // Daily capacity: at most 240 scheduled minutes per day.
      for (const day of ['2026-12-01', '2026-12-02']) {
        const minutes = window
          .filter((x) => x.scheduledStart!.startsWith(day))
          .reduce((sum, x) => sum + (ms(x.scheduledEnd!) - ms(x.scheduledStart!)) / 60_000, 0);
        expect(minutes, day).to.be.at.most(240);
      }
      for (const id of at.keys()) expect((await task(t, id))!.status).to.equal('SCHEDULED');
      expect(await conflicts(t, 'OPEN')).to.deep.equal([]);
    });

    it('places the whole backlog when taskIds is null', async () => {
      const t = await user();
      const ids = [];
      for (const title of ['one', 'two', 'three'])
        ids.push((await create(t, { title, estimateMinutes: 45 })).task!.id);
      const scheduled = await slot(t, 'already scheduled', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z');
      const r = await autoSchedule(t, null, FROM, TO);
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.placements.map((p) => p.taskId)).to.have.members(ids);
      expect(r.placements.map((p) => p.taskId)).not.to.include(scheduled);
      expect(r.unplaced).to.deep.equal([]);
      expect(overlapping(await schedule(t, FROM, TO))).to.deep.equal([]);
      const again = await autoSchedule(t, null, FROM, TO);
      expect(again.placements).to.deep.equal([]);
    });

    it('refuses a bad window or unknown tasks', async () => {
      const t = await user();
      const r = await autoSchedule(t, null, TO, FROM);
      expect(r.errors[0]).to.deep.include({ code: 'VALIDATION', path: ['to'] });
      const r2 = await autoSchedule(t, [randomUUID()], FROM, TO);
      expect(r2.errors[0]).to.deep.include({ code: 'NOT_FOUND', path: ['taskIds', '0'] });
    });
  });

  // ------------------------------------------------------------------------------------------- DST

  describe('time zones and DST: working hours and capacity in the user zone', () => {
    const allWeek = (start: string, end: string) =>
      WEEKDAYS.map((weekday) => ({ weekday, intervals: [{ start, end }] }));

    const cases: Array<{
      zone: string;
      day: string;
      nineLocal: string;
      eightThirtyLocal: string;
      fourPmLocal: string;
    }> = [
      // Berlin springs forward on Sunday 2026-03-29 (+01:00 → +02:00) and falls back on 2026-10-25 (+02:00 → +01:00).
      {
        zone: 'Europe/Berlin',
        day: '2026-03-29',
        nineLocal: '2026-03-29T07:00:00Z',
        eightThirtyLocal: '2026-03-29T06:30:00Z',
        fourPmLocal: '2026-03-29T14:00:00Z',
      },
      {
        zone: 'Europe/Berlin',
        day: '2026-10-25',
        nineLocal: '2026-10-25T08:00:00Z',
        eightThirtyLocal: '2026-10-25T07:30:00Z',
        fourPmLocal: '2026-10-25T15:00:00Z',
      },
      // New York springs forward on 2026-03-08 (-05:00 → -04:00) and falls back on 2026-11-01 (-04:00 → -05:00).
      {
        zone: 'America/New_York',
        day: '2026-03-08',
        nineLocal: '2026-03-08T13:00:00Z',
        eightThirtyLocal: '2026-03-08T12:30:00Z',
        fourPmLocal: '2026-03-08T20:00:00Z',
      },
      {
        zone: 'America/New_York',
        day: '2026-11-01',
        nineLocal: '2026-11-01T14:00:00Z',
        eightThirtyLocal: '2026-11-01T13:30:00Z',
        fourPmLocal: '2026-11-01T21:00:00Z',
      },
    ];
    for (const c of cases) {
      it(`${c.zone} on ${c.day}: 09:00–17:00 local stays working hours, 08:30 local does not`, async () => {
        clock.set(`${c.day}T00:00:00Z`); // so that alternatives may use the switch day itself (reset afterEach)
        const t = await user({ timeZone: c.zone, workingHours: allWeek('09:00', '17:00') });
        const plus = (iso: string, minutes: number) => new Date(ms(iso) + minutes * 60_000).toISOString();
        const nine = await create(t, {
          title: '09:00 local',
          scheduledStart: c.nineLocal,
          scheduledEnd: plus(c.nineLocal, 60),
        });
        expect(ofKind(nine.conflicts, 'OUTSIDE_WORKING_HOURS'), JSON.stringify(nine.conflicts)).to.deep.equal(
          [],
        );
        const four = await create(t, {
          title: '16:00 local',
          scheduledStart: c.fourPmLocal,
          scheduledEnd: plus(c.fourPmLocal, 60),
        });
        expect(ofKind(four.conflicts, 'OUTSIDE_WORKING_HOURS'), JSON.stringify(four.conflicts)).to.deep.equal(
          [],
        );
        const early = await create(t, {
          title: '08:30 local',
          scheduledStart: c.eightThirtyLocal,
          scheduledEnd: plus(c.eightThirtyLocal, 30),
        });
        const owh = ofKind(early.conflicts, 'OUTSIDE_WORKING_HOURS');
        expect(owh).to.have.length(1);
        expect(owh[0]!.message).to.contain('entirely').and.contain(c.zone);
        const late = await create(t, {
          title: '16:30 local',
          scheduledStart: plus(c.fourPmLocal, 30),
          scheduledEnd: plus(c.fourPmLocal, 90),
        });
        expect(ofKind(late.conflicts, 'OUTSIDE_WORKING_HOURS')).to.have.length(1);
        // The alternatives offered for the early task lie inside 09:00–17:00 local, the best one that same day.
        expect(owh[0]!.alternatives[0]!.description).to.match(/same day/);
        for (const a of owh[0]!.alternatives.filter((x) => x.action === 'MOVE')) {
          const local = new Intl.DateTimeFormat('en-GB', {
            timeZone: c.zone,
            hour: '2-digit',
            minute: '2-digit',
            hourCycle: 'h23',
          });
          const s = local.format(new Date(a.start!));
          const e = local.format(new Date(a.end!));
          expect(s >= '09:00' && e <= '17:00' && e !== '00:00', `${a.description}: ${s}–${e}`).to.equal(true);
        }
      });
    }

    const days: Array<{ zone: string; day: string; start: string; end: string; minutes: number }> = [
      {
        zone: 'Europe/Berlin',
        day: '2026-03-29',
        start: '2026-03-28T23:00:00Z',
        end: '2026-03-29T22:00:00Z',
        minutes: 1380,
      },
      {
        zone: 'Europe/Berlin',
        day: '2026-10-25',
        start: '2026-10-24T22:00:00Z',
        end: '2026-10-25T23:00:00Z',
        minutes: 1500,
      },
      {
        zone: 'America/New_York',
        day: '2026-03-08',
        start: '2026-03-08T05:00:00Z',
        end: '2026-03-09T04:00:00Z',
        minutes: 1380,
      },
      {
        zone: 'America/New_York',
        day: '2026-11-01',
        start: '2026-11-01T04:00:00Z',
        end: '2026-11-02T05:00:00Z',
        minutes: 1500,
      },
    ];
    for (const d of days) {
      it(`${d.zone} counts ${d.day} (local midnight to midnight) as ${d.minutes} minutes of capacity`, async () => {
        const capacity = Math.min(d.minutes - 1, 1440);
        const t = await user({
          timeZone: d.zone,
          workingHours: allWeek('00:00', '24:00'),
          dailyCapacityMinutes: capacity,
        });
        const whole = await create(t, {
          title: `all of ${d.day}`,
          scheduledStart: d.start,
          scheduledEnd: d.end,
        });
        expect(
          ofKind(whole.conflicts, 'OUTSIDE_WORKING_HOURS'),
          'the whole local day is working time',
        ).to.deep.equal([]);
        const over = ofKind(whole.conflicts, 'OVER_CAPACITY');
        expect(over, JSON.stringify(whole.conflicts)).to.have.length(1);
        expect(over[0]!.message).to.contain(`on ${d.day} (${d.zone}) total ${d.minutes} min`);
        // Exactly at capacity is fine: raising the capacity to the day's length (23 h) or shortening the
        // task to 1440 minutes (25 h; capacity is at most 1440) resolves the conflict.
        const fixed =
          d.minutes <= 1440
            ? await updateSettings(t, { dailyCapacityMinutes: d.minutes })
            : await scheduleTask(
                t,
                whole.task!.id,
                d.start,
                new Date(ms(d.end) - (d.minutes - 1440) * 60_000).toISOString(),
              );
        await expectResolvedBy(t, fixed, over[0]!);
      });
    }

    it('a 24-hour capacity fits the 23-hour day but not the 25-hour day (Europe/Berlin)', async () => {
      const t = await user({
        timeZone: 'Europe/Berlin',
        workingHours: allWeek('00:00', '24:00'),
        dailyCapacityMinutes: 1440,
      });
      const spring = await create(t, {
        title: 'spring day',
        scheduledStart: '2026-03-28T23:00:00Z',
        scheduledEnd: '2026-03-29T22:00:00Z',
      });
      expect(spring.conflicts).to.deep.equal([]);
      const autumn = await create(t, {
        title: 'autumn day',
        scheduledStart: '2026-10-24T22:00:00Z',
        scheduledEnd: '2026-10-25T23:00:00Z',
      });
      expect(autumn.conflicts.map((c) => c.kind)).to.deep.equal(['OVER_CAPACITY']);
    });

    it('autoSchedule places inside 09:00–17:00 local across the switch (America/New_York, 2026-11-01)', async () => {
      clock.set('2026-10-30T12:00:00Z');
      try {
        const t = await user({
          timeZone: 'America/New_York',
          workingHours: allWeek('09:00', '17:00'),
          dailyCapacityMinutes: 480,
        });
        const ids: string[] = [];
        for (let i = 0; i < 6; i++)
          ids.push((await create(t, { title: `job ${i}`, estimateMinutes: 240 })).task!.id);
        // Saturday 31 Oct (EDT) to Monday 2 Nov (EST): two 4-hour jobs fill each local working day.
        const r = await autoSchedule(t, ids, '2026-10-31T04:00:00Z', '2026-11-03T05:00:00Z');
        expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
        expect(r.placements.map((p) => [p.start, p.end])).to.deep.equal([
          ['2026-10-31T13:00:00.000Z', '2026-10-31T17:00:00.000Z'],
          ['2026-10-31T17:00:00.000Z', '2026-10-31T21:00:00.000Z'],
          ['2026-11-01T14:00:00.000Z', '2026-11-01T18:00:00.000Z'],
          ['2026-11-01T18:00:00.000Z', '2026-11-01T22:00:00.000Z'],
          ['2026-11-02T14:00:00.000Z', '2026-11-02T18:00:00.000Z'],
          ['2026-11-02T18:00:00.000Z', '2026-11-02T22:00:00.000Z'],
        ]);
        expect(r.conflicts).to.deep.equal([]);
      } finally {
        clock.set(NOW);
      }
    });
  });
});
