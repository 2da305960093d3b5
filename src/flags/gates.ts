/**
 * What each flag gates, as data and pure checks the write path calls between load and write (no
 * I/O). The answers are plain `{ code, message, path }` user errors, so src/world can wrap them in
 * its DomainError and write nothing.
 */
import { FLAGS, type FlagKey } from './keys';
import type { UserFlags } from './service';

export const FEATURE_DISABLED = 'FEATURE_DISABLED';

/** A FEATURE_DISABLED user error. */
export interface DisabledError {
  code: typeof FEATURE_DISABLED;
  message: string;
  /** The input field that needs the capability, or null for the whole operation. */
  path: string[] | null;
}

const NAMES: Record<FlagKey, string> = {
  [FLAGS.ENHANCED_MODELS]: 'the enhanced task model (goals, dependencies, tags, estimates)',
  [FLAGS.LOGGING_HOOKS]: 'logging hooks',
  [FLAGS.UNDO]: 'undo and redo',
  [FLAGS.CONFLICT_RESOLUTION]: 'conflict resolution',
  [FLAGS.SEMANTIC_MEMORY]: 'semantic memory',
  [FLAGS.LANGGRAPH_TOOLS]: 'agent tools',
};

/** The error for a capability that is off for this user. */
export function disabledError(key: FlagKey, path: string[] | null = null): DisabledError {
  return {
    code: FEATURE_DISABLED,
    message: `${NAMES[key]} is not enabled for your account (flag "${key}")`,
    path,
  };
}

/** The error when `key` is off for the user, else null. */
export function requireFlag(
  flags: UserFlags,
  key: FlagKey,
  path: string[] | null = null,
): DisabledError | null {
  return flags.isOn(key) ? null : disabledError(key, path);
}

/** Task input fields of the enhanced model: refused (FEATURE_DISABLED) when enhanced_models is off. */
export const ENHANCED_TASK_FIELDS = ['goalId', 'dependsOn', 'tags', 'estimateMinutes'] as const;

/**
 * One FEATURE_DISABLED error per enhanced field the input sets (a value other than undefined/null),
 * when enhanced_models is off for the user; [] when it is on. Stored values stay readable: this
 * checks inputs only.
 */
export function enhancedInputErrors(
  flags: UserFlags,
  input: Readonly<Record<string, unknown>>,
): DisabledError[] {
  const used = ENHANCED_TASK_FIELDS.filter((f) => input[f] !== undefined && input[f] !== null);
  if (used.length === 0 || flags.isOn(FLAGS.ENHANCED_MODELS)) return [];
  return used.map((f) => disabledError(FLAGS.ENHANCED_MODELS, [f]));
}

/**
 * Which flag each gated mutation needs (whole operation), for the write path and the docs.
 * `forgetMemories` is deliberately not gated: people can always delete what is held about them.
 * Conflict resolution off also means: no alternatives computed, onConflict AUTO_RESOLVE refused.
 */
export const MUTATION_GATES: Readonly<Record<string, FlagKey>> = Object.freeze({
  undo: FLAGS.UNDO,
  redo: FLAGS.UNDO,
  resolveConflict: FLAGS.CONFLICT_RESOLUTION,
  createGoal: FLAGS.ENHANCED_MODELS,
  updateGoal: FLAGS.ENHANCED_MODELS,
  remember: FLAGS.SEMANTIC_MEMORY,
});
