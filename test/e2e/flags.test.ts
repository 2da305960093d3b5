/**
 * Flags end to end: the `features` query of a running server, and the `planner features` CLI
 * (a real child process) changing that server's answer within the 5 s the product promises —
 * checked by re-querying each time the server reports an applied payload, up to that bound, never by
 * sleeping. Remote mode: a server on a local fake GrowthBook, through its outage.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runFeatures } from '../../src/cli/features';
import { EXPERIMENTS, FEATURE_KEYS, FLAGS } from '../../src/flags/keys';
import { defaultPayload } from '../../src/flags/payload';
import { disable } from '../../src/flags/admin';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { startFakeGrowthBook } from '../support/fake-growthbook';
import { gql } from '../support/graphql';
import { childEnv, run } from '../support/process';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

interface Evaluation {
  key: string;
  on: boolean;
  value: unknown;
  variant: string | null;
  source: string;
}

const FEATURES = '{ features { key on value variant source } }';

async function features(server: TestServer, token: string): Promise<Evaluation[]> {
  const r = await gql<{ features: Evaluation[] }>(server.url, token, FEATURES);
  expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
  return r.data!.features;
}

function find(list: Evaluation[], key: string): Evaluation {
  const e = list.find((x) => x.key === key);
  if (!e) throw new Error(`no ${key} in ${JSON.stringify(list)}`);
  return e;
}

/**
 * Re-queries `features` whenever the server applies a payload, until `done` holds or `boundMs` has
 * passed since `since`. Returns the elapsed ms when it held; fails the test at the bound.
 */
async function within(
  server: TestServer,
  token: string,
  since: number,
  boundMs: number,
  done: (list: Evaluation[]) => boolean,
): Promise<number> {
  for (;;) {
    let wake!: () => void;
    const applied = new Promise<void>((resolve) => (wake = resolve));
    const unsubscribe = server.flags.service.onApplied(() => wake());
    try {
      if (done(await features(server, token))) return Date.now() - since;
      const left = boundMs - (Date.now() - since);
      if (left <= 0) throw new Error(`not within ${boundMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([applied, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    } finally {
      unsubscribe();
    }
  }
}

describe('flags (e2e)', function () {
  this.timeout(90_000);
  let scratch: ScratchDatabase;
  let server: TestServer;

  const cli = (...args: string[]) =>
    run(
      process.execPath,
      ['bin/planner.js', 'features', ...args],
      childEnv({ DATABASE_URL: scratch.url, PLANNER_JWT_SECRET: TEST_JWT_SECRET }),
    );

  before(async () => {
    scratch = await createScratchDatabase();
    server = await startTestServer({ env: { DATABASE_URL: scratch.url } }); // default poll period (1 s)
  });
  after(async () => {
    await server.close();
    await scratch.drop();
  });

  it('`features` answers the caller’s evaluations with variant and source, and records the exposure once', async () => {
    const token = await server.token(`flags-${randomUUID()}@example.com`);
    const list = await features(server, token);
    expect(list.map((e) => e.key)).to.deep.equal([...FEATURE_KEYS]);
    for (const key of Object.values(FLAGS)) {
      expect(find(list, key)).to.deep.equal({
        key,
        on: true,
        value: true,
        variant: null,
        source: 'defaultValue',
      });
    }
    const ranking = find(list, EXPERIMENTS.ALTERNATIVE_RANKING);
    expect(ranking.source).to.equal('experiment');
    expect(ranking.variant).to.be.oneOf(['current', 'smallest_move']);
    expect(ranking.value).to.equal(ranking.variant);
    expect(await features(server, token)).to.deep.equal(list); // deterministic

    await server.flags.recorder.flush();
    const me = await gql<{ me: { id: string } }>(server.url, token, '{ me { id } }');
    const rows = (await server.world.dataSource.query(
      `SELECT experiment, variant FROM experiment_exposures WHERE user_id = $1`,
      [me.data!.me.id],
    )) as unknown[];
    expect(rows).to.deep.equal([{ experiment: EXPERIMENTS.ALTERNATIVE_RANKING, variant: ranking.variant }]);

    const anonymous = await gql(server.url, null, FEATURES);
    expect(anonymous.errors?.[0]?.extensions?.code).to.equal('UNAUTHENTICATED');
  });

  it('`planner features disable|enable|phase` change the running server’s answer within 5 s, with an audit trail', async () => {
    const token = await server.token(`cli-${randomUUID()}@example.com`);
    expect(find(await features(server, token), FLAGS.UNDO).on).to.equal(true);

    const off = await cli('disable', FLAGS.UNDO, '--actor', 'e2e-operator');
    expect(off.code, off.stderr).to.equal(0);
    expect(off.stdout).to.match(/^undo: off/m);
    const tookOff = await within(server, token, Date.now(), 5000, (l) => !find(l, FLAGS.UNDO).on);
    expect(tookOff).to.be.below(5000);

    const on = await cli('enable', FLAGS.UNDO, '--actor', 'e2e-operator');
    expect(on.code, on.stderr).to.equal(0);
    await within(server, token, Date.now(), 5000, (l) => find(l, FLAGS.UNDO).on);

    const phase = await cli('phase', '1', '--actor', 'e2e-operator');
    expect(phase.code, phase.stderr).to.equal(0);
    await within(server, token, Date.now(), 5000, (l) => !find(l, FLAGS.LANGGRAPH_TOOLS).on);
    const after = await features(server, token);
    expect(
      after.filter((e) => e.key !== EXPERIMENTS.ALTERNATIVE_RANKING && e.on).map((e) => e.key),
    ).to.deep.equal([FLAGS.ENHANCED_MODELS]);

    const list = await cli('list', '--json');
    expect(list.code, list.stderr).to.equal(0);
    const listed = JSON.parse(list.stdout) as {
      source: string;
      version: number;
      updatedBy: string;
      features: Array<{ key: string; state: string }>;
    };
    expect(listed).to.deep.include({ source: 'database', updatedBy: 'e2e-operator' });
    expect(listed.features.map((f) => [f.key, f.state])).to.deep.equal([
      ['enhanced_models', 'on'],
      ['logging_hooks', 'off'],
      ['undo', 'off'],
      ['conflict_resolution', 'off'],
      ['semantic_memory', 'off'],
      ['langgraph_tools', 'off'],
      ['alternative_ranking', 'on'],
    ]);
    const table = await cli('list');
    expect(table.stdout).to.match(/^KEY\s+KIND\s+PHASE\s+STATE\s+TARGETING$/m);
    expect(table.stdout).to.match(/^undo\s+flag\s+2\s+off\s+off for everyone$/m);

    const audit = await cli('audit', '--json', '--limit', '3');
    expect(audit.code, audit.stderr).to.equal(0);
    const entries = JSON.parse(audit.stdout) as Array<{
      actor: string;
      command: string;
      version: number;
      at: string;
    }>;
    expect(entries.map((e) => [e.actor, e.command])).to.deep.equal([
      ['e2e-operator', 'features phase 1'],
      ['e2e-operator', 'features enable undo'],
      ['e2e-operator', 'features disable undo'],
    ]);
    expect(entries[0]!.version).to.equal(listed.version);

    // Without --actor the OS user is recorded.
    const mine = await cli('phase', '4');
    expect(mine.code, mine.stderr).to.equal(0);
    const [last] = JSON.parse((await cli('audit', '--json', '--limit', '1')).stdout) as Array<{
      actor: string;
    }>;
    expect(last!.actor).to.equal(`os:${os.userInfo().username}`);
    await within(server, token, Date.now(), 5000, (l) => l.every((e) => e.on));
  });

  it('the CLI refuses bad usage (exit 2) and a malformed payload (exit 1), changing nothing', async () => {
    const before = JSON.parse((await cli('list', '--json')).stdout) as { version: number };
    const one = await cli('enable', 'nope');
    expect(one.code, one.stderr).to.equal(2);
    expect(one.stderr).to.match(/unknown feature "nope"/);
    expect(one.stderr).to.contain('usage:');
    // The other shapes of bad usage in-process (same code path, no process start-up).
    for (const args of [
      [],
      ['frobnicate'],
      ['enable'],
      ['enable', 'nope'],
      ['enable', FLAGS.UNDO, '--percent', '120'],
      ['enable', FLAGS.UNDO, '--users', 'bob'],
      ['enable', FLAGS.UNDO, '--attribute', 'plan=pro'],
      ['disable', FLAGS.UNDO, FLAGS.UNDO],
      ['phase', '5'],
      ['list', '--percent', '3'],
    ]) {
      const err: string[] = [];
      const code = await runFeatures(
        args,
        { DATABASE_URL: scratch.url },
        { out: () => undefined, err: (l) => err.push(l) },
      );
      expect(code, `${args.join(' ')}: ${err.join('\n')}`).to.equal(2);
      expect(err.join('\n')).to.contain('usage:');
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-flags-'));
    try {
      const bad = path.join(dir, 'bad.json');
      fs.writeFileSync(bad, JSON.stringify({ features: { undo: { defaultValue: 'yes' } } }));
      const r = await cli('import', bad);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(
        /refused: malformed features payload from .*bad\.json: features\.undo\.defaultValue: expected a boolean/,
      );
      expect(r.stderr).to.match(/the payload in force is unchanged/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const afterward = JSON.parse((await cli('list', '--json')).stdout) as { version: number };
    expect(afterward.version).to.equal(before.version);
  });

  it('remote mode: the server follows a GrowthBook endpoint, keeps the last good payload through its outage, and the CLI refuses to edit', async () => {
    const gb = await startFakeGrowthBook();
    const remoteScratch = await createScratchDatabase();
    try {
      gb.answer(disable(defaultPayload(), FLAGS.UNDO));
      const remote = await startTestServer({
        env: {
          DATABASE_URL: remoteScratch.url,
          GROWTHBOOK_API_HOST: gb.apiHost,
          GROWTHBOOK_CLIENT_KEY: gb.clientKey,
          GROWTHBOOK_REFRESH_MS: '200',
        },
      });
      try {
        const token = await remote.token(`remote-${randomUUID()}@example.com`);
        expect(find(await features(remote, token), FLAGS.UNDO).on).to.equal(false);

        await gb.stop();
        const failedBefore = remote.flags.remote!.failures;
        // Outage: wait (bounded) for two failed refreshes; the answer stays the last good one.
        await new Promise<void>((resolve, reject) => {
          const deadline = Date.now() + 5000;
          const check = () => {
            if (remote.flags.remote!.failures >= failedBefore + 2) return resolve();
            if (Date.now() > deadline) return reject(new Error('no refresh attempts during the outage'));
            void remote.flags.remote!.refresh().then(check);
          };
          check();
        });
        expect(find(await features(remote, token), FLAGS.UNDO).on).to.equal(false);

        await gb.restart();
        gb.answer(defaultPayload());
        await within(remote, token, Date.now(), 5000, (l) => find(l, FLAGS.UNDO).on);

        const edit = await run(
          process.execPath,
          ['bin/planner.js', 'features', 'disable', FLAGS.UNDO],
          childEnv({
            DATABASE_URL: remoteScratch.url,
            PLANNER_JWT_SECRET: TEST_JWT_SECRET,
            GROWTHBOOK_API_HOST: gb.apiHost,
            GROWTHBOOK_CLIENT_KEY: gb.clientKey,
          }),
        );
        expect(edit.code).to.equal(1);
        expect(edit.stderr).to.match(/remote mode: GROWTHBOOK_API_HOST is set/);
      } finally {
        await remote.close();
      }
    } finally {
      await gb.close();
      await remoteScratch.drop();
    }
  });
});
