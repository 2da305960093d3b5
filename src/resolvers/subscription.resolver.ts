/**
 * Subscription root: per-user event streams from the outbox (replay after `since`, then live).
 * A token that expires while connected ends the stream with UNAUTHENTICATED.
 */
import { GraphQLError } from 'graphql';
import { EventStreamError, type CursoredEvent, type StoredEvent } from '../events/hub';
import { requireAuth, type GraphQLContext } from './context';

function toGraphQLError(err: unknown): unknown {
  return err instanceof EventStreamError
    ? new GraphQLError(err.message, { extensions: { code: err.code } })
    : err;
}

/**
 * Maps hub events to GraphQL payloads. `usesLoaders`: the event type has fields resolved through
 * the context's DataLoaders (a conflict's tasks, and whatever Operation may grow). One context
 * serves the subscription's whole life: without clearing, every event after the first would be
 * resolved from the first one's cache (stale tasks) and the cache would grow for as long as the
 * subscription lasts. Each event is executed before the next is pulled, so clearing here never
 * affects an execution in progress. PlanEvent is scalars only (payload is JSON): fan-out skips it.
 *
 * A plain iterator rather than an async generator, so that return() reaches the hub at once even
 * while next() is waiting for an event (a generator would queue it behind that next()).
 */
function mapStream<T>(
  ctx: GraphQLContext,
  source: AsyncIterableIterator<CursoredEvent>,
  usesLoaders: boolean,
  map: (e: CursoredEvent) => T,
): AsyncIterableIterator<T> {
  const loaders = usesLoaders && ctx.loaders ? Object.values(ctx.loaders) : [];
  const done: IteratorResult<T> = { done: true, value: undefined };
  const it: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => it,
    async next() {
      let r: IteratorResult<CursoredEvent>;
      try {
        r = await source.next();
      } catch (err) {
        throw toGraphQLError(err);
      }
      if (r.done) return done;
      for (const loader of loaders) loader.clearAll();
      return { done: false, value: map(r.value) };
    },
    async return() {
      await source.return?.();
      return done;
    },
    async throw(err: unknown) {
      await source.return?.();
      throw toGraphQLError(err);
    },
  };
  return it;
}

async function open(
  ctx: GraphQLContext,
  since: string | null | undefined,
  filter: (e: StoredEvent) => boolean,
): Promise<AsyncIterableIterator<CursoredEvent>> {
  const auth = requireAuth(ctx);
  if (!ctx.events)
    throw new GraphQLError('Live events are not available', { extensions: { code: 'INTERNAL' } });
  const clock = ctx.world.clock;
  try {
    return await ctx.events.open({
      userId: auth.userId,
      since: since ?? null,
      filter,
      stillAllowed: () => clock.now().getTime() < auth.expiresAt * 1000,
      endAt: auth.expiresAt * 1000,
      ...(ctx.delivery ? { budget: ctx.delivery } : {}),
    });
  } catch (err) {
    throw toGraphQLError(err);
  }
}

export const subscriptionResolvers = {
  conflictEvents: {
    subscribe: async (_: unknown, a: { since?: string | null }, ctx: GraphQLContext) =>
      mapStream(ctx, await open(ctx, a.since, (e) => e.topic === 'conflict'), true, (e) => ({
        conflictEvents: { cursor: e.cursor, type: e.type, conflict: e.payload['conflict'] },
      })),
  },
  undoEvents: {
    subscribe: async (_: unknown, a: { since?: string | null }, ctx: GraphQLContext) =>
      mapStream(ctx, await open(ctx, a.since, (e) => e.topic === 'undo'), true, (e) => ({
        undoEvents: { cursor: e.cursor, type: e.type, operation: e.payload['operation'] },
      })),
  },
  planEvents: {
    subscribe: async (
      _: unknown,
      a: { since?: string | null; types?: string[] | null },
      ctx: GraphQLContext,
    ) => {
      const types = a.types && a.types.length > 0 ? new Set(a.types) : null;
      return mapStream(
        ctx,
        await open(ctx, a.since, (e) => e.topic === 'plan' && (!types || types.has(e.type))),
        false,
        (e) => ({
          planEvents: { cursor: e.cursor, type: e.type, at: e.createdAt, payload: e.payload },
        }),
      );
    },
  },
};
