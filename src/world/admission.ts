/**
 * Per-user admission of mutations on one instance: at most `maxInFlightPerUser` of one user's
 * operations run at once; more are refused at once (the caller answers RATE_LIMITED with a retry
 * hint) instead of queueing for the user's row lock while holding pooled connections. One user's
 * burst therefore never takes every connection of the pool, and other users keep being served.
 *
 * Knows nothing of GraphQL: adapters (the mutation resolvers) translate AdmissionRefused.
 */
import type { World } from './world';

/** Retry hint sent with a refusal. */
export const ADMISSION_RETRY_AFTER_MS = 250;

/** Thrown by Admission.run when the user already has the maximum number of operations in flight. */
export class AdmissionRefused extends Error {
  constructor(
    readonly limit: number,
    readonly retryAfterMs: number = ADMISSION_RETRY_AFTER_MS,
  ) {
    super(
      `Too many of your operations are in flight (at most ${limit} at once): retry after ${retryAfterMs} ms`,
    );
    this.name = 'AdmissionRefused';
  }
}

export class Admission {
  private readonly inFlight = new Map<string, number>();

  /** @param maxInFlightPerUser at least 1 (PLANNER_MAX_INFLIGHT_PER_USER). */
  constructor(readonly maxInFlightPerUser: number) {
    if (!Number.isInteger(maxInFlightPerUser) || maxInFlightPerUser < 1)
      throw new RangeError(`maxInFlightPerUser must be a positive integer, got ${maxInFlightPerUser}`);
  }

  /** Runs `fn` as one of the user's in-flight operations; throws AdmissionRefused over the cap. */
  async run<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    const n = this.inFlight.get(userId) ?? 0;
    if (n >= this.maxInFlightPerUser) throw new AdmissionRefused(this.maxInFlightPerUser);
    this.inFlight.set(userId, n + 1);
    try {
      return await fn();
    } finally {
      const left = (this.inFlight.get(userId) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(userId);
      else this.inFlight.set(userId, left);
    }
  }

  /** The user's operations in flight now (0 when none). */
  count(userId: string): number {
    return this.inFlight.get(userId) ?? 0;
  }

  /** Operations in flight now, all users together (leak checks). */
  get total(): number {
    let sum = 0;
    for (const n of this.inFlight.values()) sum += n;
    return sum;
  }
}

/** An admission that never refuses (worlds built without one: CLI, agent tools, tests). */
const UNLIMITED = new Admission(Number.MAX_SAFE_INTEGER);
const attached = new WeakMap<World, Admission>();

/** Attaches the instance's admission to its world (composition root). */
export function attachAdmission(world: World, admission: Admission): void {
  attached.set(world, admission);
}

/** The admission attached to `world`, or one without a limit. */
export function admissionOf(world: World): Admission {
  return attached.get(world) ?? UNLIMITED;
}
