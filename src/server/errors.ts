/**
 * Error masking: the one translation table between thrown errors and what clients see.
 *
 * An error survives only when its `extensions.code` is one we raise on purpose (UNAUTHENTICATED,
 * FORBIDDEN, QUERY_TOO_COMPLEX, RATE_LIMITED, INTERNAL, and the domain codes of CONTRACT.md such as
 * NOT_FOUND) or one of Apollo's client-error codes (parse, validation, bad input, bad request…). Anything else — a bug, a database error — becomes
 * `{message: 'Unexpected error.', extensions: {code: 'INTERNAL', logId}}`: the original (message,
 * stack) is logged with the same `logId`, so an operator can find it from what the client reports.
 * Only in dev mode (PLANNER_DEV_MODE, off by default whatever NODE_ENV says) is its message added
 * under `extensions.originalMessage` and are field suggestions ("Did you mean …?") kept.
 */
import { randomUUID } from 'node:crypto';
import type { GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';
import { USER_ERROR_CODES } from '../world/errors';
import type { Logger } from './logger';
import { isDatabaseUnavailable, unavailableFormatted } from './unavailable';

/** Codes we throw on purpose (CONTRACT.md). */
export const THROWN_CODES = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'QUERY_TOO_COMPLEX',
  'RATE_LIMITED',
  'UNAVAILABLE',
  'INTERNAL',
  // Live events (src/events/hub.ts): a `since` older than the outbox retention, a subscriber too slow.
  'CURSOR_EXPIRED',
  'SUBSCRIPTION_OVERFLOW',
] as const;

/** Apollo's / graphql-js's client-error codes: the request was wrong, not the server. */
export const CLIENT_ERROR_CODES = [
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
] as const;

/** Domain codes (VALIDATION, NOT_FOUND…) that query resolvers may throw with a field path. */
const KEPT = new Set<string>([...THROWN_CODES, ...CLIENT_ERROR_CODES, ...USER_ERROR_CODES]);

export const UNEXPECTED_MESSAGE = 'Unexpected error.';

/** Thrown (or reported by a validation rule) when a query exceeds a depth/cost/alias/directive/token limit. */
export class QueryTooComplexError extends GraphQLError {
  constructor(message: string) {
    super(message, { extensions: { code: 'QUERY_TOO_COMPLEX' } });
    this.name = 'QueryTooComplexError';
  }
}

/** graphql-js's own token limit (`parse(..., {maxTokens})`) raises a syntax error with this text. */
const TOKEN_LIMIT = /Document contains more tha[nt] \d+ tokens/; // graphql 16 says "more that"
/** Field suggestions leak the schema; hidden unless in dev mode. */
const SUGGESTION = /\s*Did you mean .+\?/g;

function codeOf(value: unknown): string | undefined {
  if (value && typeof value === 'object' && 'extensions' in value) {
    const ext = (value as { extensions?: { code?: unknown } }).extensions;
    if (ext && typeof ext.code === 'string') return ext.code;
  }
  return undefined;
}

function isTooComplex(formatted: GraphQLFormattedError, error: unknown): boolean {
  if (codeOf(formatted) === 'QUERY_TOO_COMPLEX') return true;
  if (error instanceof QueryTooComplexError) return true;
  if (error instanceof GraphQLError) {
    const original = error.originalError;
    if (original instanceof QueryTooComplexError || codeOf(original) === 'QUERY_TOO_COMPLEX') return true;
  }
  return codeOf(formatted) === 'GRAPHQL_PARSE_FAILED' && TOKEN_LIMIT.test(formatted.message);
}

const DOMAIN_CODES = new Set<string>(USER_ERROR_CODES);
/** Generic request-error codes that a more specific domain code underneath should replace. */
const GENERIC_INPUT_CODES = new Set(['GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);

/** The first extensions.code along the `originalError` chain of GraphQLErrors, if any passes `accept`. */
function codeInChain(error: unknown, accept: (code: string) => boolean): string | undefined {
  let current = error;
  for (let i = 0; i < 10 && current instanceof GraphQLError; i++) {
    const c = codeOf(current);
    if (c !== undefined && accept(c)) return c;
    current = current.originalError;
  }
  return undefined;
}

/**
 * The code to judge by:
 * - the formatted one, unless absent or Apollo's catch-all INTERNAL_SERVER_ERROR — then the first
 *   code along `originalError` (graphql-ws re-wraps errors thrown by a subscription stream);
 * - a generic GRAPHQL_VALIDATION_FAILED / BAD_USER_INPUT gives way to a domain code raised
 *   underneath (e.g. the DateTime scalar's VALIDATION, wrapped by graphql-js and Apollo).
 */
function effectiveCode(formatted: GraphQLFormattedError, error: unknown): string | undefined {
  const own = codeOf(formatted);
  if (own !== undefined && GENERIC_INPUT_CODES.has(own)) {
    return codeInChain(error, (c) => DOMAIN_CODES.has(c)) ?? own;
  }
  if (own !== undefined && own !== 'INTERNAL_SERVER_ERROR') return own;
  return codeInChain(error, (c) => c !== 'INTERNAL_SERVER_ERROR') ?? own;
}

/** Walks `originalError` links to the root cause (for logging). */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let i = 0; i < 10; i++) {
    if (current instanceof GraphQLError && current.originalError) current = current.originalError;
    else break;
  }
  return current;
}

export interface FormatErrorOptions {
  /**
   * Dev mode (config.devMode): the original message of a masked error is added as
   * `extensions.originalMessage`, and field suggestions stay in validation messages.
   */
  devMode: boolean;
  /** Where masked originals are logged (level error, with the `logId` the client sees). */
  log: Logger;
  /** Makes the id that ties a masked error to its log line. Default: a random UUID. */
  newLogId?: () => string;
}

/**
 * Builds the formatError used by Apollo (HTTP) and by the WebSocket server: same table for both.
 * `formatted` is the serialised error, `error` the thrown one (Apollo's second argument).
 */
export function createFormatError(
  opts: FormatErrorOptions,
): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  const newLogId = opts.newLogId ?? randomUUID;
  return (formatted, error) => {
    if (isTooComplex(formatted, error)) {
      return {
        message: formatted.message.replace(/^Syntax Error: /, '').replace('more that ', 'more than '),
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        extensions: { code: 'QUERY_TOO_COMPLEX' },
      };
    }
    const code = effectiveCode(formatted, error);
    if (code !== undefined && KEPT.has(code)) {
      const message = opts.devMode ? formatted.message : formatted.message.replace(SUGGESTION, '');
      const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, message, extensions: { ...extensions, code } };
    }
    const cause = rootCause(error);
    if (isDatabaseUnavailable(error)) return unavailableFormatted(formatted); // not a bug: retry later
    const logId = newLogId();
    opts.log.error('unexpected error', {
      logId,
      err: cause instanceof Error ? cause : String(cause),
      path: formatted.path,
      code,
    });
    const extensions: Record<string, unknown> = { code: 'INTERNAL', logId };
    if (opts.devMode) extensions['originalMessage'] = formatted.message;
    return {
      message: UNEXPECTED_MESSAGE,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions,
    };
  };
}
