/**
 * GraphQL over WebSocket (graphql-ws protocol, `graphql-transport-ws` subprotocol) on the HTTP
 * server's `/graphql` path. Authentication happens once, in `connection_init`
 * (`connectionParams.authorization = "Bearer <jwt>"`): a missing or bad token closes the socket with
 * 4401. Every operation is parsed and validated with the same limits as HTTP (the row cost
 * included, with the operation's variables), and its errors go through the same formatError.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type GraphQLFormattedError,
  type GraphQLSchema,
} from 'graphql';
import { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { DeliveryBudget } from '../events/hub';
import type { AuthContext, GraphQLContext } from '../resolvers';
import type { LimitRules } from './limits';
import type { Logger } from './logger';

/** Largest accepted WebSocket message (bytes). */
export const WS_MAX_PAYLOAD = 65_536;
/** Interval of protocol-level pings; a socket that does not pong within one interval is terminated. */
export const WS_KEEPALIVE_MS = 15_000;
/** Time a client has to send `connection_init` after connecting. */
export const WS_CONNECTION_INIT_TIMEOUT_MS = 3_000;
/** Close code for shutdown ("going away"). */
export const WS_CLOSE_GOING_AWAY = 1001;
/** Close code for a socket whose send buffer outgrew the limit ("try again later"). */
export const WS_CLOSE_OVERLOADED = 1013;

export interface WebSocketOptions {
  schema: GraphQLSchema;
  /** Verifies an `authorization` connection parameter; null when missing or bad. */
  authenticate: (authorization: unknown) => Promise<AuthContext | null> | AuthContext | null;
  /**
   * Re-checks a connection's context when an operation starts (cached stored role; null: revoked
   * since). Synchronous, no query. Default: the context as authenticated.
   */
  recheck?: (auth: AuthContext) => AuthContext | null;
  /** Current time (for token expiry on later operations). */
  now: () => Date;
  context: (auth: AuthContext) => GraphQLContext;
  limits: LimitRules;
  /** Reject introspection (production). */
  noIntrospection: boolean;
  /** Concurrent operations per connection; the next one gets RATE_LIMITED. */
  maxOperationsPerConnection: number;
  /**
   * Bound of a connection's send queue: events waiting in the hub for its subscriptions plus bytes
   * not yet written to the network. Over it, the socket is closed with 1013.
   */
  maxBufferedBytes: number;
  /** Open WebSockets on this instance; an upgrade beyond it is answered 503 (Retry-After). */
  maxConnections: number;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  production: boolean;
  log: Logger;
}

export interface GraphQLWebSocketServer {
  /** Hands an HTTP upgrade request for /graphql to the WebSocket server. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Closes every socket with 1001 and waits for them to go, terminating stragglers after `graceMs`. */
  close(graceMs: number): Promise<void>;
}

// A type alias (not an interface) so that it satisfies graphql-ws's Record<PropertyKey, unknown>.
type Extra = { auth?: AuthContext; delivery?: DeliveryBudget; authFault?: unknown };

/**
 * The connection's bounded send queue. graphql-ws awaits each send per subscription, so a client
 * that stops reading stalls its subscriptions and the events pile up in the hub, not in the socket:
 * the budget counts both. On overflow the socket is closed with 1013 and every subscription of the
 * connection is ended at once (the hub frees their queues), instead of waiting for a close
 * handshake that a non-reading client never completes (ws destroys the socket after 30 s).
 */
function sendBudget(
  socket: WebSocket,
  limitBytes: number,
  subscriptions: () => Record<string, unknown>,
  log: Logger,
): DeliveryBudget {
  let cut = false;
  return {
    queuedBytes: 0,
    limitBytes,
    backlog: () => socket.bufferedAmount,
    overflow() {
      if (cut) return;
      cut = true;
      log.warn('websocket send queue over limit; closing', {
        buffered: socket.bufferedAmount,
        queued: this.queuedBytes,
      });
      socket.close(WS_CLOSE_OVERLOADED, 'Send queue over limit: the client is not reading');
      for (const sub of Object.values(subscriptions())) {
        const gen = sub as AsyncGenerator<unknown> | null;
        if (gen && typeof gen.return === 'function') void gen.return(undefined).catch(() => undefined);
      }
    },
  };
}

/**
 * Live events reach every subscription of a connection in the same tick: one small message each,
 * which ws writes one syscall at a time. Corking the TCP socket until the tick ends turns them into
 * one writev (the bench showed writev at a quarter of the server's CPU with 1,000 subscribers).
 * The write callbacks graphql-ws awaits still fire as soon as the data is written.
 */
function coalesceWrites(ws: WebSocket, socket: Duplex): void {
  const send = ws.send.bind(ws) as (...args: unknown[]) => void;
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  (ws as unknown as { send: (...args: unknown[]) => void }).send = (...args) => {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    send(...args);
  };
}

/**
 * Request errors from graphql-js (syntax, validation, bad variables) carry no code and no path:
 * they get the code Apollo would give them on HTTP. Execution errors (with a path) are left alone.
 */
function withDefaultCode(error: GraphQLError, code: string): GraphQLError {
  if (typeof error.extensions['code'] === 'string' || error.path) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    extensions: { ...error.extensions, code },
    originalError: error.originalError ?? error,
  });
}

/** Starts the graphql-ws server (no listening socket of its own: fed by handleUpgrade). */
export function createWebSocketServer(opts: WebSocketOptions): GraphQLWebSocketServer {
  const { log } = opts;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: WS_MAX_PAYLOAD,
    clientTracking: true,
    perMessageDeflate: false,
    // graphql-ws's useServer installs an equivalent handler: offer graphql-transport-ws only.
    handleProtocols: (protocols) =>
      protocols.has(GRAPHQL_TRANSPORT_WS_PROTOCOL) ? GRAPHQL_TRANSPORT_WS_PROTOCOL : false,
  });
  const rules = [
    ...specifiedRules,
    ...(opts.noIntrospection ? [NoSchemaIntrospectionCustomRule] : []),
    ...opts.limits.validationRules,
  ];
  const format = (errors: readonly GraphQLError[]): GraphQLFormattedError[] =>
    errors.map((e) => opts.formatError(e.toJSON(), e));
  const unauthorized = (socket: WebSocket) => socket.close(CloseCode.Unauthorized, 'Unauthorized');

  const server = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema: opts.schema,
      isProd: opts.production,
      connectionInitWaitTimeout: WS_CONNECTION_INIT_TIMEOUT_MS,
      onConnect: async (ctx) => {
        try {
          const auth = await opts.authenticate(ctx.connectionParams?.['authorization']);
          if (auth === null) {
            unauthorized(ctx.extra.socket);
            return false;
          }
          ctx.extra.auth = auth;
        } catch (err) {
          // A fault (database away), not a refusal: each operation answers it (masked INTERNAL).
          ctx.extra.authFault = err;
        }
        ctx.extra.delivery = sendBudget(
          ctx.extra.socket,
          opts.maxBufferedBytes,
          () => ctx.subscriptions,
          log,
        );
        return true;
      },
      onSubscribe: (ctx, _id, payload) => {
        if (ctx.extra.authFault !== undefined) {
          const fault = ctx.extra.authFault;
          return [
            new GraphQLError(fault instanceof Error ? fault.message : String(fault), {
              originalError: fault as Error,
            }),
          ];
        }
        const auth = ctx.extra.auth && opts.recheck ? opts.recheck(ctx.extra.auth) : ctx.extra.auth;
        if (auth) ctx.extra.auth = auth;
        if (!auth || auth.expiresAt * 1000 <= opts.now().getTime()) {
          unauthorized(ctx.extra.socket);
          return [new GraphQLError('Token expired.', { extensions: { code: 'UNAUTHENTICATED' } })];
        }
        // ctx.subscriptions already holds this operation.
        if (Object.keys(ctx.subscriptions).length > opts.maxOperationsPerConnection) {
          return [
            new GraphQLError(
              `At most ${opts.maxOperationsPerConnection} concurrent operations per connection.`,
              {
                extensions: { code: 'RATE_LIMITED' },
              },
            ),
          ];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query, opts.limits.parseOptions);
        } catch (err) {
          const e = err instanceof GraphQLError ? err : new GraphQLError(String(err));
          return [withDefaultCode(e, 'GRAPHQL_PARSE_FAILED')];
        }
        const errors = validate(opts.schema, document, rules);
        if (errors.length > 0) return errors.map((e) => withDefaultCode(e, 'GRAPHQL_VALIDATION_FAILED'));
        // The cost limit needs the variables: the same check as HTTP's Apollo plugin.
        const refused = opts.limits.checkCost(
          opts.schema,
          document,
          payload.operationName,
          payload.variables,
        );
        if (refused) return [refused];
        return {
          schema: opts.schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: {
            ...opts.context(auth),
            ...(ctx.extra.delivery ? { delivery: ctx.extra.delivery } : {}),
          },
        };
      },
      onNext: (ctx, _id, _payload, _args, result) => {
        const socket = ctx.extra.socket;
        if (socket.bufferedAmount > opts.maxBufferedBytes) {
          if (ctx.extra.delivery) ctx.extra.delivery.overflow();
          else socket.close(WS_CLOSE_OVERLOADED, 'Send buffer over limit');
        }
        if (!result.errors) return undefined;
        return {
          ...result,
          errors: format(result.errors.map((e) => withDefaultCode(e, 'BAD_USER_INPUT'))),
        };
      },
      onError: (_ctx, _id, _payload, errors) => format(errors),
    },
    wss,
    WS_KEEPALIVE_MS,
  );

  return {
    handleUpgrade(req, socket, head) {
      if (wss.clients.size >= opts.maxConnections) {
        log.warn('websocket refused: connection limit', { limit: opts.maxConnections });
        socket.end(
          'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
            `Content-Length: 40\r\n\r\nToo many WebSocket connections: retry.\r\n`,
        );
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        coalesceWrites(ws, socket);
        wss.emit('connection', ws, req);
        // graphql-ws console.error()s socket errors; they are client protocol violations (e.g. a
        // message over maxPayload), after which ws closes the socket itself with the right code
        // (1009, 1002…). Log them as JSON lines instead.
        ws.removeAllListeners('error');
        ws.on('error', (err) => log.debug('websocket protocol error', { err: err.message }));
      });
    },
    async close(graceMs) {
      const sockets = [...wss.clients];
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      // dispose(): every client gets close(1001), then waits for the server (and sockets) to close.
      await Promise.race([server.dispose(), deadline]);
      clearTimeout(timer);
      for (const s of sockets) if (s.readyState !== s.CLOSED) s.terminate();
    },
  };
}
