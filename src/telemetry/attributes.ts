/**
 * Span and metric attribute names, declared once. The feature-flag names are OpenTelemetry's
 * feature-flag semantic conventions (semconv 1.45, `feature_flag.*`, event `feature_flag.evaluation`);
 * test/unit/telemetry.test.ts checks them against @opentelemetry/semantic-conventions/incubating.
 * Never titles, notes or memory text: only kinds, counts, hashed ids and flag results.
 */

/** Event recorded once per flag evaluation in force for an operation (semconv event name). */
export const FEATURE_FLAG_EVALUATION = 'feature_flag.evaluation';
export const FEATURE_FLAG_KEY = 'feature_flag.key';
/** The variant served (experiments: the variant key; flags: "on" / "off"). */
export const FEATURE_FLAG_RESULT_VARIANT = 'feature_flag.result.variant';
/** Older name of the same attribute (semconv < 1.32), kept for backends that still read it. */
export const FEATURE_FLAG_VARIANT = 'feature_flag.variant';
export const FEATURE_FLAG_RESULT_VALUE = 'feature_flag.result.value';
export const FEATURE_FLAG_RESULT_REASON = 'feature_flag.result.reason';
export const FEATURE_FLAG_PROVIDER_NAME = 'feature_flag.provider.name';
export const FEATURE_FLAG_SET_ID = 'feature_flag.set.id';
export const FEATURE_FLAG_VERSION = 'feature_flag.version';
export const FEATURE_FLAG_CONTEXT_ID = 'feature_flag.context.id';

/** The provider name every evaluation reports. */
export const FLAG_PROVIDER = 'GrowthBook';

/** Marks an operation span (the value is the operation kind, e.g. createTask). */
export const OPERATION_KIND = 'planner.operation.kind';
/** The app instance that served the operation (routes its rollout figures; service.instance.id-like). */
export const INSTANCE_ID = 'planner.instance.id';
/** sha256(user id), first 16 hex characters: correlates without naming the user. */
export const USER_HASH = 'planner.user.hash';
export const OPERATION_OK = 'planner.operation.ok';
export const CONFLICTS = 'planner.conflicts';
export const UNDO_DEPTH = 'planner.undo.depth';
/** Phase spans: load, decide, detect_conflicts, rank_alternatives, write, notify. */
export const PHASE = 'planner.phase';
/** Compact list of the flags in force, `key=variant` (for backends without span events). */
export const FLAGS_IN_FORCE = 'planner.flags';
