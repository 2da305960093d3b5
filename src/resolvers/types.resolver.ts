/**
 * Field resolvers of object types. Every relation resolved per parent goes through the request's
 * DataLoaders (one statement per relation per query, whatever the page size), and every plain list
 * is held to its cap (READ_CAPS, stated in the SDL and counted by the cost limit).
 */
import { WEEKDAYS } from '../domain/types';
import { READ_CAPS } from '../world/loaders';
import type {
  ConflictView,
  GoalView,
  OperationView,
  TaskView,
  UpdateResultView,
  UserView,
} from '../world/views';
import { requireAuth, type GraphQLContext } from './context';
import { guard } from './errors';
import { connection } from './query.resolver';

/** Loads tasks by id through the request's loader, skipping those gone, at most `cap`. */
async function tasksById(ctx: GraphQLContext, ids: readonly string[], cap: number): Promise<TaskView[]> {
  const found = await requireAuth(ctx).loaders.task.loadMany(ids.slice(0, cap));
  return found.filter((x): x is TaskView => x !== null && !(x instanceof Error));
}

export const typeResolvers = {
  User: {
    workingHours: (u: UserView) =>
      WEEKDAYS.map((weekday) => ({
        weekday,
        intervals: (u.workingHours[weekday] ?? []).slice(0, READ_CAPS.dayIntervals),
      })),
  },
  Task: {
    goal: (t: TaskView, _: unknown, ctx: GraphQLContext) =>
      t.goalId ? requireAuth(ctx).loaders.goal.load(t.goalId) : null,
    dependsOn: (t: TaskView, _: unknown, ctx: GraphQLContext) =>
      tasksById(ctx, t.dependsOn, READ_CAPS.taskDependencies),
    conflicts: (t: TaskView, _: unknown, ctx: GraphQLContext) =>
      requireAuth(ctx).loaders.taskConflicts.load(t.id),
  },
  Goal: {
    tasks: async (
      g: GoalView,
      args: { first?: number | null; after?: string | null },
      ctx: GraphQLContext,
    ) => {
      const loaders = requireAuth(ctx).loaders;
      return connection(
        await guard(() => loaders.goalTasks.load({ goalId: g.id, first: args.first, after: args.after })),
      );
    },
  },
  Conflict: {
    tasks: (c: ConflictView, _: unknown, ctx: GraphQLContext) =>
      tasksById(ctx, c.taskIds, READ_CAPS.conflictTasks),
    alternatives: (c: ConflictView) => c.alternatives.slice(0, READ_CAPS.conflictAlternatives),
  },
  Operation: {
    target: (o: OperationView, _: unknown, ctx: GraphQLContext) =>
      o.targetOperationId ? requireAuth(ctx).loaders.operation.load(o.targetOperationId) : null,
  },
  UpdateResult: {
    tasks: (r: UpdateResultView) => r.tasks.slice(0, READ_CAPS.resultTasks),
    conflicts: (r: UpdateResultView) => r.conflicts.slice(0, READ_CAPS.resultConflicts),
    changes: (r: UpdateResultView) => r.changes.slice(0, READ_CAPS.resultChanges),
    errors: (r: UpdateResultView) => r.errors.slice(0, READ_CAPS.resultErrors),
    memory: (r: UpdateResultView) => r.memory.slice(0, READ_CAPS.resultMemory),
    flags: (r: UpdateResultView) => r.flags.slice(0, READ_CAPS.features),
    placements: (r: UpdateResultView) => r.placements.slice(0, READ_CAPS.resultTasks),
    unplaced: (r: UpdateResultView) => r.unplaced.slice(0, READ_CAPS.resultTasks),
  },
  UserError: {
    path: (e: { path: string[] | null }) => e.path,
  },
  // Guardrail verdicts are lower-case in src/telemetry; the enum maps them.
  GuardrailOutcome: { PASS: 'pass', BREACH: 'breach', INSUFFICIENT: 'insufficient' },
};
