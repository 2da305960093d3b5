/**
 * traceOperation: one span per write operation, phase spans under it, the flags in force as
 * OpenTelemetry feature-flag events, and the operation metrics. Only @opentelemetry/api: without a
 * registered SDK everything here is a no-op (non-recording spans), and nothing does I/O.
 *
 *   const op = traceOperation('scheduleTask', { userId, instanceId });
 *   const loaded = await op.phaseAsync('load', () => load(...));      // child span "planner.load"
 *   const plan = op.phase('decide', () => decide(loaded));             // sync variant
 *   op.flags(userFlags.evaluations());                                 // feature_flag.evaluation events
 *   op.setAttributes({ conflicts: plan.conflicts.length, undoDepth: plan.undo.depth });
 *   await op.phaseAsync('write', () => write(plan));
 *   op.end('ok');                                                      // or op.end(err)
 *
 * If an operation is already active in the current context (the resolver-level span that
 * instrumentMutations opens), traceOperation joins it instead of opening a second one: phases
 * become its children, attributes and flags go onto it, and end() of the joined handle only
 * records the outcome (the owner ends the span).
 */
import { createHash } from 'node:crypto';
import {
  context,
  createContextKey,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import {
  CONFLICTS,
  FEATURE_FLAG_CONTEXT_ID,
  FEATURE_FLAG_EVALUATION,
  FEATURE_FLAG_KEY,
  FEATURE_FLAG_PROVIDER_NAME,
  FEATURE_FLAG_RESULT_REASON,
  FEATURE_FLAG_RESULT_VALUE,
  FEATURE_FLAG_RESULT_VARIANT,
  FEATURE_FLAG_VARIANT,
  FEATURE_FLAG_VERSION,
  FLAG_PROVIDER,
  FLAGS_IN_FORCE,
  INSTANCE_ID,
  OPERATION_KIND,
  OPERATION_OK,
  PHASE,
  UNDO_DEPTH,
  USER_HASH,
} from './attributes';
import { plannerMetrics } from './metrics';

/** The write path's phases (span names are `planner.<phase>`). */
export type PhaseName = 'load' | 'decide' | 'detect_conflicts' | 'rank_alternatives' | 'write' | 'notify';

/** A flag as evaluated (structurally src/flags' FlagEvaluation). */
export interface FlagResult {
  key: string;
  on: boolean;
  value: unknown;
  variant: string | null;
  source: string;
}

export interface OperationAttributes {
  /** Hashed before it goes anywhere (USER_HASH). */
  userId?: string;
  /** The app instance (routes rollout figures; see otel/rollout-processor.ts). */
  instanceId?: string;
}

/** What an operation reports about itself; only counts and booleans, never text. */
export interface OperationFigures {
  conflicts?: number;
  undoDepth?: number;
  ok?: boolean;
}

export interface OperationTrace {
  /** The operation span (non-recording without an SDK). */
  readonly span: Span;
  readonly kind: string;
  /** True when this handle opened the span (false: it joined an active operation). */
  readonly owner: boolean;
  /** Runs a synchronous phase in a child span `planner.<name>`; exceptions mark it and rethrow. */
  phase<T>(name: PhaseName, fn: () => T): T;
  /** Runs an asynchronous phase in a child span `planner.<name>`, ended when the promise settles. */
  phaseAsync<T>(name: PhaseName, fn: () => Promise<T>): Promise<T>;
  /** Conflicts found, undo depth, ok (and any other primitive attributes). */
  setAttributes(figures: OperationFigures & Attributes): void;
  /** The flags and experiment variants in force (feature_flag.evaluation events). */
  flags(evaluations: readonly FlagResult[], payloadVersion?: number): void;
  /** The experiment variant recorded by flags() for `key` (null when not in it). */
  variantOf(key: string): string | null;
  /** Runs `fn` with the operation span active (children attach to it). */
  run<T>(fn: () => T): T;
  /** Ends the span: 'ok', 'error', or the error thrown (recorded as an exception). Idempotent. */
  end(outcome: 'ok' | 'error' | unknown): void;
}

const ACTIVE = createContextKey('planner.operation');
const TRACER = 'planner';

/** sha256 of a user id, 16 hex characters. */
export function hashUserId(userId: string): string {
  return createHash('sha256').update(userId).digest('hex').slice(0, 16);
}

/** The variant label a flag result is counted under: the experiment variant, or on/off for a flag. */
export function variantLabel(e: FlagResult): string | null {
  if (e.source === 'experiment') return e.variant;
  if (typeof e.value === 'boolean') return e.on ? 'on' : 'off';
  return null; // an experiment the user is not in (served the control by default): not counted
}

function primitive(v: unknown): string | number | boolean {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v ?? null);
}

/** The operation active in `ctx` (the resolver's), if any. */
export function activeOperation(ctx: Context = context.active()): OperationTrace | undefined {
  return ctx.getValue(ACTIVE) as OperationTrace | undefined;
}

/**
 * Opens (or joins) the operation span of `kind`. Cheap: one span, no I/O.
 * @param kind the operation kind (mutation name, e.g. "createTask").
 */
export function traceOperation(kind: string, attrs: OperationAttributes = {}): OperationTrace {
  const existing = activeOperation();
  if (existing) return joined(existing);
  const tracer = trace.getTracer(TRACER);
  const attributes: Attributes = { [OPERATION_KIND]: kind };
  const userHash = attrs.userId ? hashUserId(attrs.userId) : undefined;
  if (userHash) attributes[USER_HASH] = userHash;
  if (attrs.instanceId) attributes[INSTANCE_ID] = attrs.instanceId;
  const span = tracer.startSpan(`operation ${kind}`, { kind: SpanKind.INTERNAL, attributes });
  const started = performance.now();
  let ctx: Context = trace.setSpan(context.active(), span);
  const variants = new Map<string, string | null>();
  let ok: boolean | undefined;
  let ended = false;

  const startPhase = (name: PhaseName): [Span, Context] => {
    const s = tracer.startSpan(`planner.${name}`, { attributes: { [PHASE]: name } }, ctx);
    return [s, trace.setSpan(ctx, s)];
  };
  const fail = (s: Span, err: unknown) => {
    if (err instanceof Error) s.recordException(err);
    s.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
  };

  const op: OperationTrace = {
    span,
    kind,
    owner: true,
    phase(name, fn) {
      const [s, c] = startPhase(name);
      try {
        return context.with(c, fn);
      } catch (err) {
        fail(s, err);
        throw err;
      } finally {
        s.end();
      }
    },
    async phaseAsync(name, fn) {
      const [s, c] = startPhase(name);
      try {
        return await context.with(c, fn);
      } catch (err) {
        fail(s, err);
        throw err;
      } finally {
        s.end();
      }
    },
    setAttributes(figures) {
      const { conflicts, undoDepth, ok: isOk, ...rest } = figures;
      if (typeof conflicts === 'number') span.setAttribute(CONFLICTS, conflicts);
      if (typeof undoDepth === 'number') span.setAttribute(UNDO_DEPTH, undoDepth);
      if (typeof isOk === 'boolean') {
        ok = isOk;
        span.setAttribute(OPERATION_OK, isOk);
      }
      span.setAttributes(rest);
    },
    flags(evaluations, payloadVersion) {
      const inForce: string[] = [];
      for (const e of evaluations) {
        const variant = variantLabel(e);
        variants.set(e.key, e.source === 'experiment' ? e.variant : null);
        const a: Attributes = {
          [FEATURE_FLAG_KEY]: e.key,
          [FEATURE_FLAG_PROVIDER_NAME]: FLAG_PROVIDER,
          [FEATURE_FLAG_RESULT_VALUE]: primitive(e.value),
          [FEATURE_FLAG_RESULT_REASON]: e.source,
        };
        if (variant !== null) {
          a[FEATURE_FLAG_RESULT_VARIANT] = variant;
          a[FEATURE_FLAG_VARIANT] = variant;
          inForce.push(`${e.key}=${variant}`);
        }
        if (payloadVersion !== undefined) a[FEATURE_FLAG_VERSION] = String(payloadVersion);
        if (userHash) a[FEATURE_FLAG_CONTEXT_ID] = userHash;
        span.addEvent(FEATURE_FLAG_EVALUATION, a);
      }
      span.setAttribute(FLAGS_IN_FORCE, inForce);
    },
    variantOf: (key) => variants.get(key) ?? null,
    run: (fn) => context.with(ctx, fn),
    end(outcome) {
      if (ended) return;
      ended = true;
      const failed = outcome !== 'ok';
      if (failed) fail(span, outcome === 'error' ? undefined : outcome);
      span.end();
      const variant = [...variants.values()].find((v) => v !== null) ?? 'none';
      plannerMetrics().operationDuration.record(performance.now() - started, {
        kind,
        variant,
        ok: !failed && ok !== false,
      });
    },
  };
  ctx = ctx.setValue(ACTIVE, op);
  return op;
}

/** A handle on an operation opened further out: everything but end() delegates. */
function joined(outer: OperationTrace): OperationTrace {
  return {
    span: outer.span,
    kind: outer.kind,
    owner: false,
    phase: (n, fn) => outer.phase(n, fn),
    phaseAsync: (n, fn) => outer.phaseAsync(n, fn),
    setAttributes: (f) => outer.setAttributes(f),
    flags: (e, v) => outer.flags(e, v),
    variantOf: (k) => outer.variantOf(k),
    run: (fn) => outer.run(fn),
    end: (outcome) => {
      if (outcome !== 'ok') outer.span.setStatus({ code: SpanStatusCode.ERROR });
    },
  };
}
