/**
 * Mutation-level instrumentation: every GraphQL mutation runs inside an operation span (see
 * operation.ts) carrying the operation kind, the hashed user id, the flags and experiment variants
 * in force for that user, and after the call ok / conflicts / undo depth from its UpdateResult.
 * Rollout figures flow from these spans before the write path has phase spans; when the runner
 * calls traceOperation it joins this span (phases become its children).
 *
 * The flags need the caller's attributes (id, role, sign-up date, time zone): they are cached per
 * user on each instance, so only the first mutation of a user on an instance reads them (one
 * statement); updateSettings drops the entry (time zone). The write-path runner will pass its
 * loaded user instead, adding no round trip.
 */
import { EXPERIMENT_KEYS, FLAGS } from '../flags/keys';
import { toFlagUser, type FlagService, type UserFlags } from '../flags/service';
import { plannerMetrics } from './metrics';
import type { ReportOptions, RolloutReport } from './report';
import { traceOperation } from './operation';

/** The caller's attributes as the world holds them (QueryService.me). */
export interface FlagUserSource {
  (
    userId: string,
  ): Promise<{ id: string; role: 'USER' | 'ADMIN'; createdAt: Date | string; timeZone: string }>;
}

export interface MutationTelemetryOptions {
  /** This app instance (rollout figures are routed by it). */
  instanceId: string;
  flags: FlagService | null;
  /** Reads a user's attributes (cached per instance). */
  user: FlagUserSource;
  /**
   * TEST-ONLY hook: called before each mutation for every experiment the caller is assigned to;
   * a returned promise delays the mutation inside its span (a slowed variant). Default none.
   */
  delay?: (experiment: string, variant: string) => Promise<void> | undefined;
  /** Operation log lines (only when logging_hooks is on for the caller): kind, ok, counts. */
  log?: (msg: string, fields: Record<string, unknown>) => void;
  /** Users whose attributes are cached. Default 10,000 (then the cache starts over). */
  maxCachedUsers?: number;
  /** Builds the rollout report (admin queries). */
  report?: (opts: ReportOptions) => Promise<RolloutReport>;
}

/** What instrumentMutations needs from a request. */
export interface MutationTelemetry {
  readonly instanceId: string;
  flagsFor(userId: string, role: 'USER' | 'ADMIN'): Promise<UserFlags | null>;
  forget(userId: string): void;
  readonly delay?: MutationTelemetryOptions['delay'];
  readonly log?: MutationTelemetryOptions['log'];
  /** The rollout report over every instance (admin queries). */
  readonly report?: (opts: ReportOptions) => Promise<RolloutReport>;
}

export function createMutationTelemetry(opts: MutationTelemetryOptions): MutationTelemetry {
  const cache = new Map<string, { createdAt: Date | string; timeZone: string }>();
  const max = opts.maxCachedUsers ?? 10_000;
  return {
    instanceId: opts.instanceId,
    delay: opts.delay,
    log: opts.log,
    report: opts.report,
    async flagsFor(userId, role) {
      if (!opts.flags) return null;
      let u = cache.get(userId);
      if (!u) {
        const me = await opts.user(userId);
        u = { createdAt: me.createdAt, timeZone: me.timeZone };
        if (cache.size >= max) cache.clear();
        cache.set(userId, u);
      }
      return opts.flags.forUser(toFlagUser({ id: userId, role, ...u }));
    },
    forget: (userId) => void cache.delete(userId),
  };
}

interface ResultLike {
  ok?: boolean;
  conflicts?: Array<{ kind?: string }>;
  undo?: { depth?: number };
}

type Resolver = (parent: unknown, args: never, ctx: never, info: never) => unknown;

interface CallerContext {
  auth: { userId: string; role: 'USER' | 'ADMIN' } | null;
  telemetry?: MutationTelemetry;
}

function figures(kind: string, r: ResultLike | null | undefined): void {
  if (!r || typeof r !== 'object') return;
  const m = plannerMetrics();
  for (const c of r.conflicts ?? []) m.conflictsDetected.add(1, { kind: c.kind ?? 'UNKNOWN' });
  if (typeof r.undo?.depth === 'number') m.undoDepth.record(r.undo.depth);
  if (kind === 'resolveConflict') (r.ok ? m.conflictsResolved : m.conflictsFailed).add(1);
  if (kind === 'undo' && r.ok) m.undoCount.add(1);
  if (kind === 'redo' && r.ok) m.redoCount.add(1);
}

/** Wraps each mutation resolver in an operation span (a no-op when the context has no telemetry). */
export function instrumentMutations<R extends Record<string, Resolver>>(resolvers: R): R {
  const out: Record<string, Resolver> = {};
  for (const [kind, fn] of Object.entries(resolvers)) {
    out[kind] = (parent, args, ctx, info) => {
      const c = ctx as unknown as CallerContext;
      const t = c.telemetry;
      const auth = c.auth;
      if (!t || !auth) return fn(parent, args, ctx, info);
      const op = traceOperation(kind, { userId: auth.userId, instanceId: t.instanceId });
      const started = performance.now();
      return op.run(async () => {
        try {
          const flags = await t.flagsFor(auth.userId, auth.role);
          if (flags) {
            op.flags(flags.evaluations(), flags.payload.version);
            if (t.delay) {
              for (const e of EXPERIMENT_KEYS) {
                const v = flags.assignment(e);
                if (v !== null) await t.delay(e, v);
              }
            }
          }
          const result = (await fn(parent, args, ctx, info)) as ResultLike;
          const conflicts = result?.conflicts?.length;
          op.setAttributes({ ok: result?.ok, conflicts, undoDepth: result?.undo?.depth });
          figures(kind, result);
          if (kind === 'updateSettings') t.forget(auth.userId);
          if (t.log && flags?.isOn(FLAGS.LOGGING_HOOKS)) {
            t.log('operation', {
              kind,
              ok: result?.ok,
              conflicts,
              durationMs: Math.round((performance.now() - started) * 10) / 10,
            });
          }
          op.end('ok');
          return result;
        } catch (err) {
          op.end(err);
          throw err;
        }
      });
    };
  }
  return out as R;
}
