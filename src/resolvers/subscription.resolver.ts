/**
 * Subscription root: per-user event streams from the outbox (replay after `since`, then live).
 * A token that expires while connected ends the stream.
 */
import { GraphQLError } from 'graphql';
import { EventStreamError, type StoredEvent } from '../events/hub';
import { requireAuth, type GraphQLContext } from './context';

async function* mapStream<T>(
  source: AsyncGenerator<StoredEvent & { cursor: string }>,
  map: (e: StoredEvent & { cursor: string }) => T,
): AsyncGenerator<T> {
  try {
    for await (const e of source) yield map(e);
  } catch (err) {
    if (err instanceof EventStreamError) throw new GraphQLError(err.message, { extensions: { code: err.code } });
    throw err;
  } finally {
    await source.return(undefined);
  }
}

async function open(
  ctx: GraphQLContext,
  since: string | null | undefined,
  filter: (e: StoredEvent) => boolean,
): Promise<AsyncGenerator<StoredEvent & { cursor: string }>> {
  const auth = requireAuth(ctx);
  if (!ctx.events) throw new GraphQLError('Live events are not available', { extensions: { code: 'INTERNAL' } });
  const clock = ctx.world.clock;
  try {
    return await ctx.events.open({
      userId: auth.userId,
      since: since ?? null,
      filter,
      stillAllowed: () => clock.now().getTime() < auth.expiresAt * 1000,
      endAt: auth.expiresAt * 1000,
    });
  } catch (err) {
    if (err instanceof EventStreamError) throw new GraphQLError(err.message, { extensions: { code: err.code } });
    throw err;
  }
}

export const subscriptionResolvers = {
  conflictEvents: {
    subscribe: async (_: unknown, a: { since?: string | null }, ctx: GraphQLContext) =>
      mapStream(await open(ctx, a.since, (e) => e.topic === 'conflict'), (e) => ({
        conflictEvents: { cursor: e.cursor, type: e.type, conflict: e.payload.conflict },
      })),
  },
  undoEvents: {
    subscribe: async (_: unknown, a: { since?: string | null }, ctx: GraphQLContext) =>
      mapStream(await open(ctx, a.since, (e) => e.topic === 'undo'), (e) => ({
        undoEvents: { cursor: e.cursor, type: e.type, operation: e.payload.operation },
      })),
  },
  planEvents: {
    subscribe: async (_: unknown, a: { since?: string | null; types?: string[] | null }, ctx: GraphQLContext) => {
      const types = a.types && a.types.length > 0 ? new Set(a.types) : null;
      return mapStream(await open(ctx, a.since, (e) => e.topic === 'plan' && (!types || types.has(e.type))), (e) => ({
        planEvents: { cursor: e.cursor, type: e.type, at: e.createdAt, payload: e.payload },
      }));
    },
  },
};
