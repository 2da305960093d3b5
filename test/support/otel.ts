/**
 * Mocha `require` (before hooks.ts and every spec): starts the REAL OpenTelemetry SDK in-process
 * (otel/setup.ts) before pg, graphql and http are loaded, so test servers are instrumented as
 * `npm start` is. Spans go to a capturing exporter that keeps them only while a test captures
 * (nothing accumulates across the run); the rollout SpanProcessor runs as in production.
 */
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTelemetry } from '../../otel/setup';

class CapturingExporter implements SpanExporter {
  private captures = new Set<ReadableSpan[]>();

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    for (const c of this.captures) c.push(...spans);
    done({ code: 0 });
  }

  /** Starts keeping spans; returns the live list and a stop function. */
  capture(): { spans: ReadableSpan[]; stop(): void } {
    const spans: ReadableSpan[] = [];
    this.captures.add(spans);
    return { spans, stop: () => void this.captures.delete(spans) };
  }

  shutdown(): Promise<void> {
    this.captures.clear();
    return Promise.resolve();
  }
}

/** The run's span exporter (spans are exported as each ends). */
export const spanCapture = new CapturingExporter();

if (process.env['OTEL_SDK_DISABLED'] !== 'true') {
  startTelemetry({ env: {}, spanExporter: spanCapture, simple: true, prometheus: true });
}
