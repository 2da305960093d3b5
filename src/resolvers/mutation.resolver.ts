/** Mutation root: read the caller, call the WorldUpdater, return its UpdateResult. Nothing else. */
import type { ConflictPolicy } from '../domain/types';
import type { CreateGoalInput, CreateTaskInput, SettingsInput, UpdateGoalInput, UpdateTaskInput } from '../world/world-updater';
import { requireAuth, type GraphQLContext } from './context';

interface Policy {
  onConflict?: ConflictPolicy | null;
  idempotencyKey?: string | null;
}

/** GraphQL input objects have a null prototype; the world wants plain objects (Dates kept). */
function plain<T>(v: T): T {
  if (Array.isArray(v)) return v.map((x) => plain(x)) as T;
  if (v === null || typeof v !== 'object' || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)])) as T;
}

function actor(ctx: GraphQLContext) {
  const a = requireAuth(ctx);
  return { userId: a.userId, actor: a.actor };
}

export const mutationResolvers = {
  createTask: (_: unknown, a: { input: CreateTaskInput } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.createTask(actor(ctx), plain(a.input), a),
  updateTask: (_: unknown, a: { id: string; input: UpdateTaskInput; expectedVersion?: number | null } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.updateTask(actor(ctx), a.id, plain(a.input), a),
  scheduleTask: (_: unknown, a: { id: string; start: Date; end?: Date | null } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.scheduleTask(actor(ctx), a.id, a.start, a.end ?? null, a),
  unscheduleTask: (_: unknown, a: { id: string }, ctx: GraphQLContext) => ctx.world.updater.unscheduleTask(actor(ctx), a.id),
  completeTask: (_: unknown, a: { id: string }, ctx: GraphQLContext) => ctx.world.updater.completeTask(actor(ctx), a.id),
  deleteTask: (_: unknown, a: { id: string }, ctx: GraphQLContext) => ctx.world.updater.deleteTask(actor(ctx), a.id),
  createGoal: (_: unknown, a: { input: CreateGoalInput }, ctx: GraphQLContext) =>
    ctx.world.updater.createGoal(actor(ctx), plain(a.input)),
  updateGoal: (_: unknown, a: { id: string; input: UpdateGoalInput; expectedVersion?: number | null }, ctx: GraphQLContext) =>
    ctx.world.updater.updateGoal(actor(ctx), a.id, plain(a.input), { expectedVersion: a.expectedVersion }),
  autoSchedule: (_: unknown, a: { taskIds?: string[] | null; from: Date; to: Date }, ctx: GraphQLContext) =>
    ctx.world.updater.autoSchedule(actor(ctx), a.taskIds ?? null, a.from, a.to),
  resolveConflict: (_: unknown, a: { conflictId: string; alternativeId: string }, ctx: GraphQLContext) =>
    ctx.world.updater.resolveConflict(actor(ctx), a.conflictId, a.alternativeId),
  dismissConflict: (_: unknown, a: { conflictId: string }, ctx: GraphQLContext) =>
    ctx.world.updater.dismissConflict(actor(ctx), a.conflictId),
  undo: (_: unknown, a: { operationId?: string | null }, ctx: GraphQLContext) =>
    ctx.world.updater.undo(actor(ctx), a.operationId ?? null),
  redo: (_: unknown, __: unknown, ctx: GraphQLContext) => ctx.world.updater.redo(actor(ctx)),
  forgetMemories: (_: unknown, __: unknown, ctx: GraphQLContext) => ctx.world.updater.memoryDisabled(actor(ctx), 'FORGET_MEMORIES'),
  remember: (_: unknown, __: unknown, ctx: GraphQLContext) => ctx.world.updater.memoryDisabled(actor(ctx), 'REMEMBER'),
  updateSettings: (_: unknown, a: { input: SettingsInput }, ctx: GraphQLContext) =>
    ctx.world.updater.updateSettings(actor(ctx), plain(a.input)),
};
