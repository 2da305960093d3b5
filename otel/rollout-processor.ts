/**
 * A SpanProcessor that turns every ended operation span (attribute planner.operation.kind) into an
 * OperationSample for the rollout figures (src/telemetry/rollout.ts), whether or not any exporter
 * is configured. onEnd is synchronous and in memory: a few attribute reads, no I/O.
 */
import { SpanStatusCode, type Context } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  FEATURE_FLAG_EVALUATION,
  FEATURE_FLAG_KEY,
  FEATURE_FLAG_RESULT_VARIANT,
  INSTANCE_ID,
  OPERATION_KIND,
} from '../src/telemetry/attributes';
import { operationSinkFor, type OperationSample } from '../src/telemetry/rollout';

export class RolloutSpanProcessor implements SpanProcessor {
  onStart(_span: Span, _ctx: Context): void {}

  onEnd(span: ReadableSpan): void {
    const kind = span.attributes[OPERATION_KIND];
    if (typeof kind !== 'string') return;
    const instance = span.attributes[INSTANCE_ID];
    const sink = operationSinkFor(typeof instance === 'string' ? instance : null);
    if (!sink) return;
    const flags: OperationSample['flags'] = [];
    for (const e of span.events) {
      if (e.name !== FEATURE_FLAG_EVALUATION || !e.attributes) continue;
      const key = e.attributes[FEATURE_FLAG_KEY];
      const variant = e.attributes[FEATURE_FLAG_RESULT_VARIANT];
      if (typeof key === 'string' && typeof variant === 'string') flags.push({ key, variant });
    }
    if (flags.length === 0) return;
    sink.record({
      instanceId: typeof instance === 'string' ? instance : null,
      kind,
      endedAtMs: hrTimeToMilliseconds(span.endTime),
      durationMs: hrTimeToMilliseconds(span.duration),
      error: span.status.code === SpanStatusCode.ERROR,
      flags,
    });
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
