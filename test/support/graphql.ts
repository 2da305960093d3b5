/**
 * Real clients for end-to-end tests: GraphQL over HTTP with global fetch, GraphQL over WebSocket
 * with graphql-ws `createClient` on the `ws` package. Waiting is done on deferred promises, never
 * on sleeps.
 */
import { createClient, type Client, type FormattedExecutionResult, type SubscribePayload } from 'graphql-ws';
import WebSocket from 'ws';

export interface GqlError {
  message: string;
  path?: Array<string | number>;
  extensions?: Record<string, unknown> & { code?: string };
}

export interface GqlResponse<T> {
  /** HTTP status. */
  status: number;
  data?: T;
  errors?: GqlError[];
}

/**
 * POSTs a GraphQL operation. `token` null sends no Authorization header; otherwise
 * `Authorization: Bearer <token>` (or `headers.authorization` verbatim, when given).
 */
export async function gql<T = Record<string, unknown>>(
  url: string,
  token: string | null,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GqlResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: { data?: T | null; errors?: GqlError[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`HTTP ${res.status}: not JSON: ${text.slice(0, 300)}`);
  }
  return {
    status: res.status,
    ...(body.data === undefined || body.data === null ? {} : { data: body.data }),
    ...(body.errors === undefined ? {} : { errors: body.errors }),
  };
}

/** A promise with its resolve/reject exposed. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
  settled: boolean;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (r: unknown) => void;
  const d: Deferred<T> = {
    promise: new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    }),
    resolve: (v) => {
      if (d.settled) return;
      d.settled = true;
      resolve(v);
    },
    reject: (r) => {
      if (d.settled) return;
      d.settled = true;
      reject(r);
    },
    settled: false,
  };
  d.promise.catch(() => undefined); // a rejection nobody awaits is not an unhandled one
  return d;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface WsHandle {
  client: Client;
  /** Resolves on connection_ack; rejects if the socket closes first. */
  connected: Promise<void>;
  /** Resolves with the close code and reason of the (first) socket close. */
  closed: Promise<CloseInfo>;
  /** Disposes the client (closes with 1000). */
  dispose(): Promise<void>;
}

/**
 * Connects at once (`lazy: false`, `retryAttempts: 0`). `token` null sends no authorization;
 * `opts.authorization` overrides the `Bearer <token>` value verbatim.
 */
export function wsClient(
  wsUrl: string,
  token: string | null,
  opts: { authorization?: string } = {},
): WsHandle {
  const connected = deferred<void>();
  const closed = deferred<CloseInfo>();
  const authorization = opts.authorization ?? (token === null ? undefined : `Bearer ${token}`);
  const client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: authorization === undefined ? {} : { authorization },
    onNonLazyError: () => undefined, // surfaced through `closed`
    on: {
      connected: () => connected.resolve(),
      closed: (event) => {
        const e = event as { code?: number; reason?: string };
        const info = { code: e.code ?? -1, reason: e.reason ?? '' };
        connected.reject(new Error(`socket closed before ack: ${info.code} ${info.reason}`));
        closed.resolve(info);
      },
    },
  });
  return {
    client,
    connected: connected.promise,
    closed: closed.promise,
    dispose: async () => {
      await client.dispose();
    },
  };
}

/** A subscription (or a query/mutation sent over WebSocket) whose results are collected. */
export interface Collector<T> {
  readonly results: Array<FormattedExecutionResult<T, unknown>>;
  /** Resolves once at least `n` results arrived (all of them so far); rejects on error/early complete. */
  take(n: number): Promise<Array<FormattedExecutionResult<T, unknown>>>;
  /** Resolves on completion; rejects with the error (formatted GraphQL errors, a close event…). */
  readonly done: Promise<void>;
  stop(): void;
}

/** Thrown into a collector when the server answers with an `error` message. */
export class SubscriptionError extends Error {
  constructor(readonly errors: unknown) {
    super(`subscription error: ${JSON.stringify(errors)}`);
  }
}

/** Subscribes and collects results; wait with `take(n)` or `done`. */
export function collect<T = Record<string, unknown>>(
  client: Client,
  payload: SubscribePayload,
): Collector<T> {
  const results: Array<FormattedExecutionResult<T, unknown>> = [];
  const done = deferred<void>();
  const waiters: Array<{ n: number; d: Deferred<Array<FormattedExecutionResult<T, unknown>>> }> = [];
  const wake = () => {
    for (const w of [...waiters]) {
      if (results.length >= w.n) {
        waiters.splice(waiters.indexOf(w), 1);
        w.d.resolve([...results]);
      }
    }
  };
  const fail = (err: unknown) => {
    done.reject(err);
    for (const w of waiters.splice(0)) w.d.reject(err);
  };
  const stop = client.subscribe<T>(payload, {
    next: (r) => {
      results.push(r);
      wake();
    },
    error: (err) => fail(Array.isArray(err) ? new SubscriptionError(err) : err),
    complete: () => {
      done.resolve();
      for (const w of waiters.splice(0)) {
        w.d.reject(new Error(`completed after ${results.length} of ${w.n} results`));
      }
    },
  });
  return {
    results,
    done: done.promise,
    stop,
    take(n) {
      const d = deferred<Array<FormattedExecutionResult<T, unknown>>>();
      if (results.length >= n) d.resolve([...results]);
      else if (done.settled) d.reject(new Error(`finished after ${results.length} of ${n} results`));
      else waiters.push({ n, d });
      return d.promise;
    },
  };
}

/** Runs one operation over the socket and returns its single result (or rejects with its errors). */
export async function wsRequest<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Promise<FormattedExecutionResult<T, unknown>> {
  const c = collect<T>(client, { query, variables });
  await c.done;
  if (c.results.length !== 1) throw new Error(`expected one result, got ${c.results.length}`);
  return c.results[0]!;
}
