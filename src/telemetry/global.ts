/**
 * Process-wide hand-offs from otel/ (the SDK, loaded before the app) to the app, without src/
 * importing the SDK: kept on globalThis under Symbol.for keys so that a module loaded twice (the
 * preload and the app) still shares them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Serves a Prometheus scrape (the SDK's PrometheusExporter request handler). */
export type MetricsHandler = (req: IncomingMessage, res: ServerResponse) => void;

const METRICS = Symbol.for('planner.telemetry.metricsHandler');
type Slots = Record<symbol, unknown>;

/** otel/ sets it when the Prometheus reader is on; null clears it. */
export function setMetricsHandler(handler: MetricsHandler | null): void {
  (globalThis as unknown as Slots)[METRICS] = handler ?? undefined;
}

/** The scrape handler, or null when no metrics SDK with a Prometheus reader is running. */
export function metricsHandler(): MetricsHandler | null {
  return ((globalThis as unknown as Slots)[METRICS] as MetricsHandler | undefined) ?? null;
}

const FLUSH = Symbol.for('planner.telemetry.flush');

/** otel/ registers how to flush spans and metrics (null clears it). */
export function setTelemetryFlush(flush: (() => Promise<void>) | null): void {
  (globalThis as unknown as Slots)[FLUSH] = flush ?? undefined;
}

/** Flushes spans and metrics if an SDK is running (the app's close calls it before exiting). */
export async function flushTelemetry(): Promise<void> {
  const f = (globalThis as unknown as Slots)[FLUSH] as (() => Promise<void>) | undefined;
  await f?.().catch(() => undefined);
}
