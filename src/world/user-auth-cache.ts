/**
 * Per-instance cache of users' sign-in state (stored role, valid-after), so that every request can
 * check both without a query of its own: a user's state is loaded once per `ttlMs` (first request
 * after that), and dropped as soon as it changes —
 *   - in this process, through UserService.onAuthChange;
 *   - in any other instance, through auth_version, which every role change and revocation bumps in
 *     the same statement: a background poll (every `pollMs`, off the request path) reads it and
 *     drops the whole cache when it moved.
 * So a role change or a revocation reaches every instance within pollMs (plus one load).
 */
import { performance } from 'node:perf_hooks';
import type { UserAuthRow, UserService } from './user-service';

export interface UserAuthCacheOptions {
  /** Longest an entry is trusted without a change notice. */
  ttlMs: number;
  /** How often auth_version is polled. */
  pollMs: number;
  /** Poll failures (the database away); the cache keeps serving until ttlMs. */
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
  /** Monotonic milliseconds (tests). Default performance.now. */
  monotonic?: () => number;
}

interface Entry {
  row: UserAuthRow | null;
  loadedAt: number;
}

/** Entries kept at most; beyond, the cache is cleared (every user reloads once). */
const MAX_ENTRIES = 100_000;

export class UserAuthCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<UserAuthRow | null>>();
  /** Bumped by every invalidation: a load that started before one is not stored. */
  private generation = 0;
  private version: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private readonly unsubscribe: () => void;
  private readonly mono: () => number;
  /** Loads from the database (for tests and figures). */
  loads = 0;

  constructor(
    private readonly users: UserService,
    private readonly opts: UserAuthCacheOptions,
  ) {
    this.mono = opts.monotonic ?? (() => performance.now());
    this.unsubscribe = users.onAuthChange((id) => this.invalidate(id));
  }

  /** Reads the current auth_version, then polls it every pollMs. */
  async start(): Promise<void> {
    this.version = await this.users.authVersion();
    this.timer = setInterval(() => {
      if (this.polling === null) void this.poll();
    }, this.opts.pollMs);
    this.timer.unref();
  }

  /**
   * One poll: drops everything when auth_version moved. Never throws. A poll already running is
   * waited for first, so a change committed before this call is always seen.
   */
  poll(): Promise<void> {
    const run = (this.polling ?? Promise.resolve()).then(async () => {
      try {
        const v = await this.users.authVersion();
        if (this.version !== null && v !== this.version) this.invalidate();
        this.version = v;
      } catch (err) {
        this.opts.warn?.('auth version poll failed', { err });
      } finally {
        if (this.polling === run) this.polling = null;
      }
    });
    this.polling = run;
    return run;
  }

  /** The cached state, if fresh (synchronous; WebSocket subscriptions re-check through it). */
  peek(userId: string): UserAuthRow | null | undefined {
    const e = this.entries.get(userId);
    if (!e || this.mono() - e.loadedAt > this.opts.ttlMs) return undefined;
    return e.row;
  }

  /** The user's state (null: no such user), from the cache or loaded once. */
  get(userId: string): Promise<UserAuthRow | null> {
    const hit = this.peek(userId);
    if (hit !== undefined) return Promise.resolve(hit);
    let p = this.loading.get(userId);
    if (!p) {
      const gen = this.generation;
      this.loads++;
      p = this.users.authState(userId).then(
        (row) => {
          this.loading.delete(userId);
          if (gen === this.generation) {
            if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
            this.entries.set(userId, { row, loadedAt: this.mono() });
          }
          return row;
        },
        (err: unknown) => {
          this.loading.delete(userId);
          throw err;
        },
      );
      this.loading.set(userId, p);
    }
    return p;
  }

  /** Stores a state just read or written by this instance (sign-in). */
  put(row: UserAuthRow): void {
    this.entries.set(row.id, { row, loadedAt: this.mono() });
  }

  /** Drops one user's state, or every user's. */
  invalidate(userId?: string): void {
    this.generation++;
    this.loading.clear();
    if (userId === undefined) this.entries.clear();
    else this.entries.delete(userId);
  }

  /** Stops polling and listening. Waits for a poll in progress. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.unsubscribe();
    await this.polling;
  }
}
