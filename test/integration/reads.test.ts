/**
 * Reads cost a constant number of SQL statements whatever the page size: every relation resolved
 * per parent goes through a per-request DataLoader. Statements are counted by a logger on the real
 * database's DataSource (a private one, so nothing else runs on it while a query is counted), and
 * the queries run through the real schema and per-request context.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { graphql, type GraphQLSchema } from 'graphql';
import type { DataSource, Logger } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { buildSchema, createContext, type AuthContext } from '../../src/resolvers';
import { ManualClock } from '../../src/world/clock';
import { DomainError } from '../../src/world/errors';
import { READ_CAPS } from '../../src/world/loaders';
import { createWorld, type World } from '../../src/world/world';
import { testDatabaseUrl } from '../support/db';

/** Counts the statements the DataSource sends while `counting` is on. */
class CountingLogger implements Logger {
  counting = false;
  readonly statements: string[] = [];
  logQuery(query: string): void {
    if (this.counting) this.statements.push(query);
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

/** Every relation the schema resolves per parent, twice nested where it can be. */
const EVERYTHING = `query($n: Int!) {
  tasks(first: $n, filter: { tag: "page" }) {
    edges { node {
      id
      goal { id tasks(first: 3) { edges { node { id goal { id } } } } }
      dependsOn { id goal { id } dependsOn { id } }
      conflicts { id tasks { id goal { id } } alternatives { id } }
    } }
  }
  goals(first: $n) { edges { node { id tasks(first: 5) { edges { node { id dependsOn { id } } } } } } }
  conflicts(status: OPEN, first: $n) {
    edges { node { id tasks { id conflicts { id } } alternatives { id score } } }
  }
  operations(first: $n) { edges { node { id target { id target { id } } } } }
  undoState { nextUndo { id target { id } } }
}`;

interface Page<T> {
  edges: Array<{ node: T }>;
}

describe('reads: per-request DataLoaders (statements per query)', function () {
  const PAGE_TASKS = 12;
  let ds: DataSource;
  let world: World;
  let logger: CountingLogger;
  let schema: GraphQLSchema;
  let alice: AuthContext;
  let bob: AuthContext;
  const clock = new ManualClock('2026-11-30T08:00:00Z');

  async function run<T>(
    auth: AuthContext,
    query: string,
    variables: Record<string, unknown> = {},
  ): Promise<{ data: T; statements: string[] }> {
    const contextValue = createContext(world, auth);
    logger.statements.length = 0;
    logger.counting = true;
    let result;
    try {
      result = await graphql({ schema, source: query, variableValues: variables, contextValue });
    } finally {
      logger.counting = false;
    }
    expect(result.errors, JSON.stringify(result.errors)).to.equal(undefined);
    return { data: result.data as T, statements: [...logger.statements] };
  }

  async function mutate<T>(auth: AuthContext, query: string, variables: Record<string, unknown>): Promise<T> {
    clock.advance(1000);
    const { data } = await run<Record<string, T & { ok: boolean; errors: unknown[] }>>(
      auth,
      query,
      variables,
    );
    const result = Object.values(data)[0]!;
    expect(result.ok, JSON.stringify(result.errors)).to.equal(true);
    return result;
  }

  async function account(): Promise<AuthContext> {
    const user = await world.users.findOrCreateByEmail(`reads-${randomUUID()}@example.com`);
    return { userId: user.id, actor: `user:${user.id}`, role: 'USER', expiresAt: 4_000_000_000 };
  }

  const CREATE_TASK = `mutation($input: CreateTaskInput!) { createTask(input: $input) { ok errors { message } task { id } } }`;
  const CREATE_GOAL = `mutation($input: CreateGoalInput!) { createGoal(input: $input) { ok errors { message } goal { id } } }`;

  before(async function () {
    this.timeout(60_000);
    ds = createDataSource(testDatabaseUrl(), { poolSize: 4, applicationName: 'planner-test-reads' });
    await ds.initialize();
    logger = new CountingLogger();
    (ds as unknown as { logger: Logger }).logger = logger;
    world = createWorld(ds, clock);
    schema = buildSchema();
    alice = await account();
    bob = await account();

    // Goals, base tasks (dependencies of the page tasks), then page tasks: each in a goal, depending
    // on a base task and on the previous page task, and overlapping its neighbour (OVERLAP conflicts).
    const goals: string[] = [];
    for (let g = 0; g < 6; g++) {
      const r = await mutate<{ goal: { id: string } }>(alice, CREATE_GOAL, { input: { title: `goal ${g}` } });
      goals.push(r.goal.id);
    }
    const base: string[] = [];
    for (let b = 0; b < 3; b++) {
      const r = await mutate<{ task: { id: string } }>(alice, CREATE_TASK, {
        input: { title: `base ${b}`, goalId: goals[b % goals.length] },
      });
      base.push(r.task.id);
    }
    let previous: string | null = null;
    for (let i = 0; i < PAGE_TASKS; i++) {
      const day = String(1 + Math.floor(i / 2)).padStart(2, '0');
      const r: { task: { id: string } } = await mutate(alice, CREATE_TASK, {
        input: {
          title: `page ${i}`,
          tags: ['page'],
          goalId: goals[i % goals.length],
          dependsOn: previous ? [base[i % base.length], previous] : [base[0]],
          scheduledStart: `2026-12-${day}T10:00:00Z`,
          scheduledEnd: `2026-12-${day}T11:00:00Z`,
        },
      });
      previous = r.task.id;
    }
    // The newest operations are undo/redo pairs (Operation.target on every node of a page).
    for (let k = 0; k < PAGE_TASKS; k++) {
      await mutate(alice, 'mutation { undo { ok errors { message } } }', {});
      await mutate(alice, 'mutation { redo { ok errors { message } } }', {});
    }
  });

  after(async () => {
    await ds?.destroy();
  });

  it('costs no more statements for a page of 12 than for a page of 1: one per relation and level', async () => {
    const counts: number[] = [];
    for (const n of [1, 4, PAGE_TASKS]) {
      const { data, statements } = await run<{
        tasks: Page<{ goal: unknown; dependsOn: unknown[]; conflicts: unknown[] }>;
        goals: Page<{ tasks: Page<unknown> }>;
        conflicts: Page<{ tasks: unknown[]; alternatives: unknown[] }>;
        operations: Page<{ target: { target: unknown } | null }>;
      }>(alice, EVERYTHING, { n });
      // The data is there at every size, so every loader runs.
      expect(data.tasks.edges).to.have.length(n);
      expect(data.goals.edges).to.have.length(Math.min(n, 6));
      expect(data.operations.edges).to.have.length(n);
      for (const { node } of data.tasks.edges) {
        expect(node.goal).not.to.equal(null);
        expect(node.dependsOn).not.to.be.empty;
        expect(node.conflicts).not.to.be.empty;
      }
      expect(data.conflicts.edges.length).to.be.at.least(Math.min(n, 2));
      for (const { node } of data.conflicts.edges) expect(node.tasks).not.to.be.empty;
      for (const { node } of data.operations.edges) expect(node.target).not.to.equal(null);
      counts.push(statements.length);
    }
    // A larger page may find more rows already loaded (fewer statements), never more statements.
    const seen = `statements per page size 1/4/12: ${counts.join('/')}`;
    expect(counts[1], seen).to.be.at.most(counts[0]!);
    expect(counts[2], seen).to.be.at.most(counts[0]!);
    expect(counts[0], seen).to.be.at.most(16);
  });

  it('costs exactly the same statements for every page size when no row repeats', async () => {
    // Two root lists, then one statement per relation: goals, conflicts, goal pages, targets.
    const query = `query($n: Int!) {
      tasks(first: $n, filter: { tag: "page" }) {
        edges { node { id goal { id tasks(first: 2) { edges { node { id } } } } conflicts { id } } }
      }
      operations(first: $n) { edges { node { id target { id } } } }
    }`;
    for (const n of [1, 4, PAGE_TASKS]) {
      const { statements } = await run(alice, query, { n });
      expect(statements, `page size ${n}`).to.have.length(6);
    }
  });

  it('Goal.tasks pages many goals in one statement, each with its own first and after', async () => {
    const { data: firstPage } = await run<{
      goals: Page<{ id: string; tasks: Page<{ id: string }> & { pageInfo: { endCursor: string } } }>;
    }>(
      alice,
      `{ goals(first: 6) { edges { node { id tasks(first: 1) { edges { node { id } } pageInfo { endCursor } } } } } }`,
    );
    const goals = firstPage.goals.edges.map((e) => e.node);
    const query = `{ ${goals
      .map(
        (g, i) =>
          `g${i}: goals(first: 6) { edges { node { id tasks(first: ${i + 1}, after: "${g.tasks.pageInfo.endCursor}") { edges { node { id } } } } } }`,
      )
      .join(' ')} }`;
    const { statements } = await run(alice, query);
    // One statement per root field (6) and ONE for all 36 goal pages.
    expect(statements.filter((s) => /LATERAL/.test(s) && /goal_id/.test(s))).to.have.length(1);
    expect(statements).to.have.length(goals.length + 1);
  });

  it("a bad page argument fails only that goal's page", async () => {
    const { data } = await run<{ goals: Page<{ id: string }> }>(
      alice,
      `{ goals(first: 2) { edges { node { id } } } }`,
    );
    const [g1, g2] = data.goals.edges.map((e) => e.node.id);
    const pages = await world.queries.tasksOfGoals(alice.userId, [
      { goalId: g1!, after: 'nope' },
      { goalId: g2!, first: 1 },
      { goalId: g1!, first: -1 },
      { goalId: 'not-a-uuid' },
    ]);
    expect(pages[0]).to.be.instanceOf(DomainError).and.have.property('code', 'VALIDATION');
    expect(pages[1]).to.have.nested.property('items.length', 1);
    expect(pages[2]).to.be.instanceOf(DomainError).and.have.property('code', 'VALIDATION');
    expect(pages[3]).to.deep.equal({ items: [], hasNextPage: false, endCursor: null });
    const bad = await graphql({
      schema,
      source: `{ goals(first: 2) { edges { node { id tasks(after: "nope") { edges { node { id } } } } } } }`,
      contextValue: createContext(world, alice),
    });
    expect(bad.errors?.[0]?.extensions['code']).to.equal('VALIDATION');
  });

  it('never shares a loader between users or requests', async () => {
    const { data } = await run<{ tasks: Page<{ id: string }> }>(
      alice,
      `{ tasks(first: 1) { edges { node { id } } } }`,
    );
    const id = data.tasks.edges[0]!.node.id;
    const a1 = createContext(world, alice);
    const a2 = createContext(world, alice);
    const b = createContext(world, bob);
    expect(a1.loaders).not.to.equal(a2.loaders);
    expect(a1.loaders!.task).not.to.equal(a2.loaders!.task);
    expect(await a1.loaders!.task.load(id)).to.have.property('id', id);
    expect(await b.loaders!.task.load(id)).to.equal(null);
    const { data: asBob } = await run<{ task: unknown }>(bob, `query($id: ID!) { task(id: $id) { id } }`, {
      id,
    });
    expect(asBob.task).to.equal(null);
  });

  it('holds Task.conflicts to its cap, oldest first', async () => {
    const carol = await account();
    const ids: string[] = [];
    for (let i = 0; i < READ_CAPS.taskConflicts + 2; i++) {
      const r = await mutate<{ task: { id: string } }>(carol, CREATE_TASK, {
        input: {
          title: `same slot ${i}`,
          scheduledStart: '2026-12-01T10:00:00Z',
          scheduledEnd: '2026-12-01T11:00:00Z',
        },
      });
      ids.push(r.task.id);
    }
    const { data } = await run<{ task: { conflicts: Array<{ id: string }> } }>(
      carol,
      `query($id: ID!) { task(id: $id) { conflicts { id } } }`,
      { id: ids[0] },
    );
    const { data: all } = await run<{ conflicts: Page<{ id: string; tasks: Array<{ id: string }> }> }>(
      carol,
      `{ conflicts(status: OPEN, first: 100) { edges { node { id tasks { id } } } } }`,
    );
    const involving = all.conflicts.edges.filter((e) => e.node.tasks.some((t) => t.id === ids[0]));
    expect(involving.length).to.be.above(READ_CAPS.taskConflicts);
    expect(data.task.conflicts).to.have.length(READ_CAPS.taskConflicts);
    // conflicts() is newest first; Task.conflicts keeps the oldest.
    const oldest = involving
      .map((e) => e.node.id)
      .reverse()
      .slice(0, READ_CAPS.taskConflicts);
    expect(data.task.conflicts.map((c) => c.id)).to.deep.equal(oldest);
  });

  it('answers { me { id } } from the authenticated caller with no statement; any other field reads the user', async () => {
    const idOnly = await run<{ me: { id: string; __typename: string } }>(alice, '{ me { id __typename } }');
    expect(idOnly.data.me).to.deep.equal({ id: alice.userId, __typename: 'User' });
    expect(idOnly.statements).to.deep.equal([]);
    const more = await run<{ me: { id: string; timeZone: string } }>(alice, '{ me { id timeZone } }');
    expect(more.data.me.id).to.equal(alice.userId);
    expect(more.data.me.timeZone).to.be.a('string');
    expect(more.statements).to.have.length(1);
    const viaFragment = await run<{ me: { id: string } }>(alice, '{ me { ...F } } fragment F on User { id }');
    expect(viaFragment.data.me.id).to.equal(alice.userId);
    expect(viaFragment.statements).to.have.length(1);
  });
});
