/** The per-request GraphQL context: who is asking, the world, and per-request DataLoaders. */
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import type { DeliveryBudget, EventHub } from '../events/hub';
import type { FlagService } from '../flags';
import type { World } from '../world/world';
import type { ConflictView, GoalView, TaskView } from '../world/views';

/** An authenticated caller (from a verified JWT). */
export interface AuthContext {
  userId: string;
  /** `user:<id>` for people, `agent:<name>` for agents acting for the user. */
  actor: string;
  role: 'USER' | 'ADMIN';
  /** Token expiry, epoch seconds. */
  expiresAt: number;
}

/** Per-request loaders, scoped to one user (never shared between users or requests). */
export interface Loaders {
  task: DataLoader<string, TaskView | null>;
  goal: DataLoader<string, GoalView | null>;
  taskConflicts: DataLoader<string, ConflictView[]>;
}

/** Where subscriptions get their events (the outbox-backed hub). */
export type EventSource = Pick<EventHub, 'open'>;

export interface GraphQLContext {
  auth: AuthContext | null;
  world: World;
  loaders: Loaders | null;
  /** Null where live events are not wired (subscriptions then fail with INTERNAL). */
  events: EventSource | null;
  /** The WebSocket connection's send budget, shared by its subscriptions (absent over HTTP). */
  delivery?: DeliveryBudget;
  /** Feature flags (GrowthBook), evaluated in memory per user; absent where not wired (`features` is then []). */
  flags?: FlagService;
}

/** Builds the context of one request (or one subscription operation). */
export function createContext(
  world: World,
  auth: AuthContext | null,
  events: EventSource | null = null,
): GraphQLContext {
  if (!auth) return { auth: null, world, loaders: null, events };
  const userId = auth.userId;
  return {
    auth,
    world,
    events,
    loaders: {
      task: new DataLoader((ids) => world.queries.tasksByIds(userId, ids)),
      goal: new DataLoader((ids) => world.queries.goalsByIds(userId, ids)),
      taskConflicts: new DataLoader((ids) => world.queries.openConflictsByTaskIds(userId, ids)),
    },
  };
}

/** The authenticated caller, or a thrown UNAUTHENTICATED error. */
export function requireAuth(ctx: GraphQLContext): AuthContext & { loaders: Loaders } {
  if (!ctx.auth || !ctx.loaders) {
    throw new GraphQLError('Authentication required: send Authorization: Bearer <token>', {
      extensions: { code: 'UNAUTHENTICATED' },
    });
  }
  return { ...ctx.auth, loaders: ctx.loaders };
}
