/**
 * OpenTelemetry bootstrap, preloaded before the app (`tsx --import ./otel/register.ts …`) so that
 * http, pg and graphql are instrumented. Always starts the SDK (the rollout figures are computed
 * from spans even with no exporter), unless OTEL_SDK_DISABLED=true. Exporters and the /metrics
 * reader follow the environment: see otel/setup.ts and otel/README.md.
 */
import { startTelemetry } from './setup';

if (!/^true$/i.test(process.env['OTEL_SDK_DISABLED']?.trim() ?? '')) {
  const telemetry = startTelemetry();
  const shutdown = (): Promise<void> =>
    telemetry.shutdown().catch((err: unknown) => {
      process.stderr.write(`otel: shutdown failed: ${String(err)}\n`);
    });
  // The app's own SIGTERM/SIGINT handler drains and exits; flushing starts alongside it.
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  process.once('beforeExit', () => void shutdown());
}
