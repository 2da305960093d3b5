/**
 * The connection limits of issue 16 on a started server: PLANNER_MAX_WS_CONNECTIONS (an upgrade
 * over it is answered 503 with Retry-After, a closed socket frees its place) and
 * PLANNER_DB_POOL_SIZE (the size of the server's Postgres pool).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { expect } from 'chai';
import WebSocket from 'ws';
import { wsClient, type WsHandle } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

/** Resolves with the HTTP status of a refused upgrade, or 101 when the socket opened. */
function upgradeStatus(url: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'graphql-transport-ws');
    ws.once('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      ws.terminate();
    });
    ws.once('error', (err) => reject(err));
  });
}

describe('connection limits (WebSockets per instance, database pool)', function () {
  let server: TestServer;
  let token: string;
  const clients: WsHandle[] = [];

  before(async () => {
    server = await startTestServer({ env: { PLANNER_MAX_WS_CONNECTIONS: '2', PLANNER_DB_POOL_SIZE: '3' } });
    token = await server.token(`ws-limit-${randomUUID()}@example.com`);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await server.close();
  });

  it('answers 503 (Retry-After) to the connection over PLANNER_MAX_WS_CONNECTIONS; a closed one frees its place', async () => {
    for (let i = 0; i < 2; i++) {
      const c = wsClient(server.wsUrl, token);
      clients.push(c);
      await c.connected;
    }
    expect(await upgradeStatus(server.wsUrl)).to.deep.equal({ status: 503, retryAfter: '5' });

    await clients.shift()!.dispose();
    // The server notices the close asynchronously: poll (bounded) until an upgrade is accepted.
    const deadline = Date.now() + 10_000;
    let last = await upgradeStatus(server.wsUrl);
    while (last.status !== 101 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      last = await upgradeStatus(server.wsUrl);
    }
    expect(last.status).to.equal(101);
  });

  it('sizes the Postgres pool from PLANNER_DB_POOL_SIZE', () => {
    const driver = server.world.dataSource.driver as unknown as { master: { options: { max: number } } };
    expect(server.config.dbPoolSize).to.equal(3);
    expect(driver.master.options.max).to.equal(3);
  });
});
