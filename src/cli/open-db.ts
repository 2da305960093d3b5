/**
 * The set-up every database-backed CLI command shares: the configuration as `npm start` reads it,
 * then the database (embedded or `DATABASE_URL`). A failure prints one line naming it on stderr and
 * answers null: the caller exits 1. The caller closes the database.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { openDatabase, type OpenDatabase } from '../server/database';
import { createLogger, type Logger } from '../server/logger';
import type { Io } from './main';

export interface CliDatabase {
  config: Config;
  log: Logger;
  db: OpenDatabase;
}

export async function openCliDatabase(
  env: NodeJS.ProcessEnv,
  io: Io,
  applicationName = 'planner-cli',
): Promise<CliDatabase | null> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`planner: configuration error: ${err.message}`);
      return null;
    }
    throw err;
  }
  const log = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  try {
    return { config, log, db: await openDatabase(config, log, { applicationName }) };
  } catch (err) {
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return null;
  }
}
