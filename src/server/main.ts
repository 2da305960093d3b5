/**
 * `npm start`: load the configuration, start the app, serve until SIGTERM/SIGINT, then shut down
 * gracefully (a second signal, other than a duplicate of the first, forces the exit). A configuration error prints one line and exits 1.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { EmbeddedStartError } from '../db/embedded';
import { startApp } from './app';
import { createLogger } from './logger';

/** A repeat of the first signal within this window is ignored (see onSignal). */
const DUPLICATE_SIGNAL_MS = 1000;

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

  let stopping: { signal: NodeJS.Signals; at: number } | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      // The same signal again within a second is one event delivered twice: a terminal or service
      // manager signals the whole process group, and tsx relays it to us as well.
      if (signal === stopping.signal && Date.now() - stopping.at < DUPLICATE_SIGNAL_MS) return;
      log.warn('second signal: forcing exit', { signal });
      process.exit(1);
    }
    stopping = { signal, at: Date.now() };
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
  // Only now: whoever waits for this line may signal us at once.
  console.log(`planner listening on ${app.url}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`planner: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  // Postgres's own reason is in the message already; a stack would only bury it.
  if (err instanceof Error && err.stack && !(err instanceof EmbeddedStartError)) {
    process.stderr.write(`${err.stack}\n`);
  }
  process.exit(1);
});
