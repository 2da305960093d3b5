/** Semantic memory's settings as the world uses them (from src/config: PLANNER_MEMORY_*). */
import { createEmbedder, type Embedder } from '../memory/embedder';

export interface MemoryOptions {
  /** Turns text into vectors (remember, recall, learning). Default the local hashed n-gram embedder. */
  readonly embedder: Embedder;
  /** PLANNER_MEMORY_TTL_DAYS: an item expires this many days after it was stated or last confirmed. Default 180. */
  readonly ttlDays: number;
  /** PLANNER_MEMORY_MAX_ITEMS: items kept per user (least useful evicted beyond). Default 200. */
  readonly maxItems: number;
}

export function defaultMemoryOptions(overrides: Partial<MemoryOptions> = {}): MemoryOptions {
  return {
    embedder: overrides.embedder ?? createEmbedder('local'),
    ttlDays: overrides.ttlDays ?? 180,
    maxItems: overrides.maxItems ?? 200,
  };
}
