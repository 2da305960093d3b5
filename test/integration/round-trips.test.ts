/**
 * Round trips per mutation, counted on the real database: every statement any pg client sends while
 * one mutation runs is recorded (BEGIN and COMMIT included). The transaction's statements must stay
 * within the budget of issue 9 whatever conflicts arise, for every conflict policy, with
 * dependencies, goals, idempotent replays, undo/redo and conflict decisions; autoSchedule's count is
 * the same for 3 and for 12 tasks. The NOTIFY hint is sent after the commit, outside the
 * transaction: at most one per mutation, and it is counted apart.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { FLAG_KEYS, FlagService, defaultPayload } from '../../src/flags';
import { disable } from '../../src/flags/admin';
import { ManualClock } from '../../src/world/clock';
import type { Actor, UpdateResultView } from '../../src/world/views';
import { createWorld, type World } from '../../src/world/world';
import { testDatabaseUrl } from '../support/db';

const TASK_BUDGET = 5;
const OTHER_BUDGET = 6;

interface Count {
  /** Statements of the mutation itself (the transaction, BEGIN and COMMIT included). */
  tx: number;
  /** NOTIFY hints sent after the commit. */
  notify: number;
  sql: string[];
}

const at = (iso: string) => new Date(iso);
const hour = (d: string, h: number, m = 0) =>
  new Date(`${d}T${String(h).padStart(2, '0')}:${String(m).padStart(2, '0')}:00Z`);

describe('round trips per mutation (statements counted on the real database)', () => {
  let ds: DataSource;
  let world: World;
  /** The same database with every flag off (the refusals and the alternatives-free path). */
  let off: World;
  const clock = new ManualClock('2026-12-01T06:00:00Z');

  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 4, applicationName: 'round-trips' });
    await ds.initialize();
    world = createWorld(ds, clock, { undoDepth: 100 });
    const allOff = FLAG_KEYS.reduce((p, key) => disable(p, key), defaultPayload());
    off = createWorld(ds, clock, {
      undoDepth: 100,
      flags: { service: new FlagService(allOff, { origin: 'static', version: 1 }), recorder: null },
    });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  async function user(): Promise<Actor> {
    const u = await world.users.findOrCreateByEmail(`rt-${randomUUID()}@example.com`);
    return { userId: u.id, actor: `user:${u.id}` };
  }

  /** Runs `fn`, recording every statement sent by any pg client until its NOTIFY hint has gone too. */
  async function counted(fn: () => Promise<UpdateResultView>): Promise<{ r: UpdateResultView; n: Count }> {
    await Promise.all([world.updater.flushHints(), off.updater.flushHints()]);
    const sql: string[] = [];
    const orig = Client.prototype.query;
    const patched = function (this: Client, ...args: unknown[]) {
      const q = args[0];
      sql.push(typeof q === 'string' ? q : String((q as { text?: string }).text));
      return (orig as (...a: unknown[]) => unknown).apply(this, args);
    };
    (Client.prototype as unknown as { query: unknown }).query = patched;
    try {
      const r = await fn();
      await Promise.all([world.updater.flushHints(), off.updater.flushHints()]);
      const notify = sql.filter((s) => s.includes('pg_notify')).length;
      return { r, n: { tx: sql.length - notify, notify, sql } };
    } finally {
      (Client.prototype as unknown as { query: unknown }).query = orig;
    }
  }

  async function within(
    budget: number,
    fn: () => Promise<UpdateResultView>,
    ok = true,
  ): Promise<UpdateResultView> {
    const { r, n } = await counted(fn);
    expect(r.ok, JSON.stringify(r.errors)).to.equal(ok);
    expect(n.tx, n.sql.map((s) => s.slice(0, 40)).join(' | ')).to.be.at.most(budget);
    expect(n.tx).to.be.at.least(3); // BEGIN, the locking load, COMMIT or ROLLBACK: the counter sees them
    expect(n.notify).to.be.at.most(ok ? 1 : 0);
    return r;
  }

  it('createTask: plain, scheduled with several conflicts, with dependencies and a goal', async () => {
    const a = await user();
    await within(TASK_BUDGET, () => world.updater.createTask(a, { title: 'backlog' }));
    const first = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'A',
        scheduledStart: hour('2026-12-02', 9),
        scheduledEnd: hour('2026-12-02', 13),
      }),
    );
    const goal = await within(TASK_BUDGET, () => world.updater.createGoal(a, { title: 'G' }));
    // Overlaps A, runs outside working hours, over the day's capacity, past its due time, and depends on A.
    const r = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'B',
        scheduledStart: hour('2026-12-02', 10),
        scheduledEnd: hour('2026-12-02', 19),
        dueAt: hour('2026-12-02', 12),
        dependsOn: [first.task!.id],
        goalId: goal.goal!.id,
      }),
    );
    expect(r.conflicts.length).to.be.at.least(4);
    expect(r.conflicts.every((c) => c.alternatives.length > 0 || c.kind === 'PAST_DUE')).to.equal(true);
  });

  it('createTask and scheduleTask under REJECT and AUTO_RESOLVE, and an idempotent replay', async () => {
    const a = await user();
    await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'A',
        scheduledStart: hour('2026-12-02', 9),
        scheduledEnd: hour('2026-12-02', 10),
      }),
    );
    const rejected = await within(
      TASK_BUDGET,
      () =>
        world.updater.createTask(
          a,
          { title: 'B', scheduledStart: hour('2026-12-02', 9), scheduledEnd: hour('2026-12-02', 10) },
          { onConflict: 'REJECT' },
        ),
      false,
    );
    expect(rejected.errors[0]!.code).to.equal('CONFLICT_REJECTED');
    const auto = await within(TASK_BUDGET, () =>
      world.updater.createTask(
        a,
        { title: 'C', scheduledStart: hour('2026-12-02', 9), scheduledEnd: hour('2026-12-02', 10) },
        { onConflict: 'AUTO_RESOLVE', idempotencyKey: 'k1' },
      ),
    );
    expect(auto.warnings.join(' ')).to.contain('AUTO_RESOLVE');
    const replay = await within(TASK_BUDGET, () =>
      world.updater.createTask(
        a,
        { title: 'C', scheduledStart: hour('2026-12-02', 9), scheduledEnd: hour('2026-12-02', 10) },
        { onConflict: 'AUTO_RESOLVE', idempotencyKey: 'k1' },
      ),
    );
    expect(replay.replayed).to.equal(true);
    for (const onConflict of ['REJECT', 'AUTO_RESOLVE', 'ALLOW'] as const) {
      const d = await within(TASK_BUDGET, () => world.updater.createTask(a, { title: `D ${onConflict}` }));
      await within(
        TASK_BUDGET,
        () =>
          world.updater.scheduleTask(a, d.task!.id, hour('2026-12-02', 9), hour('2026-12-02', 10), {
            onConflict,
          }),
        onConflict !== 'REJECT',
      );
    }
  });

  it('updateTask, unscheduleTask, completeTask, deleteTask (with dependents) and goal updates', async () => {
    const a = await user();
    const t1 = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'one',
        scheduledStart: hour('2026-12-03', 9),
        scheduledEnd: hour('2026-12-03', 10),
      }),
    );
    const t2 = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'two',
        scheduledStart: hour('2026-12-03', 11),
        scheduledEnd: hour('2026-12-03', 12),
      }),
    );
    const moved = await within(TASK_BUDGET, () =>
      world.updater.updateTask(
        a,
        t2.task!.id,
        {
          scheduledStart: hour('2026-12-03', 9, 30),
          scheduledEnd: hour('2026-12-03', 10, 30),
          dependsOn: [t1.task!.id],
        },
        { expectedVersion: 1 },
      ),
    );
    expect(moved.conflicts.map((c) => c.kind)).to.include('OVERLAP');
    const cycle = await within(
      TASK_BUDGET,
      () => world.updater.updateTask(a, t1.task!.id, { dependsOn: [t2.task!.id] }),
      false,
    );
    expect(cycle.errors[0]!.message).to.contain('cycle');
    await within(TASK_BUDGET, () => world.updater.unscheduleTask(a, t2.task!.id));
    await within(TASK_BUDGET, () => world.updater.completeTask(a, t2.task!.id));
    const del = await within(TASK_BUDGET, () => world.updater.deleteTask(a, t1.task!.id));
    expect(del.changes.some((c) => c.id === t2.task!.id && c.field === 'dependsOn')).to.equal(true);
    const g = await within(TASK_BUDGET, () => world.updater.createGoal(a, { title: 'goal' }));
    await within(TASK_BUDGET, () =>
      world.updater.updateGoal(a, g.goal!.id, { title: 'renamed' }, { expectedVersion: 1 }),
    );
    await within(
      TASK_BUDGET,
      () => world.updater.updateGoal(a, g.goal!.id, { title: 'stale' }, { expectedVersion: 1 }),
      false,
    );
  });

  it('undo, redo, undo by id, resolveConflict, dismissConflict and updateSettings (and its undo)', async () => {
    const a = await user();
    await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'A',
        scheduledStart: hour('2026-12-04', 9),
        scheduledEnd: hour('2026-12-04', 11),
      }),
    );
    const b = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'B',
        scheduledStart: hour('2026-12-04', 10),
        scheduledEnd: hour('2026-12-04', 12),
      }),
    );
    const conflict = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
    const resolved = await within(OTHER_BUDGET, () =>
      world.updater.resolveConflict(a, conflict.id, conflict.alternatives[0]!.id),
    );
    await within(OTHER_BUDGET, () => world.updater.undo(a, null));
    await within(OTHER_BUDGET, () => world.updater.redo(a));
    await within(OTHER_BUDGET, () => world.updater.undo(a, resolved.operation!.id));
    const open = (await world.queries.conflicts(a.userId, 'OPEN')).items[0]!.node;
    await within(OTHER_BUDGET, () => world.updater.dismissConflict(a, open.id));
    await within(OTHER_BUDGET, () => world.updater.undo(a, null));
    await within(OTHER_BUDGET, () => world.updater.updateSettings(a, { dailyCapacityMinutes: 60 }));
    await within(OTHER_BUDGET, () => world.updater.undo(a, null));
    await within(OTHER_BUDGET, () => world.updater.redo(a));
    await within(OTHER_BUDGET, () => world.updater.redo(a), false); // NOTHING_TO_REDO
  });

  it('autoSchedule: the same number of statements for 3 tasks and for 12', async () => {
    const counts: number[] = [];
    for (const n of [3, 12]) {
      const a = await user();
      const ids: string[] = [];
      for (let i = 0; i < n; i++)
        ids.push((await world.updater.createTask(a, { title: `t${i}`, estimateMinutes: 45 })).task!.id);
      const { r, n: c } = await counted(() =>
        world.updater.autoSchedule(a, ids, at('2026-12-07T00:00:00Z'), at('2026-12-12T00:00:00Z')),
      );
      expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
      expect(r.placements).to.have.length(n);
      counts.push(c.tx);
      const { r: all, n: c2 } = await counted(() =>
        world.updater.autoSchedule(a, null, at('2026-12-14T00:00:00Z'), at('2026-12-19T00:00:00Z')),
      );
      expect(all.ok).to.equal(true);
      counts.push(c2.tx);
    }
    expect(counts[0]).to.equal(counts[2]);
    expect(counts[1]).to.equal(counts[3]);
    for (const c of counts) expect(c).to.be.at.most(OTHER_BUDGET);
  });

  it('semantic memory: remember and forgetMemories within budget; a mutation shaped by memory adds no statement', async () => {
    const a = await user();
    const remembered = await within(OTHER_BUDGET, () => world.updater.remember(a, 'I swim on Sundays'));
    // An active learned preference (as the learner writes it): loaded with the lock, no extra load.
    const rule = { type: 'tod', term: 'gym', counts: { MORNING: 0, AFTERNOON: 0, EVENING: 5, NIGHT: 0 } };
    await ds.query(
      `INSERT INTO memory_items (user_id, id, kind, key, text, rule, embedding, confidence, created_at, updated_at)
       VALUES ($1, gen_random_uuid(), 'PREFERENCE', 'tod:gym', 'Prefers gym in the evening', $2, '{0}', 0.8, now(), now())`,
      [a.userId, JSON.stringify(rule)],
    );
    await within(OTHER_BUDGET, () =>
      world.updater.updateSettings(a, {
        workingHours: (['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY'] as const).map((weekday) => ({
          weekday,
          intervals: [{ start: '07:00', end: '22:00' }],
        })),
        dailyCapacityMinutes: 900,
      }),
    );
    await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'meeting',
        scheduledStart: hour('2026-12-02', 8),
        scheduledEnd: hour('2026-12-02', 9),
      }),
    );
    const shaped = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'gym',
        scheduledStart: hour('2026-12-02', 8),
        scheduledEnd: hour('2026-12-02', 9),
      }),
    );
    expect(shaped.memory.map((m) => m.effect)).to.have.length.greaterThan(0);
    await within(OTHER_BUDGET, () => world.updater.forgetMemories(a, [remembered.memory[0]!.memoryId!]));
    await within(OTHER_BUDGET, () => world.updater.forgetMemories(a, null));
  });

  it('needs one more load, within the budget, when a conflict lies outside the windows loaded up front', async () => {
    const a = await user();
    // Four months ahead: outside what updateSettings loads with the lock (the next 60 days).
    await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'far A',
        scheduledStart: hour('2027-04-06', 9),
        scheduledEnd: hour('2027-04-06', 11),
      }),
    );
    await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'far B',
        scheduledStart: hour('2027-04-06', 10),
        scheduledEnd: hour('2027-04-06', 12),
      }),
    );
    const { r, n } = await counted(() => world.updater.updateSettings(a, { dailyCapacityMinutes: 90 }));
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    expect(n.tx).to.equal(5); // BEGIN, load, the far conflict's tasks, write, COMMIT
    expect(r.conflicts.map((c) => c.kind)).to.include.members(['OVERLAP', 'OVER_CAPACITY']);
    const undone = await within(OTHER_BUDGET, () => world.updater.undo(a, null));
    expect(undone.conflicts.map((c) => c.kind)).to.not.include('OVER_CAPACITY');
  });

  it('every flag on: the evaluations ride in the one write statement (UpdateResult.flags and operations.flags)', async () => {
    const a = await user();
    const r = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'flagged',
        scheduledStart: hour('2026-12-08', 9),
        scheduledEnd: hour('2026-12-08', 10),
        tags: ['x'],
      }),
    );
    expect(r.flags.map((f) => f.key)).to.include.members([...FLAG_KEYS, 'alternative_ranking']);
    expect(r.flags.filter((f) => FLAG_KEYS.includes(f.key as never)).every((f) => f.on)).to.equal(true);
    const [row] = (await ds.query(`SELECT flags FROM operations WHERE id = $1`, [r.operation!.id])) as Array<{
      flags: unknown;
    }>;
    expect(row!.flags).to.deep.equal(r.flags);
  });

  it('every flag off: refusals cost BEGIN, the locking load and ROLLBACK; the rest stays within budget', async () => {
    const a = await user();
    const { r: refused, n } = await counted(() =>
      off.updater.createTask(a, { title: 'x', tags: ['t'], estimateMinutes: 30 }),
    );
    expect(refused.ok).to.equal(false);
    expect(refused.errors.map((e) => e.code)).to.deep.equal(['FEATURE_DISABLED', 'FEATURE_DISABLED']);
    expect(n.tx, n.sql.map((s) => s.slice(0, 40)).join(' | ')).to.equal(3);
    expect(n.sql[2]).to.equal('ROLLBACK');
    expect(n.notify).to.equal(0);
    expect(refused.flags.find((f) => f.key === 'enhanced_models')!.on).to.equal(false);

    await within(TASK_BUDGET, () =>
      off.updater.createTask(a, {
        title: 'A',
        scheduledStart: hour('2026-12-09', 9),
        scheduledEnd: hour('2026-12-09', 11),
      }),
    );
    const b = await within(TASK_BUDGET, () =>
      off.updater.createTask(a, {
        title: 'B',
        scheduledStart: hour('2026-12-09', 10),
        scheduledEnd: hour('2026-12-09', 12),
      }),
    );
    const conflict = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
    expect(conflict.alternatives).to.deep.equal([]);
    const rejected = await within(
      TASK_BUDGET,
      () =>
        off.updater.createTask(
          a,
          { title: 'C', scheduledStart: hour('2026-12-09', 10), scheduledEnd: hour('2026-12-09', 11) },
          { onConflict: 'REJECT' },
        ),
      false,
    );
    expect(rejected.errors[0]!.code).to.equal('CONFLICT_REJECTED');
    expect(rejected.conflicts.every((c) => c.alternatives.length === 0)).to.equal(true);
    for (const [name, fn] of [
      ['AUTO_RESOLVE', () => off.updater.createTask(a, { title: 'D' }, { onConflict: 'AUTO_RESOLVE' })],
      ['undo', () => off.updater.undo(a, null)],
      ['redo', () => off.updater.redo(a)],
      ['resolveConflict', () => off.updater.resolveConflict(a, conflict.id, randomUUID())],
      ['createGoal', () => off.updater.createGoal(a, { title: 'G' })],
    ] as const) {
      const { r, n: c } = await counted(fn);
      expect(
        r.errors.map((e) => e.code),
        name,
      ).to.deep.equal(['FEATURE_DISABLED']);
      expect(c.tx, name).to.equal(3);
    }
    await within(TASK_BUDGET, () =>
      off.updater.updateTask(a, b.task!.id, {
        scheduledStart: hour('2026-12-10', 10),
        scheduledEnd: hour('2026-12-10', 11),
      }),
    );
  });
  it('a dry run: BEGIN, the load(s), ROLLBACK; no write statement, no NOTIFY, nothing stored', async () => {
    const a = await user();
    const stored = async () =>
      (await ds.query(
        `SELECT (SELECT count(*) FROM operations WHERE user_id = $1)::int AS ops,
                (SELECT count(*) FROM tasks WHERE user_id = $1)::int AS tasks,
                (SELECT count(*) FROM events WHERE user_id = $1)::int AS events,
                (SELECT count(*) FROM idempotency_keys WHERE user_id = $1)::int AS keys`,
        [a.userId],
      )) as Array<Record<string, number>>;
    const base = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, {
        title: 'A',
        scheduledStart: hour('2026-12-02', 9),
        scheduledEnd: hour('2026-12-02', 10),
      }),
    );
    expect(base.preview).to.equal(false);
    const before = await stored();
    expect(before[0]).to.include({ ops: 1, tasks: 1, keys: 0 });
    const { r, n } = await counted(() =>
      world.updater.createTask(
        a,
        { title: 'B', scheduledStart: hour('2026-12-02', 9), scheduledEnd: hour('2026-12-02', 10) },
        { dryRun: true, idempotencyKey: 'dry-1' },
      ),
    );
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    expect(r.preview).to.equal(true);
    expect(r.conflicts.map((c) => c.kind)).to.include('OVERLAP');
    expect(n.tx, n.sql.map((s) => s.slice(0, 40)).join(' | ')).to.be.at.most(TASK_BUDGET - 1);
    expect(n.sql[n.sql.length - 1]).to.equal('ROLLBACK');
    expect(n.sql.some((s) => s === 'COMMIT')).to.equal(false);
    expect(n.notify).to.equal(0);
    expect(await stored()).to.deep.equal(before);
    // The same key afterwards is a fresh request (the dry run stored nothing under it).
    const real = await within(TASK_BUDGET, () =>
      world.updater.createTask(a, { title: 'B' }, { idempotencyKey: 'dry-1' }),
    );
    expect(real.replayed).to.equal(false);
    const undo = await counted(() => world.updater.undo(a, null, { dryRun: true }));
    expect(undo.r.ok).to.equal(true);
    expect(undo.r.preview).to.equal(true);
    expect(undo.n.tx).to.be.at.most(OTHER_BUDGET - 1);
    expect(undo.n.notify).to.equal(0);
    expect((await world.queries.undoState(a.userId)).depth).to.equal(2);
  });
});
