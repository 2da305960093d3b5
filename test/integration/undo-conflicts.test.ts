/**
 * Undo and redo re-evaluate every conflict whose inputs they restore (issue 10, item 1), through
 * GraphQL against a started server with an injected clock:
 * - the exact sequence of the issue (resolve by moving B, move A onto B again, undo the resolve by
 *   id) answers without INTERNAL, and plain undo then works down to the start;
 * - undoing a capacity change leaves no OVER_CAPACITY conflict computed under the undone settings;
 * - undoing a dismissal re-checks its condition: reopened while it holds, RESOLVED once it is gone.
 * After every step, no conflict kind and task set is OPEN twice.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { ManualClock } from '../../src/world/clock';
import { gql } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const NOW = '2026-11-30T08:00:00.000Z';
const CONFLICT =
  'id kind status chosenAlternativeId tasks { id } alternatives { id action taskId start end }';
/** What the conflict lists ask for (small: the query cost limit counts every listed field). */
const LISTED = 'id kind status tasks { id }';
const RESULT = `ok errors { code message path } operation { id kind } task { id scheduledStart scheduledEnd }
  conflicts { ${CONFLICT} }`;

interface Alternative {
  id: string;
  action: string;
  taskId: string | null;
  start: string | null;
  end: string | null;
}
interface Conflict {
  id: string;
  kind: string;
  status: string;
  chosenAlternativeId: string | null;
  tasks: Array<{ id: string }>;
  alternatives: Alternative[];
}
interface Result {
  ok: boolean;
  errors: Array<{ code: string; message: string }>;
  operation: { id: string; kind: string } | null;
  task: { id: string; scheduledStart: string | null; scheduledEnd: string | null } | null;
  conflicts: Conflict[];
}

describe('undo and redo re-evaluate the conflicts they restore (issue 10)', function () {
  this.timeout(60_000);
  let server: TestServer;
  const clock = new ManualClock(NOW);

  before(async () => {
    server = await startTestServer({ clock });
  });
  after(async () => server.close());

  /** A mutation that must not throw (no INTERNAL, no GraphQL error at all). */
  async function mutate(
    token: string,
    field: string,
    query: string,
    variables: Record<string, unknown> = {},
  ) {
    const r = await gql<Record<string, Result>>(server.url, token, query, variables);
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data![field]!;
  }
  const create = (token: string, title: string, start: string, end: string) =>
    mutate(token, 'createTask', `mutation($i: CreateTaskInput!) { createTask(input: $i) { ${RESULT} } }`, {
      i: { title, scheduledStart: start, scheduledEnd: end },
    });
  const schedule = (token: string, id: string, start: string, end: string) =>
    mutate(
      token,
      'scheduleTask',
      `mutation($id: ID!, $s: DateTime!, $e: DateTime) { scheduleTask(id: $id, start: $s, end: $e) { ${RESULT} } }`,
      { id, s: start, e: end },
    );
  const undo = (token: string, operationId: string | null = null) =>
    mutate(token, 'undo', `mutation($id: ID) { undo(operationId: $id) { ${RESULT} } }`, { id: operationId });
  const redo = (token: string) => mutate(token, 'redo', `mutation { redo { ${RESULT} } }`);

  async function conflicts(token: string, status: string): Promise<Conflict[]> {
    const r = await gql<{ conflicts: { edges: Array<{ node: Conflict }> } }>(
      server.url,
      token,
      `query($s: ConflictStatus) { conflicts(status: $s, first: 20) { edges { node { ${LISTED} } } } }`,
      { s: status },
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.conflicts.edges.map((e) => e.node);
  }

  /** No two OPEN conflicts stand for the same condition (kind and tasks). */
  async function expectNoDuplicateOpen(token: string): Promise<Conflict[]> {
    const open = await conflicts(token, 'OPEN');
    const keys = open.map(
      (c) =>
        `${c.kind}:${c.tasks
          .map((t) => t.id)
          .sort()
          .join(',')}`,
    );
    expect(new Set(keys).size, keys.join(' | ')).to.equal(keys.length);
    return open;
  }

  it('resolve by moving B, move A onto B again, undo the resolve by id: no INTERNAL, then undo down to the start', async () => {
    const token = await server.token(`issue10-${randomUUID()}@example.com`);
    const a = await create(token, 'A', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
    const b = await create(token, 'B', '2026-12-01T10:30:00Z', '2026-12-01T11:30:00Z');
    const overlap = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
    const moveB = overlap.alternatives.find((x) => x.action === 'MOVE' && x.taskId === b.task!.id)!;
    expect(moveB, JSON.stringify(overlap.alternatives)).to.not.equal(undefined);
    const resolve = await mutate(
      token,
      'resolveConflict',
      `mutation($c: ID!, $a: ID!) { resolveConflict(conflictId: $c, alternativeId: $a) { ${RESULT} } }`,
      { c: overlap.id, a: moveB.id },
    );
    expect(resolve.ok, JSON.stringify(resolve.errors)).to.equal(true);
    expect(await conflicts(token, 'OPEN')).to.deep.equal([]);

    // A onto B's new slot: the same pair overlaps again, a new OPEN conflict with the same key.
    const again = await schedule(token, a.task!.id, moveB.start!, moveB.end!);
    expect(again.conflicts.map((c) => c.kind)).to.include('OVERLAP');
    await expectNoDuplicateOpen(token);

    const undone = await undo(token, resolve.operation!.id);
    expect(undone.ok, JSON.stringify(undone.errors)).to.equal(true);
    const open = await expectNoDuplicateOpen(token);
    // B is back at 10:30–11:30 and A sits on B's former alternative slot: whatever overlaps is reported once.
    for (const c of open) expect(c.status).to.equal('OPEN');

    // Plain undo keeps working down to the start.
    let steps = 0;
    for (;;) {
      const r = await undo(token);
      await expectNoDuplicateOpen(token);
      if (!r.ok) {
        expect(r.errors[0]!.code).to.equal('NOTHING_TO_UNDO');
        break;
      }
      steps += 1;
      expect(steps).to.be.below(10);
    }
    expect(steps).to.equal(3); // the move of A, the creation of B, the creation of A (the resolve is undone already)
    expect(await conflicts(token, 'OPEN')).to.deep.equal([]);
  });

  it('undoing a capacity change (480 → 60) leaves no OVER_CAPACITY computed under the undone settings', async () => {
    const token = await server.token(`issue10-cap-${randomUUID()}@example.com`);
    await create(token, 'one', '2026-12-01T09:00:00Z', '2026-12-01T10:30:00Z');
    await create(token, 'two', '2026-12-01T11:00:00Z', '2026-12-01T12:30:00Z');
    expect(await conflicts(token, 'OPEN')).to.deep.equal([]);
    const tight = await mutate(
      token,
      'updateSettings',
      `mutation($i: SettingsInput!) { updateSettings(input: $i) { ${RESULT} } }`,
      { i: { dailyCapacityMinutes: 60 } },
    );
    expect(tight.ok, JSON.stringify(tight.errors)).to.equal(true);
    expect((await conflicts(token, 'OPEN')).map((c) => c.kind)).to.include('OVER_CAPACITY');

    const undone = await undo(token);
    expect(undone.ok, JSON.stringify(undone.errors)).to.equal(true);
    expect((await conflicts(token, 'OPEN')).map((c) => c.kind)).to.not.include('OVER_CAPACITY');

    // And redo brings it back, computed under the redone settings.
    const redone = await redo(token);
    expect(redone.ok, JSON.stringify(redone.errors)).to.equal(true);
    expect((await conflicts(token, 'OPEN')).map((c) => c.kind)).to.include('OVER_CAPACITY');
    await expectNoDuplicateOpen(token);
  });

  it('undoing a dismissal reopens the conflict while its cause holds, and not once the cause is gone', async () => {
    const token = await server.token(`issue10-dismiss-${randomUUID()}@example.com`);
    await create(token, 'A', '2026-12-02T10:00:00Z', '2026-12-02T11:00:00Z');
    const b = await create(token, 'B', '2026-12-02T10:30:00Z', '2026-12-02T11:30:00Z');
    const overlap = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
    const dismiss = (id: string) =>
      mutate(
        token,
        'dismissConflict',
        `mutation($c: ID!) { dismissConflict(conflictId: $c) { ${RESULT} } }`,
        { c: id },
      );

    // The cause still holds: undo is exact, the conflict is OPEN again.
    const d1 = await dismiss(overlap.id);
    expect(d1.ok, JSON.stringify(d1.errors)).to.equal(true);
    expect(await conflicts(token, 'OPEN')).to.deep.equal([]);
    expect((await undo(token)).ok).to.equal(true);
    expect((await conflicts(token, 'OPEN')).map((c) => c.id)).to.deep.equal([overlap.id]);

    // Dismissed again, then the cause goes away (B moves), then the dismissal is undone by id.
    const d2 = await dismiss(overlap.id);
    expect(d2.ok, JSON.stringify(d2.errors)).to.equal(true);
    await schedule(token, b.task!.id, '2026-12-02T14:00:00Z', '2026-12-02T15:00:00Z');
    const undone = await undo(token, d2.operation!.id);
    expect(undone.ok, JSON.stringify(undone.errors)).to.equal(true);
    expect(await conflicts(token, 'OPEN')).to.deep.equal([]);
    expect((await conflicts(token, 'RESOLVED')).map((c) => c.id)).to.include(overlap.id);
    expect((await conflicts(token, 'DISMISSED')).map((c) => c.id)).to.not.include(overlap.id);
  });
});
