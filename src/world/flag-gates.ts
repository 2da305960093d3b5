/**
 * The feature flags in the write path: evaluated once per operation from the loaded user row (in
 * memory, no I/O, no round trip), enforced between load and decide (FEATURE_DISABLED, nothing
 * written), consulted by the decide step where alternatives are computed (conflict_resolution, the
 * alternative_ranking experiment), recorded on the operation row by the one write statement, and
 * counted as usage after the commit (queued by the recorder, no I/O here).
 *
 * The runner calls: `openGates` (after the first load), `bindFlags` (each decide attempt),
 * `recordUsage` (after COMMIT). The decide code calls: `alternativesAllowed`, `rankForUser`,
 * `noteAlternativeChosen`.
 */
import {
  defaultPayload,
  disabledError,
  enhancedInputErrors,
  EXPERIMENTS,
  FlagService,
  FLAGS,
  MUTATION_GATES,
  rankAlternatives,
  toFlagUser,
  USAGE,
  type DisabledError,
  type FlagKey,
  type UsageMetric,
  type UserFlags,
} from '../flags';
import type { UserRow } from './rows';
import type { FlagEvaluationView } from './views';

/** What the world needs of the flags runtime (src/flags' `Flags` fits). */
export interface FlagRuntime {
  readonly service: FlagService;
  /** Usage counters (queued, flushed outside the user's transaction); null: not counted. */
  readonly recorder: { recordUsage(flags: UserFlags, metric: UsageMetric, count?: number): void } | null;
}

let staticRuntime: FlagRuntime | null = null;

/**
 * The runtime of a world built without flags (CLI, tests): the seeded default payload of the
 * repository (every capability on, the experiment 50/50), evaluated in memory, usage not counted.
 */
export function staticFlagRuntime(): FlagRuntime {
  staticRuntime ??= {
    service: new FlagService(defaultPayload(), { origin: 'static', version: 0 }),
    recorder: null,
  };
  return staticRuntime;
}

/** The operation kind of each gated mutation (createGoal → CREATE_GOAL). */
const KIND_GATES: ReadonlyMap<string, FlagKey> = new Map(
  Object.entries(MUTATION_GATES).map(([mutation, key]) => [
    mutation.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase(),
    key,
  ]),
);

/** Operations whose `args.input` may carry the enhanced task fields. */
const TASK_INPUT_KINDS = new Set(['CREATE_TASK', 'UPDATE_TASK']);

/** The flags of one operation: evaluated once, from the user row the first load read. */
export interface OperationFlags {
  readonly user: UserFlags;
  /** FEATURE_DISABLED errors: the operation must write nothing and answer them. */
  readonly refused: DisabledError[];
  /** The evaluations in force (UpdateResult.flags and operations.flags), computed once. */
  evaluations(): FlagEvaluationView[];
}

/**
 * Evaluates the user's flags and checks the operation against them, before any decision:
 * the whole-operation gates (MUTATION_GATES: undo/redo, resolveConflict, createGoal/updateGoal),
 * the enhanced task fields of createTask/updateTask (one error per field, path ['input', field]),
 * and onConflict AUTO_RESOLVE (conflict_resolution). Synchronous, no I/O.
 */
export function openGates(
  runtime: FlagRuntime,
  user: UserRow,
  spec: { kind: string; args: Record<string, unknown> },
  onConflict: string | null | undefined,
): OperationFlags {
  const f = runtime.service.forUser(
    toFlagUser({ id: user.id, role: user.role, createdAt: user.created_at, timeZone: user.time_zone }),
  );
  const refused: DisabledError[] = [];
  const whole = KIND_GATES.get(spec.kind);
  if (whole !== undefined && !f.isOn(whole)) refused.push(disabledError(whole));
  const input = spec.args.input;
  if (TASK_INPUT_KINDS.has(spec.kind) && input && typeof input === 'object') {
    for (const e of enhancedInputErrors(f, input as Record<string, unknown>))
      refused.push({ ...e, path: e.path ? ['input', ...e.path] : ['input'] });
  }
  if (onConflict === 'AUTO_RESOLVE' && !f.isOn(FLAGS.CONFLICT_RESOLUTION))
    refused.push(disabledError(FLAGS.CONFLICT_RESOLUTION, ['onConflict']));
  let evaluated: FlagEvaluationView[] | null = null;
  return {
    user: f,
    refused,
    evaluations: () => (evaluated ??= f.evaluations()),
  };
}

interface TxFlags {
  user: UserFlags;
  /** Alternatives applied by this decide attempt (resolveConflict, AUTO_RESOLVE). */
  chosen: number;
}

/** The flags bound to each decide attempt (a WorldTx lives for one attempt). */
const bound = new WeakMap<object, TxFlags>();

/** Binds the operation's flags to a decide attempt's WorldTx. */
export function bindFlags(tx: object, flags: OperationFlags): void {
  bound.set(tx, { user: flags.user, chosen: 0 });
}

/** Whether alternatives are computed for this attempt (conflict_resolution; on when nothing is bound). */
export function alternativesAllowed(tx: object): boolean {
  return bound.get(tx)?.user.isOn(FLAGS.CONFLICT_RESOLUTION) ?? true;
}

/**
 * Orders computed alternatives by the user's alternative_ranking variant. The variant (and so the
 * exposure) is asked only when there is something to show; nothing bound keeps the domain's order.
 * Both arms keep Alternative's contract: the same at most 5 alternatives, listed by score descending
 * ("higher is better", 0–1): when "smallest_move" re-orders them, the scores offered are handed out
 * again in the new order (the first gets the highest), so the score says how this arm ranks it.
 */
export function rankForUser<
  T extends { action: 'MOVE' | 'BACKLOG'; taskId: string; start: Date | null; score: number },
>(tx: object, alternatives: T[], currentStart: (taskId: string) => Date | null): T[] {
  const f = bound.get(tx);
  if (!f || alternatives.length === 0) return alternatives;
  const ranked = rankAlternatives(
    f.user.variant(EXPERIMENTS.ALTERNATIVE_RANKING),
    alternatives,
    currentStart,
  );
  if (ranked.every((a, i) => a === alternatives[i])) return ranked;
  const scores = ranked.map((a) => a.score).sort((x, y) => y - x);
  return ranked.map((a, i) => (a.score === scores[i] ? a : { ...a, score: scores[i]! }));
}

/**
 * Whether semantic memory shapes this attempt (the semantic_memory flag; off when nothing is
 * bound). Off: nothing is learned or used, while stored items stay visible, exportable and erasable.
 */
export function memoryAllowed(tx: object): boolean {
  return bound.get(tx)?.user.isOn(FLAGS.SEMANTIC_MEMORY) ?? false;
}

/** Counts an applied alternative (usage "alternative chosen", recorded after the commit). */
export function noteAlternativeChosen(tx: object): void {
  const f = bound.get(tx);
  if (f) f.chosen += 1;
}

/** After the commit: usage counts of the operation (queued, no I/O): undo used, alternatives chosen. */
export function recordUsage(runtime: FlagRuntime, flags: OperationFlags, kind: string, tx: object): void {
  const recorder = runtime.recorder;
  if (!recorder) return;
  if (kind === 'UNDO' || kind === 'REDO') recorder.recordUsage(flags.user, USAGE.UNDO_USED);
  const chosen = bound.get(tx)?.chosen ?? 0;
  if (chosen > 0) recorder.recordUsage(flags.user, USAGE.ALTERNATIVE_CHOSEN, chosen);
  const consulted = (tx as { memoryUsed?: ReadonlySet<string> }).memoryUsed?.size ?? 0;
  if (consulted > 0) recorder.recordUsage(flags.user, USAGE.MEMORY_CONSULTED);
}
