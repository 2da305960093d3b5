/**
 * Opens the database the way every entry point does (server, CLI): DATABASE_URL when set, else the
 * embedded Postgres in the data directory (reused if another process already runs it there).
 * Also resolves the JWT secret: PLANNER_JWT_SECRET, else the one generated into the data directory.
 */
import type { DataSource } from 'typeorm';
import type { Config } from '../config/config';
import { createDataSource } from '../db/data-source';
import { startEmbeddedPostgres, type EmbeddedHandle, type EmbeddedState } from '../db/embedded';
import { loadOrCreateSecrets } from '../db/secrets';
import type { Logger } from './logger';

export interface OpenDatabase {
  /** Initialised (connected) DataSource. Migrations are NOT applied here. */
  readonly dataSource: DataSource;
  /** The connection URL in use (contains the password: never log it). */
  readonly url: string;
  /** HS256 secret for tokens: config.jwtSecret, else `<dataDir>/secrets.json`. */
  readonly jwtSecret: string;
  /** The embedded server when DATABASE_URL is unset (owned or reused), else null. */
  readonly embedded: EmbeddedHandle | null;
  /**
   * `running`, or `restarting` while a supervised embedded Postgres is being restarted after an
   * unexpected exit (always `running` with DATABASE_URL: that server is not ours to restart).
   */
  databaseState(): EmbeddedState;
  /** Destroys the DataSource, then stops the embedded Postgres if this process started it. Idempotent. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Postgres `application_name` (visible in pg_stat_activity). Default "planner". */
  applicationName?: string;
  /**
   * Restart the embedded Postgres with backoff if it exits unexpectedly (the server does; the
   * short-lived CLI does not). Default false.
   */
  supervise?: boolean;
}

/** Connects to the configured database (see OpenDatabaseOptions for the defaults). */
export async function openDatabase(
  config: Config,
  log: Logger,
  opts: OpenDatabaseOptions = {},
): Promise<OpenDatabase> {
  const applicationName = opts.applicationName ?? 'planner';
  const needSecrets = config.databaseUrl === null || config.jwtSecret === null;
  const secrets = needSecrets ? loadOrCreateSecrets(config.dataDir) : null;
  const jwtSecret = config.jwtSecret ?? secrets!.jwtSecret;
  let embedded: EmbeddedHandle | null = null;
  let url = config.databaseUrl;
  if (url === null) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      password: secrets!.pgPassword,
      port: config.embeddedPgPort,
      log: (line) => log.debug('embedded postgres', { line }),
      supervise: opts.supervise
        ? {
            onState: (state, detail) =>
              state === 'running'
                ? log.info('embedded postgres running again', { detail })
                : log.warn('embedded postgres unavailable', { state, detail }),
          }
        : false,
    });
    log.info(embedded.owned ? 'embedded postgres started' : 'embedded postgres reused', {
      dataDir: config.dataDir,
      port: embedded.port,
      log: embedded.logFile,
    });
    url = embedded.url;
  }
  const dataSource = createDataSource(url, {
    applicationName,
    lockTimeoutMs: config.lockTimeoutMs,
    poolSize: config.dbPoolSize,
  });
  try {
    await dataSource.initialize();
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
  let closed: Promise<void> | null = null;
  return {
    dataSource,
    url,
    jwtSecret,
    embedded,
    databaseState: () => embedded?.state() ?? 'running',
    close: () =>
      (closed ??= (async () => {
        try {
          if (dataSource.isInitialized) await dataSource.destroy();
        } finally {
          if (embedded) {
            const owned = embedded.owned;
            await embedded.stop();
            if (owned) log.info('embedded postgres stopped');
          }
        }
      })()),
  };
}
