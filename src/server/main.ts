/**
 * `npm start`: load the configuration, start the app, serve until SIGTERM/SIGINT, then shut down
 * gracefully (a second signal forces the exit). A configuration error prints one line and exits 1.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { EmbeddedStartError } from '../db/embedded';
import { startApp } from './app';
import { createLogger } from './logger';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`planner: configuration error: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const app = await startApp(config, { log });
  console.log(`planner listening on ${app.url}`);

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('second signal: forcing exit', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('signal received; shutting down', { signal });
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err: unknown) => {
  process.stderr.write(`planner: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  // Postgres's own reason is in the message already; a stack would only bury it.
  if (err instanceof Error && err.stack && !(err instanceof EmbeddedStartError)) {
    process.stderr.write(`${err.stack}\n`);
  }
  process.exit(1);
});
