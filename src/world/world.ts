/**
 * The world layer's public surface: one object the composition root builds and hands to every
 * adapter (GraphQL resolvers, CLI, agent tools). Knows nothing of GraphQL or HTTP.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from './clock';
import { staticFlagRuntime, type FlagRuntime } from './flag-gates';
import { defaultMemoryOptions, type MemoryOptions } from './memory-options';
import { QueryService } from './query-service';
import { UserService } from './user-service';
import { WorldUpdater } from './world-updater';

export interface WorldOptions {
  /** How many operations back a user can undo (PLANNER_UNDO_DEPTH). Default 100. */
  undoDepth?: number;
  /**
   * Feature flags enforced by the write path (the app's `Flags` from src/flags). Default: the
   * repository's seeded payload evaluated in memory (every capability on), usage not counted.
   */
  flags?: FlagRuntime;
  /** Semantic memory: embedder, retention and per-user cap. Default local embedder, 180 days, 200 items. */
  memory?: Partial<MemoryOptions>;
}

export interface World {
  readonly dataSource: DataSource;
  readonly clock: Clock;
  /** Every change goes through here. */
  readonly updater: WorldUpdater;
  /** Reads scoped to one user. */
  readonly queries: QueryService;
  /** Semantic memory's settings (embedder, retention, cap), shared with the learner. */
  readonly memory: MemoryOptions;
  /** Accounts: find-or-create by email (token minting), lookups by id. */
  readonly users: UserService;
  /** The feature flags the write path enforces (adapters gate on them too: the agent tools). */
  readonly flags: FlagRuntime;
}

/** Builds the world over an initialised DataSource (migrations applied). */
export function createWorld(dataSource: DataSource, clock: Clock, options: WorldOptions = {}): World {
  const undoDepth = options.undoDepth ?? 100;
  const memory = defaultMemoryOptions(options.memory);
  const flags = options.flags ?? staticFlagRuntime();
  const queries = new QueryService(dataSource, clock, { undoDepth, embedder: memory.embedder, flags });
  return {
    dataSource,
    clock,
    memory,
    updater: new WorldUpdater(dataSource, clock, queries, { undoDepth, flags }, memory),
    queries,
    users: new UserService(dataSource, clock),
    flags,
  };
}
