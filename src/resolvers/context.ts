/** The per-request GraphQL context: who is asking, the world, and per-request DataLoaders. */
import { GraphQLError } from 'graphql';
import type { DeliveryBudget, EventHub } from '../events/hub';
import type { FlagService } from '../flags';
import type { MutationTelemetry } from '../telemetry/mutations';
import { createReadLoaders, ReadWaves, type ReadLoaders } from '../world/loaders';
import type { World } from '../world/world';

/** An authenticated caller (from a verified JWT). */
export interface AuthContext {
  userId: string;
  /** `user:<id>` for people, `agent:<name>` for agents acting for the user. */
  actor: string;
  role: 'USER' | 'ADMIN';
  /** Token expiry, epoch seconds. */
  expiresAt: number;
  /** Token `iat`, epoch seconds (checked against the user's valid-after; absent: no iat). */
  issuedAt?: number;
}

/**
 * Per-request loaders, scoped to one user (never shared between users or requests): every field
 * resolved per parent goes through one of them, so a query costs a constant number of statements.
 */
export type Loaders = ReadLoaders;

/** Where subscriptions get their events (the outbox-backed hub). */
export type EventSource = Pick<EventHub, 'open'>;

export interface GraphQLContext {
  auth: AuthContext | null;
  world: World;
  loaders: Loaders | null;
  /** The request's read waves: root reads are tracked so that loader batches go out together. */
  waves: ReadWaves;
  /** Null where live events are not wired (subscriptions then fail with INTERNAL). */
  events: EventSource | null;
  /** The WebSocket connection's send budget, shared by its subscriptions (absent over HTTP). */
  delivery?: DeliveryBudget;
  /** Feature flags (GrowthBook), evaluated in memory per user; absent where not wired (`features` is then []). */
  flags?: FlagService;
  /** Operation spans and rollout figures of mutations (src/telemetry/mutations.ts); absent: untraced. */
  telemetry?: MutationTelemetry;
  /** A fault while authenticating (the user's state could not be read): requireAuth rethrows it. */
  authFault?: unknown;
}

/** Builds the context of one request (or one subscription operation). */
export function createContext(
  world: World,
  auth: AuthContext | null,
  events: EventSource | null = null,
): GraphQLContext {
  const waves = new ReadWaves();
  if (!auth) return { auth: null, world, loaders: null, waves, events };
  return {
    auth,
    world,
    events,
    waves,
    loaders: createReadLoaders(world.queries, auth.userId, waves),
  };
}

/** Runs a root read of the request as part of its read waves (see ReadWaves). */
export function tracked<T>(ctx: GraphQLContext, read: () => Promise<T>): Promise<T> {
  return ctx.waves.track(read);
}

/** The authenticated caller, or a thrown UNAUTHENTICATED error. */
export function requireAuth(ctx: GraphQLContext): AuthContext & { loaders: Loaders } {
  if (ctx.authFault !== undefined) throw ctx.authFault;
  if (!ctx.auth || !ctx.loaders) {
    throw new GraphQLError('Authentication required: send Authorization: Bearer <token>', {
      extensions: { code: 'UNAUTHENTICATED' },
    });
  }
  return { ...ctx.auth, loaders: ctx.loaders };
}
