/** Field resolvers of object types: relations go through the per-request DataLoaders (no N+1). */
import { WEEKDAYS } from '../domain/types';
import type { ConflictView, GoalView, OperationView, TaskView, UserView } from '../world/views';
import { requireAuth, type GraphQLContext } from './context';
import { guard } from './errors';
import { connection } from './query.resolver';

export const typeResolvers = {
  User: {
    workingHours: (u: UserView) =>
      WEEKDAYS.map((weekday) => ({ weekday, intervals: u.workingHours[weekday] ?? [] })),
  },
  Task: {
    goal: (t: TaskView, _: unknown, ctx: GraphQLContext) =>
      t.goalId ? requireAuth(ctx).loaders.goal.load(t.goalId) : null,
    dependsOn: async (t: TaskView, _: unknown, ctx: GraphQLContext) => {
      const found = await requireAuth(ctx).loaders.task.loadMany(t.dependsOn);
      return found.filter((x): x is TaskView => x !== null && !(x instanceof Error));
    },
    conflicts: (t: TaskView, _: unknown, ctx: GraphQLContext) =>
      requireAuth(ctx).loaders.taskConflicts.load(t.id),
  },
  Goal: {
    tasks: async (
      g: GoalView,
      args: { first?: number | null; after?: string | null },
      ctx: GraphQLContext,
    ) => {
      const auth = requireAuth(ctx);
      return connection(
        await guard(() => ctx.world.queries.tasks(auth.userId, { goalId: g.id }, args.first, args.after)),
      );
    },
  },
  Conflict: {
    tasks: async (c: ConflictView, _: unknown, ctx: GraphQLContext) => {
      const found = await requireAuth(ctx).loaders.task.loadMany(c.taskIds);
      return found.filter((x): x is TaskView => x !== null && !(x instanceof Error));
    },
  },
  Operation: {
    target: async (o: OperationView, _: unknown, ctx: GraphQLContext) => {
      if (!o.targetOperationId) return null;
      const auth = requireAuth(ctx);
      return ctx.world.queries.operation(auth.userId, o.targetOperationId);
    },
  },
  UserError: {
    path: (e: { path: string[] | null }) => e.path,
  },
};
