/**
 * FlagService: the GrowthBook adapter. One GrowthBookClient per payload version, initialised
 * synchronously from it (no network, no timers); per request, a scoped instance with the user's
 * attributes. Evaluation is synchronous, in memory and does no I/O: the write path may call it
 * between load and write without adding a round trip.
 *
 * Experiment exposures go through the SDK's trackingCallback to an ExposureSink (the batched
 * recorder), which the SDK already de-duplicates within one scoped instance; the recorder
 * de-duplicates across requests and instances.
 */
import { GrowthBookClient, type FeatureResult, type UserContext } from '@growthbook/growthbook';
import {
  ATTRIBUTES,
  EXPERIMENT_KEYS,
  EXPERIMENT_VARIANTS,
  FLAG_KEYS,
  type ExperimentKey,
  type FlagKey,
} from './keys';
import { validatePayload, type FeaturePayload } from './payload';

/** Who is asking: the attributes every evaluation gets. */
export interface FlagUser {
  /** User id (the hash attribute: bucketing is deterministic by it). */
  id: string;
  role: 'USER' | 'ADMIN';
  /** Sign-up instant (users.created_at). */
  signupDate: Date;
  /** IANA time zone. */
  timeZone: string;
}

/** A FlagUser from a user as the world holds it (row or view): `createdAt` may be a Date or an ISO string. */
export function toFlagUser(u: {
  id: string;
  role: 'USER' | 'ADMIN';
  createdAt: Date | string;
  timeZone: string;
}): FlagUser {
  return { id: u.id, role: u.role, signupDate: new Date(u.createdAt), timeZone: u.timeZone };
}

/** One feature as evaluated for one user (the GraphQL FlagEvaluation). */
export interface FlagEvaluation {
  key: string;
  on: boolean;
  value: unknown;
  /** The experiment variant key when an experiment rule served the value, else null. */
  variant: string | null;
  /** GrowthBook's source: defaultValue, force, experiment, unknownFeature, prerequisite, … */
  source: string;
}

/** An experiment exposure, as the SDK's trackingCallback reports it. */
export interface Exposure {
  userId: string;
  experiment: string;
  variant: string;
  variationId: number;
}

/** Where exposures go (the ExposureRecorder; a no-op sink in tools that evaluate without recording). */
export interface ExposureSink {
  exposure(e: Exposure): void;
}

/** Where the payload in force came from. */
export type PayloadOrigin = 'database' | 'remote' | 'static';

export interface PayloadInfo {
  origin: PayloadOrigin;
  /** Database version, or a counter of accepted remote payloads. */
  version: number;
  /** When this instance accepted it. */
  loadedAt: Date;
}

/** Flags for one user and one request. Synchronous, no I/O; values are evaluated once and memoised. */
export interface UserFlags {
  readonly userId: string;
  /** The payload these evaluations come from. */
  readonly payload: PayloadInfo;
  /** Whether a capability is on for this user. */
  isOn(key: FlagKey): boolean;
  /**
   * The user's variant of an experiment (the control, e.g. "current", when not in it). Records an
   * exposure when the user is in the experiment: call it where the variant takes effect.
   */
  variant(experiment: ExperimentKey): string;
  /** The variant without recording an exposure (for attributing usage). Null when not in it. */
  assignment(experiment: ExperimentKey): string | null;
  /**
   * Every declared flag and experiment, in declaration order. `expose: true` records exposures
   * for the experiments (the `features` query: the client is about to act on the variants).
   */
  evaluations(opts?: { expose?: boolean }): FlagEvaluation[];
}

interface Snapshot {
  client: GrowthBookClient;
  info: PayloadInfo;
}

function toEvaluation(key: string, r: FeatureResult<unknown>): FlagEvaluation {
  const inExperiment = r.source === 'experiment' && r.experimentResult?.inExperiment === true;
  return {
    key,
    on: r.on,
    value: r.value,
    variant: inExperiment ? (r.experimentResult?.key ?? null) : null,
    source: r.source,
  };
}

const noSink: ExposureSink = { exposure: () => undefined };

export interface FlagServiceOptions {
  /** Where exposures go. Default: nowhere. */
  exposures?: ExposureSink;
  /** Time source for PayloadInfo.loadedAt. Default: Date. */
  now?: () => Date;
}

export class FlagService {
  private snapshot: Snapshot;
  private readonly sink: ExposureSink;
  private readonly now: () => Date;
  private readonly listeners = new Set<(info: PayloadInfo) => void>();

  /**
   * @param initial the payload in force until another is applied (already validated, or validated here).
   * @throws PayloadError when `initial` is malformed.
   */
  constructor(initial: FeaturePayload, info: Omit<PayloadInfo, 'loadedAt'>, opts: FlagServiceOptions = {}) {
    this.sink = opts.exposures ?? noSink;
    this.now = opts.now ?? (() => new Date());
    this.snapshot = this.build(
      validatePayload(initial, `${info.origin} version ${info.version}`).payload,
      info,
    );
  }

  /** The payload in force. */
  get payload(): PayloadInfo {
    return this.snapshot.info;
  }

  /** The payload in force, as GrowthBook holds it. */
  currentPayload(): FeaturePayload {
    return this.snapshot.client.getPayload() as FeaturePayload;
  }

  /**
   * Puts a payload in force. Validates first: a malformed payload throws PayloadError and the one
   * in force stays. Requests that already hold a UserFlags keep evaluating the old one.
   * @returns validation warnings (declared keys the payload leaves undefined).
   */
  apply(payload: unknown, info: Omit<PayloadInfo, 'loadedAt'>): string[] {
    const { payload: valid, warnings } = validatePayload(payload, `${info.origin} version ${info.version}`);
    this.snapshot = this.build(valid, info);
    for (const l of this.listeners) l(this.snapshot.info);
    return warnings;
  }

  /** Called after each applied payload (tests wait on it instead of sleeping). Returns an unsubscribe. */
  onApplied(listener: (info: PayloadInfo) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Flags of one user, evaluated against the payload in force now. Synchronous, no I/O. */
  forUser(user: FlagUser): UserFlags {
    const { client, info } = this.snapshot;
    const attributes = {
      [ATTRIBUTES.ID]: user.id,
      [ATTRIBUTES.ROLE]: user.role,
      [ATTRIBUTES.SIGNUP_DATE]: user.signupDate.toISOString(),
      [ATTRIBUTES.TIME_ZONE]: user.timeZone,
    };
    const sink = this.sink;
    const tracked: UserContext = {
      attributes,
      trackingCallback: (experiment, result) => {
        sink.exposure({
          userId: user.id,
          experiment: experiment.key,
          variant: result.key,
          variationId: result.variationId,
        });
      },
    };
    const scoped = client.createScopedInstance(tracked);
    const silent = client.createScopedInstance({ attributes });
    const memo = new Map<string, FlagEvaluation>();
    const evaluate = (key: string, expose: boolean): FlagEvaluation => {
      const cached = memo.get(key);
      // A silent evaluation of an experiment does not count as an exposure: re-evaluate (tracked) once.
      if (cached && (!expose || cached.variant === null || memo.has(`${key}#exposed`))) return cached;
      const e = toEvaluation(key, (expose ? scoped : silent).evalFeature(key));
      memo.set(key, e);
      if (expose) memo.set(`${key}#exposed`, e);
      return e;
    };
    const control = (experiment: ExperimentKey) => EXPERIMENT_VARIANTS[experiment][0]!;
    return {
      userId: user.id,
      payload: info,
      isOn: (key) => evaluate(key, false).on,
      variant: (experiment) => {
        const e = evaluate(experiment, true);
        return e.variant ?? (typeof e.value === 'string' ? e.value : control(experiment));
      },
      assignment: (experiment) => evaluate(experiment, false).variant,
      evaluations: (opts = {}) =>
        [...FLAG_KEYS, ...EXPERIMENT_KEYS].map((key) =>
          evaluate(key, opts.expose === true && (EXPERIMENT_KEYS as readonly string[]).includes(key)),
        ),
    };
  }

  private build(payload: FeaturePayload, info: Omit<PayloadInfo, 'loadedAt'>): Snapshot {
    // No clientKey, no streaming, no polling: the client evaluates this payload and nothing else.
    const client = new GrowthBookClient({}).initSync({ payload: structuredClone(payload) });
    return { client, info: { ...info, loadedAt: this.now() } };
  }
}
