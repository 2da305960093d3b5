/** Query root: thin reads through the world's QueryService, scoped to the caller. */
import type { ConflictStatus } from '../domain/types';
import { toFlagUser } from '../flags/service';
import type { TaskFilter } from '../world/query-service';
import type { Page } from '../world/views';
import { requireAuth, tracked, type GraphQLContext } from './context';
import { forbidden, guard } from './errors';

/** Relay connection shape of a page. */
export function connection<T>(p: Page<T>) {
  return { edges: p.items, pageInfo: { hasNextPage: p.hasNextPage, endCursor: p.endCursor } };
}

/** A root read: part of the request's read waves, a DomainError becoming a GraphQL error. */
function read<T>(ctx: GraphQLContext, fn: () => Promise<T>): Promise<T> {
  return guard(() => tracked(ctx, fn));
}

interface PageArgs {
  first?: number | null;
  after?: string | null;
}

export const queryResolvers = {
  me: (_: unknown, __: unknown, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return read(ctx, () => ctx.world.queries.me(auth.userId));
  },
  task: (_: unknown, args: { id: string }, ctx: GraphQLContext) =>
    requireAuth(ctx).loaders.task.load(args.id),
  tasks: async (_: unknown, args: PageArgs & { filter?: TaskFilter | null }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    const page = await read(ctx, () =>
      ctx.world.queries.tasks(auth.userId, args.filter, args.first, args.after),
    );
    for (const { node } of page.items) auth.loaders.task.prime(node.id, node);
    return connection(page);
  },
  goals: async (_: unknown, args: PageArgs, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    const page = await read(ctx, () => ctx.world.queries.goals(auth.userId, args.first, args.after));
    for (const { node } of page.items) auth.loaders.goal.prime(node.id, node);
    return connection(page);
  },
  schedule: async (_: unknown, args: { from: Date; to: Date }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    const tasks = await read(ctx, () => ctx.world.queries.schedule(auth.userId, args.from, args.to));
    for (const t of tasks) auth.loaders.task.prime(t.id, t);
    return tasks;
  },
  conflicts: async (_: unknown, args: PageArgs & { status?: ConflictStatus | null }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return connection(
      await read(ctx, () => ctx.world.queries.conflicts(auth.userId, args.status, args.first, args.after)),
    );
  },
  operations: async (_: unknown, args: PageArgs, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return connection(
      await read(ctx, () => ctx.world.queries.operations(auth.userId, args.first, args.after)),
    );
  },
  undoState: (_: unknown, __: unknown, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return tracked(ctx, () => ctx.world.queries.undoState(auth.userId));
  },
  memories: (_: unknown, args: { query?: string | null; first?: number | null }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return read(ctx, () => ctx.world.queries.memories(auth.userId, { query: args.query, first: args.first }));
  },
  features: async (_: unknown, __: unknown, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    if (!ctx.flags) return [];
    const me = await guard(() => ctx.world.queries.me(auth.userId));
    return ctx.flags.forUser(toFlagUser(me)).evaluations({ expose: true }); // the client acts on these variants
  },
  exportMyData: (_: unknown, __: unknown, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    return read(ctx, () => ctx.world.queries.exportMyData(auth.userId));
  },
  rolloutReport: (_: unknown, args: { feature?: string | null }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    if (auth.role !== 'ADMIN') throw forbidden('rolloutReport is for admins only');
    if (!ctx.telemetry?.report) return { feature: args.feature ?? null, features: [], note: 'not wired' };
    return ctx.telemetry.report({ feature: args.feature ?? null });
  },
  rollout: (_: unknown, args: { feature?: string | null; since?: Date | null }, ctx: GraphQLContext) => {
    const auth = requireAuth(ctx);
    if (auth.role !== 'ADMIN') throw forbidden('rollout is for admins only');
    if (!ctx.telemetry?.report) throw forbidden('rollout figures are not wired on this server');
    return ctx.telemetry.report({ feature: args.feature ?? null, since: args.since ?? null });
  },
};
