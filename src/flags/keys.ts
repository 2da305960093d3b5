/**
 * Every flag key, the experiment and the rollout phases, declared once. Nothing else in the code
 * spells a flag key as a string literal: import these constants.
 */

/** The capability flags (GrowthBook boolean features). */
export const FLAGS = {
  /** Enhanced task model on input: goals, dependencies, tags and estimates. */
  ENHANCED_MODELS: 'enhanced_models',
  /** Structured logging hooks around operations. */
  LOGGING_HOOKS: 'logging_hooks',
  /** undo and redo. */
  UNDO: 'undo',
  /** Conflict alternatives and onConflict AUTO_RESOLVE. */
  CONFLICT_RESOLUTION: 'conflict_resolution',
  /** Semantic memory of the user's habits and preferences. */
  SEMANTIC_MEMORY: 'semantic_memory',
  /** LangGraph agent tools over the WorldUpdater. */
  LANGGRAPH_TOOLS: 'langgraph_tools',
} as const;

export type FlagKey = (typeof FLAGS)[keyof typeof FLAGS];
export const FLAG_KEYS: readonly FlagKey[] = Object.freeze(Object.values(FLAGS));

/** The experiments (GrowthBook features whose rule is an experiment; the value is the variant key). */
export const EXPERIMENTS = {
  /** How conflict alternatives are ranked. */
  ALTERNATIVE_RANKING: 'alternative_ranking',
} as const;

export type ExperimentKey = (typeof EXPERIMENTS)[keyof typeof EXPERIMENTS];
export const EXPERIMENT_KEYS: readonly ExperimentKey[] = Object.freeze(Object.values(EXPERIMENTS));

/** The variants of alternative_ranking, in GrowthBook variation order (index 0 is the control). */
export const ALTERNATIVE_RANKING = {
  /** Today's ranking: score descending, then start ascending (src/domain/alternatives.ts). */
  CURRENT: 'current',
  /** Prefer the alternative that moves the task the least (src/flags/ranking.ts). */
  SMALLEST_MOVE: 'smallest_move',
} as const;

export type AlternativeRankingVariant = (typeof ALTERNATIVE_RANKING)[keyof typeof ALTERNATIVE_RANKING];

/** Variant keys of each experiment, control first; `variant()` answers the control when not in it. */
export const EXPERIMENT_VARIANTS: Readonly<Record<ExperimentKey, readonly string[]>> = Object.freeze({
  [EXPERIMENTS.ALTERNATIVE_RANKING]: Object.freeze([
    ALTERNATIVE_RANKING.CURRENT,
    ALTERNATIVE_RANKING.SMALLEST_MOVE,
  ]),
});

/** Human names of the variants (GrowthBook `meta[].name`). */
export const VARIANT_NAMES: Readonly<Record<string, string>> = Object.freeze({
  [ALTERNATIVE_RANKING.CURRENT]: "Today's ranking",
  [ALTERNATIVE_RANKING.SMALLEST_MOVE]: 'Smallest move',
});

/** Every key a payload should define: the flags, then the experiments. */
export const FEATURE_KEYS: readonly string[] = Object.freeze([...FLAG_KEYS, ...EXPERIMENT_KEYS]);

export function isFlagKey(key: string): key is FlagKey {
  return (FLAG_KEYS as readonly string[]).includes(key);
}

export function isExperimentKey(key: string): key is ExperimentKey {
  return (EXPERIMENT_KEYS as readonly string[]).includes(key);
}

export type PhaseNumber = 1 | 2 | 3 | 4;

export interface Phase {
  readonly phase: PhaseNumber;
  readonly flags: readonly FlagKey[];
  readonly description: string;
}

/** The rollout phases. `features phase N` is cumulative: phases 1..N on for everyone, later ones off. */
export const PHASES: readonly Phase[] = Object.freeze([
  { phase: 1, flags: [FLAGS.ENHANCED_MODELS], description: 'enhanced models' },
  { phase: 2, flags: [FLAGS.LOGGING_HOOKS, FLAGS.UNDO], description: 'logging hooks and undo' },
  {
    phase: 3,
    flags: [FLAGS.CONFLICT_RESOLUTION, FLAGS.SEMANTIC_MEMORY],
    description: 'conflict resolution and semantic memory',
  },
  { phase: 4, flags: [FLAGS.LANGGRAPH_TOOLS], description: 'LangGraph tools' },
]);

/** The phase a flag belongs to. */
export function phaseOf(key: FlagKey): PhaseNumber {
  return PHASES.find((p) => p.flags.includes(key))!.phase;
}

/** User attributes every evaluation gets (GrowthBook attribute names). */
export const ATTRIBUTES = {
  /** The user's id: the hash attribute, so bucketing is deterministic by user. */
  ID: 'id',
  /** USER or ADMIN. */
  ROLE: 'role',
  /** Sign-up instant, ISO-8601 UTC (compare with $gt/$lt in conditions). */
  SIGNUP_DATE: 'signupDate',
  /** IANA time zone. */
  TIME_ZONE: 'timeZone',
} as const;

export type AttributeName = (typeof ATTRIBUTES)[keyof typeof ATTRIBUTES];
export const ATTRIBUTE_NAMES: readonly AttributeName[] = Object.freeze(Object.values(ATTRIBUTES));

/** Usage counters, recorded per user, day and experiment variant (recordUsage). */
export const USAGE = {
  UNDO_USED: 'undo_used',
  ALTERNATIVE_CHOSEN: 'alternative_chosen',
  MEMORY_CONSULTED: 'memory_consulted',
  AGENT_TOOL_CALLED: 'agent_tool_called',
} as const;

export type UsageMetric = (typeof USAGE)[keyof typeof USAGE];
export const USAGE_METRICS: readonly UsageMetric[] = Object.freeze(Object.values(USAGE));
