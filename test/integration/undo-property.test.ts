/**
 * Property: any sequence of operations, undone newest-first until NOTHING_TO_UNDO, restores the
 * user's world exactly (every column of every row, bookkeeping `version`/`updated_at` aside); redo
 * until NOTHING_TO_REDO restores the state after the sequence. Runs at the world level against a
 * real Postgres.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { GOAL_STATUSES, PRIORITIES, TASK_STATUSES, WEEKDAYS, type Weekday } from '../../src/domain/types';
import { ManualClock } from '../../src/world/clock';
import type { Actor, UpdateResultView } from '../../src/world/views';
import { createWorld, type World } from '../../src/world/world';
import type { SettingsInput, UpdateGoalInput, UpdateTaskInput } from '../../src/world/world-updater';
import { testDatabaseUrl } from '../support/db';

// ------------------------------------------------------------------ the world, as rows

/** Columns that move forward on every write and are deliberately not restored by undo. */
const BOOKKEEPING = new Set(['version', 'updated_at']);
/** Users columns that count operations and events: they only ever grow. */
const USER_COUNTERS = new Set(['op_seq', 'event_seq']);

type Rows = Array<Record<string, unknown>>;

function strip(rows: Rows, drop: Set<string>): Rows {
  return rows.map((r) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) {
      if (drop.has(k)) continue;
      out[k] = v instanceof Date ? v.toISOString() : v;
    }
    return out;
  });
}

interface WorldRows {
  users: Rows;
  tasks: Rows;
  dependencies: Rows;
  goals: Rows;
}

/** Every column of every row the user owns (conflicts excluded: derived, re-evaluated by undo). */
async function snapshot(ds: DataSource, userId: string): Promise<WorldRows> {
  const q = async (sql: string) => (await ds.query(sql, [userId])) as Rows;
  return {
    users: strip(await q('SELECT * FROM users WHERE id = $1'), new Set([...BOOKKEEPING, ...USER_COUNTERS])),
    tasks: strip(await q('SELECT * FROM tasks WHERE user_id = $1 ORDER BY id'), BOOKKEEPING),
    dependencies: strip(
      await q('SELECT * FROM task_dependencies WHERE user_id = $1 ORDER BY task_id, depends_on_id'),
      new Set(),
    ),
    goals: strip(await q('SELECT * FROM goals WHERE user_id = $1 ORDER BY id'), BOOKKEEPING),
  };
}

// ------------------------------------------------------------------ abstract commands

/** A reference to an existing entity: resolved at run time as index modulo the live ids. */
type Ref = number;

const DAY0 = Date.parse('2026-12-01T00:00:00Z');
const MIN = 60_000;

const instant = fc.integer({ min: 0, max: 14 * 24 * 4 }).map((q) => new Date(DAY0 + q * 15 * MIN));
const span = fc
  .record({ start: instant, minutes: fc.integer({ min: 1, max: 40 }).map((n) => n * 15) })
  .map(({ start, minutes }) => ({ start, end: new Date(start.getTime() + minutes * MIN) }));
const title = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s.trim().length > 0);
const tag = fc.constantFrom('work', 'home', ' errand ', 'deep', 'x');
const priority = fc.constantFrom(...PRIORITIES);
const ref = fc.nat({ max: 50 });

/** An optional field of an update: absent, cleared (when nullable) or set. */
function maybe<T>(arb: fc.Arbitrary<T>, nullable = true): fc.Arbitrary<T | null | undefined> {
  const choices: Array<fc.Arbitrary<T | null | undefined>> = [fc.constant(undefined), arb];
  if (nullable) choices.push(fc.constant(null));
  return fc.oneof(...choices);
}

const createTaskCmd = fc.record({
  kind: fc.constant('createTask' as const),
  title,
  notes: fc.option(fc.string({ maxLength: 40 }), { nil: null }),
  priority: fc.option(priority, { nil: null }),
  estimateMinutes: fc.option(fc.integer({ min: 1, max: 1440 }), { nil: null }),
  dueAt: fc.option(instant, { nil: null }),
  schedule: fc.option(span, { nil: null }),
  tags: fc.array(tag, { maxLength: 3 }),
  goal: fc.option(ref, { nil: null }),
  dependsOn: fc.array(ref, { maxLength: 3 }),
});

const updateTaskCmd = fc.record({
  kind: fc.constant('updateTask' as const),
  task: ref,
  title: maybe(title, false),
  notes: maybe(fc.string({ maxLength: 40 })),
  priority: maybe(priority, false),
  status: maybe(fc.constantFrom(...TASK_STATUSES), false),
  estimateMinutes: maybe(fc.integer({ min: 1, max: 1440 })),
  dueAt: maybe(instant),
  schedule: maybe(span),
  tags: maybe(fc.array(tag, { maxLength: 3 })),
  goal: maybe(ref),
  dependsOn: maybe(fc.array(ref, { maxLength: 3 })),
});

const scheduleTaskCmd = fc.record({
  kind: fc.constant('scheduleTask' as const),
  task: ref,
  start: instant,
  minutes: fc.option(
    fc.integer({ min: 1, max: 40 }).map((n) => n * 15),
    { nil: null },
  ),
});

const taskCmd = (kind: 'unscheduleTask' | 'completeTask' | 'deleteTask') =>
  fc.record({ kind: fc.constant(kind), task: ref });

const createGoalCmd = fc.record({
  kind: fc.constant('createGoal' as const),
  title,
  priority: fc.option(priority, { nil: null }),
  targetDate: fc.option(instant, { nil: null }),
});

const updateGoalCmd = fc.record({
  kind: fc.constant('updateGoal' as const),
  goal: ref,
  title: maybe(title, false),
  priority: maybe(priority, false),
  status: maybe(fc.constantFrom(...GOAL_STATUSES), false),
  targetDate: maybe(instant),
});

const hours = fc.constantFrom(
  [] as Array<{ start: string; end: string }>,
  [{ start: '08:00', end: '12:00' }],
  [{ start: '09:00', end: '17:00' }],
  [
    { start: '07:30', end: '11:00' },
    { start: '13:00', end: '19:00' },
  ],
);

const updateSettingsCmd = fc.record({
  kind: fc.constant('updateSettings' as const),
  timeZone: maybe(fc.constantFrom('UTC', 'Europe/Paris', 'America/New_York', 'Asia/Tokyo'), false),
  workingHours: maybe(
    fc.uniqueArray(fc.record({ weekday: fc.constantFrom(...WEEKDAYS), intervals: hours }), {
      maxLength: 3,
      selector: (d) => d.weekday,
    }),
    false,
  ),
  dailyCapacityMinutes: maybe(fc.integer({ min: 30, max: 1440 }), false),
  displayName: maybe(title, false),
});

const command = fc.oneof(
  { arbitrary: createTaskCmd, weight: 4 },
  { arbitrary: updateTaskCmd, weight: 3 },
  { arbitrary: scheduleTaskCmd, weight: 2 },
  { arbitrary: taskCmd('unscheduleTask'), weight: 1 },
  { arbitrary: taskCmd('completeTask'), weight: 1 },
  { arbitrary: taskCmd('deleteTask'), weight: 2 },
  { arbitrary: createGoalCmd, weight: 2 },
  { arbitrary: updateGoalCmd, weight: 1 },
  { arbitrary: updateSettingsCmd, weight: 1 },
);

type Command = typeof command extends fc.Arbitrary<infer C> ? C : never;

/** Undo of some earlier operation by id (`op` picks among the user's ordinary operations), of the latest, or redo. */
const historyCmd = fc.oneof(
  fc.record({ kind: fc.constant('undo' as const), op: fc.option(ref, { nil: null }) }),
  fc.record({ kind: fc.constant('redo' as const) }),
);
const mixed = fc.oneof({ arbitrary: command, weight: 3 }, { arbitrary: historyCmd, weight: 2 });

// ------------------------------------------------------------------ running commands

async function liveIds(ds: DataSource, table: 'tasks' | 'goals', userId: string): Promise<string[]> {
  const rows = (await ds.query(`SELECT id FROM ${table} WHERE user_id = $1 ORDER BY created_at, id`, [
    userId,
  ])) as Array<{
    id: string;
  }>;
  return rows.map((r) => r.id);
}

const pick = (ids: string[], r: Ref): string | null => (ids.length === 0 ? null : ids[r % ids.length]!);
const pickMany = (ids: string[], rs: Ref[]): string[] =>
  ids.length === 0 ? [] : rs.map((r) => ids[r % ids.length]!);

/** Runs one abstract command; null when it has nothing to act on. */
async function apply(world: World, actor: Actor, c: Command): Promise<UpdateResultView | null> {
  const ds = world.dataSource;
  const u = world.updater;
  const tasks = await liveIds(ds, 'tasks', actor.userId);
  const goals = await liveIds(ds, 'goals', actor.userId);
  switch (c.kind) {
    case 'createTask':
      return u.createTask(actor, {
        title: c.title,
        notes: c.notes,
        priority: c.priority,
        estimateMinutes: c.estimateMinutes,
        dueAt: c.dueAt,
        scheduledStart: c.schedule?.start ?? null,
        scheduledEnd: c.schedule?.end ?? null,
        tags: c.tags,
        goalId: c.goal === null ? null : pick(goals, c.goal),
        dependsOn: pickMany(tasks, c.dependsOn),
      });
    case 'updateTask': {
      const id = pick(tasks, c.task);
      if (!id) return null;
      const input: UpdateTaskInput = {};
      if (c.title != null) input.title = c.title;
      if (c.notes !== undefined) input.notes = c.notes;
      if (c.priority !== undefined) input.priority = c.priority;
      if (c.status !== undefined) input.status = c.status;
      if (c.estimateMinutes !== undefined) input.estimateMinutes = c.estimateMinutes;
      if (c.dueAt !== undefined) input.dueAt = c.dueAt;
      if (c.schedule !== undefined) {
        input.scheduledStart = c.schedule?.start ?? null;
        input.scheduledEnd = c.schedule?.end ?? null;
      }
      if (c.tags !== undefined) input.tags = c.tags;
      if (c.goal !== undefined) input.goalId = c.goal === null ? null : pick(goals, c.goal);
      if (c.dependsOn !== undefined)
        input.dependsOn = c.dependsOn === null ? null : pickMany(tasks, c.dependsOn);
      return u.updateTask(actor, id, input);
    }
    case 'scheduleTask': {
      const id = pick(tasks, c.task);
      if (!id) return null;
      return u.scheduleTask(
        actor,
        id,
        c.start,
        c.minutes === null ? null : new Date(c.start.getTime() + c.minutes * MIN),
      );
    }
    case 'unscheduleTask':
    case 'completeTask':
    case 'deleteTask': {
      const id = pick(tasks, c.task);
      if (!id) return null;
      return u[c.kind](actor, id);
    }
    case 'createGoal':
      return u.createGoal(actor, { title: c.title, priority: c.priority, targetDate: c.targetDate });
    case 'updateGoal': {
      const id = pick(goals, c.goal);
      if (!id) return null;
      const input: UpdateGoalInput = {};
      if (c.title !== undefined) input.title = c.title;
      if (c.priority !== undefined) input.priority = c.priority;
      if (c.status !== undefined) input.status = c.status;
      if (c.targetDate !== undefined) input.targetDate = c.targetDate;
      return u.updateGoal(actor, id, input);
    }
    case 'updateSettings': {
      const input: SettingsInput = {};
      if (c.timeZone != null) input.timeZone = c.timeZone;
      if (c.workingHours != null)
        input.workingHours = c.workingHours as Array<{
          weekday: Weekday;
          intervals: Array<{ start: string; end: string }>;
        }>;
      if (c.dailyCapacityMinutes != null) input.dailyCapacityMinutes = c.dailyCapacityMinutes;
      if (c.displayName != null) input.displayName = c.displayName;
      return u.updateSettings(actor, input);
    }
  }
}

/** Domain refusals a random command may legitimately meet (e.g. a dependency cycle). */
const ACCEPTABLE_REFUSALS = new Set(['VALIDATION']);
/** Refusals undo/redo may legitimately answer. */
const HISTORY_REFUSALS = new Set(['NOTHING_TO_UNDO', 'NOTHING_TO_REDO', 'UNDO_BLOCKED']);

async function ordinaryOperationIds(ds: DataSource, userId: string): Promise<string[]> {
  const rows = (await ds.query(
    `SELECT id FROM operations WHERE user_id = $1 AND kind NOT IN ('UNDO','REDO') ORDER BY seq`,
    [userId],
  )) as Array<{ id: string }>;
  return rows.map((r) => r.id);
}

// ------------------------------------------------------------------ the property

describe('undo/redo property: undo all restores the world, redo all restores the end state', function () {
  this.timeout(180_000);
  let ds: DataSource;
  let world: World;
  let clock: ManualClock;

  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 4, applicationName: 'undo-property' });
    await ds.initialize();
    clock = new ManualClock('2026-11-30T08:00:00Z');
    world = createWorld(ds, clock, { undoDepth: 100 });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  it('holds for random sequences of 1–12 operations', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 12 }), async (commands) => {
        const user = await world.users.findOrCreateByEmail(`prop-${randomUUID()}@example.com`);
        const actor: Actor = { userId: user.id, actor: `user:${user.id}` };
        const initial = await snapshot(ds, user.id);

        let applied = 0;
        for (const c of commands) {
          clock.advance(MIN);
          const r = await apply(world, actor, c);
          if (r === null) continue;
          if (!r.ok) {
            expect(
              ACCEPTABLE_REFUSALS.has(r.errors[0]!.code),
              `${c.kind}: ${JSON.stringify(r.errors)}`,
            ).to.equal(true);
            continue;
          }
          applied += 1;
        }
        const final = await snapshot(ds, user.id);

        let undone = 0;
        for (;;) {
          clock.advance(MIN);
          const r = await world.updater.undo(actor, null);
          if (!r.ok) {
            expect(r.errors[0]!.code, JSON.stringify(r.errors)).to.equal('NOTHING_TO_UNDO');
            break;
          }
          undone += 1;
        }
        expect(undone).to.equal(applied);
        expect(await snapshot(ds, user.id)).to.deep.equal(initial);

        let redone = 0;
        for (;;) {
          clock.advance(MIN);
          const r = await world.updater.redo(actor);
          if (!r.ok) {
            expect(r.errors[0]!.code, JSON.stringify(r.errors)).to.equal('NOTHING_TO_REDO');
            break;
          }
          redone += 1;
        }
        expect(redone).to.equal(applied);
        expect(await snapshot(ds, user.id)).to.deep.equal(final);
      }),
      { numRuns: Number(process.env.UNDO_PROPERTY_RUNS ?? 40) },
    );
  });

  it('survives undo by id, undo and redo interleaved with operations: undoing what is left restores the world', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(mixed, { minLength: 1, maxLength: 14 }), async (commands) => {
        const user = await world.users.findOrCreateByEmail(`prop-mix-${randomUUID()}@example.com`);
        const actor: Actor = { userId: user.id, actor: `user:${user.id}` };
        const initial = await snapshot(ds, user.id);

        for (const c of commands) {
          clock.advance(MIN);
          if (c.kind === 'undo' || c.kind === 'redo') {
            let r: UpdateResultView;
            if (c.kind === 'redo') r = await world.updater.redo(actor);
            else if (c.op === null) r = await world.updater.undo(actor, null);
            else {
              const id = pick(await ordinaryOperationIds(ds, user.id), c.op);
              if (!id) continue;
              r = await world.updater.undo(actor, id);
            }
            if (!r.ok)
              expect(
                HISTORY_REFUSALS.has(r.errors[0]!.code),
                `${c.kind}: ${JSON.stringify(r.errors)}`,
              ).to.equal(true);
            continue;
          }
          const r = await apply(world, actor, c);
          if (r && !r.ok) {
            expect(
              ACCEPTABLE_REFUSALS.has(r.errors[0]!.code),
              `${c.kind}: ${JSON.stringify(r.errors)}`,
            ).to.equal(true);
          }
        }

        // Every operation still applied can be undone, newest first, cleanly, back to the start.
        for (;;) {
          clock.advance(MIN);
          const r = await world.updater.undo(actor, null);
          if (!r.ok) {
            expect(r.errors[0]!.code, JSON.stringify(r.errors)).to.equal('NOTHING_TO_UNDO');
            break;
          }
        }
        expect(await snapshot(ds, user.id)).to.deep.equal(initial);
      }),
      { numRuns: Number(process.env.UNDO_PROPERTY_RUNS ?? 40) },
    );
  });
});
