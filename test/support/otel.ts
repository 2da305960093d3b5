/**
 * Mocha `require` (before hooks.ts and every spec): starts the REAL OpenTelemetry SDK in-process
 * (otel/setup.ts) before pg, graphql and http are loaded, so test servers are instrumented as
 * `npm start` is. Spans go to a capturing exporter that keeps them only while a test captures
 * (nothing accumulates across the run); the rollout SpanProcessor runs as in production.
 */
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { startTelemetry } from '../../otel/setup';

interface Capture {
  spans: ReadableSpan[];
  waiters: Array<{ done: (spans: ReadableSpan[]) => boolean; resolve: () => void }>;
}

class CapturingExporter implements SpanExporter {
  private captures = new Set<Capture>();

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    for (const c of this.captures) {
      c.spans.push(...spans);
      c.waiters = c.waiters.filter((w) => (w.done(c.spans) ? (w.resolve(), false) : true));
    }
    done({ code: 0 });
  }

  /**
   * Starts keeping the spans exported from now on. `until(p)` resolves once `p(spans)` holds
   * (checked as each span is exported: no polling, no sleeping); `stop()` stops keeping them.
   */
  capture(): {
    spans: ReadableSpan[];
    until(p: (spans: ReadableSpan[]) => boolean): Promise<void>;
    stop(): void;
  } {
    const c: Capture = { spans: [], waiters: [] };
    this.captures.add(c);
    return {
      spans: c.spans,
      until: (p) =>
        p(c.spans) ? Promise.resolve() : new Promise<void>((resolve) => c.waiters.push({ done: p, resolve })),
      stop: () => void this.captures.delete(c),
    };
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
