/**
 * Starts the REAL app (startApp) for end-to-end tests: port 0 on 127.0.0.1, the run's test
 * database, NODE_ENV=test and a fixed JWT secret — each overridable through `env`. Every server
 * started is registered; hooks.ts closes any still open after the run.
 */
import { loadConfig, type Config } from '../../src/config/config';
import type { EventHub } from '../../src/events/hub';
import type { Flags } from '../../src/flags';
import type { IdempotencySweeper } from '../../src/world/sweeper';
import type { MemoryLearner } from '../../src/memory/learner';
import { startApp, type RunningApp } from '../../src/server/app';
import type { Observability, ObservabilityOptions } from '../../src/server/observability';
import { mintToken, type Authenticator } from '../../src/server/auth';
import { systemClock, type Clock } from '../../src/world/clock';
import type { UserAuthCache } from '../../src/world/user-auth-cache';
import type { World } from '../../src/world/world';
import { testDatabaseUrl } from './db';

/** The JWT secret test servers use unless `env.PLANNER_JWT_SECRET` says otherwise. */
export const TEST_JWT_SECRET = 'planner-test-secret-0123456789abcdef-0123456789';

export interface TestServerOptions {
  /** Clock for the world and token expiry. Default: the system clock. */
  clock?: Clock;
  /**
   * Environment overrides on top of the defaults (NODE_ENV=test, HOST=127.0.0.1, PORT=0,
   * DATABASE_URL=testDatabaseUrl(), PLANNER_JWT_SECRET=TEST_JWT_SECRET, LOG_LEVEL=silent). A value of `undefined`
   * removes the variable (e.g. `DATABASE_URL: undefined` for the embedded Postgres).
   */
  env?: Record<string, string | undefined>;
  /** Observability options (instance id, rollout flush period, the test-only variant delay). */
  observability?: ObservabilityOptions;
}

export interface TestServer {
  /** `http://127.0.0.1:<port>/graphql` */
  readonly url: string;
  /** `ws://127.0.0.1:<port>/graphql` */
  readonly wsUrl: string;
  /** `http://127.0.0.1:<port>` (for /healthz, /readyz). */
  readonly origin: string;
  readonly port: number;
  readonly world: World;
  /** The app's live event hub (retention clean-up, subscription counts). */
  readonly events: EventHub;
  /** The app's feature flags (service, recorder, store, pollers). */
  readonly flags: Flags;
  /** The app's per-instance cache of users' role / valid-after (loads, poll). */
  readonly authCache: UserAuthCache;
  /** The app's token verification (counters: signature checks, JWKS fetches). */
  readonly auth: Authenticator;
  /** The app's idempotency-key sweeper. */
  readonly sweeper: IdempotencySweeper;
  /** The app's semantic-memory learner (runOnce / drain). */
  readonly learner: MemoryLearner;
  /** Rollout figures of this instance (flush() writes them now). */
  readonly observability: Observability;
  readonly config: Config;
  readonly clock: Clock;
  /** Creates the user if needed and mints a token for it (valid from the server's clock). */
  token(email: string, opts?: { role?: 'USER' | 'ADMIN'; ttlSeconds?: number }): Promise<string>;
  /** The app's graceful close. Idempotent. */
  close(): Promise<void>;
}

const open = new Set<TestServer>();

/** Builds the config a test server would use (exposed for tests of configuration itself). */
export function testConfig(env: Record<string, string | undefined> = {}): Config {
  const merged: Record<string, string | undefined> = {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: testDatabaseUrl(),
    PLANNER_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    // The memory learner reads every user's events of the shared test database: tests drive it
    // (server.learner.drain()) instead of letting it learn from other tests' users on its own.
    PLANNER_MEMORY_LEARN_MS: '3600000',
  };
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete merged[key];
    else merged[key] = value;
  }
  return loadConfig(merged);
}

/** Starts the app; see TestServerOptions for defaults. */
export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const config = testConfig(opts.env);
  const clock = opts.clock ?? systemClock;
  const app: RunningApp = await startApp(config, { clock, observability: opts.observability });
  const origin = `http://127.0.0.1:${app.port}`;
  const server: TestServer = {
    url: app.url,
    wsUrl: app.url.replace(/^http/, 'ws'),
    origin,
    port: app.port,
    world: app.world,
    events: app.events,
    flags: app.flags,
    authCache: app.authCache,
    auth: app.auth,
    sweeper: app.sweeper,
    learner: app.learner,
    observability: app.observability,
    config,
    clock,
    async token(email, tokenOpts = {}) {
      const user = await app.world.users.findOrCreateByEmail(email);
      const role = tokenOpts.role ?? user.role;
      if (role !== user.role) await app.world.users.setRole(user.id, role);
      return mintToken(
        app.jwtSecret,
        config.jwtIssuer,
        { userId: user.id, email: user.email, role },
        tokenOpts.ttlSeconds ?? config.tokenTtlSeconds,
        clock.now(),
      );
    },
    async close() {
      open.delete(server);
      await app.close();
    },
  };
  open.add(server);
  return server;
}

/** Closes every test server still open (hooks.ts afterAll). */
export async function closeAllTestServers(): Promise<void> {
  const servers = [...open];
  open.clear();
  await Promise.allSettled(servers.map((s) => s.close()));
}
