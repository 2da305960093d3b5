/**
 * Per-user admission of mutations on one instance: at most `maxInFlightPerUser` of one user's
 * operations run at once (each holds a pooled connection, queued on the user's row lock); up to
 * `maxQueuedPerUser` more wait here, in memory, in arrival order, holding nothing; beyond that a
 * request is refused at once (the caller answers RATE_LIMITED with a retry hint). One user's burst
 * therefore never takes every connection of the pool, and other users keep being served.
 *
 * Knows nothing of GraphQL: adapters (the mutation resolvers) translate AdmissionRefused.
 */
import type { World } from './world';

/** Retry hint sent with a refusal. */
export const ADMISSION_RETRY_AFTER_MS = 250;

/** Thrown by Admission.run when the user's in-flight operations and waiting queue are both full. */
export class AdmissionRefused extends Error {
  constructor(
    readonly limit: number,
    readonly retryAfterMs: number = ADMISSION_RETRY_AFTER_MS,
  ) {
    super(
      `Too many of your operations are in flight (at most ${limit} at once, plus a short queue): retry after ${retryAfterMs} ms`,
    );
    this.name = 'AdmissionRefused';
  }
}

interface UserSlots {
  running: number;
  waiting: Array<() => void>;
}

export class Admission {
  private readonly users = new Map<string, UserSlots>();
  private watchers: Array<{ check: () => boolean; resolve: () => void }> = [];

  /**
   * @param maxInFlightPerUser operations of one user running at once, ≥ 1 (PLANNER_MAX_INFLIGHT_PER_USER).
   * @param maxQueuedPerUser more of them waiting for a slot, ≥ 0 (PLANNER_MAX_QUEUED_PER_USER).
   */
  constructor(
    readonly maxInFlightPerUser: number,
    readonly maxQueuedPerUser = 0,
  ) {
    if (!Number.isInteger(maxInFlightPerUser) || maxInFlightPerUser < 1)
      throw new RangeError(`maxInFlightPerUser must be a positive integer, got ${maxInFlightPerUser}`);
    if (!Number.isInteger(maxQueuedPerUser) || maxQueuedPerUser < 0)
      throw new RangeError(`maxQueuedPerUser must be a non-negative integer, got ${maxQueuedPerUser}`);
  }

  /** Runs `fn` as one of the user's in-flight operations (after waiting its turn); throws AdmissionRefused when full. */
  async run<T>(userId: string, fn: () => Promise<T>): Promise<T> {
    let u = this.users.get(userId);
    if (!u) {
      u = { running: 0, waiting: [] };
      this.users.set(userId, u);
    }
    if (u.running >= this.maxInFlightPerUser) {
      if (u.waiting.length >= this.maxQueuedPerUser) throw new AdmissionRefused(this.maxInFlightPerUser);
      await new Promise<void>((resolve) => {
        u.waiting.push(resolve);
        this.changed();
      });
      // The finishing operation handed its slot over: `running` already counts this one.
    } else {
      u.running++;
    }
    this.changed();
    try {
      return await fn();
    } finally {
      const next = u.waiting.shift();
      if (next) next();
      else if (--u.running === 0) this.users.delete(userId);
      this.changed();
    }
  }

  /** The user's operations running now (0 when none). */
  count(userId: string): number {
    return this.users.get(userId)?.running ?? 0;
  }

  /** The user's operations waiting for a slot now. */
  queued(userId: string): number {
    return this.users.get(userId)?.waiting.length ?? 0;
  }

  /** Operations running or waiting now, all users together (leak checks). */
  get total(): number {
    let sum = 0;
    for (const u of this.users.values()) sum += u.running + u.waiting.length;
    return sum;
  }

  /** Resolves once the user has `running` operations in flight and `waiting` queued (tests, operations). */
  waitFor(userId: string, running: number, waiting = 0): Promise<void> {
    const check = () => this.count(userId) === running && this.queued(userId) === waiting;
    if (check()) return Promise.resolve();
    return new Promise((resolve) => this.watchers.push({ check, resolve }));
  }

  private changed(): void {
    if (this.watchers.length === 0) return;
    const done = this.watchers.filter((w) => w.check());
    if (done.length === 0) return;
    this.watchers = this.watchers.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
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
