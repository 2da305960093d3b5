/**
 * The one place that reads process.env. Parsed once, validated, frozen.
 * A bad value throws ConfigError naming the variable and what is expected.
 */
import path from 'node:path';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly expected: string,
    readonly got: string | undefined,
  ) {
    super(`${variable}: expected ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
    this.name = 'ConfigError';
  }
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type NodeEnv = 'development' | 'production' | 'test';

export interface Config {
  /** PORT: HTTP/WebSocket port. Default 4000. */
  readonly port: number;
  /** HOST: bind address. Default 127.0.0.1. */
  readonly host: string;
  /** DATABASE_URL: Postgres connection string; unset → embedded Postgres in dataDir. Secret. */
  readonly databaseUrl: string | null;
  /**
   * PLANNER_EVENTS_DATABASE_URL: where the event hub's LISTEN connection goes; unset → the same
   * database as the pool. Set it when DATABASE_URL is a PgBouncer in transaction mode (LISTEN needs
   * a session: docs/scaling.md). Secret.
   */
  readonly eventsDatabaseUrl: string | null;
  /** PLANNER_DATA_DIR: data directory (embedded Postgres, generated secret). Default ./.planner-data. */
  readonly dataDir: string;
  /** PLANNER_JWT_SECRET: HS256 secret (≥ 32 chars); unset → generated once into dataDir. Secret. */
  readonly jwtSecret: string | null;
  /** PLANNER_JWT_ISSUER: expected `iss` claim. Default "smart-personal-planner". */
  readonly jwtIssuer: string;
  /** PLANNER_TOKEN_TTL: lifetime of minted tokens in seconds. Default 86400 (one day). */
  readonly tokenTtlSeconds: number;
  /** LOG_LEVEL: debug | info | warn | error | silent. Default info (silent under test). */
  readonly logLevel: LogLevel;
  /**
   * NODE_ENV: development | production | test. Default development. It does NOT change what
   * clients see (that is devMode); production requires PLANNER_JWT_SECRET with DATABASE_URL, test
   * makes the default log level silent.
   */
  readonly nodeEnv: NodeEnv;
  /**
   * PLANNER_DEV_MODE: true | false (also 1/0, yes/no, on/off). Default false, whatever NODE_ENV
   * says. On: masked errors carry their original message, field suggestions are shown, and the
   * landing page is served. Later development-only conveniences hang on the same switch.
   */
  readonly devMode: boolean;
  /**
   * PLANNER_EMBEDDED_PG_PORT: port of the embedded Postgres. Default 0: the port recorded in the
   * data directory (`postgres.port`), else a free one, recorded there.
   */
  readonly embeddedPgPort: number;
  /** PLANNER_UNDO_DEPTH: how many operations back a user can undo. Default 100. */
  readonly undoDepth: number;
  /** PLANNER_MAX_QUERY_DEPTH: GraphQL depth limit. Default 10. */
  readonly maxQueryDepth: number;
  /** PLANNER_MAX_QUERY_COST: most rows a query's response may hold (src/server/cost.ts). Default 100,000. */
  readonly maxQueryCost: number;
  /** PLANNER_MAX_BODY_BYTES: max HTTP request body. Default 1 MiB. */
  readonly maxBodyBytes: number;
  /** PLANNER_SHUTDOWN_GRACE_MS: how long to wait for in-flight requests on shutdown. Default 10000. */
  readonly shutdownGraceMs: number;
  /** PLANNER_OUTBOX_RETENTION_DAYS: how long events are kept for replay. Default 7. */
  readonly outboxRetentionDays: number;
  /** PLANNER_MAX_SUBSCRIPTIONS_PER_CONNECTION: cap per WebSocket. Default 20. */
  readonly maxSubscriptionsPerConnection: number;
  /** PLANNER_WS_MAX_BUFFERED_BYTES: a socket whose send buffer exceeds this is closed. Default 4 MiB. */
  readonly wsMaxBufferedBytes: number;
  /** PLANNER_MAX_WS_CONNECTIONS: open WebSockets per instance; the next upgrade gets 503. Default 10000. */
  readonly maxWsConnections: number;
  /** PLANNER_DB_POOL_SIZE: the server's Postgres connection pool size per instance. Default 20. */
  readonly dbPoolSize: number;
  /** PLANNER_FLAGS_POLL_MS: how often the features payload's version is polled. Default 1000 (≤ 5000). */
  readonly flagsPollMs: number;
  /** GROWTHBOOK_API_HOST: remote GrowthBook (with GROWTHBOOK_CLIENT_KEY); null → the database payload. */
  readonly growthbookApiHost: string | null;
  /** GROWTHBOOK_CLIENT_KEY: SDK connection key of the remote GrowthBook. Secret. */
  readonly growthbookClientKey: string | null;
  /** GROWTHBOOK_REFRESH_MS: how often the remote payload is fetched. Default 30000. */
  readonly growthbookRefreshMs: number;
  /** PLANNER_MAX_INFLIGHT_PER_USER: one user's mutations running at once per instance; more get RATE_LIMITED. Default 4. */
  readonly maxInFlightPerUser: number;
  /** PLANNER_MAX_QUEUED_PER_USER: more of one user's mutations waiting (in memory) for a slot; beyond, RATE_LIMITED. Default 100. */
  readonly maxQueuedPerUser: number;
  /**
   * PLANNER_MIGRATE_ON_START: true | false (also 1/0, yes/no, on/off). Default true: the server
   * applies pending migrations before serving. false: it serves as it is, and /readyz answers 503
   * naming the pending migrations until `planner migrate up` has run.
   */
  readonly migrateOnStart: boolean;
  /** PLANNER_LOCK_TIMEOUT_MS: longest wait for a row lock (Postgres lock_timeout); over it UNAVAILABLE. Default 5000. */
  readonly lockTimeoutMs: number;
  /** PLANNER_EVENTS_HEARTBEAT_MS: heartbeat period (and timeout) of the event listener's connection. Default 5000. */
  readonly eventsHeartbeatMs: number;
  /** PLANNER_IDEMPOTENCY_SWEEP_MS: how often expired idempotency keys are deleted (all users). Default 600000. */
  readonly idempotencySweepMs: number;
  /** PLANNER_METRICS_ENDPOINT: serve Prometheus metrics at /metrics on the same server. Default false. */
  readonly metricsEndpoint: boolean;
  /**
   * Identity provider (docs/auth.md): PLANNER_JWKS_URL, PLANNER_OIDC_ISSUER and PLANNER_OIDC_AUDIENCE
   * (all three, or none: null → only the server's own HS256 tokens).
   */
  readonly oidc: OidcConfig | null;
  /** PLANNER_AUTH_CACHE_MS: longest a user's role / valid-after is cached per instance. Default 30000. */
  readonly authCacheMs: number;
  /** PLANNER_AUTH_POLL_MS: how often each instance checks for role changes and revocations. Default 1000 (≤ 5000). */
  readonly authPollMs: number;
  /** PLANNER_MEMORY_TTL_DAYS: a memory item is erased this many days after it was stated or last confirmed. Default 180 (1–3650). */
  readonly memoryTtlDays: number;
  /** PLANNER_MEMORY_MAX_ITEMS: memory items kept per user; beyond, the least useful are evicted. Default 200 (10–10000). */
  readonly memoryMaxItems: number;
  /** PLANNER_MEMORY_LEARN_MS: how often the memory learner reads the outbox (and sweeps expired items). Default 5000 (100–3600000). */
  readonly memoryLearnMs: number;
  /** PLANNER_EMBEDDER: the embedder of semantic memory (src/memory/embedder.ts). Default local (hashed n-grams, offline). */
  readonly embedder: 'local';
}

/** The algorithms a provider token may be signed with (never `none`, never HS*). */
export const OIDC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type OidcAlgorithm = (typeof OIDC_ALGORITHMS)[number];

export interface OidcConfig {
  /** PLANNER_JWKS_URL: the provider's JWKS (http:// or https://). */
  readonly jwksUrl: string;
  /** PLANNER_OIDC_ISSUER: expected `iss` of provider tokens (exactly as the provider writes it). */
  readonly issuer: string;
  /** PLANNER_OIDC_AUDIENCE: expected `aud` (one of, comma-separated). */
  readonly audience: readonly string[];
  /** PLANNER_OIDC_ALGORITHMS: accepted algorithms, comma-separated. Default RS256,ES256,EdDSA. */
  readonly algorithms: readonly OidcAlgorithm[];
  /** PLANNER_OIDC_CLOCK_SKEW: tolerance in seconds for exp/nbf/iat. Default 60 (≤ 600). */
  readonly clockSkewSeconds: number;
  /** PLANNER_OIDC_SUBJECT_CLAIM: the claim identifying the person. Default sub. */
  readonly subjectClaim: string;
  /** PLANNER_OIDC_EMAIL_CLAIM: the claim holding the email. Default email. */
  readonly emailClaim: string;
  /** PLANNER_OIDC_NAME_CLAIM: display name for new users. Default name. */
  readonly nameClaim: string;
  /** PLANNER_OIDC_ROLE_CLAIM: claim mapped to the stored role at sign-in (string or array); null → roles set by operators only. */
  readonly roleClaim: string | null;
  /** PLANNER_OIDC_ADMIN_VALUE: value of the role claim that means ADMIN. Default planner-admin. */
  readonly adminValue: string;
  /** PLANNER_JWKS_COOLDOWN_MS: least time between two JWKS fetches (unknown kid). Default 30000. */
  readonly jwksCooldownMs: number;
  /** PLANNER_JWKS_MAX_AGE_MS: keys are fetched again after this long. Default 600000. */
  readonly jwksMaxAgeMs: number;
  /**
   * PLANNER_OIDC_CLIENT_ID: the public client the dashboard signs in with (authorization code +
   * PKCE against the issuer's discovery document). Default null: the dashboard offers no provider
   * sign-in (provider tokens are still accepted, pasted into its Token field).
   */
  readonly dashboardClientId: string | null;
  /** PLANNER_OIDC_SCOPE: scopes the dashboard asks for. Default `openid email profile`. */
  readonly dashboardScope: string;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `an integer from ${min} to ${max}`, raw);
  return n;
}

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];

function bool(env: Env, name: string, def: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return def;
  const v = raw.toLowerCase();
  if (TRUE.includes(v)) return true;
  if (FALSE.includes(v)) return false;
  throw new ConfigError(name, 'true or false', raw);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
  const raw = str(env, name);
  if (raw === undefined) return def;
  if (!(values as readonly string[]).includes(raw))
    throw new ConfigError(name, `one of ${values.join(', ')}`, raw);
  return raw as T;
}

function oidcConfig(env: Env): OidcConfig | null {
  const names = ['PLANNER_JWKS_URL', 'PLANNER_OIDC_ISSUER', 'PLANNER_OIDC_AUDIENCE'] as const;
  const [jwksUrl, issuer, audience] = names.map((n) => str(env, n));
  const given = [jwksUrl, issuer, audience].filter((v) => v !== undefined).length;
  if (given === 0) return null;
  if (given < 3) {
    const missing = names.find((n) => str(env, n) === undefined)!;
    throw new ConfigError(
      missing,
      'a value (a provider needs PLANNER_JWKS_URL, PLANNER_OIDC_ISSUER and PLANNER_OIDC_AUDIENCE)',
      undefined,
    );
  }
  if (!/^https?:\/\/[^/\s]+/.test(jwksUrl!))
    throw new ConfigError('PLANNER_JWKS_URL', 'an http:// or https:// URL', jwksUrl);
  const algRaw = str(env, 'PLANNER_OIDC_ALGORITHMS') ?? 'RS256,ES256,EdDSA';
  const algorithms = algRaw
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (
    algorithms.length === 0 ||
    algorithms.some((a) => !(OIDC_ALGORITHMS as readonly string[]).includes(a))
  ) {
    throw new ConfigError(
      'PLANNER_OIDC_ALGORITHMS',
      `a comma-separated list of ${OIDC_ALGORITHMS.join(', ')}`,
      algRaw,
    );
  }
  const aud = audience!
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  return {
    jwksUrl: jwksUrl!,
    issuer: issuer!,
    audience: aud,
    algorithms: algorithms as OidcAlgorithm[],
    clockSkewSeconds: int(env, 'PLANNER_OIDC_CLOCK_SKEW', 60, 0, 600),
    subjectClaim: str(env, 'PLANNER_OIDC_SUBJECT_CLAIM') ?? 'sub',
    emailClaim: str(env, 'PLANNER_OIDC_EMAIL_CLAIM') ?? 'email',
    nameClaim: str(env, 'PLANNER_OIDC_NAME_CLAIM') ?? 'name',
    roleClaim: str(env, 'PLANNER_OIDC_ROLE_CLAIM') ?? null,
    adminValue: str(env, 'PLANNER_OIDC_ADMIN_VALUE') ?? 'planner-admin',
    jwksCooldownMs: int(env, 'PLANNER_JWKS_COOLDOWN_MS', 30_000, 0, 3_600_000),
    jwksMaxAgeMs: int(env, 'PLANNER_JWKS_MAX_AGE_MS', 600_000, 1000, 86_400_000),
    dashboardClientId: str(env, 'PLANNER_OIDC_CLIENT_ID') ?? null,
    dashboardScope: str(env, 'PLANNER_OIDC_SCOPE') ?? 'openid email profile',
  };
}

/** Parses and validates the environment. Throws ConfigError on the first bad value. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const nodeEnv = oneOf<NodeEnv>(env, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  const databaseUrl = str(env, 'DATABASE_URL') ?? null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'a postgres:// or postgresql:// URL', '<redacted>');
  }
  const eventsDatabaseUrl = str(env, 'PLANNER_EVENTS_DATABASE_URL') ?? null;
  if (eventsDatabaseUrl !== null && !/^postgres(ql)?:\/\//.test(eventsDatabaseUrl)) {
    throw new ConfigError('PLANNER_EVENTS_DATABASE_URL', 'a postgres:// or postgresql:// URL', '<redacted>');
  }
  const jwtSecret = str(env, 'PLANNER_JWT_SECRET') ?? null;
  if (jwtSecret !== null && jwtSecret.length < 32) {
    throw new ConfigError('PLANNER_JWT_SECRET', 'at least 32 characters', `<${jwtSecret.length} characters>`);
  }
  if (nodeEnv === 'production' && jwtSecret === null && databaseUrl !== null) {
    throw new ConfigError(
      'PLANNER_JWT_SECRET',
      'a secret in production with an external DATABASE_URL',
      undefined,
    );
  }
  const growthbookApiHost = str(env, 'GROWTHBOOK_API_HOST') ?? null;
  const growthbookClientKey = str(env, 'GROWTHBOOK_CLIENT_KEY') ?? null;
  if (growthbookApiHost !== null && !/^https?:\/\/[^/\s]+/.test(growthbookApiHost)) {
    throw new ConfigError('GROWTHBOOK_API_HOST', 'an http:// or https:// URL', growthbookApiHost);
  }
  if ((growthbookApiHost === null) !== (growthbookClientKey === null)) {
    const [missing, given] =
      growthbookApiHost === null
        ? ['GROWTHBOOK_API_HOST', 'GROWTHBOOK_CLIENT_KEY']
        : ['GROWTHBOOK_CLIENT_KEY', 'GROWTHBOOK_API_HOST'];
    throw new ConfigError(missing, `a value when ${given} is set (remote GrowthBook needs both)`, undefined);
  }
  const host = str(env, 'HOST') ?? '127.0.0.1';
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(host)) throw new ConfigError('HOST', 'a host name or IP address', host);

  const config: Config = {
    port: int(env, 'PORT', 4000, 0, 65535),
    host,
    databaseUrl,
    eventsDatabaseUrl,
    dataDir: path.resolve(cwd, str(env, 'PLANNER_DATA_DIR') ?? '.planner-data'),
    jwtSecret,
    jwtIssuer: str(env, 'PLANNER_JWT_ISSUER') ?? 'smart-personal-planner',
    tokenTtlSeconds: int(env, 'PLANNER_TOKEN_TTL', 86400, 60, 31_536_000),
    logLevel: oneOf<LogLevel>(
      env,
      'LOG_LEVEL',
      ['debug', 'info', 'warn', 'error', 'silent'],
      nodeEnv === 'test' ? 'silent' : 'info',
    ),
    nodeEnv,
    devMode: bool(env, 'PLANNER_DEV_MODE', false),
    embeddedPgPort: int(env, 'PLANNER_EMBEDDED_PG_PORT', 0, 0, 65535),
    undoDepth: int(env, 'PLANNER_UNDO_DEPTH', 100, 1, 10_000),
    maxQueryDepth: int(env, 'PLANNER_MAX_QUERY_DEPTH', 10, 2, 100),
    maxQueryCost: int(env, 'PLANNER_MAX_QUERY_COST', 100_000, 10, 10_000_000),
    maxBodyBytes: int(env, 'PLANNER_MAX_BODY_BYTES', 1_048_576, 1024, 104_857_600),
    shutdownGraceMs: int(env, 'PLANNER_SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    outboxRetentionDays: int(env, 'PLANNER_OUTBOX_RETENTION_DAYS', 7, 1, 3650),
    maxSubscriptionsPerConnection: int(env, 'PLANNER_MAX_SUBSCRIPTIONS_PER_CONNECTION', 20, 1, 1000),
    wsMaxBufferedBytes: int(env, 'PLANNER_WS_MAX_BUFFERED_BYTES', 4 * 1_048_576, 65_536, 1_073_741_824),
    maxWsConnections: int(env, 'PLANNER_MAX_WS_CONNECTIONS', 10_000, 1, 1_000_000),
    dbPoolSize: int(env, 'PLANNER_DB_POOL_SIZE', 20, 2, 1000),
    flagsPollMs: int(env, 'PLANNER_FLAGS_POLL_MS', 1000, 50, 5000),
    growthbookApiHost,
    growthbookClientKey,
    growthbookRefreshMs: int(env, 'GROWTHBOOK_REFRESH_MS', 30_000, 100, 3_600_000),
    maxInFlightPerUser: int(env, 'PLANNER_MAX_INFLIGHT_PER_USER', 4, 1, 1000),
    maxQueuedPerUser: int(env, 'PLANNER_MAX_QUEUED_PER_USER', 100, 0, 100_000),
    migrateOnStart: bool(env, 'PLANNER_MIGRATE_ON_START', true),
    lockTimeoutMs: int(env, 'PLANNER_LOCK_TIMEOUT_MS', 5000, 1, 600_000),
    eventsHeartbeatMs: int(env, 'PLANNER_EVENTS_HEARTBEAT_MS', 5000, 10, 600_000),
    idempotencySweepMs: int(env, 'PLANNER_IDEMPOTENCY_SWEEP_MS', 600_000, 10, 86_400_000),
    metricsEndpoint: oneOf(env, 'PLANNER_METRICS_ENDPOINT', ['true', 'false'], 'false') === 'true',
    oidc: oidcConfig(env),
    authCacheMs: int(env, 'PLANNER_AUTH_CACHE_MS', 30_000, 100, 3_600_000),
    authPollMs: int(env, 'PLANNER_AUTH_POLL_MS', 1000, 50, 5000),
    memoryTtlDays: int(env, 'PLANNER_MEMORY_TTL_DAYS', 180, 1, 3650),
    memoryMaxItems: int(env, 'PLANNER_MEMORY_MAX_ITEMS', 200, 10, 10_000),
    memoryLearnMs: int(env, 'PLANNER_MEMORY_LEARN_MS', 5000, 100, 3_600_000),
    embedder: oneOf(env, 'PLANNER_EMBEDDER', ['local'], 'local'),
  };
  return Object.freeze(config);
}
