/** Subscription root. Live delivery arrives with the events issue; until then each stream ends at once. */
import { requireAuth, type GraphQLContext } from './context';

// eslint-disable-next-line require-yield
async function* nothing(): AsyncGenerator<never> {
  return;
}

export const subscriptionResolvers = {
  conflictEvents: {
    subscribe: (_: unknown, __: unknown, ctx: GraphQLContext) => {
      requireAuth(ctx);
      return nothing();
    },
  },
  undoEvents: {
    subscribe: (_: unknown, __: unknown, ctx: GraphQLContext) => {
      requireAuth(ctx);
      return nothing();
    },
  },
  planEvents: {
    subscribe: (_: unknown, __: unknown, ctx: GraphQLContext) => {
      requireAuth(ctx);
      return nothing();
    },
  },
};
