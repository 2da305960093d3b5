/**
 * Wires observability into the app: the instance's RolloutCollector (figures from operation spans,
 * flushed to Postgres off the request path), the mutation telemetry the resolvers use, and the
 * gauges whose sources live here (subscriptions, rollback events). The SDK itself starts in otel/.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { EventHub } from '../events/hub';
import type { FlagService } from '../flags';
import { flushTelemetry } from '../telemetry/global';
import { observe, plannerMetrics } from '../telemetry/metrics';
import {
  createMutationTelemetry,
  type MutationTelemetry,
  type MutationTelemetryOptions,
} from '../telemetry/mutations';
import { buildRolloutReport, rollbackCount } from '../telemetry/report';
import { registerOperationSink, RolloutCollector } from '../telemetry/rollout';
import type { World } from '../world/world';
import type { Logger } from './logger';

export interface ObservabilityOptions {
  /** This instance's id on its spans. Default: a random UUID. */
  instanceId?: string;
  /** Rollout flush period in ms. Default 5000; 0: only close() and flush() write. */
  rolloutFlushMs?: number;
  /** TEST-ONLY: delay mutations of an experiment variant (see MutationTelemetryOptions.delay). */
  delay?: MutationTelemetryOptions['delay'];
}

export interface Observability {
  readonly instanceId: string;
  readonly rollout: RolloutCollector;
  readonly telemetry: MutationTelemetry;
  /** Writes the pending rollout figures now. */
  flush(): Promise<void>;
  /** Unregisters, stops the timer and flushes. Idempotent. */
  close(): Promise<void>;
}

export function startObservability(
  ds: DataSource,
  world: World,
  flags: FlagService,
  events: EventHub,
  log: Logger,
  opts: ObservabilityOptions = {},
): Observability {
  const instanceId = opts.instanceId ?? randomUUID();
  const rollout = new RolloutCollector(ds, {
    flushIntervalMs: opts.rolloutFlushMs,
    warn: (msg, fields) => log.warn(msg, fields),
  });
  const unregister = registerOperationSink(instanceId, rollout);
  rollout.start();
  const telemetry = createMutationTelemetry({
    instanceId,
    flags,
    user: (id) => world.queries.me(id),
    delay: opts.delay,
    log: (msg, fields) => log.info(msg, fields),
    report: async (o) => {
      await rollout.flush(); // this instance's latest figures too
      return buildRolloutReport(ds, flags.currentPayload(), flags.payload.version, o);
    },
  });
  // Gauges read at collection time only. Rollback count: refreshed after each rollout flush.
  let rollbacks: number | null = null;
  const refresh = () =>
    rollbackCount(ds).then(
      (n) => void (rollbacks = n),
      () => undefined,
    );
  void refresh();
  const offFlushed = rollout.onFlushed(() => void refresh());
  const m = plannerMetrics();
  const unobserve = [
    observe(m.subscriptionConnections, () => events.subscriptionCount),
    observe(m.eventsDelivered, () => events.delivered),
    observe(m.consumerLag, () => events.relayLagMs, { consumer: 'event_relay' }),
    observe(m.rollbacks, () => rollbacks),
  ];
  let closed: Promise<void> | null = null;
  return {
    instanceId,
    rollout,
    telemetry,
    flush: async () => {
      await rollout.flush();
      await refresh();
    },
    close: () =>
      (closed ??= (async () => {
        unregister();
        offFlushed();
        for (const u of unobserve) u();
        await rollout.close();
        await flushTelemetry(); // spans still batched go out before the process exits
      })()),
  };
}
