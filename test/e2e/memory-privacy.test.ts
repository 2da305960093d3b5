/**
 * Memory and privacy end to end (issue 14): over HTTP a user remembers a fact, recalls it, and sees
 * it in `exportMyData`; `planner export --email --out` writes every kind of data held about them;
 * `planner forget --email` erases the account with its cascade (the operation log's append-only
 * guard allows exactly this), after which neither the user's id nor the canary is anywhere in the
 * database, and another user's data is untouched.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { run as runCli } from '../../src/cli/main';
import { testDatabaseUrl } from '../support/db';
import { gql } from '../support/graphql';
import { findEverywhere } from '../support/memory';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

const env = () => ({
  NODE_ENV: 'test',
  DATABASE_URL: testDatabaseUrl(),
  PLANNER_JWT_SECRET: TEST_JWT_SECRET,
  LOG_LEVEL: 'silent',
});

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, env(), { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('memory and privacy: remember over HTTP, planner export, planner forget (issue 14)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startTestServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'planner-export-'));
  });
  after(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('exports every kind of data held about the user, then erases the account completely', async () => {
    const email = `privacy-${randomUUID()}@example.com`;
    const token = await server.token(email);
    const other = await server.token(`bystander-${randomUUID()}@example.com`);
    const canary = `canary-${randomUUID()}`;
    const q = <T>(query: string, variables?: Record<string, unknown>, t = token) =>
      gql<T>(server.url, t, query, variables);

    const goal = await q<{ createGoal: { goal: { id: string } } }>(
      `mutation { createGoal(input: { title: "Fitness" }) { goal { id } } }`,
    );
    const goalId = goal.data!.createGoal.goal.id;
    await q(
      `mutation($g: ID!) { createTask(input: { title: "Team meeting", goalId: $g, scheduledStart: "2030-01-07T09:00:00Z", scheduledEnd: "2030-01-07T10:00:00Z" }) { ok } }`,
      { g: goalId },
    );
    const clash = await q<{ createTask: { conflicts: Array<{ id: string }> } }>(
      `mutation { createTask(input: { title: "Gym", scheduledStart: "2030-01-07T09:30:00Z", scheduledEnd: "2030-01-07T10:30:00Z" }) { conflicts { id } } }`,
    );
    expect(clash.data!.createTask.conflicts).to.have.length(1);
    const remembered = await q<{
      remember: { ok: boolean; memory: Array<{ memoryId: string; text: string; effect: string }> };
    }>(`mutation($t: String!) { remember(text: $t) { ok memory { memoryId text effect } } }`, {
      t: `My locker code is ${canary}`,
    });
    expect(remembered.data!.remember.ok).to.equal(true);
    await q(`mutation { updateSettings(input: { timeZone: "Europe/Paris" }) { ok } }`);
    await q(`{ features { key variant } }`); // exposes the experiment (recorded by the flags recorder)
    await q(`mutation($t: String!) { remember(text: $t) { ok } }`, { t: 'the bystander plays chess' }, other);

    const recalled = await q<{ memories: Array<{ id: string; text: string; kind: string; score: number }> }>(
      `{ memories(query: "locker code", first: 5) { id kind text score createdAt } }`,
    );
    expect(recalled.data!.memories.map((m) => m.text)).to.deep.equal([`My locker code is ${canary}`]);

    const me = (await q<{ me: { id: string } }>(`{ me { id } }`)).data!.me.id;
    // Usage and exposures are recorded off the request path: write them now.
    await server.flags.recorder.flush();
    const ds = server.world.dataSource as DataSource;
    await ds.query(
      `INSERT INTO feature_usage (user_id, day, metric, experiment, variant, count) VALUES ($1, '2030-01-07', 'memory_consulted', 'alternative_ranking', 'current', 1)
       ON CONFLICT DO NOTHING`,
      [me],
    );

    const file = path.join(dir, 'export.json');
    const exported = await cli('export', '--email', email, '--out', file);
    expect(exported.code, exported.err.join('\n')).to.equal(0);
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    const data = JSON.parse(await readFile(file, 'utf8')) as Record<
      string,
      unknown[] | Record<string, unknown>
    >;
    for (const kind of [
      'tasks',
      'goals',
      'operations',
      'conflicts',
      'memories',
      'flags',
      'exposures',
      'featureUsage',
    ])
      expect(data[kind], kind).to.be.an('array').that.is.not.empty;
    expect(data.settings).to.include({ timeZone: 'Europe/Paris' });
    expect(JSON.stringify(data.memories)).to.include(canary);
    expect(JSON.stringify(data)).not.to.include('bystander');
    // The query returns the same document.
    const viaQuery = await q<{ exportMyData: Record<string, unknown[]> }>(`{ exportMyData }`);
    expect(viaQuery.data!.exportMyData.memories).to.have.length(1);
    // An existing file is never overwritten.
    expect((await cli('export', '--email', email, '--out', file)).code).to.equal(1);

    // Without the erasure setting, the audit trail refuses deletion and says how an account is erased.
    const raw = new Client({ connectionString: testDatabaseUrl() });
    await raw.connect();
    try {
      let refused: unknown;
      try {
        await raw.query(`DELETE FROM operations WHERE user_id = $1`, [me]);
      } catch (e) {
        refused = e;
      }
      expect(String(refused)).to.match(/append-only/);
      expect((refused as { hint?: string }).hint).to.match(/planner forget/);
    } finally {
      await raw.end();
    }

    const forgot = await cli('forget', '--email', email);
    expect(forgot.code, forgot.err.join('\n')).to.equal(0);
    expect(forgot.out[0]).to.match(/^erased .* operations \d+, .*memory_items 1/);
    expect(await findEverywhere(ds, me)).to.deep.equal([]);
    expect(await findEverywhere(ds, canary)).to.deep.equal([]);
    // The token no longer reaches anything; the bystander keeps everything.
    const bystander = await q<{ memories: Array<{ text: string }> }>(
      `{ memories { text } }`,
      undefined,
      other,
    );
    expect(bystander.data!.memories.map((m) => m.text)).to.deep.equal(['the bystander plays chess']);
    expect((await cli('forget', '--email', email)).code).to.equal(1);
    expect((await cli('forget')).code).to.equal(2);
    expect((await cli('export', '--email')).code).to.equal(2);
  });
});
