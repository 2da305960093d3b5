/**
 * Per-request batched reads: one DataLoader per relation that GraphQL resolves per parent, each
 * scoped to ONE user and built for ONE request (or one subscription event), never shared. Each
 * loader's batch is one SQL statement, so a query costs a constant number of statements whatever
 * its page size. The read caps of the plain lists live here too: the resolvers enforce them and the
 * cost limit (src/server/limits.ts) counts them.
 */
import DataLoader from 'dataloader';
import { LIMITS } from '../domain/validation';
import { DomainError } from './errors';
import { MAX_SCHEDULE_ITEMS, type QueryService } from './query-service';
import type { ConflictView, GoalView, OperationView, Page, TaskView } from './views';

/**
 * The most items each plain (non-paginated) list returns. The schema's descriptions state each one
 * and the cost limit multiplies by it.
 */
export const READ_CAPS = {
  /** Task.dependsOn: what a write accepts (LIMITS.dependsOnMax). */
  taskDependencies: LIMITS.dependsOnMax,
  /** Task.conflicts: the oldest OPEN conflicts of the task. */
  taskConflicts: 10,
  /** Conflict.tasks: an over-capacity day can involve many tasks; the first ones are the most natural to move. */
  conflictTasks: 20,
  /** Conflict.alternatives: the domain offers at most 5. */
  conflictAlternatives: 5,
  /** Query.schedule: the earliest tasks by start. */
  scheduleTasks: MAX_SCHEDULE_ITEMS,
  /** UpdateResult.conflicts: the conflicts an operation caused or left open (the rest: Query.conflicts). */
  resultConflicts: 100,
  /** UpdateResult.tasks: autoSchedule changes at most 500 tasks; the other operations a few. */
  resultTasks: 500,
  /** UpdateResult.changes: field-level changes (autoSchedule of 500 tasks stays well within). */
  resultChanges: 5000,
  /** UpdateResult.errors: domain problems of one request. */
  resultErrors: 50,
  /** UpdateResult.memory: memory notes of one operation. */
  resultMemory: 20,
  /** Query.features and UpdateResult.flags: evaluated flags. */
  features: 100,
  /** WorkingDay.intervals: working intervals of one weekday. */
  dayIntervals: 48,
} as const;

/** Page arguments of one goal's Goal.tasks. */
export interface GoalTasksKey {
  goalId: string;
  first?: number | null;
  after?: string | null;
}

export interface ReadLoaders {
  task: DataLoader<string, TaskView | null>;
  goal: DataLoader<string, GoalView | null>;
  /** Task.conflicts: at most READ_CAPS.taskConflicts OPEN conflicts per task. */
  taskConflicts: DataLoader<string, ConflictView[]>;
  /** Goal.tasks: one page per (goal, first, after). */
  goalTasks: DataLoader<GoalTasksKey, Page<TaskView>, string>;
  /** Operation.target. */
  operation: DataLoader<string, OperationView | null>;
}

/**
 * Read waves: a request's loader batches wait until none of its tracked reads is in flight, then
 * go out together. Without this, a batch leaves as soon as ONE parent list has arrived, and the
 * next parent list's children make a second batch: how many statements a query costs would depend
 * on which root read the database answered first. With it, the count follows the query's shape
 * only (one statement per loader per nesting level), whatever the page size or the timing; the
 * price is that a level waits for its slowest sibling read, which it shares a batch with anyway.
 * A tracked read must not itself wait for a loader (it would wait for itself): track plain reads.
 */
export class ReadWaves {
  private inFlight = 0;
  private waiting: Array<() => void> = [];
  private armed = false;

  /** Runs a read of this request (a root list, a loader batch), counted as in flight until it settles. */
  async track<T>(read: () => Promise<T>): Promise<T> {
    this.inFlight++;
    try {
      return await read();
    } finally {
      this.inFlight--;
      this.arm();
    }
  }

  /** DataLoader's batchScheduleFn: dispatch once the request's reads have settled. */
  readonly schedule = (dispatch: () => void): void => {
    this.waiting.push(dispatch);
    this.arm();
  };

  private arm(): void {
    if (this.armed || this.inFlight > 0 || this.waiting.length === 0) return;
    this.armed = true;
    // setImmediate runs after the promise jobs of the read that just settled: every load that
    // read's resolvers make is queued by then.
    setImmediate(() => {
      this.armed = false;
      if (this.inFlight > 0) return; // the read that started meanwhile re-arms when it settles
      const ready = this.waiting;
      this.waiting = [];
      for (const dispatch of ready) dispatch();
    });
  }
}

/** Builds fresh loaders for one user's request; their batches go out in `waves`. */
export function createReadLoaders(
  queries: QueryService,
  userId: string,
  waves: ReadWaves = new ReadWaves(),
): ReadLoaders {
  const opts = { batchScheduleFn: waves.schedule };
  return {
    task: new DataLoader((ids) => waves.track(() => queries.tasksByIds(userId, ids)), opts),
    goal: new DataLoader((ids) => waves.track(() => queries.goalsByIds(userId, ids)), opts),
    taskConflicts: new DataLoader(
      (ids) => waves.track(() => queries.openConflictsOfTasks(userId, ids, READ_CAPS.taskConflicts)),
      opts,
    ),
    goalTasks: new DataLoader<GoalTasksKey, Page<TaskView>, string>(
      (keys): Promise<Array<Page<TaskView> | DomainError>> =>
        waves.track(() => queries.tasksOfGoals(userId, keys)),
      { ...opts, cacheKeyFn: (k) => JSON.stringify([k.goalId, k.first ?? null, k.after ?? null]) },
    ),
    operation: new DataLoader((ids) => waves.track(() => queries.operationsByIds(userId, ids)), opts),
  };
}
