/**
 * The row cost limit end to end, on both transports of a started server: the dashboard query
 * passes, nested lists that would produce millions of rows are refused with QUERY_TOO_COMPLEX before
 * anything runs, and the verdict follows the variables (the same document with another `first`).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { collect, gql, SubscriptionError, wsClient, wsRequest, type GqlResponse } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const DASHBOARD = `{ conflicts(status: OPEN, first: 100) { edges { node { id kind tasks { id title }
  alternatives { id description score } } } } }`;
/** 100 × (1 + 50 × (1 + 50 × (1 + 50))) ≈ 12.8 million rows, at depth 7. */
const MILLIONS = '{ tasks(first: 100) { edges { node { dependsOn { dependsOn { dependsOn { id } } } } } } }';
/** n × (1 + 50 × 51): 25,510 rows for n = 10, 255,100 for n = 100. */
const BY_VARIABLE =
  'query($n: Int) { tasks(first: $n) { edges { node { id dependsOn { dependsOn { id } } } } } }';
/** 1 + 20 × (1 + 50 × (1 + 50 × (1 + 10))) = 551,021 rows per event. */
const COSTLY_SUBSCRIPTION =
  'subscription { conflictEvents { conflict { tasks { dependsOn { dependsOn { conflicts { id } } } } } } }';

const codes = (r: { errors?: ReadonlyArray<{ extensions?: Record<string, unknown> }> }) =>
  (r.errors ?? []).map((e) => e.extensions?.['code']);

describe('row cost limit (HTTP and WebSocket)', function () {
  let server: TestServer;
  let token: string;

  before(async () => {
    server = await startTestServer();
    token = await server.token(`limits-${randomUUID()}@example.com`);
    // A few OPEN conflicts, so the dashboard has rows to return.
    for (let i = 0; i < 3; i++) {
      const r = await gql(
        server.url,
        token,
        `mutation($input: CreateTaskInput!) { createTask(input: $input) { ok } }`,
        {
          input: {
            title: `slot ${i}`,
            scheduledStart: '2026-12-01T10:00:00Z',
            scheduledEnd: '2026-12-01T11:00:00Z',
          },
        },
      );
      expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    }
  });
  after(async () => server.close());

  it('HTTP: the dashboard query passes', async () => {
    const r: GqlResponse<{
      conflicts: { edges: Array<{ node: { tasks: unknown[]; alternatives: unknown[] } }> };
    }> = await gql(server.url, token, DASHBOARD);
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    expect(r.data!.conflicts.edges.length).to.be.at.least(3);
    expect(r.data!.conflicts.edges[0]!.node.tasks).to.have.length(2);
  });

  it('HTTP: millions of rows are refused with QUERY_TOO_COMPLEX (400, nothing executed)', async () => {
    const r = await gql(server.url, token, MILLIONS);
    expect(r.status).to.equal(400);
    expect(codes(r)).to.deep.equal(['QUERY_TOO_COMPLEX']);
    expect(r.errors![0]!.message).to.match(/cost 12\d{6} .*limit of 100000/);
    expect(r.data).to.equal(undefined);
  });

  it('HTTP: the verdict follows the variables', async () => {
    const small = await gql(server.url, token, BY_VARIABLE, { n: 10 });
    expect(small.errors, JSON.stringify(small.errors)).to.equal(undefined);
    const large = await gql(server.url, token, BY_VARIABLE, { n: 100 });
    expect(codes(large)).to.deep.equal(['QUERY_TOO_COMPLEX']);
    expect(large.errors![0]!.message).to.match(/cost 255100/);
  });

  it('HTTP: a mutation over the limit writes nothing', async () => {
    const before = await gql<{ tasks: { edges: unknown[] } }>(
      server.url,
      token,
      '{ tasks(first: 100) { edges { cursor } } }',
    );
    const r = await gql(
      server.url,
      token,
      `mutation { createTask(input: { title: "never" }) { ok tasks { dependsOn { dependsOn { id } } } } }`,
    );
    expect(codes(r)).to.deep.equal(['QUERY_TOO_COMPLEX']);
    const after = await gql<{ tasks: { edges: unknown[] } }>(
      server.url,
      token,
      '{ tasks(first: 100) { edges { cursor } } }',
    );
    expect(after.data!.tasks.edges.length).to.equal(before.data!.tasks.edges.length);
  });

  it('WebSocket: the same limit on queries and on subscribe; the dashboard and a live subscription pass', async () => {
    const c = wsClient(server.wsUrl, token);
    try {
      await c.connected;
      const refused = (query: string, variables?: Record<string, unknown>) =>
        wsRequest(c.client, query, variables).then(
          () => null,
          (e: unknown) => e as { errors?: Array<{ message: string; extensions?: Record<string, unknown> }> },
        );
      const dashboard = await wsRequest(c.client, DASHBOARD);
      expect(dashboard.errors, JSON.stringify(dashboard.errors)).to.equal(undefined);

      const millions = await refused(MILLIONS);
      expect(millions?.errors?.map((e) => e.extensions?.['code'])).to.deep.equal(['QUERY_TOO_COMPLEX']);
      expect((await wsRequest(c.client, BY_VARIABLE, { n: 10 })).errors).to.equal(undefined);
      const large = await refused(BY_VARIABLE, { n: 100 });
      expect(large?.errors?.[0]?.message).to.match(/cost 255100/);

      const costly = collect(c.client, { query: COSTLY_SUBSCRIPTION });
      const err = await costly.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(SubscriptionError);
      const errors = (err as SubscriptionError).errors as Array<{ extensions?: Record<string, unknown> }>;
      expect(errors.map((e) => e.extensions?.['code'])).to.deep.equal(['QUERY_TOO_COMPLEX']);

      // Within the limit, a subscription goes live: the next overlap arrives with its tasks.
      const live = collect<{ conflictEvents: { type: string; conflict: { tasks: Array<{ id: string }> } } }>(
        c.client,
        {
          query:
            'subscription { conflictEvents { type conflict { id tasks { id title } alternatives { id } } } }',
        },
      );
      const made = await gql(
        server.url,
        token,
        `mutation { createTask(input: { title: "live", scheduledStart: "2026-12-02T10:00:00Z", scheduledEnd: "2026-12-02T11:00:00Z" }) { ok } }`,
      );
      expect(made.errors).to.equal(undefined);
      const again = await gql(
        server.url,
        token,
        `mutation { createTask(input: { title: "live 2", scheduledStart: "2026-12-02T10:30:00Z", scheduledEnd: "2026-12-02T11:30:00Z" }) { ok } }`,
      );
      expect(again.errors).to.equal(undefined);
      const [event] = await live.take(1);
      expect(event!.errors).to.equal(undefined);
      expect(event!.data!.conflictEvents.conflict.tasks.length).to.be.at.least(1);
      live.stop();
    } finally {
      await c.dispose();
    }
  });
});
