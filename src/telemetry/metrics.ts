/**
 * The planner's metrics (issue 12 item 4), on the OpenTelemetry metrics API: a no-op until otel/
 * registers a MeterProvider. Instruments are created on first use (after the SDK started).
 *
 * | Metric                                   | Kind          | Attributes                 | Source |
 * | ---------------------------------------- | ------------- | -------------------------- | ------ |
 * | planner.operation.duration (ms)          | histogram     | kind, variant, ok          | operation spans (traceOperation) |
 * | planner.conflicts.detected               | counter       | kind                       | UpdateResult.conflicts of each operation |
 * | planner.conflicts.resolved / .failed     | counter       |                            | resolveConflict ok / not ok |
 * | planner.undo.count, planner.redo.count   | counter       |                            | undo / redo ok |
 * | planner.undo.depth                       | histogram     |                            | UpdateResult.undo.depth |
 * | planner.memory.items / .bytes            | gauge         |                            | the memory learner: items held and their stored bytes (all users), refreshed after each pass |
 * | planner.subscriptions.connections        | gauge         |                            | the WebSocket server (app.ts callback) |
 * | planner.events.delivered                 | counter       |                            | the event hub's count of events handed to subscribers |
 * | planner.consumer.lag (ms)                | gauge         | consumer                   | event relay (consumer=event_relay) and memory learner (consumer=memory_learner): age of the newest event it read |
 * | planner.rollout.rollbacks                | gauge (total) |                            | rollback events in the rollout audit trail |
 * | planner.flags.exposures / .usage         | counter       | experiment, variant, …     | src/flags/recorder.ts |
 */
import {
  metrics,
  type Counter,
  type Histogram,
  type ObservableCounter,
  type ObservableGauge,
} from '@opentelemetry/api';

export interface PlannerMetrics {
  operationDuration: Histogram;
  conflictsDetected: Counter;
  conflictsResolved: Counter;
  conflictsFailed: Counter;
  undoCount: Counter;
  redoCount: Counter;
  undoDepth: Histogram;
  eventsDelivered: ObservableCounter;
  memoryItems: ObservableGauge;
  memoryBytes: ObservableGauge;
  subscriptionConnections: ObservableGauge;
  consumerLag: ObservableGauge;
  rollbacks: ObservableGauge;
}

let instruments: PlannerMetrics | null = null;

/** The instruments (created once, on first call). */
export function plannerMetrics(): PlannerMetrics {
  if (instruments) return instruments;
  const m = metrics.getMeter('planner');
  instruments = {
    operationDuration: m.createHistogram('planner.operation.duration', {
      description: 'Duration of write operations (mutations), by kind and experiment variant',
      unit: 'ms',
      advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] },
    }),
    conflictsDetected: m.createCounter('planner.conflicts.detected', {
      description: 'Conflicts reported by operations, by kind',
    }),
    conflictsResolved: m.createCounter('planner.conflicts.resolved', {
      description: 'Conflicts resolved with an alternative',
    }),
    conflictsFailed: m.createCounter('planner.conflicts.failed', {
      description: 'resolveConflict calls that failed to resolve',
    }),
    undoCount: m.createCounter('planner.undo.count', { description: 'Operations undone' }),
    redoCount: m.createCounter('planner.redo.count', { description: 'Operations redone' }),
    undoDepth: m.createHistogram('planner.undo.depth', {
      description: 'Undo stack depth after each operation',
      advice: { explicitBucketBoundaries: [0, 1, 5, 10, 25, 50, 100, 250, 1000] },
    }),
    eventsDelivered: m.createObservableCounter('planner.events.delivered', {
      description: 'Events delivered to subscribers',
    }),
    memoryItems: m.createObservableGauge('planner.memory.items', {
      description: "Semantic memory items held (all users), as of the memory learner's last pass",
    }),
    memoryBytes: m.createObservableGauge('planner.memory.bytes', {
      description:
        "Bytes of semantic memory rows (text, rule, evidence, embedding) as stored, as of the learner's last pass",
      unit: 'By',
    }),
    subscriptionConnections: m.createObservableGauge('planner.subscriptions.connections', {
      description: 'Open GraphQL WebSocket connections',
    }),
    consumerLag: m.createObservableGauge('planner.consumer.lag', {
      description:
        'How far a background consumer is behind, in ms: the age of the newest event it read, by consumer (event_relay, memory_learner)',
      unit: 'ms',
    }),
    rollbacks: m.createObservableGauge('planner.rollout.rollbacks', {
      description: 'Rollback events (rollout check --enforce) in the rollout audit trail',
    }),
  };
  return instruments;
}

/**
 * Registers a callback observing a gauge; returns the unregister function. Callbacks run at
 * collection time only (a scrape or an export), never on a request path.
 */
export function observe(
  gauge: ObservableGauge | ObservableCounter,
  read: () => number | null | undefined,
  attributes: Record<string, string> = {},
): () => void {
  const cb = (r: { observe(v: number, a?: Record<string, string>): void }) => {
    const v = read();
    if (typeof v === 'number' && Number.isFinite(v)) r.observe(v, attributes);
  };
  gauge.addCallback(cb);
  return () => gauge.removeCallback(cb);
}
