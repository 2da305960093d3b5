import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { gql } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

interface R {
  ok: boolean;
  replayed: boolean;
  operation: { id: string; kind: string } | null;
  errors: Array<{ code: string; path: string[] | null }>;
}

describe('idempotency keys on every mutation', function () {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => server.close());

  it('a retried undo with the same key undoes once', async () => {
    const token = await server.token(`idem-undo-${randomUUID()}@example.com`);
    const titles = ['one', 'two'];
    for (const t of titles) {
      await gql(server.url, token, `mutation($t: String!) { createTask(input: { title: $t }) { ok } }`, {
        t,
      });
    }
    const undo = () =>
      gql<{ undo: R }>(
        server.url,
        token,
        `mutation { undo(idempotencyKey: "undo-1") { ok replayed operation { id kind } errors { code } } }`,
      );
    const first = await undo();
    const again = await undo();
    expect(first.data!.undo.ok).to.equal(true);
    expect(again.data!.undo).to.deep.include({ ok: true, replayed: true });
    expect(again.data!.undo.operation!.id).to.equal(first.data!.undo.operation!.id);
    const left = await gql<{ tasks: { edges: Array<{ node: { title: string } }> } }>(
      server.url,
      token,
      `{ tasks { edges { node { title } } } }`,
    );
    expect(left.data!.tasks.edges.map((e) => e.node.title)).to.deep.equal(['one']);
  });

  it('covers goals, deletes and settings, and tells a reused key with another request apart', async () => {
    const token = await server.token(`idem-misc-${randomUUID()}@example.com`);
    const goal = () =>
      gql<{ createGoal: R }>(
        server.url,
        token,
        `mutation { createGoal(input: { title: "G" }, idempotencyKey: "g") { ok replayed operation { id } } }`,
      );
    const g1 = await goal();
    const g2 = await goal();
    expect(g2.data!.createGoal.replayed).to.equal(true);
    expect(g2.data!.createGoal.operation!.id).to.equal(g1.data!.createGoal.operation!.id);
    const goals = await gql<{ goals: { edges: unknown[] } }>(
      server.url,
      token,
      `{ goals { edges { cursor } } }`,
    );
    expect(goals.data!.goals.edges).to.have.length(1);

    const settings = (cap: number) =>
      gql<{ updateSettings: R }>(
        server.url,
        token,
        `mutation($c: Int) { updateSettings(input: { dailyCapacityMinutes: $c }, idempotencyKey: "s") { ok replayed errors { code path } } }`,
        { c: cap },
      );
    expect((await settings(300)).data!.updateSettings.ok).to.equal(true);
    expect((await settings(300)).data!.updateSettings.replayed).to.equal(true);
    const other = await settings(200);
    expect(other.data!.updateSettings.errors[0]).to.deep.equal({
      code: 'VALIDATION',
      path: ['idempotencyKey'],
    });
    const me = await gql<{ me: { dailyCapacityMinutes: number } }>(
      server.url,
      token,
      `{ me { dailyCapacityMinutes } }`,
    );
    expect(me.data!.me.dailyCapacityMinutes).to.equal(300);
  });
});
