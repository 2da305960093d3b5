/**
 * The WebSocket layer on its own (src/server/websocket.ts) with a tiny schema whose subscription
 * stays open until stopped, so that per-connection limits can be observed deterministically.
 */
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { AuthContext, GraphQLContext } from '../../src/resolvers';
import { createFormatError } from '../../src/server/errors';
import { buildLimitRules } from '../../src/server/limits';
import { silentLogger } from '../../src/server/logger';
import {
  createWebSocketServer,
  WS_MAX_PAYLOAD,
  type GraphQLWebSocketServer,
} from '../../src/server/websocket';
import { ManualClock } from '../../src/world/clock';
import { collect, SubscriptionError, wsClient, wsRequest } from '../support/graphql';

/** An async iterator that yields once, then waits until `return()` (which resolves at once). */
function openStream(): AsyncIterableIterator<{ forever: number }> {
  let finished = false;
  let release: (() => void) | null = null;
  let yielded = false;
  const it: AsyncIterableIterator<{ forever: number }> = {
    [Symbol.asyncIterator]: () => it,
    next: () => {
      if (finished) return Promise.resolve({ done: true, value: undefined });
      if (!yielded) {
        yielded = true;
        return Promise.resolve({ done: false, value: { forever: 1 } });
      }
      return new Promise((resolve) => {
        release = () => resolve({ done: true, value: undefined });
      });
    },
    return: () => {
      finished = true;
      release?.();
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return it;
}

const schema = makeExecutableSchema({
  typeDefs: 'type Query { hello: String } type Subscription { forever: Int }',
  resolvers: {
    Query: { hello: () => 'world' },
    Subscription: { forever: { subscribe: () => openStream() } },
  },
});

describe('websocket layer (e2e, stub schema)', () => {
  const clock = new ManualClock('2030-01-01T00:00:00Z');
  const expiresAt = Math.floor(clock.now().getTime() / 1000) + 60;
  let server: http.Server;
  let ws: GraphQLWebSocketServer;
  let url: string;

  before(async () => {
    ws = createWebSocketServer({
      schema,
      authenticate: (value): AuthContext | null =>
        value === 'Bearer good' ? { userId: 'u1', actor: 'user:u1', role: 'USER', expiresAt } : null,
      now: () => clock.now(),
      context: (auth) => ({ auth, world: null, loaders: null }) as unknown as GraphQLContext,
      limits: buildLimitRules(),
      noIntrospection: false,
      maxOperationsPerConnection: 2,
      maxBufferedBytes: 4 * 1024 * 1024,
      maxConnections: 1000,
      formatError: createFormatError({ devMode: false, log: silentLogger }),
      production: false,
      log: silentLogger,
    });
    server = http.createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head: Buffer) => ws.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });
  after(async () => {
    await ws.close(1000);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('caps concurrent operations per connection (RATE_LIMITED), freeing a slot when one ends', async () => {
    const c = wsClient(url, null, { authorization: 'Bearer good' });
    try {
      await c.connected;
      const a = collect(c.client, { query: 'subscription { forever }' });
      const b = collect(c.client, { query: 'subscription { forever }' });
      await a.take(1);
      await b.take(1);
      const third = collect(c.client, { query: 'subscription { forever }' });
      const err = await third.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(SubscriptionError);
      expect((err as SubscriptionError).errors).to.deep.equal([
        { message: 'At most 2 concurrent operations per connection.', extensions: { code: 'RATE_LIMITED' } },
      ]);
      a.stop();
      const d = collect(c.client, { query: 'subscription { forever }' });
      const first = await d.take(1);
      expect(first[0]?.data).to.deep.equal({ forever: 1 });
      b.stop();
      d.stop();
    } finally {
      await c.dispose();
    }
  });

  it('closes with 4401 when an operation arrives after the token expired', async () => {
    const c = wsClient(url, null, { authorization: 'Bearer good' });
    try {
      await c.connected;
      expect((await wsRequest<{ hello: string }>(c.client, '{ hello }')).data).to.deep.equal({
        hello: 'world',
      });
      clock.advance(60_000);
      const req = wsRequest(c.client, '{ hello }').catch(() => undefined);
      expect((await c.closed).code).to.equal(4401);
      await req;
    } finally {
      clock.set('2030-01-01T00:00:00Z');
      await c.dispose();
    }
  });

  it(`closes with 1009 on a message over ${WS_MAX_PAYLOAD} bytes`, async () => {
    const c = wsClient(url, null, { authorization: 'Bearer good' });
    try {
      await c.connected;
      const req = wsRequest(c.client, `{ hello } # ${'x'.repeat(WS_MAX_PAYLOAD)}`).catch(() => undefined);
      expect((await c.closed).code).to.equal(1009);
      await req;
    } finally {
      await c.dispose();
    }
  });
});
