/**
 * Database-unavailable errors: the database cannot be reached, went away mid-request, is starting or
 * shutting down, no pooled connection came free in time, or the operation waited longer than
 * lock_timeout for a lock. None of these is a bug: the client gets a thrown UNAVAILABLE with a retry
 * hint instead of a masked INTERNAL (called from the one translation function in errors.ts).
 *
 * A request that meets the outage while committing cannot know whether its change was stored: a
 * retry with the same idempotencyKey is always safe (it is applied at most once).
 */
import type { GraphQLFormattedError } from 'graphql';

/** The retry hint sent with UNAVAILABLE (`extensions.retryAfterMs`). */
export const UNAVAILABLE_RETRY_AFTER_MS = 1000;

export const UNAVAILABLE_MESSAGE =
  'The database is unavailable or busy: retry after a moment (with the same idempotencyKey a retry never applies a change twice).';

/**
 * SQLSTATEs that mean "not now" rather than "wrong": connection exceptions (class 08), admin/crash
 * shutdown and cannot-connect-now (57P01–57P03), too many connections (53300), lock_timeout (55P03).
 */
function unavailableSqlState(code: string): boolean {
  return (
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300' ||
    code === '55P03'
  );
}

/** Node socket errors on the way to the database. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/** What pg and pg-pool say when a connection dies or none can be had in time. */
const MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error and is not queryable/,
  /Client was closed and is not queryable/,
  /Connection is not established/,
  /the database system is (starting up|shutting down|in recovery mode)/,
  /terminating connection due to administrator command/,
  /Query read timeout/,
  // TypeORM releases a query runner whose connection failed; the rollback that follows in the write
  // path then reports this instead of the connection error itself.
  /^Query runner already released/,
];

/** The error and everything it wraps (GraphQLError.originalError, TypeORM driverError, cause). */
function* chain(err: unknown): Generator<unknown> {
  let current = err;
  for (let i = 0; i < 10 && current !== null && typeof current === 'object'; i++) {
    yield current;
    const c = current as { originalError?: unknown; driverError?: unknown; cause?: unknown };
    if (c.driverError && c.driverError !== current) yield c.driverError;
    current = c.originalError ?? c.cause;
  }
}

/** True when `err` (or anything it wraps) says the database is unreachable or too busy right now. */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of chain(err)) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && (unavailableSqlState(code) || SOCKET_CODES.has(code))) return true;
    if (typeof message === 'string' && MESSAGES.some((re) => re.test(message))) return true;
  }
  return false;
}

/** The formatted UNAVAILABLE error (keeps the path and locations of the original). */
export function unavailableFormatted(formatted: GraphQLFormattedError): GraphQLFormattedError {
  return {
    message: UNAVAILABLE_MESSAGE,
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: 'UNAVAILABLE', retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS },
  };
}
