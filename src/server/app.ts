/**
 * Composition root: builds everything and serves it. One node:http server carries GraphQL over
 * HTTP (`POST`/`GET /graphql`, Apollo Server via executeHTTPGraphQLRequest), GraphQL over
 * WebSocket (same path, graphql-ws), and the probes `/healthz` and `/readyz`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloServerPluginLandingPageLocalDefault } from '@apollo/server/plugin/landingPage/default';
import { BREAK, GraphQLError, visit, type DocumentNode } from 'graphql';
import type { Config } from '../config/config';
import { migrateUp, migrationStatus } from '../db/data-source';
import { EventHub } from '../events/hub';
import { FLAGS, startFlags, toFlagUser, type Flags, type StartFlagsOptions } from '../flags';
import { createEmbedder } from '../memory/embedder';
import { MemoryLearner } from '../memory/learner';
import { observe, plannerMetrics } from '../telemetry/metrics';
import { buildSchema, createContext, type GraphQLContext } from '../resolvers';
import { Admission, attachAdmission } from '../world/admission';
import { startObservability, type Observability, type ObservabilityOptions } from './observability';
import { systemClock, type Clock } from '../world/clock';
import { IdempotencySweeper } from '../world/sweeper';
import { DomainError } from '../world/errors';
import { createWorld, type World } from '../world/world';
import { Authenticator, mintToken, tokenKey, type JwksFetch } from './auth';
import { UserAuthCache } from '../world/user-auth-cache';
import { openDatabase, type OpenDatabase } from './database';
import { createFormatError } from './errors';
import { createDashboard } from './dashboard';
import { awaitMigrations, pendingReason } from './await-migrations';
import { createHttpHandler, type Readiness } from './http-handler';
import { buildLimitRules } from './limits';
import { createLogger, type Logger } from './logger';
import { createWebSocketServer, type GraphQLWebSocketServer } from './websocket';

/** Aliases per operation (fixed; not configurable). */
export const MAX_ALIASES = 15;
/** Directives per operation (fixed). */
export const MAX_DIRECTIVES = 50;
/** Lexical tokens per document (fixed). */
export const MAX_TOKENS = 2000;
/** How long /readyz waits for the database before answering 503. */
export const READINESS_TIMEOUT_MS = 2000;

export interface StartAppOptions {
  /** Time source for the world and token expiry. Default: the system clock. */
  clock?: Clock;
  /** Logger. Default: JSON lines on stderr at config.logLevel. */
  log?: Logger;
  /** Rollout figures and mutation spans (instance id, flush period, the test-only delay hook). */
  observability?: ObservabilityOptions;
  /** How the provider's JWKS is fetched (tests). Default: HTTP GET of config.oidc.jwksUrl. */
  jwksFetch?: JwksFetch;
}

export interface RunningApp {
  /** `http://host:port/graphql` (the real port, also when config.port is 0). */
  readonly url: string;
  readonly port: number;
  readonly world: World;
  /** The live event hub (outbox → subscriptions); exposed for operations and tests (retention clean-up). */
  readonly events: EventHub;
  /** Feature flags: the FlagService (per-user evaluation), the exposure/usage recorder, the payload store. */
  readonly flags: Flags;
  /** Deletes expired idempotency keys of all users every config.idempotencySweepMs. */
  readonly sweeper: IdempotencySweeper;
  /** The semantic-memory learner (outbox consumer; runs on the instance holding its advisory lock). */
  readonly learner: MemoryLearner;
  /** Rollout figures of this instance (flush() writes them now) and its mutation telemetry. */
  readonly observability: Observability;
  /** The HS256 secret tokens are verified with (config.jwtSecret or the data directory's). */
  readonly jwtSecret: string;
  /** Token verification (own HS256 and provider tokens) and the per-instance cache of users' role / valid-after. */
  readonly auth: Authenticator;
  readonly authCache: UserAuthCache;
  /**
   * Graceful shutdown: stop accepting, let in-flight HTTP requests finish (up to
   * config.shutdownGraceMs), close WebSockets with 1001, stop the event hub and Apollo, destroy the
   * DataSource, stop the embedded Postgres if this process started it. Idempotent.
   */
  close(): Promise<void>;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The flags runtime's options from the configuration (remote mode when both GrowthBook variables are set). */
export function flagsOptions(config: Config, clock: Clock, log: Logger): StartFlagsOptions {
  const remote =
    config.growthbookApiHost && config.growthbookClientKey
      ? {
          apiHost: config.growthbookApiHost,
          clientKey: config.growthbookClientKey,
          refreshMs: config.growthbookRefreshMs,
        }
      : null;
  return {
    pollMs: config.flagsPollMs,
    remote,
    now: () => clock.now(),
    info: (msg, fields) => log.info(msg, fields),
    warn: (msg, fields) => log.warn(msg, fields),
  };
}

/** True when the document asks for the schema (`__schema` or `__type`; `__typename` is not introspection). */
export function isIntrospection(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    Field(node) {
      if (node.name.value === '__schema' || node.name.value === '__type') {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * Introspection for authenticated callers only: the schema is public in the repository, but an
 * anonymous client gets UNAUTHENTICATED (HTTP 401). WebSocket connections are always authenticated.
 */
const introspectionNeedsAuth: ApolloServerPlugin<GraphQLContext> = {
  requestDidStart: async () => ({
    didResolveOperation: async ({ document, contextValue }) => {
      if (contextValue.auth === null && isIntrospection(document)) {
        throw new GraphQLError('Introspection requires authentication: send Authorization: Bearer <token>.', {
          extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } },
        });
      }
    },
  }),
};

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** Connects the database, applies migrations, builds the world and starts serving. */
export async function startApp(config: Config, opts: StartAppOptions = {}): Promise<RunningApp> {
  const log = opts.log ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  const devMode = config.devMode;

  const db: OpenDatabase = await openDatabase(config, log, { supervise: true });
  let apollo: ApolloServer<GraphQLContext> | null = null;
  let hub: EventHub | null = null;
  let flags: Flags | null = null;
  let obs: Observability | null = null;
  let authCache: UserAuthCache | null = null;
  try {
    let listenPort = config.port;
    if (config.migrateOnStart) {
      const applied = await migrateUp(db.dataSource);
      if (applied.length > 0) log.info('migrations applied', { applied });
    } else {
      listenPort = await awaitMigrations(db.dataSource, config.host, config.port, log);
    }
    // Flags first: the write path enforces them (evaluated in memory per operation).
    flags = await startFlags(db.dataSource, flagsOptions(config, clock, log));
    const flagService = flags.service;
    const world = createWorld(db.dataSource, clock, {
      undoDepth: config.undoDepth,
      flags,
      memory: {
        embedder: createEmbedder(config.embedder),
        ttlDays: config.memoryTtlDays,
        maxItems: config.memoryMaxItems,
      },
    });
    attachAdmission(world, new Admission(config.maxInFlightPerUser, config.maxQueuedPerUser));
    const sweeper = new IdempotencySweeper(db.dataSource, clock, {
      intervalMs: config.idempotencySweepMs,
      log: (msg, fields) => log.warn(msg, fields),
    });
    // Semantic memory learns off the request path: one learner per database (advisory lock).
    const learner = new MemoryLearner(db.dataSource, {
      intervalMs: config.memoryLearnMs,
      embedder: world.memory.embedder,
      ttlDays: world.memory.ttlDays,
      maxItems: world.memory.maxItems,
      enabledFor: (u) =>
        flagService
          .forUser(toFlagUser({ id: u.id, role: u.role, createdAt: u.created_at, timeZone: u.time_zone }))
          .isOn(FLAGS.SEMANTIC_MEMORY),
      now: () => clock.now(),
      log: (msg, fields) => log.warn(msg, fields),
    });
    const events = new EventHub(db.dataSource, config.eventsDatabaseUrl ?? db.url, {
      retentionDays: config.outboxRetentionDays,
      now: () => clock.now(),
      log: (msg, fields) => log.warn(msg, fields),
      heartbeatMs: config.eventsHeartbeatMs,
    });
    await events.start();
    hub = events;
    obs = startObservability(db.dataSource, world, flagService, events, log, opts.observability);
    const telemetry = obs.telemetry;

    const schema = buildSchema();
    const limits = buildLimitRules({
      maxDepth: config.maxQueryDepth,
      maxCost: config.maxQueryCost,
      maxAliases: MAX_ALIASES,
      maxDirectives: MAX_DIRECTIVES,
      maxTokens: MAX_TOKENS,
    });
    const formatError = createFormatError({ devMode, log });
    const cache = new UserAuthCache(world.users, {
      ttlMs: config.authCacheMs,
      pollMs: config.authPollMs,
      warn: (msg, fields) => log.warn(msg, fields),
    });
    await cache.start();
    authCache = cache;
    const authenticator = new Authenticator({
      hsKey: tokenKey(db.jwtSecret), // made once: see auth.ts
      hsIssuer: config.jwtIssuer,
      oidc: config.oidc,
      users: world.users,
      cache,
      now: () => clock.now(),
      fetch: opts.jwksFetch,
      log,
    });
    const auth = (value: unknown) => authenticator.authenticate(value);

    apollo = new ApolloServer<GraphQLContext>({
      schema,
      nodeEnv: config.nodeEnv,
      introspection: true, // for authenticated callers only: introspectionNeedsAuth
      csrfPrevention: true,
      formatError,
      validationRules: limits.validationRules,
      parseOptions: limits.parseOptions,
      includeStacktraceInErrorResponses: false,
      allowBatchedHttpRequests: false,
      persistedQueries: false,
      stopOnTerminationSignals: false, // main.ts owns the signals
      logger: {
        debug: (m) => log.debug(String(m)),
        info: (m) => log.info(String(m)),
        warn: (m) => log.warn(String(m)),
        error: (m) => log.error(String(m)),
      },
      plugins: [
        ...limits.plugins, // the row cost limit (needs the variables; validation rules cannot see them)
        ApolloServerPluginUsageReportingDisabled(),
        ApolloServerPluginSchemaReportingDisabled(),
        introspectionNeedsAuth,
        devMode
          ? ApolloServerPluginLandingPageLocalDefault({ embed: true })
          : ApolloServerPluginLandingPageDisabled(),
      ],
    });
    await apollo.start();

    let closing = false;
    let inFlight = 0;
    let onIdle: (() => void) | null = null;

    const readiness = async (): Promise<Readiness> => {
      if (closing) return { ok: false, reason: 'shutting down' };
      if (db.databaseState() === 'restarting') return { ok: false, reason: 'database restarting' };
      try {
        const states = await withTimeout(
          migrationStatus(db.dataSource),
          READINESS_TIMEOUT_MS,
          'database check',
        );
        const missing = states.filter((s) => !s.applied).map((s) => s.name);
        if (missing.length > 0) {
          if (!config.migrateOnStart) return { ok: false, reason: pendingReason(missing) };
          return { ok: false, reason: `migrations not applied: ${missing.join(', ')}` };
        }
        return { ok: true };
      } catch (err) {
        log.warn('readiness check failed', { err });
        return { ok: false, reason: 'database unreachable' };
      }
    };

    const dashboard = createDashboard({
      config,
      log,
      mintDevToken: async (email) => {
        let user;
        try {
          user = await world.users.findOrCreateByEmail(email);
        } catch (err) {
          if (err instanceof DomainError) return { error: err.message };
          throw err;
        }
        const token = mintToken(
          db.jwtSecret,
          config.jwtIssuer,
          { userId: user.id, email: user.email, role: user.role },
          config.tokenTtlSeconds,
          clock.now(),
        );
        return { token };
      },
    });
    const handler = createHttpHandler({
      apollo,
      context: async (authorization) => {
        try {
          return {
            ...createContext(world, await auth(authorization), events),
            flags: flagService,
            telemetry,
          };
        } catch (authFault) {
          return { ...createContext(world, null, events), flags: flagService, telemetry, authFault };
        }
      },
      readiness,
      maxBodyBytes: config.maxBodyBytes,
      isClosing: () => closing,
      log,
      metrics: config.metricsEndpoint,
      dashboard,
    });
    const server = http.createServer((req, res) => {
      inFlight++;
      res.once('close', () => {
        inFlight--;
        if (inFlight === 0 && onIdle) onIdle();
      });
      handler(req, res);
    });
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;

    const ws: GraphQLWebSocketServer = createWebSocketServer({
      schema,
      authenticate: auth,
      recheck: (a) => authenticator.current(a),
      now: () => clock.now(),
      context: (a) => ({ ...createContext(world, a, events), flags: flagService, telemetry }),
      limits,
      noIntrospection: false, // every WebSocket connection is authenticated (onConnect)
      maxOperationsPerConnection: config.maxSubscriptionsPerConnection,
      maxBufferedBytes: config.wsMaxBufferedBytes,
      maxConnections: config.maxWsConnections,
      formatError,
      production: !devMode,
      log,
    });
    server.on('upgrade', (req, socket, head: Buffer) => {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (closing || path !== '/graphql') {
        const status = closing ? '503 Service Unavailable' : '404 Not Found';
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      ws.handleUpgrade(req, socket, head);
    });

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error('http server error', { err }));
    const port = (server.address() as AddressInfo).port;
    const url = `http://${urlHost(config.host)}:${port}/graphql`;
    log.info('listening', { url });

    const drainHttp = (graceMs: number): Promise<void> =>
      new Promise((resolve) => {
        if (inFlight === 0) return resolve();
        const timer = setTimeout(() => {
          log.warn('shutdown grace elapsed; dropping in-flight requests', { inFlight });
          resolve();
        }, graceMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });

    const startedApollo = apollo;
    const startedFlags = flags;
    const startedObs = obs;
    let closed: Promise<void> | null = null;
    const doClose = async (): Promise<void> => {
      closing = true;
      db.embedded?.release(); // from now on an exit of the embedded Postgres is expected
      log.info('shutting down');
      const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.all([ws.close(config.shutdownGraceMs), drainHttp(config.shutdownGraceMs)]);
      server.closeAllConnections();
      await serverClosed;
      await events.close();
      await startedFlags.close();
      await sweeper.stop();
      await learner.stop();
      unobserveMemory();
      await startedObs.close();
      await cache.close();
      try {
        await startedApollo.stop();
      } finally {
        await db.close();
      }
      log.info('stopped');
    };

    sweeper.start();
    learner.start();
    const m = plannerMetrics();
    const offMemory = [
      observe(m.memoryItems, () => learner.totals?.items),
      observe(m.memoryBytes, () => learner.totals?.bytes),
      observe(m.consumerLag, () => learner.lagMs, { consumer: 'memory_learner' }),
    ];
    const unobserveMemory = () => offMemory.forEach((off) => off());
    return {
      url,
      port,
      world,
      events,
      flags: startedFlags,
      sweeper,
      learner,
      observability: startedObs,
      jwtSecret: db.jwtSecret,
      auth: authenticator,
      authCache: cache,
      close: () => (closed ??= doClose()),
    };
  } catch (err) {
    await hub?.close().catch(() => undefined);
    await flags?.close().catch(() => undefined);
    await obs?.close().catch(() => undefined);
    await authCache?.close().catch(() => undefined);
    await apollo?.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}
