/**
 * Structured logs with pino (10.4.0): one JSON object per line on stderr, filtered by level
 * (LOG_LEVEL). `{"level":"info","time":"…","msg":"…","trace_id":"…","span_id":"…", ...fields}`:
 * trace_id and span_id are added when a span is active (OpenTelemetry API), so a line joins its
 * trace. Errors in fields are serialised with name, message and stack. Task titles, notes and
 * memory text never belong in a line: fields named title, notes or text are redacted at any level.
 * The default destination writes asynchronously (sonic-boom), off the request's synchronous path,
 * and is flushed at exit.
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import pino from 'pino';
import type { LogLevel } from '../config/config';

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

function serialise(fields: LogFields | undefined): LogFields {
  if (!fields) return {};
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v;
  }
  return out;
}

/** trace_id / span_id of the active span, if any (pino mixin: runs per line). */
function traceFields(): LogFields {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const sc = span.spanContext();
  return isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}

const REDACT = ['title', 'notes', 'text', '*.title', '*.notes', '*.text'];

function wrap(p: pino.Logger): Logger {
  return {
    debug: (msg, fields) => p.debug(serialise(fields), msg),
    info: (msg, fields) => p.info(serialise(fields), msg),
    warn: (msg, fields) => p.warn(serialise(fields), msg),
    error: (msg, fields) => p.error(serialise(fields), msg),
    child: (fields) => wrap(p.child(serialise(fields))),
  };
}

/**
 * Creates a logger writing lines at or above `level` to `write`.
 * @param level minimum level; `silent` drops everything.
 * @param write line sink (each call one line ending in "\n"). Default: stderr, asynchronously.
 * @param base fields on every line.
 */
export function createLogger(level: LogLevel, write?: (line: string) => void, base: LogFields = {}): Logger {
  const destination = write ? { write } : pino.destination({ dest: 2, sync: false });
  const p = pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      mixin: traceFields,
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    destination,
  );
  return wrap(Object.keys(base).length > 0 ? p.child(serialise(base)) : p);
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger('silent', () => undefined);
