/**
 * Fuzzing every mutation through GraphQL (issue 10, item 3): arbitrary strings (unicode, control
 * characters, very long), extreme and malformed dates, huge, negative and fractional numbers,
 * unknown, foreign and malformed ids, dependency cycles. Every answer is a typed error or a success
 * (never INTERNAL or UNAVAILABLE), and afterwards the stored data keeps its invariants: every operation
 * has its changes and events, no row belongs to two users, and another user's data is untouched.
 *
 * Bounded (FUZZ_RUNS, default 300 mutations); fast-check prints the seed and the shrunk input of a
 * failure (replay with FUZZ_SEED=<seed>).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { testDatabaseUrl } from '../support/db';
import { gql, type GqlResponse } from '../support/graphql';
import { fingerprints, storedInvariantViolations } from '../support/invariants';
import { startTestServer, type TestServer } from '../support/server';

const RUNS = Number(process.env['FUZZ_RUNS'] ?? 300);
const SEED = process.env['FUZZ_SEED'] === undefined ? undefined : Number(process.env['FUZZ_SEED']);

/** Thrown codes that mean "your request was wrong" (typed), as opposed to INTERNAL / UNAVAILABLE. */
const TYPED_THROWN = new Set([
  'VALIDATION',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'BAD_REQUEST',
]);
const DOMAIN = new Set([
  'VALIDATION',
  'NOT_FOUND',
  'VERSION_CONFLICT',
  'CONFLICT_REJECTED',
  'ALTERNATIVE_STALE',
  'NOTHING_TO_UNDO',
  'NOTHING_TO_REDO',
  'UNDO_BLOCKED',
  'FEATURE_DISABLED',
]);

const RESULT = 'ok errors { code path } task { id } goal { id } operation { id }';

interface Result {
  ok: boolean;
  errors: Array<{ code: string; path: string[] | null }>;
  task: { id: string } | null;
  goal: { id: string } | null;
  operation: { id: string } | null;
}

// ------------------------------------------------------------------ arbitraries

const text: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }), // any code point, control characters included
  fc.string({ unit: fc.constantFrom('\u0000', '\u0007', '\u001b', '\u200b', '\u202e', '\ufeff', ' ', 'a') }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '\udfff',
    '🧪'.repeat(300),
    '%_\\',
    "'; DROP TABLE tasks; --",
  ),
  fc.integer({ min: 201, max: 200_000 }).map((n) => 'x'.repeat(n)), // very long
);

const instant: fc.Arbitrary<unknown> = fc.oneof(
  fc
    .date({
      min: new Date('2026-01-01T00:00:00Z'),
      max: new Date('2027-12-31T00:00:00Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), // from -271821 to +275760
  fc.constantFrom(
    '+275760-09-13T00:00:00.000Z',
    '-271821-04-20T00:00:00.000Z',
    '0000-01-01T00:00:00Z',
    '0001-01-01T00:00:00+14:00',
    '9999-12-31T23:59:59.999-12:00',
    '2026-02-30T09:00:00Z',
    '2026-12-01T25:00:00Z',
    '2026-12-01T09:00:00',
    '2026-12-01',
    'yesterday',
    '',
    'NaN',
  ),
  text,
  fc.integer(),
);

const number: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -3, max: 2000 }),
  fc.integer(),
  fc.constantFrom(0, -1, 1440, 1441, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53, -(2 ** 53), 1e300, 0.5, -0),
  fc.double({ noNaN: true }),
  fc.constant('12'),
);

const weekday = fc.constantFrom(
  'MONDAY',
  'TUESDAY',
  'WEDNESDAY',
  'THURSDAY',
  'FRIDAY',
  'SATURDAY',
  'SUNDAY',
  'FUNDAY',
);
const hhmm = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 24 }), fc.constantFrom(0, 15, 30, 45, 59))
    .map(([h, m]) => `${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}`),
  text,
);

interface Pools {
  /** Ids of the fuzzing user's tasks, goals, conflicts and operations seen so far. */
  own: string[];
  /** Ids belonging to the other user. */
  foreign: string[];
}

function idArb(pools: Pools): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc
      .constant(null)
      .map(() => pools.own[Math.floor(Math.random() * Math.max(1, pools.own.length))] ?? randomUUID()),
    fc.constant(null).map(() => pools.foreign[0] ?? randomUUID()),
    fc.uuid(),
    text,
    fc.integer(),
  );
}

interface Call {
  field: string;
  query: string;
  variables: Record<string, unknown>;
}

function call(field: string, signature: string, args: string, variables: Record<string, unknown>): Call {
  return { field, query: `mutation Fuzz${signature} { ${field}${args} { ${RESULT} } }`, variables };
}

function callArb(pools: Pools): fc.Arbitrary<Call> {
  const id = idArb(pools);
  const ids = fc.array(id, { maxLength: 6 });
  const priority = fc.constantFrom('LOW', 'MEDIUM', 'HIGH', 'URGENT', 'CRITICAL', null);
  const policy = fc.constantFrom('ALLOW', 'REJECT', 'AUTO_RESOLVE', 'MAYBE', null);
  const taskInput = fc.record(
    {
      title: text,
      notes: fc.option(text),
      priority,
      status: fc.constantFrom(
        'BACKLOG',
        'TODO',
        'SCHEDULED',
        'IN_PROGRESS',
        'DONE',
        'CANCELLED',
        'LOST',
        null,
      ),
      estimateMinutes: number,
      dueAt: fc.option(instant),
      scheduledStart: fc.option(instant),
      scheduledEnd: fc.option(instant),
      tags: fc.option(fc.array(text, { maxLength: 25 })),
      goalId: fc.option(id),
      dependsOn: fc.option(ids),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    fc
      .record({ input: taskInput, p: policy, key: fc.option(text) })
      .map((v) =>
        call(
          'createTask',
          '($input: CreateTaskInput!, $p: ConflictPolicy, $key: String)',
          '(input: $input, onConflict: $p, idempotencyKey: $key)',
          v,
        ),
      ),
    fc
      .record({ id, input: taskInput, v: fc.option(number), p: policy })
      .map((v) =>
        call(
          'updateTask',
          '($id: ID!, $input: UpdateTaskInput!, $v: Int, $p: ConflictPolicy)',
          '(id: $id, input: $input, expectedVersion: $v, onConflict: $p)',
          v,
        ),
      ),
    fc
      .record({ id, start: instant, end: fc.option(instant), p: policy })
      .map((v) =>
        call(
          'scheduleTask',
          '($id: ID!, $start: DateTime!, $end: DateTime, $p: ConflictPolicy)',
          '(id: $id, start: $start, end: $end, onConflict: $p)',
          v,
        ),
      ),
    fc
      .record({ field: fc.constantFrom('unscheduleTask', 'completeTask', 'deleteTask'), id })
      .map(({ field, id: x }) => call(field, '($id: ID!)', '(id: $id)', { id: x })),
    fc
      .record({
        input: fc.record({ title: text, priority, targetDate: fc.option(instant) }, { requiredKeys: [] }),
      })
      .map((v) => call('createGoal', '($input: CreateGoalInput!)', '(input: $input)', v)),
    fc
      .record({
        id,
        input: fc.record(
          {
            title: fc.option(text),
            priority,
            status: fc.constantFrom('ACTIVE', 'PAUSED', 'ACHIEVED', 'ABANDONED', 'GONE', null),
            targetDate: fc.option(instant),
          },
          { requiredKeys: [] },
        ),
        v: fc.option(number),
      })
      .map((v) =>
        call(
          'updateGoal',
          '($id: ID!, $input: UpdateGoalInput!, $v: Int)',
          '(id: $id, input: $input, expectedVersion: $v)',
          v,
        ),
      ),
    fc
      .record({ taskIds: fc.option(ids), from: instant, to: instant })
      .map((v) =>
        call(
          'autoSchedule',
          '($taskIds: [ID!], $from: DateTime!, $to: DateTime!)',
          '(taskIds: $taskIds, from: $from, to: $to)',
          v,
        ),
      ),
    fc
      .record({ c: id, a: fc.oneof(id, text) })
      .map((v) => call('resolveConflict', '($c: ID!, $a: ID!)', '(conflictId: $c, alternativeId: $a)', v)),
    fc.record({ c: id }).map((v) => call('dismissConflict', '($c: ID!)', '(conflictId: $c)', v)),
    fc.record({ op: fc.option(id) }).map((v) => call('undo', '($op: ID)', '(operationId: $op)', v)),
    fc.constant(call('redo', '', '', {})),
    fc.record({ text }).map((v) => call('remember', '($text: String!)', '(text: $text)', v)),
    fc.record({ ids: fc.option(ids) }).map((v) => call('forgetMemories', '($ids: [ID!])', '(ids: $ids)', v)),
    fc
      .record({
        input: fc.record(
          {
            timeZone: fc.oneof(
              fc.constantFrom('Europe/Berlin', 'UTC', 'Mars/Olympus', 'Etc/GMT+14', '+05:30'),
              text,
            ),
            workingHours: fc.array(
              fc.record({
                weekday,
                intervals: fc.array(fc.record({ start: hhmm, end: hhmm }), { maxLength: 4 }),
              }),
              { maxLength: 9 },
            ),
            dailyCapacityMinutes: number,
            displayName: text,
          },
          { requiredKeys: [] },
        ),
      })
      .map((v) => call('updateSettings', '($input: SettingsInput!)', '(input: $input)', v)),
  );
}

/** What is wrong with an answer (null when it is a typed error or a success). */
function verdict(c: Call, res: GqlResponse<Record<string, Result>>): string | null {
  if (res.status >= 500) return `HTTP ${res.status}`;
  if (res.errors && res.errors.length > 0) {
    const bad = res.errors.filter((e) => !TYPED_THROWN.has(String(e.extensions?.code)));
    return bad.length === 0
      ? null
      : `${c.field} threw ${bad.map((e) => `${e.extensions?.code}: ${e.message}`).join('; ')}`;
  }
  const r = res.data?.[c.field];
  if (!r) return `${c.field}: no data and no errors`;
  const odd = r.errors.filter((e) => !DOMAIN.has(e.code));
  if (odd.length > 0) return `${c.field} answered unknown codes ${odd.map((e) => e.code).join(',')}`;
  if (r.ok !== (r.errors.length === 0)) return `${c.field}: ok=${r.ok} with ${r.errors.length} errors`;
  return null;
}

describe('fuzzing every mutation through GraphQL', function () {
  this.timeout(300_000);
  let server: TestServer;
  let pg: Client;
  let token: string;
  let userId: string;
  let otherToken: string;
  let otherId: string;
  const pools: Pools = { own: [], foreign: [] };

  before(async () => {
    server = await startTestServer();
    pg = new Client({ connectionString: testDatabaseUrl(), application_name: 'planner-test-fuzz' });
    await pg.connect();
    const email = `fuzz-${randomUUID()}@example.com`;
    const other = `fuzz-other-${randomUUID()}@example.com`;
    token = await server.token(email);
    userId = (await server.world.users.findOrCreateByEmail(email)).id;
    otherToken = await server.token(other);
    otherId = (await server.world.users.findOrCreateByEmail(other)).id;
    // The other user owns a scheduled task, a goal and a conflict: ids the fuzzer will aim at.
    for (const [s, e] of [
      ['2026-12-01T09:00:00Z', '2026-12-01T11:00:00Z'],
      ['2026-12-01T10:00:00Z', '2026-12-01T12:00:00Z'],
    ]) {
      const r = await gql<{ createTask: Result }>(
        server.url,
        otherToken,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
        { input: { title: 'theirs', scheduledStart: s, scheduledEnd: e } },
      );
      pools.foreign.push(r.data!.createTask.task!.id, r.data!.createTask.operation!.id);
    }
    const c = await gql<{ conflicts: { edges: Array<{ node: { id: string } }> } }>(
      server.url,
      otherToken,
      '{ conflicts(first: 5) { edges { node { id } } } }',
    );
    pools.foreign.push(...c.data!.conflicts.edges.map((e) => e.node.id));
  });

  after(async () => {
    await pg?.end();
    await server?.close();
  });

  it('answers a typed error or a success to arbitrary input, and the stored data keeps its invariants', async () => {
    const before = (await fingerprints(pg, [otherId])).get(otherId);
    await fc.assert(
      fc.asyncProperty(callArb(pools), async (c) => {
        const res = await gql<Record<string, Result>>(server.url, token, c.query, c.variables);
        const problem = verdict(c, res);
        if (problem !== null) throw new Error(problem);
        const r = res.data?.[c.field];
        for (const x of [r?.task?.id, r?.goal?.id, r?.operation?.id])
          if (x && !pools.own.includes(x)) pools.own.push(x);
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }), endOnFailure: false },
    );
    expect(await storedInvariantViolations(testDatabaseUrl(), [userId, otherId])).to.deep.equal([]);
    expect((await fingerprints(pg, [otherId])).get(otherId), "the other user's data").to.equal(before);
  });

  it('refuses text Postgres cannot hold (NUL, lone surrogates) in query arguments with VALIDATION, not INTERNAL', async () => {
    for (const [query, variables, path] of [
      [
        'query($f: TaskFilter) { tasks(filter: $f) { edges { node { id } } } }',
        { f: { text: 'a\u0000b' } },
        'f',
      ],
      [
        'query($f: TaskFilter) { tasks(filter: $f) { edges { node { id } } } }',
        { f: { tag: '\ud800x' } },
        'f',
      ],
      ['query($q: String) { memories(query: $q) { id } }', { q: 'x\u0000' }, 'q'],
      ['query($a: String) { tasks(first: 5, after: $a) { edges { node { id } } } }', { a: '\udc00' }, 'a'],
    ] as const) {
      const r = await gql(server.url, token, query, variables);
      expect(r.errors?.[0]?.extensions?.['code'], `${path}: ${JSON.stringify(r.errors)}`).to.equal(
        'VALIDATION',
      );
    }
    // A well-formed search still answers.
    const ok = await gql<{ tasks: { edges: unknown[] } }>(
      server.url,
      token,
      'query($f: TaskFilter) { tasks(filter: $f) { edges { node { id } } } }',
      { f: { text: 'anything' } },
    );
    expect(ok.errors).to.equal(undefined);
  });

  it('refuses dependency cycles of any length with VALIDATION, writing nothing', async () => {
    const create = async (title: string, dependsOn: string[] = []) => {
      const r = await gql<{ createTask: Result }>(
        server.url,
        token,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
        { input: { title, dependsOn } },
      );
      expect(r.data!.createTask.ok, JSON.stringify(r)).to.equal(true);
      return r.data!.createTask.task!.id;
    };
    const update = (id: string, dependsOn: string[]) =>
      gql<{ updateTask: Result }>(
        server.url,
        token,
        `mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { ${RESULT} } }`,
        { id, input: { dependsOn } },
      );
    const a = await create('cycle a');
    const b = await create('cycle b', [a]);
    const c = await create('cycle c', [b]);
    const d = await create('cycle d', [c, a]);
    const digest = (await fingerprints(pg, [userId])).get(userId);
    for (const [id, deps] of [
      [a, [a]],
      [a, [b]],
      [a, [d]],
      [b, [c, a]],
      [a, [randomUUID(), d]],
    ] as Array<[string, string[]]>) {
      const r = await update(id, deps);
      expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
      expect(r.data!.updateTask.ok).to.equal(false);
      expect(r.data!.updateTask.errors.map((e) => e.code)).to.include('VALIDATION');
    }
    expect((await fingerprints(pg, [userId])).get(userId)).to.equal(digest);
  });
});
