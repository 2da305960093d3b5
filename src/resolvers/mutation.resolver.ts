/**
 * Mutation root: read the caller, call the WorldUpdater, return its UpdateResult. Nothing else —
 * except admission: each mutation runs as one of the caller's in-flight operations on this instance
 * (src/world/admission.ts); over the per-user cap it throws RATE_LIMITED with a retry hint.
 */
import { GraphQLError } from 'graphql';
import type { ConflictPolicy } from '../domain/types';
import { AdmissionRefused, admissionOf } from '../world/admission';
import { assertStorable } from './storable';
import type {
  CreateGoalInput,
  CreateTaskInput,
  SettingsInput,
  UpdateGoalInput,
  UpdateTaskInput,
} from '../world/world-updater';
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

type Resolver = (parent: unknown, args: never, ctx: GraphQLContext) => Promise<unknown>;

/** Runs a resolver under the caller's admission; a refusal becomes a thrown RATE_LIMITED. */
function admitted<R extends Resolver>(resolve: R): R {
  return (async (parent: unknown, args: never, ctx: GraphQLContext) => {
    const { userId } = requireAuth(ctx);
    assertStorable(args);
    try {
      return await admissionOf(ctx.world).run(userId, () => resolve(parent, args, ctx));
    } catch (err) {
      if (err instanceof AdmissionRefused) {
        throw new GraphQLError(err.message, {
          extensions: { code: 'RATE_LIMITED', retryAfterMs: err.retryAfterMs },
        });
      }
      throw err;
    }
  }) as R;
}

/** Every mutation, admitted per user. */
const admit = <T extends Record<string, Resolver>>(resolvers: T): T =>
  Object.fromEntries(Object.entries(resolvers).map(([name, r]) => [name, admitted(r)])) as T;

export const mutationResolvers = admit({
  createTask: (_: unknown, a: { input: CreateTaskInput } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.createTask(actor(ctx), plain(a.input), a),
  updateTask: (
    _: unknown,
    a: { id: string; input: UpdateTaskInput; expectedVersion?: number | null } & Policy,
    ctx: GraphQLContext,
  ) => ctx.world.updater.updateTask(actor(ctx), a.id, plain(a.input), a),
  scheduleTask: (
    _: unknown,
    a: { id: string; start: Date; end?: Date | null } & Policy,
    ctx: GraphQLContext,
  ) => ctx.world.updater.scheduleTask(actor(ctx), a.id, a.start, a.end ?? null, a),
  unscheduleTask: (_: unknown, a: { id: string } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.unscheduleTask(actor(ctx), a.id, a),
  completeTask: (_: unknown, a: { id: string } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.completeTask(actor(ctx), a.id, a),
  deleteTask: (_: unknown, a: { id: string } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.deleteTask(actor(ctx), a.id, a),
  createGoal: (_: unknown, a: { input: CreateGoalInput } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.createGoal(actor(ctx), plain(a.input), a),
  updateGoal: (
    _: unknown,
    a: { id: string; input: UpdateGoalInput; expectedVersion?: number | null } & Policy,
    ctx: GraphQLContext,
  ) => ctx.world.updater.updateGoal(actor(ctx), a.id, plain(a.input), a),
  autoSchedule: (
    _: unknown,
    a: { taskIds?: string[] | null; from: Date; to: Date } & Policy,
    ctx: GraphQLContext,
  ) => ctx.world.updater.autoSchedule(actor(ctx), a.taskIds ?? null, a.from, a.to, a),
  resolveConflict: (
    _: unknown,
    a: { conflictId: string; alternativeId: string } & Policy,
    ctx: GraphQLContext,
  ) => ctx.world.updater.resolveConflict(actor(ctx), a.conflictId, a.alternativeId, a),
  dismissConflict: (_: unknown, a: { conflictId: string } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.dismissConflict(actor(ctx), a.conflictId, a),
  undo: (_: unknown, a: { operationId?: string | null } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.undo(actor(ctx), a.operationId ?? null, a),
  redo: (_: unknown, a: Policy, ctx: GraphQLContext) => ctx.world.updater.redo(actor(ctx), a),
  forgetMemories: (_: unknown, a: { ids?: string[] | null } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.forgetMemories(actor(ctx), a.ids ? [...a.ids] : null, a),
  remember: (_: unknown, a: { text: string } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.remember(actor(ctx), a.text, a),
  updateSettings: (_: unknown, a: { input: SettingsInput } & Policy, ctx: GraphQLContext) =>
    ctx.world.updater.updateSettings(actor(ctx), plain(a.input), a),
});
