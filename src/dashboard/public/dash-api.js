// Planner dashboard: GraphQL over HTTP and the live event streams (graphql-ws's browser build,
// window.graphqlWs). Classic script; everything hangs off window.Planner.
(function () {
  'use strict';
  const P = (window.Planner = window.Planner || {});

  /** An error from the API, with its extensions.code (or HTTP/NETWORK). */
  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code;
    }
  }
  P.ApiError = ApiError;

  /** POSTs one GraphQL operation; resolves `data` or throws ApiError. */
  P.gql = async function gql(config, token, query, variables) {
    let res;
    try {
      res = await fetch(config.graphqlPath, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ' + token },
        body: JSON.stringify({ query: query, variables: variables || {} }),
      });
    } catch (err) {
      throw new ApiError('The server cannot be reached (' + err.message + ').', 'NETWORK');
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      throw new ApiError('The server answered HTTP ' + res.status + ' without JSON.', 'HTTP');
    }
    if (body.errors && body.errors.length > 0) {
      const first = body.errors[0];
      throw new ApiError(first.message, (first.extensions && first.extensions.code) || 'HTTP');
    }
    return body.data;
  };

  const STREAMS = {
    conflict:
      'subscription Conflicts($since: String) { conflictEvents(since: $since) { cursor type conflict { id kind status message } } }',
    undo: 'subscription Undo($since: String) { undoEvents(since: $since) { cursor type operation { id kind actor } } }',
    plan: 'subscription Plan($since: String) { planEvents(since: $since) { cursor type at payload } }',
  };
  const FIELD = { conflict: 'conflictEvents', undo: 'undoEvents', plan: 'planEvents' };

  /**
   * Opens the three event streams from `baseline` (a cursor read together with the page's state)
   * and keeps them going: on a dropped socket graphql-ws reconnects (backoff up to 4 s, forever)
   * and re-subscribes with the payload as it is then, and each payload's `since` is moved to the
   * last cursor its stream delivered, so a resumed stream repeats nothing and skips nothing.
   *
   * handlers: onEvent(stream, event), onState('connecting'|'live'|'reconnecting'|'stopped', why),
   * onFatal(code, message) for a stream that cannot continue (token expired, cursor expired).
   * Returns { close() }.
   */
  P.openLive = function openLive(config, token, baseline, handlers) {
    const url = new URL(config.graphqlPath, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    let closed = false;
    let everConnected = false;
    const client = window.graphqlWs.createClient({
      url: url.toString(),
      connectionParams: { authorization: 'Bearer ' + token },
      retryAttempts: Number.MAX_SAFE_INTEGER,
      shouldRetry: () => true,
      retryWait: (retries) =>
        new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** retries, 4000))),
      keepAlive: 10000,
      on: {
        connecting: () => {
          if (!closed) handlers.onState(everConnected ? 'reconnecting' : 'connecting');
        },
        connected: () => {
          const again = everConnected;
          everConnected = true;
          if (!closed) handlers.onState('live', again ? 'resumed' : 'connected');
        },
        closed: (event) => {
          if (closed) return;
          if (event && event.code === 4401) {
            handlers.onFatal('UNAUTHENTICATED', 'Your session ended (the token expired or was revoked).');
            return;
          }
          handlers.onState(everConnected ? 'reconnecting' : 'connecting');
        },
      },
    });
    const cursors = {};
    const unsubscribes = Object.keys(STREAMS).map((stream) => {
      // The payload object is re-sent as it is at each (re)subscribe: `since` follows the stream.
      const payload = { query: STREAMS[stream], variables: { since: baseline } };
      return client.subscribe(payload, {
        next: (result) => {
          if (result.errors && result.errors.length > 0) {
            const e = result.errors[0];
            handlers.onFatal((e.extensions && e.extensions.code) || 'ERROR', e.message);
            return;
          }
          const event = result.data && result.data[FIELD[stream]];
          if (!event) return;
          cursors[stream] = event.cursor;
          payload.variables.since = event.cursor;
          handlers.onEvent(stream, event);
        },
        error: (err) => {
          if (closed) return;
          if (Array.isArray(err) && err.length > 0) {
            const e = err[0];
            handlers.onFatal((e.extensions && e.extensions.code) || 'ERROR', e.message);
          } else if (err && err.code === 4401) {
            handlers.onFatal('UNAUTHENTICATED', 'Your session ended (the token expired or was revoked).');
          } else {
            handlers.onFatal('ERROR', (err && (err.reason || err.message)) || 'the live connection failed');
          }
        },
        complete: () => undefined,
      });
    });
    return {
      cursors,
      close() {
        closed = true;
        unsubscribes.forEach((u) => u());
        void client.dispose();
      },
    };
  };
})();
