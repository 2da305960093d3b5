/**
 * OpenTelemetry SDK setup as a function: otel/register.ts calls it from the environment before the
 * app loads; tests call it in-process with an in-memory exporter (test/support/otel.ts).
 *
 * - Instrumentation: HTTP (probes and /metrics ignored), pg (only inside a traced request:
 *   background polls make no spans), graphql (parse/validate/execute; resolver spans off: they cost
 *   more than they tell here).
 * - Resource: service.name (OTEL_SERVICE_NAME, default smart-personal-planner), service.version
 *   (package.json), deployment.environment.name (NODE_ENV, default development); OTEL_RESOURCE_ATTRIBUTES
 *   is merged by the SDK's env detector.
 * - Traces: OTEL_TRACES_EXPORTER = otlp | console | none (several comma-separated); default otlp when
 *   OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, else none. OTLP is
 *   OTLP/HTTP (JSON/protobuf per the exporter's defaults), configured by the standard OTEL_EXPORTER_OTLP_* variables.
 * - The rollout SpanProcessor always runs (rollout figures are computed from spans without any exporter).
 * - Metrics: a Prometheus reader served at /metrics by the app when PLANNER_METRICS_ENDPOINT=true;
 *   OTLP/HTTP metrics when the OTLP endpoint is set and OTEL_METRICS_EXPORTER is not "none".
 * - OTEL_SDK_DISABLED=true: nothing starts (no spans, so no rollout figures either).
 */
import { DiagConsoleLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import pkg from '../package.json';
import { setMetricsHandler, setTelemetryFlush } from '../src/telemetry/global';
import { RolloutSpanProcessor } from './rollout-processor';

/** deployment.environment.name (incubating semconv; spelled here to keep to the stable entry point). */
const ATTR_DEPLOYMENT_ENVIRONMENT_NAME = 'deployment.environment.name';
const IGNORED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

export interface TelemetryOptions {
  /** Environment to read OTEL_* (and PLANNER_METRICS_ENDPOINT) from. Default process.env. */
  env?: Record<string, string | undefined>;
  /** Span exporter instead of the one OTEL_TRACES_EXPORTER names (tests: an in-memory exporter). */
  spanExporter?: SpanExporter;
  /** Export each span as it ends (SimpleSpanProcessor) instead of batching. Default false. */
  simple?: boolean;
  /** Serve Prometheus at /metrics. Default: PLANNER_METRICS_ENDPOINT=true. */
  prometheus?: boolean;
}

export interface Telemetry {
  readonly sdk: NodeSDK;
  /** The exporters chosen (for logs and tests): e.g. ["otlp"], ["console"], []. */
  readonly exporters: string[];
  /** Flushes spans and metrics and stops the SDK. Idempotent. */
  shutdown(): Promise<void>;
}

function truthy(v: string | undefined): boolean {
  return v?.trim() === 'true'; // as src/config/config.ts parses it
}

/** Which trace exporters the environment asks for. */
export function traceExporterNames(env: Record<string, string | undefined>): string[] {
  const raw = env['OTEL_TRACES_EXPORTER']?.trim();
  const endpoint =
    env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim() || env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  const names = raw ? raw.split(',').map((s) => s.trim().toLowerCase()) : endpoint ? ['otlp'] : [];
  return names.filter((n) => n === 'otlp' || n === 'console');
}

/** Starts the NodeSDK. Call before the modules to instrument (pg, graphql, http) are loaded. */
export function startTelemetry(opts: TelemetryOptions = {}): Telemetry {
  const env = opts.env ?? process.env;
  if (env['OTEL_LOG_LEVEL']?.trim().toLowerCase() === 'debug') {
    diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.DEBUG);
  }
  const processors: SpanProcessor[] = [new RolloutSpanProcessor()];
  const exporters: string[] = [];
  const wrap = (e: SpanExporter) => (opts.simple ? new SimpleSpanProcessor(e) : new BatchSpanProcessor(e));
  if (opts.spanExporter) {
    processors.push(wrap(opts.spanExporter));
    exporters.push('custom');
  } else {
    for (const name of traceExporterNames(env)) {
      processors.push(wrap(name === 'otlp' ? new OTLPTraceExporter() : new ConsoleSpanExporter()));
      exporters.push(name);
    }
  }
  const readers: IMetricReader[] = [];
  let prometheus: PrometheusExporter | null = null;
  if (opts.prometheus ?? truthy(env['PLANNER_METRICS_ENDPOINT'])) {
    prometheus = new PrometheusExporter({ preventServerStart: true });
    readers.push(prometheus);
  }
  const otlpEndpoint =
    env['OTEL_EXPORTER_OTLP_METRICS_ENDPOINT']?.trim() || env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  if (otlpEndpoint && env['OTEL_METRICS_EXPORTER']?.trim().toLowerCase() !== 'none') {
    readers.push(new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter() }));
  }
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env['OTEL_SERVICE_NAME']?.trim() || 'smart-personal-planner',
      [ATTR_SERVICE_VERSION]: pkg.version,
      [ATTR_DEPLOYMENT_ENVIRONMENT_NAME]: env['NODE_ENV']?.trim() || 'development',
    }),
    spanProcessors: processors,
    metricReaders: readers,
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req) => IGNORED_PATHS.has((req.url ?? '').split('?')[0] ?? ''),
      }),
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
      new GraphQLInstrumentation({ ignoreResolveSpans: true, mergeItems: true }),
    ],
  });
  sdk.start();
  if (prometheus) {
    const p = prometheus;
    setMetricsHandler((req, res) => p.getMetricsRequestHandler(req, res));
  }
  let stopping: Promise<void> | null = null;
  setTelemetryFlush(async () => {
    await Promise.all(processors.map((p) => p.forceFlush()));
    await Promise.all(readers.map((r) => r.forceFlush()));
  });
  return {
    sdk,
    exporters,
    shutdown: () =>
      (stopping ??= (async () => {
        setMetricsHandler(null);
        setTelemetryFlush(null);
        await sdk.shutdown();
      })()),
  };
}
