/**
 * OpenTelemetry bootstrap, preloaded before the app (`tsx --import ./otel/register.ts …`) so that
 * modules loaded afterwards can be instrumented. Inert unless OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_TRACES_EXPORTER is set; then the NodeSDK starts and configures itself from the standard
 * OTEL_* variables. Instrumentations and metrics arrive with the observability issue (otel/README.md).
 */
import { NodeSDK } from '@opentelemetry/sdk-node';

const env = process.env;
const enabled = Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim() || env['OTEL_TRACES_EXPORTER']?.trim());

if (enabled) {
  const sdk = new NodeSDK({ serviceName: env['OTEL_SERVICE_NAME']?.trim() || 'smart-personal-planner' });
  sdk.start();
  let stopping: Promise<void> | null = null;
  const shutdown = (): Promise<void> =>
    (stopping ??= sdk.shutdown().catch((err: unknown) => {
      process.stderr.write(`otel: shutdown failed: ${String(err)}\n`);
    }));
  // The app's own SIGTERM/SIGINT handler drains and exits; flushing starts alongside it.
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  process.once('beforeExit', () => void shutdown());
}
