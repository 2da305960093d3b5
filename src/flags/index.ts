/**
 * src/flags: GrowthBook feature flags and experiments behind a small interface.
 *
 *   const flags = await startFlags(dataSource, { ... });   // at start (composition root)
 *   const f = flags.service.forUser({ id, role, signupDate, timeZone });  // per request: sync, no I/O
 *   f.isOn(FLAGS.UNDO); f.variant(EXPERIMENTS.ALTERNATIVE_RANKING); f.evaluations();
 *   flags.recorder.recordUsage(f, USAGE.UNDO_USED);                      // no I/O, batched
 *   await flags.close();                                                  // at shutdown (flushes)
 *
 * In the write path (between load and write; nothing here does I/O or adds a round trip):
 *   const f = flags.service.forUser(toFlagUser(loadedUser));
 *   requireFlag(f, FLAGS.UNDO)                       → FEATURE_DISABLED for undo/redo (MUTATION_GATES)
 *   enhancedInputErrors(f, input)                    → FEATURE_DISABLED per goalId/dependsOn/tags/estimateMinutes
 *   f.isOn(FLAGS.CONFLICT_RESOLUTION)                → compute alternatives / allow AUTO_RESOLVE or not
 *   rankAlternatives(f.variant(EXPERIMENTS.ALTERNATIVE_RANKING), alternatives, currentStartOf)
 *   result.flags = f.evaluations()                   → UpdateResult.flags (variant and source)
 *   flags.recorder.recordUsage(f, USAGE.UNDO_USED)   → after commit (or on success), batched
 */
import type { DataSource } from 'typeorm';
import { defaultPayload } from './payload';
import { ExposureRecorder } from './recorder';
import { RemotePoller } from './remote';
import { FlagService } from './service';
import { DatabasePoller, FeatureStore } from './store';

export * from './keys';
export { PayloadError, validatePayload, defaultPayload, type FeaturePayload } from './payload';
export {
  FlagService,
  toFlagUser,
  type FlagEvaluation,
  type FlagUser,
  type UserFlags,
  type PayloadInfo,
  type Exposure,
  type ExposureSink,
} from './service';
export { ExposureRecorder, type UsageKey } from './recorder';
export { FeatureStore, DatabasePoller, type AuditEntry, type StoredPayload } from './store';
export { RemotePoller, fetchRemotePayload, featuresUrl } from './remote';
export { rolloutAggregates, type RolloutAggregates } from './report';
export { rankAlternatives, rankBySmallestMove } from './ranking';
export {
  disabledError,
  enhancedInputErrors,
  requireFlag,
  ENHANCED_TASK_FIELDS,
  FEATURE_DISABLED,
  MUTATION_GATES,
  type DisabledError,
} from './gates';

type LogFn = (msg: string, fields?: Record<string, unknown>) => void;

export interface StartFlagsOptions {
  /** Database poll period in ms (PLANNER_FLAGS_POLL_MS). Default 1000. */
  pollMs?: number;
  /** Remote mode (GROWTHBOOK_API_HOST + GROWTHBOOK_CLIENT_KEY): the payload comes from there. */
  remote?: { apiHost: string; clientKey: string; refreshMs?: number; timeoutMs?: number } | null;
  /** Exposure/usage flush period in ms. Default 2000. */
  flushMs?: number;
  /** Time source (exposure and usage timestamps). */
  now?: () => Date;
  info?: LogFn;
  warn?: LogFn;
}

export interface Flags {
  readonly service: FlagService;
  readonly recorder: ExposureRecorder;
  readonly store: FeatureStore;
  /** The database poller (null in remote mode). */
  readonly poller: DatabasePoller | null;
  /** The remote poller (null in database mode). */
  readonly remote: RemotePoller | null;
  /** Stops the pollers and flushes exposures and usage. Idempotent. */
  close(): Promise<void>;
}

/**
 * Seeds the database payload if needed, loads it, starts the poller (database, or remote when
 * configured: the database payload is in force until the first good remote one) and the recorder.
 * @throws PayloadError when the stored payload is malformed at start (nothing to fall back on).
 */
export async function startFlags(ds: DataSource, opts: StartFlagsOptions = {}): Promise<Flags> {
  const store = new FeatureStore(ds);
  const stored = await store.ensureSeeded(defaultPayload());
  const recorder = new ExposureRecorder(ds, {
    flushIntervalMs: opts.flushMs,
    now: opts.now,
    warn: opts.warn,
  });
  const service = new FlagService(
    stored.payload as never,
    { origin: 'database', version: stored.version },
    {
      exposures: recorder,
      now: opts.now,
    },
  );
  let poller: DatabasePoller | null = null;
  let remote: RemotePoller | null = null;
  if (opts.remote) {
    remote = new RemotePoller(service, {
      apiHost: opts.remote.apiHost,
      clientKey: opts.remote.clientKey,
      intervalMs: opts.remote.refreshMs,
      timeoutMs: opts.remote.timeoutMs,
      info: opts.info,
      warn: opts.warn,
    });
    await remote.refresh();
    remote.start();
  } else {
    poller = new DatabasePoller(store, service, {
      intervalMs: opts.pollMs,
      info: opts.info,
      warn: opts.warn,
    });
    poller.start();
  }
  recorder.start();
  let closed: Promise<void> | null = null;
  return {
    service,
    recorder,
    store,
    poller,
    remote,
    close: () =>
      (closed ??= (async () => {
        await poller?.close();
        await remote?.close();
        await recorder.close();
      })()),
  };
}
