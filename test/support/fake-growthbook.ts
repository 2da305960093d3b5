/**
 * A small local HTTP server that speaks GrowthBook's SDK endpoint, `GET /api/features/<clientKey>`,
 * for remote-mode tests. Its payload, status and availability are set by the test: `answer(...)`,
 * `fail(status)`, `garbage()`, `stop()` / `restart()` (an outage: connections refused, same port).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeGrowthBook {
  /** `http://127.0.0.1:<port>` */
  readonly apiHost: string;
  readonly clientKey: string;
  /** Requests answered so far (any status). */
  readonly requests: number;
  /** Serve this payload with 200. */
  answer(payload: unknown): void;
  /** Answer every request with this HTTP status. */
  fail(status: number): void;
  /** Answer 200 with a body that is not JSON. */
  garbage(): void;
  /** Stop listening (connections are refused) until restart(). */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeGrowthBook(clientKey = 'sdk-test-key'): Promise<FakeGrowthBook> {
  let mode: { kind: 'ok'; body: string } | { kind: 'status'; status: number } | { kind: 'garbage' } = {
    kind: 'status',
    status: 503,
  };
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' || url.pathname !== `/api/features/${clientKey}`) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"status":404,"error":"Invalid API key"}');
      return;
    }
    if (mode.kind === 'ok') res.writeHead(200, { 'content-type': 'application/json' }).end(mode.body);
    else if (mode.kind === 'garbage')
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"features": {');
    else res.writeHead(mode.status, { 'content-type': 'text/plain' }).end('unavailable');
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    apiHost: `http://127.0.0.1:${port}`,
    clientKey,
    get requests() {
      return requests;
    },
    answer: (payload) =>
      (mode = {
        kind: 'ok',
        body: JSON.stringify({ ...(payload as object), dateUpdated: new Date().toISOString() }),
      }),
    fail: (status) => (mode = { kind: 'status', status }),
    garbage: () => (mode = { kind: 'garbage' }),
    stop: stopListening,
    restart: () => listen(port),
    close: stopListening,
  };
}
