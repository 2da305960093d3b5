/**
 * Live events end to end: real graphql-ws clients against started servers on one database.
 *
 * Delivery, per-user isolation, scale-out across two instances, replay after a reconnect (no gap, no
 * duplicate at the seam), rolled-back changes announce nothing, authentication (4401, expiry while
 * connected), cursors (VALIDATION, CURSOR_EXPIRED after retention), per-connection caps, slow
 * consumers cut off with 1013 and shutdown with 1001.
 *
 * "Receives nothing" is never asserted by waiting: a later marker event for the same user is sent and
 * must be the first (or next) thing that arrives.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FormattedExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';
import { mintToken } from '../../src/server/auth';
import { ManualClock } from '../../src/world/clock';
import type { Actor } from '../../src/world/views';
import {
  collect,
  deferred,
  gql,
  SubscriptionError,
  wsClient,
  type Collector,
  type WsHandle,
} from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const PLAN = `subscription Plan($since: String, $types: [String!]) {
  planEvents(since: $since, types: $types) { cursor type at payload }
}`;
const CONFLICTS = `subscription Conflicts($since: String) {
  conflictEvents(since: $since) { cursor type conflict { id kind status message detectedAt tasks { id title } } }
}`;
const UNDO = `subscription Undo($since: String) {
  undoEvents(since: $since) { cursor type operation { id kind state } }
}`;

interface PlanEvent {
  cursor: string;
  type: string;
  at: string;
  payload: {
    operation: { id: string; kind: string };
    changes: Array<{ entity: string; id: string; field: string; after: unknown }>;
  };
}
interface ConflictEvent {
  cursor: string;
  type: string;
  conflict: { id: string; kind: string; status: string; tasks: Array<{ id: string; title: string }> };
}
interface UndoEvent {
  cursor: string;
  type: string;
  operation: { id: string; kind: string; state: string };
}

const RESULT = 'ok errors { code message } operation { id kind } task { id title } conflicts { id kind }';
const CREATE = `mutation($input: CreateTaskInput!, $on: ConflictPolicy) { createTask(input: $input, onConflict: $on) { ${RESULT} } }`;

interface MutationResult {
  ok: boolean;
  errors: Array<{ code: string; message: string }>;
  operation: { id: string; kind: string } | null;
  task: { id: string; title: string } | null;
  conflicts: Array<{ id: string; kind: string }>;
}

/**
 * Every test uses fresh users, whose first cursor is "0": subscribing with since "0" makes delivery
 * independent of when the server finishes registering the subscription (nothing can be missed).
 */
const SINCE_START = { since: '0' };

const email = (tag: string) => `${tag}-${randomUUID()}@example.com`;

async function actorOf(server: TestServer, address: string): Promise<Actor> {
  const user = await server.world.users.findOrCreateByEmail(address);
  return { userId: user.id, actor: `user:${user.id}` };
}

/**
 * Appends plan events straight to the outbox with the writers' own protocol (the user's row lock,
 * the next per-user seq, pg_notify in the same transaction): a fast, faithful event source for
 * tests about delivery rather than about the WorldUpdater. Each event's title is in `changes`.
 */
async function appendEvents(server: TestServer, userId: string, titles: string[], filler = 0): Promise<void> {
  const qr = server.world.dataSource.createQueryRunner();
  await qr.connect();
  try {
    await qr.startTransaction();
    const rows = (await qr.query('SELECT event_seq FROM users WHERE id = $1 FOR UPDATE', [userId])) as Array<{
      event_seq: string;
    }>;
    let seq = Number(rows[0]!.event_seq);
    for (const title of titles) {
      seq += 1;
      const payload = {
        operation: { id: randomUUID(), kind: 'SYNTHETIC' },
        changes: [{ entity: 'Task', id: randomUUID(), field: 'title', before: null, after: title }],
        ...(filler > 0 ? { filler: 'x'.repeat(filler) } : {}),
      };
      await qr.query(
        'INSERT INTO events (user_id, seq, topic, type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [userId, seq, 'plan', 'SYNTHETIC', JSON.stringify(payload), server.clock.now()],
      );
    }
    await qr.query('UPDATE users SET event_seq = $2 WHERE id = $1', [userId, seq]);
    await qr.query('SELECT pg_notify($1, $2)', ['planner_events', `${userId}:${seq}`]);
    await qr.commitTransaction();
  } catch (err) {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    throw err;
  } finally {
    await qr.release();
  }
}

/** The title of the task a plan event created/changed (CREATE_TASK / UPDATE_TASK). */
function titleOf(e: PlanEvent): unknown {
  return e.payload.changes.find((c) => c.entity === 'Task' && c.field === 'title')?.after;
}

function planOf(
  results: ReadonlyArray<FormattedExecutionResult<{ planEvents: PlanEvent }, unknown>>,
): PlanEvent[] {
  return results.map((r) => {
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data!.planEvents;
  });
}

/** Asserts that cursors are strictly increasing by one (per-user, gap-free) from `after` + 1. */
function expectConsecutive(cursors: string[], after: number): void {
  cursors.forEach((c, i) => expect(Number(c), `cursor #${i}`).to.equal(after + 1 + i));
}

async function mutate(server: TestServer, token: string, query: string, variables: Record<string, unknown>) {
  const r = await gql<{ r: MutationResult }>(
    server.url,
    token,
    query.replace(/^mutation(\([^)]*\))? \{ (\w+)/, 'mutation$1 { r: $2'),
    variables,
  );
  expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
  return r.data!.r;
}

describe('live subscriptions (e2e, graphql-ws)', function () {
  this.timeout(60_000);
  let a: TestServer;
  let b: TestServer;
  const handles: WsHandle[] = [];
  const open = (server: TestServer, token: string | null, opts?: { authorization?: string }) => {
    const h = wsClient(server.wsUrl, token, opts);
    handles.push(h);
    return h;
  };

  before(async () => {
    a = await startTestServer();
    b = await startTestServer(); // a second instance on the same database
  });
  afterEach(async () => {
    await Promise.allSettled(handles.splice(0).map((h) => h.dispose()));
  });
  after(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
  });

  describe('delivery', () => {
    it('pushes the conflict a mutation caused, and its dismissal', async () => {
      const address = email('dash');
      const token = await a.token(address);
      const h = open(a, token);
      await h.connected;
      const conflicts = collect<{ conflictEvents: ConflictEvent }>(h.client, {
        query: CONFLICTS,
        variables: SINCE_START,
      });
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      // Both subscriptions are live once a plan event arrives.
      const first = await mutate(a, token, CREATE, { input: { title: 'Warm-up' } });
      await plan.take(1);

      const t1 = await mutate(a, token, CREATE, {
        input: {
          title: 'Standup',
          scheduledStart: '2026-12-01T09:00:00Z',
          scheduledEnd: '2026-12-01T10:00:00Z',
        },
      });
      const t2 = await mutate(a, token, CREATE, {
        input: {
          title: 'Review',
          scheduledStart: '2026-12-01T09:30:00Z',
          scheduledEnd: '2026-12-01T10:30:00Z',
        },
      });
      expect(t2.conflicts.map((c) => c.kind)).to.include('OVERLAP');
      const [detected] = await conflicts.take(1);
      const ev = detected!.data!.conflictEvents;
      expect(ev.type).to.equal('DETECTED');
      expect(ev.conflict.kind).to.equal('OVERLAP');
      expect(ev.conflict.status).to.equal('OPEN');
      expect(ev.conflict.id).to.equal(t2.conflicts.find((c) => c.kind === 'OVERLAP')!.id);
      expect(ev.conflict.tasks.map((t) => t.id).sort()).to.deep.equal([t1.task!.id, t2.task!.id].sort());

      const dismissed = await mutate(
        a,
        token,
        'mutation($id: ID!) { dismissConflict(conflictId: $id) { ok } }',
        { id: ev.conflict.id },
      );
      expect(dismissed.ok).to.equal(true);
      const [, second] = await conflicts.take(2);
      const ev2 = second!.data!.conflictEvents;
      expect(ev2.type).to.equal('DISMISSED');
      expect(ev2.conflict.id).to.equal(ev.conflict.id);
      expect(ev2.conflict.status).to.equal('DISMISSED');
      expect(Number(ev2.cursor)).to.be.above(Number(ev.cursor));

      // Plan events: one per applied change, in commit order, with the operation in the payload.
      const events = planOf(plan.results);
      const all = await plan.take(4);
      expect(all.map((r) => r.data!.planEvents.type)).to.deep.equal([
        'CREATE_TASK',
        'CREATE_TASK',
        'CREATE_TASK',
        'DISMISS_CONFLICT',
      ]);
      expect(all.map((r) => r.data!.planEvents.payload.operation.id)).to.deep.equal([
        first.operation!.id,
        t1.operation!.id,
        t2.operation!.id,
        all[3]!.data!.planEvents.payload.operation.id,
      ]);
      expect(events[0]!.at).to.match(/^\d{4}-\d\d-\d\dT/);
      const cursors = all.map((r) => Number(r.data!.planEvents.cursor));
      expect([...cursors].sort((x, y) => x - y)).to.deep.equal(cursors);
      expect(new Set(cursors).size).to.equal(cursors.length);
    });

    it('serves current task data in every conflict event (no stale per-subscription cache)', async () => {
      const address = email('fresh');
      const token = await a.token(address);
      const h = open(a, token);
      await h.connected;
      const conflicts = collect<{ conflictEvents: ConflictEvent }>(h.client, {
        query: CONFLICTS,
        variables: SINCE_START,
      });
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await mutate(a, token, CREATE, { input: { title: 'Warm-up' } });
      await plan.take(1);
      const t1 = await mutate(a, token, CREATE, {
        input: {
          title: 'Old title',
          scheduledStart: '2026-12-01T09:00:00Z',
          scheduledEnd: '2026-12-01T10:00:00Z',
        },
      });
      await mutate(a, token, CREATE, {
        input: {
          title: 'Second',
          scheduledStart: '2026-12-01T09:30:00Z',
          scheduledEnd: '2026-12-01T10:30:00Z',
        },
      });
      const [one] = await conflicts.take(1);
      expect(one!.data!.conflictEvents.conflict.tasks.find((t) => t.id === t1.task!.id)?.title).to.equal(
        'Old title',
      );
      await mutate(
        a,
        token,
        'mutation($id: ID!, $input: UpdateTaskInput!) { updateTask(id: $id, input: $input) { ok } }',
        {
          id: t1.task!.id,
          input: { title: 'New title' },
        },
      );
      await mutate(a, token, CREATE, {
        input: {
          title: 'Third',
          scheduledStart: '2026-12-01T09:15:00Z',
          scheduledEnd: '2026-12-01T09:45:00Z',
        },
      });
      // "Third" overlaps both earlier tasks: two more DETECTED events.
      const later = await conflicts.take(3);
      const detectedLater = later.slice(1).map((r) => r.data!.conflictEvents);
      const withT1 = detectedLater.find((e) => e.conflict.tasks.some((t) => t.id === t1.task!.id));
      expect(withT1, JSON.stringify(detectedLater)).to.not.equal(undefined);
      expect(withT1!.conflict.tasks.find((t) => t.id === t1.task!.id)!.title).to.equal('New title');
    });

    it('planEvents(types) delivers only the listed operation kinds', async () => {
      const address = email('types');
      const token = await a.token(address);
      const actor = await actorOf(a, address);
      const h = open(a, token);
      await h.connected;
      const all = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      const only = collect<{ planEvents: PlanEvent }>(h.client, {
        query: PLAN,
        variables: { ...SINCE_START, types: ['COMPLETE_TASK'] },
      });
      await a.world.updater.createTask(actor, { title: 'Warm-up' });
      await all.take(1);
      const created = await a.world.updater.createTask(actor, { title: 'Finish me' });
      await a.world.updater.createTask(actor, { title: 'Another' });
      const done = await a.world.updater.completeTask(actor, created.task!.id);
      await all.take(4);
      const [first] = await only.take(1);
      expect(first!.data!.planEvents.type).to.equal('COMPLETE_TASK');
      expect(first!.data!.planEvents.payload.operation.id).to.equal(done.operation!.id);
      // …and nothing else before it (the cursor is the COMPLETE_TASK's own).
      expect(only.results).to.have.length(1);
      expect(first!.data!.planEvents.cursor).to.equal(planOf(all.results)[3]!.cursor);
    });

    it('undoEvents reports UNDONE and REDONE for undo and redo', async () => {
      const address = email('undo');
      const token = await a.token(address);
      const h = open(a, token);
      await h.connected;
      const undo = collect<{ undoEvents: UndoEvent }>(h.client, { query: UNDO, variables: SINCE_START });
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await mutate(a, token, CREATE, { input: { title: 'Warm-up' } });
      await plan.take(1);
      const created = await mutate(a, token, CREATE, { input: { title: 'Undo me' } });
      const u = await mutate(a, token, 'mutation { undo { ok } }', {});
      expect(u.ok).to.equal(true);
      const r = await mutate(a, token, 'mutation { redo { ok } }', {});
      expect(r.ok).to.equal(true);
      const events = (await undo.take(2)).map((x) => x.data!.undoEvents);
      expect(events.map((e) => e.type)).to.deep.equal(['UNDONE', 'REDONE']);
      expect(events.map((e) => e.operation.id)).to.deep.equal([created.operation!.id, created.operation!.id]);
      expect(events.map((e) => e.operation.state)).to.deep.equal(['UNDONE', 'APPLIED']);
      expect(Number(events[1]!.cursor)).to.be.above(Number(events[0]!.cursor));
      // The plan stream saw the UNDO and REDO operations too, interleaved in commit order.
      const kinds = (await plan.take(4)).map((x) => x.data!.planEvents.type);
      expect(kinds).to.deep.equal(['CREATE_TASK', 'CREATE_TASK', 'UNDO', 'REDO']);
    });

    it('keeps delivering to a token valid for longer than setTimeout can count (24.8 days)', async () => {
      const address = email('long-token');
      const actor = await actorOf(a, address);
      const token = await a.token(address, { ttlSeconds: 90 * 86_400 });
      const h = open(a, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await subscribeReadyPlan(a, plan, actor);
      await a.world.updater.createTask(actor, { title: 'Still here' });
      const events = planOf(await plan.take(2));
      expect(titleOf(events[1]!)).to.equal('Still here');
    });
    it('without since: starts from now, then every later event, consecutively', async () => {
      const address = email('no-since');
      const actor = await actorOf(a, address);
      await a.world.updater.createTask(actor, { title: 'history' });
      const h = open(a, await a.token(address));
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN });
      // Keep committing until the subscription is live (each write is real progress, not a sleep).
      for (let i = 0; plan.results.length === 0; i++) {
        expect(i, 'the subscription never went live').to.be.below(1000);
        await a.world.updater.createTask(actor, { title: `probe ${i}` });
      }
      const firstCursor = Number(planOf(plan.results)[0]!.cursor);
      for (let i = 0; i < 5; i++) await a.world.updater.createTask(actor, { title: `after ${i}` });
      // A probe may still be in flight: read until the last write has arrived.
      let events: PlanEvent[] = [];
      for (
        let n = plan.results.length;
        titleOf(events[events.length - 1] ?? planOf(plan.results)[0]!) !== 'after 4';
        n++
      ) {
        events = planOf(await plan.take(n));
      }
      expect(events.map(titleOf)).to.not.include('history');
      expect(events.slice(-5).map(titleOf)).to.deep.equal([
        'after 0',
        'after 1',
        'after 2',
        'after 3',
        'after 4',
      ]);
      expectConsecutive(
        events.map((e) => e.cursor),
        firstCursor - 1,
      );
    });
  });

  describe('isolation', () => {
    it("another user's subscriptions receive nothing of it", async () => {
      const alice = email('alice');
      const bob = email('bob');
      const aliceToken = await a.token(alice);
      const bobToken = await a.token(bob);
      const bobActor = await actorOf(a, bob);
      const hb = open(a, bobToken);
      await hb.connected;
      const bobPlan = collect<{ planEvents: PlanEvent }>(hb.client, { query: PLAN, variables: SINCE_START });
      const bobConflicts = collect<{ conflictEvents: ConflictEvent }>(hb.client, {
        query: CONFLICTS,
        variables: SINCE_START,
      });
      const bobUndo = collect<{ undoEvents: UndoEvent }>(hb.client, { query: UNDO, variables: SINCE_START });
      await a.world.updater.createTask(bobActor, { title: 'bob warm-up' });
      await bobPlan.take(1);

      // Alice: plan changes, a conflict, an undo — on both instances' subscribers' database.
      await mutate(a, aliceToken, CREATE, {
        input: { title: 'A1', scheduledStart: '2026-12-01T09:00:00Z', scheduledEnd: '2026-12-01T10:00:00Z' },
      });
      const a2 = await mutate(a, aliceToken, CREATE, {
        input: { title: 'A2', scheduledStart: '2026-12-01T09:30:00Z', scheduledEnd: '2026-12-01T10:30:00Z' },
      });
      expect(a2.conflicts).to.have.length.greaterThan(0);
      expect((await mutate(a, aliceToken, 'mutation { undo { ok } }', {})).ok).to.equal(true);

      // Bob's markers: a plan event, a conflict, an undo — each must be the next thing Bob sees.
      await a.world.updater.createTask(bobActor, {
        title: 'B1',
        scheduledStart: new Date('2026-12-02T09:00:00Z'),
        scheduledEnd: new Date('2026-12-02T10:00:00Z'),
      });
      const b2 = await a.world.updater.createTask(bobActor, {
        title: 'B2',
        scheduledStart: new Date('2026-12-02T09:30:00Z'),
        scheduledEnd: new Date('2026-12-02T10:30:00Z'),
      });
      await a.world.updater.undo(bobActor, null);
      const plan = (await bobPlan.take(4)).map((r) => r.data!.planEvents);
      expect(plan.map((e) => e.type)).to.deep.equal(['CREATE_TASK', 'CREATE_TASK', 'CREATE_TASK', 'UNDO']);
      expect(plan.slice(1, 3).map(titleOf)).to.deep.equal(['B1', 'B2']);
      const [c1] = await bobConflicts.take(1);
      expect(c1!.data!.conflictEvents.conflict.tasks.map((t) => t.title).sort()).to.deep.equal(['B1', 'B2']);
      const [u1] = await bobUndo.take(1);
      expect(u1!.data!.undoEvents.operation.id).to.equal(b2.operation!.id);
      expect(JSON.stringify([bobPlan.results, bobConflicts.results, bobUndo.results])).to.not.match(
        /"A[12]"/,
      );
      // Bob's cursors are his own sequence (shared by his plan, conflict and undo events): Alice's
      // events take no number from it, so his first event is 1.
      const mine = [
        ...plan,
        ...[c1!, u1!].map((r) => Object.values(r.data as Record<string, { cursor: string }>)[0]!),
      ]
        .map((e) => Number(e.cursor))
        .sort((x, y) => x - y);
      expect(mine[0]).to.equal(1);
      expect(new Set(mine).size).to.equal(mine.length);
    });
  });

  describe('scale-out', () => {
    it('a change made through instance A reaches a subscriber on instance B', async () => {
      const address = email('two');
      const tokenB = await b.token(address);
      const tokenA = await a.token(address);
      const h = open(b, tokenB);
      await h.connected;
      const conflicts = collect<{ conflictEvents: ConflictEvent }>(h.client, {
        query: CONFLICTS,
        variables: SINCE_START,
      });
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await mutate(a, tokenA, CREATE, { input: { title: 'Warm-up through A' } });
      await plan.take(1);
      await mutate(a, tokenA, CREATE, {
        input: { title: 'X', scheduledStart: '2026-12-01T13:00:00Z', scheduledEnd: '2026-12-01T14:00:00Z' },
      });
      const y = await mutate(a, tokenA, CREATE, {
        input: { title: 'Y', scheduledStart: '2026-12-01T13:30:00Z', scheduledEnd: '2026-12-01T14:30:00Z' },
      });
      const [ev] = await conflicts.take(1);
      expect(ev!.data!.conflictEvents.type).to.equal('DETECTED');
      expect(ev!.data!.conflictEvents.conflict.id).to.equal(y.conflicts[0]!.id);
      const kinds = (await plan.take(3)).map((r) => r.data!.planEvents.payload.operation.id);
      expect(kinds[2]).to.equal(y.operation!.id);
    });
    it('recovers when the LISTEN connection is lost: nothing committed meanwhile is missed', async () => {
      const address = email('relisten');
      const actor = await actorOf(a, address);
      const h = open(a, await a.token(address));
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await appendEvents(a, actor.userId, ['before']);
      await plan.take(1);
      const killed = (await a.world.dataSource.query(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE application_name = 'planner-events' AND datname = current_database()`,
      )) as Array<{ ok: boolean }>;
      expect(killed.length).to.be.at.least(2); // both instances listen
      await appendEvents(a, actor.userId, ['while reconnecting']);
      await appendEvents(a, actor.userId, ['after']);
      const events = planOf(await plan.take(3));
      expect(events.map(titleOf)).to.deep.equal(['before', 'while reconnecting', 'after']);
    });
  });

  describe('replay with since', () => {
    it('after 500 events produced while disconnected: all 500, in order, none twice, then live with no gap', async function () {
      this.timeout(120_000);
      const address = email('replay');
      const actor = await actorOf(a, address);
      const token = await a.token(address);
      let h = open(a, token);
      await h.connected;
      let plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await a.world.updater.createTask(actor, { title: 'before the drop' });
      const [seen] = await plan.take(1);
      const last = seen!.data!.planEvents.cursor;
      await h.dispose();

      for (let i = 0; i < 500; i++) await a.world.updater.createTask(actor, { title: `offline ${i}` });

      h = open(b, await b.token(address)); // reconnect to the other instance, as after a failover
      await h.connected;
      plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: { since: last } });
      const replayed = planOf(await plan.take(500));
      expect(replayed).to.have.length(500);
      expect(replayed.map(titleOf)).to.deep.equal(Array.from({ length: 500 }, (_, i) => `offline ${i}`));
      expectConsecutive(
        replayed.map((e) => e.cursor),
        Number(last),
      );

      await a.world.updater.createTask(actor, { title: 'live after the seam' });
      const all = planOf(await plan.take(501));
      expect(titleOf(all[500]!)).to.equal('live after the seam');
      expectConsecutive(
        all.map((e) => e.cursor),
        Number(last),
      );
      expect(new Set(all.map((e) => e.cursor)).size).to.equal(501);
    });

    it('events committed while the replay is running are delivered once, in order (the seam)', async function () {
      this.timeout(120_000);
      const address = email('seam');
      const actor = await actorOf(a, address);
      const token = await a.token(address);
      for (let i = 0; i < 300; i += 100) {
        await appendEvents(
          a,
          actor.userId,
          Array.from({ length: 100 }, (_, j) => `stored ${i + j}`),
        );
      }
      const h = open(a, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: { since: '0' } });
      // Writers race the replay: some of these commit before it reads, some during, some after.
      const writers = Promise.all(
        [0, 1, 2, 3].map(async (w) => {
          for (let i = 0; i < 50; i++) await appendEvents(a, actor.userId, [`racing ${w}-${i}`]);
        }),
      );
      await writers;
      const all = planOf(await plan.take(500));
      expectConsecutive(
        all.map((e) => e.cursor),
        0,
      );
      expect(all.slice(0, 300).map(titleOf)).to.deep.equal(
        Array.from({ length: 300 }, (_, i) => `stored ${i}`),
      );
      const racing = all.slice(300).map((e) => String(titleOf(e)));
      expect(new Set(racing).size).to.equal(200);
      for (const w of [0, 1, 2, 3]) {
        const mine = racing.filter((t) => t.startsWith(`racing ${w}-`));
        expect(mine).to.deep.equal(Array.from({ length: 50 }, (_, i) => `racing ${w}-${i}`));
      }
      // One more live event: exactly one more result.
      await a.world.updater.createTask(actor, { title: 'after' });
      const more = await plan.take(501);
      expect(more).to.have.length(501);
    });

    it('since equal to the latest cursor replays nothing and continues live', async () => {
      const address = email('since-head');
      const actor = await actorOf(a, address);
      const token = await a.token(address);
      await a.world.updater.createTask(actor, { title: 'one' });
      await a.world.updater.createTask(actor, { title: 'two' });
      const h = open(a, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: { since: '2' } });
      await a.world.updater.createTask(actor, { title: 'three' });
      const [first] = planOf(await plan.take(1));
      expect(titleOf(first!)).to.equal('three');
      expect(first!.cursor).to.equal('3');
    });

    for (const [since, why] of [
      ['abc', 'not a number'],
      ['-1', 'negative'],
      ['1.5', 'not an integer'],
      ['999999999', 'ahead of every event'],
    ] as const) {
      it(`an invalid since (${why}) is VALIDATION`, async () => {
        const token = await a.token(email('bad-since'));
        const h = open(a, token);
        await h.connected;
        const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: { since } });
        await plan.done;
        expect(plan.results).to.have.length(1);
        expect(plan.results[0]!.data ?? null).to.equal(null);
        expect(plan.results[0]!.errors?.map((e) => e.extensions?.['code'])).to.deep.equal(['VALIDATION']);
      });
    }
  });

  describe('transactions', () => {
    it('a rolled-back change announces nothing', async () => {
      const address = email('rollback');
      const actor = await actorOf(a, address);
      const token = await a.token(address);
      const h = open(a, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      const conflicts = collect<{ conflictEvents: ConflictEvent }>(h.client, {
        query: CONFLICTS,
        variables: SINCE_START,
      });
      await a.world.updater.createTask(actor, {
        title: 'Anchor',
        scheduledStart: new Date('2026-12-01T09:00:00Z'),
        scheduledEnd: new Date('2026-12-01T10:00:00Z'),
      });
      await plan.take(1);

      // 1. A domain refusal: REJECT rolls the written task back.
      const rejected = await mutate(a, token, CREATE, {
        input: {
          title: 'Rejected',
          scheduledStart: '2026-12-01T09:30:00Z',
          scheduledEnd: '2026-12-01T10:30:00Z',
        },
        on: 'REJECT',
      });
      expect(rejected.errors.map((e) => e.code)).to.deep.equal(['CONFLICT_REJECTED']);

      // 2. A failure at COMMIT, after the events and the NOTIFY were written in the transaction.
      const ds = a.world.dataSource;
      const marker = `rollback-me-${randomUUID()}`;
      await ds.query(`CREATE OR REPLACE FUNCTION planner_test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'forced commit failure'; END $$`);
      await ds.query(`DROP TRIGGER IF EXISTS planner_test_fail_commit ON tasks`);
      await ds.query(`CREATE CONSTRAINT TRIGGER planner_test_fail_commit AFTER INSERT ON tasks
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.title LIKE 'rollback-me-%')
        EXECUTE FUNCTION planner_test_fail_commit()`);
      try {
        let failed: unknown = null;
        await a.world.updater
          .createTask(actor, {
            title: marker,
            scheduledStart: new Date('2026-12-01T09:15:00Z'),
            scheduledEnd: new Date('2026-12-01T09:45:00Z'),
          })
          .catch((err: unknown) => (failed = err));
        expect(String(failed)).to.contain('forced commit failure');
      } finally {
        await ds.query(`DROP TRIGGER IF EXISTS planner_test_fail_commit ON tasks`);
        await ds.query(`DROP FUNCTION IF EXISTS planner_test_fail_commit()`);
      }
      const stored = (await ds.query(`SELECT count(*)::int AS n FROM events WHERE user_id = $1`, [
        actor.userId,
      ])) as Array<{ n: number }>;
      expect(stored[0]!.n).to.equal(1);

      // The next committed change is the very next event, with the next cursor; no conflict was announced.
      await a.world.updater.createTask(actor, {
        title: 'Committed',
        scheduledStart: new Date('2026-12-01T09:50:00Z'),
        scheduledEnd: new Date('2026-12-01T10:20:00Z'),
      });
      const events = planOf(await plan.take(2));
      expect(events.map(titleOf)).to.deep.equal(['Anchor', 'Committed']);
      expectConsecutive(
        events.map((e) => e.cursor),
        Number(events[0]!.cursor) - 1,
      );
      const [c] = await conflicts.take(1);
      expect(c!.data!.conflictEvents.conflict.tasks.map((t) => t.title).sort()).to.deep.equal([
        'Anchor',
        'Committed',
      ]);
      expect(conflicts.results).to.have.length(1);
    });
  });

  describe('authentication', () => {
    for (const [name, authorization] of [
      ['missing', undefined],
      ['garbage', 'Bearer not-a-jwt'],
      ['wrong scheme', 'Token abc.def.ghi'],
    ] as const) {
      it(`a ${name} token closes the socket with 4401`, async () => {
        const h = open(a, null, authorization === undefined ? {} : { authorization });
        expect((await h.closed).code).to.equal(4401);
      });
    }

    it('a token signed with another secret, or already expired, closes with 4401', async () => {
      const user = await a.world.users.findOrCreateByEmail(email('forged'));
      const forged = mintToken(
        'another-secret-0123456789abcdef-0123456789',
        a.config.jwtIssuer,
        { userId: user.id, email: user.email, role: 'USER' },
        3600,
        new Date(),
      );
      expect((await open(a, forged).closed).code).to.equal(4401);
      const expired = mintToken(
        a.config.jwtSecret ?? '',
        a.config.jwtIssuer,
        { userId: user.id, email: user.email, role: 'USER' },
        60,
        new Date(Date.now() - 3_600_000),
      );
      expect((await open(a, expired).closed).code).to.equal(4401);
    });

    it('offers only the graphql-transport-ws subprotocol', async () => {
      const attempt = (protocols?: string | string[]) => {
        const ws = protocols === undefined ? new WebSocket(a.wsUrl) : new WebSocket(a.wsUrl, protocols);
        const closed = deferred<{ code: number; error: string | null }>();
        let error: string | null = null;
        ws.on('error', (err) => (error = err.message));
        ws.on('close', (code) => closed.resolve({ code, error }));
        return { ws, closed: closed.promise };
      };
      // Offered both: the server picks graphql-transport-ws.
      const both = attempt(['graphql-ws', 'graphql-transport-ws']);
      await new Promise<void>((resolve, reject) => {
        both.ws.once('open', () => resolve());
        both.ws.once('error', reject);
      });
      expect(both.ws.protocol).to.equal('graphql-transport-ws');
      both.ws.close(1000);
      await both.closed;
      // Only the legacy subscriptions-transport-ws protocol: the server selects none, the client gives up.
      const legacy = await attempt('graphql-ws').closed;
      expect(legacy.error).to.match(/no subprotocol/i);
      // No subprotocol at all: 4406.
      expect((await attempt().closed).code).to.equal(4406);
    });

    it('closes a socket that never sends connection_init with 4408 (3 s)', async function () {
      this.timeout(10_000);
      const ws = new WebSocket(a.wsUrl, 'graphql-transport-ws');
      const closed = deferred<number>();
      ws.on('close', (code) => closed.resolve(code));
      const started = performance.now();
      expect(await closed.promise).to.equal(4408);
      expect(performance.now() - started).to.be.at.least(2500); // not before the configured 3 s
    });
  });

  describe('with a manual clock', () => {
    let clocked: TestServer;
    const clock = new ManualClock('2020-01-06T08:00:00Z');
    before(async () => {
      clocked = await startTestServer({ clock, env: { PLANNER_OUTBOX_RETENTION_DAYS: '7' } });
    });
    after(async () => {
      await clocked?.close();
    });

    it('a token that expires while connected stops delivery (UNAUTHENTICATED)', async () => {
      const address = email('expiring');
      const actor = await actorOf(clocked, address);
      const token = await clocked.token(address, { ttlSeconds: 60 });
      const h = open(clocked, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await clocked.world.updater.createTask(actor, { title: 'before expiry' });
      await plan.take(1);
      clock.advance(61_000);
      await clocked.world.updater.createTask(actor, { title: 'after expiry' });
      const err = await plan.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, 'the subscription ends with an error').to.be.instanceOf(SubscriptionError);
      expect(JSON.stringify((err as SubscriptionError).errors)).to.contain('UNAUTHENTICATED');
      expect(plan.results).to.have.length(1);
    });

    it('a since older than the retention period is CURSOR_EXPIRED; the clean-up keeps what is newer', async () => {
      const address = email('retention');
      const actor = await actorOf(clocked, address);
      const token = await clocked.token(address, { ttlSeconds: 30 * 86_400 });
      const h = open(clocked, token);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      for (const title of ['old 1', 'old 2', 'old 3'])
        await clocked.world.updater.createTask(actor, { title });
      const old = planOf(await plan.take(3)).map((e) => e.cursor);
      plan.stop();

      clock.advance(8 * 86_400_000);
      await clocked.world.updater.createTask(actor, { title: 'recent' });
      const deleted = await clocked.events.cleanup();
      expect(deleted).to.be.at.least(3);
      const left = (await clocked.world.dataSource.query(
        `SELECT seq FROM events WHERE user_id = $1 ORDER BY seq`,
        [actor.userId],
      )) as Array<{ seq: string }>;
      expect(left.map((r) => String(r.seq))).to.deep.equal([String(Number(old[2]) + 1)]);

      const expired = collect<{ planEvents: PlanEvent }>(h.client, {
        query: PLAN,
        variables: { since: old[0] },
      });
      await expired.done;
      expect(expired.results).to.have.length(1);
      const e = expired.results[0]!.errors?.[0];
      expect(e?.extensions?.['code']).to.equal('CURSOR_EXPIRED');
      expect(e?.message).to.match(/refetch/i);

      // The last deleted event's cursor is still good: nothing after it was lost.
      const resumed = collect<{ planEvents: PlanEvent }>(h.client, {
        query: PLAN,
        variables: { since: old[2] },
      });
      const [first] = planOf(await resumed.take(1));
      expect(titleOf(first!)).to.equal('recent');
    });
  });

  describe('connection limits', () => {
    it('caps subscriptions per connection (RATE_LIMITED) and frees a slot when one ends', async () => {
      const capped = await startTestServer({ env: { PLANNER_MAX_SUBSCRIPTIONS_PER_CONNECTION: '2' } });
      try {
        const address = email('cap');
        const actor = await actorOf(capped, address);
        const h = wsClient(capped.wsUrl, await capped.token(address));
        handles.push(h);
        await h.connected;
        const one = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
        const two = collect<{ undoEvents: UndoEvent }>(h.client, { query: UNDO, variables: SINCE_START });
        await capped.world.updater.createTask(actor, { title: 'first' });
        await one.take(1);
        const three = collect<{ conflictEvents: ConflictEvent }>(h.client, {
          query: CONFLICTS,
          variables: SINCE_START,
        });
        const err = await three.done.then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(SubscriptionError);
        expect(JSON.stringify((err as SubscriptionError).errors)).to.contain('RATE_LIMITED');
        two.stop();
        const four = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: { since: '0' } });
        const [replayed] = planOf(await four.take(1));
        expect(titleOf(replayed!)).to.equal('first');
      } finally {
        await capped.close();
      }
    });

    it('cuts off a client that does not read (1013) while others on the same user keep receiving', async function () {
      this.timeout(120_000);
      const s = await startTestServer({ env: { PLANNER_WS_MAX_BUFFERED_BYTES: '65536' } });
      try {
        const address = email('slow');
        const actor = await actorOf(s, address);
        const token = await s.token(address);
        const good = wsClient(s.wsUrl, token);
        handles.push(good);
        await good.connected;
        const goodPlan = collect<{ planEvents: PlanEvent }>(good.client, {
          query: PLAN,
          variables: SINCE_START,
        });

        // A raw client that speaks the protocol, then stops reading.
        const raw = new WebSocket(s.wsUrl, 'graphql-transport-ws');
        const rawMessages: Array<{ type: string; id?: string }> = [];
        const acked = deferred<void>();
        const firstNext = deferred<void>();
        const rawClosed = deferred<number>();
        raw.on('message', (data: WebSocket.RawData) => {
          const msg = JSON.parse(data.toString()) as { type: string; id?: string };
          rawMessages.push(msg);
          if (msg.type === 'connection_ack') acked.resolve();
          if (msg.type === 'next') firstNext.resolve();
        });
        raw.on('close', (code) => rawClosed.resolve(code));
        raw.on('error', () => undefined);
        raw.on('open', () =>
          raw.send(
            JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
          ),
        );
        await acked.promise;
        raw.send(
          JSON.stringify({ id: '1', type: 'subscribe', payload: { query: PLAN, variables: SINCE_START } }),
        );

        const created = await s.world.updater.createTask(actor, { title: 'big' });
        await firstNext.promise;
        await goodPlan.take(1);
        expect(s.events.subscriptionCount).to.equal(2);
        raw.pause(); // stop reading: the TCP receive window fills, then the server's send buffer

        // Each round: a real change with 10,000-character notes (about 20 kB with before and after)
        // and a batch of large outbox events, until the server gives up on the slow client. The good
        // client reads everything of each round before the next one starts.
        let n = 1;
        for (let round = 0; s.events.subscriptionCount === 2; round++) {
          expect(round, 'the slow client was never cut off').to.be.below(500);
          await s.world.updater.updateTask(actor, created.task!.id, {
            notes: (round % 2 === 0 ? 'a' : 'b').repeat(10_000),
          });
          await appendEvents(
            s,
            actor.userId,
            Array.from({ length: 8 }, (_, i) => `filler ${round}-${i}`),
            50_000,
          );
          n += 9;
          await goodPlan.take(n);
        }
        expect(s.events.subscriptionCount).to.equal(1); // the slow one's queue is gone, not growing
        raw.resume(); // it can now read what was buffered, then the close frame
        expect(await rawClosed.promise).to.equal(1013);
        expect(rawMessages.filter((m) => m.type === 'next').length).to.be.below(n);

        // The good client keeps receiving, every event, in order.
        await s.world.updater.createTask(actor, { title: 'after the cut' });
        const all = planOf(await goodPlan.take(n + 1));
        expect(all).to.have.length(n + 1);
        expect(titleOf(all[n]!)).to.equal('after the cut');
        expectConsecutive(
          all.map((e) => e.cursor),
          Number(all[0]!.cursor) - 1,
        );
      } finally {
        await s.close();
      }
    });
  });

  describe('resources', () => {
    it('releases a subscription at once when the client stops it or disconnects, even with no further events', async () => {
      const s = await startTestServer();
      try {
        const address = email('release');
        const actor = await actorOf(s, address);
        const h = wsClient(s.wsUrl, await s.token(address));
        handles.push(h);
        await h.connected;
        const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
        const undo = collect<{ undoEvents: UndoEvent }>(h.client, { query: UNDO, variables: SINCE_START });
        await appendEvents(s, actor.userId, ['one']);
        await plan.take(1);
        await s.events.waitForSubscriptionCount(2);
        // The client completes one subscription while the server waits for that user's next event.
        plan.stop();
        await s.events.waitForSubscriptionCount(1);
        // The socket goes away with the other one idle.
        await h.dispose();
        await s.events.waitForSubscriptionCount(0);
        expect(undo.results).to.have.length(0);
      } finally {
        await s.close();
      }
    });
  });

  describe('shutdown', () => {
    it('closes sockets with live subscriptions with 1001 and ends their streams', async function () {
      const s = await startTestServer();
      const address = email('bye');
      const h = wsClient(s.wsUrl, await s.token(address));
      handles.push(h);
      await h.connected;
      const plan = collect<{ planEvents: PlanEvent }>(h.client, { query: PLAN, variables: SINCE_START });
      await s.world.updater.createTask(await actorOf(s, address), { title: 'hello' });
      await plan.take(1);
      const hub = s.events;
      await s.close();
      expect((await h.closed).code).to.equal(1001);
      expect(hub.subscriptionCount).to.equal(0);
    });
  });
});

/** Waits until a plan subscription is live: creates markers until one arrives. */
async function subscribeReadyPlan(
  server: TestServer,
  plan: Collector<{ planEvents: PlanEvent }>,
  actor: Actor,
): Promise<void> {
  await server.world.updater.createTask(actor, { title: 'ready' });
  await plan.take(1);
}
