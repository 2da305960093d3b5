/**
 * PLANNER_EVENTS_DATABASE_URL (docs/scaling.md, PgBouncer in transaction mode): the event hub's
 * LISTEN connection goes there, and only it; events still cross instances through it.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { collect, gql, wsClient, type WsHandle } from '../support/graphql';
import { testDatabaseUrl } from '../support/db';
import { startTestServer, type TestServer } from '../support/server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

describe('PLANNER_EVENTS_DATABASE_URL: the LISTEN connection on its own URL', function () {
  let writer: TestServer;
  let reader: TestServer;
  let proxy: TcpProxy;
  let ws: WsHandle | null = null;

  before(async () => {
    writer = await startTestServer();
    const target = new URL(testDatabaseUrl());
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    reader = await startTestServer({ env: { PLANNER_EVENTS_DATABASE_URL: proxy.urlFor(testDatabaseUrl()) } });
  });
  after(async () => {
    await ws?.dispose();
    await reader?.close();
    await writer?.close();
    await proxy?.close();
  });

  it('listens through that URL alone and delivers another instance’s events', async () => {
    const email = `events-url-${randomUUID()}@example.com`;
    const token = await writer.token(email);
    ws = wsClient(reader.wsUrl, await reader.token(email));
    await ws.connected;
    const sub = collect<{ planEvents: { type: string } }>(ws.client, {
      query: 'subscription { planEvents { type } }',
    });
    await reader.events.waitForSubscriptionCount(1);
    const r = await gql(writer.url, token, 'mutation { createTask(input: {title: "hello"}) { ok } }');
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    const [first] = await sub.take(1);
    expect(first!.data!.planEvents.type).to.be.a('string');
    sub.stop();
    expect(proxy.connections.map((c) => c.applicationName)).to.deep.equal(['planner-events']);
  });
});
