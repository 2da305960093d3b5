/**
 * `planner rollout report|check` over figures written the way instances write them (the
 * RolloutCollector's upsert, two collectors adding to the same rows), on a scratch database:
 * the table and JSON report, an error-rate breach by the z-test, remote mode refusing --enforce,
 * usage errors.
 */
import { expect } from 'chai';
import { runRollout } from '../../src/cli/rollout';
import { createDataSource, migrateUp } from '../../src/db/data-source';
import { FeatureStore } from '../../src/flags/store';
import { RolloutCollector, type OperationSample } from '../../src/telemetry/rollout';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { TEST_JWT_SECRET } from '../support/server';

function sample(key: string, variant: string, durationMs: number, error = false): OperationSample {
  return {
    instanceId: null,
    kind: 'createTask',
    endedAtMs: Date.parse('2026-11-30T10:00:30Z'),
    durationMs,
    error,
    flags: [{ key, variant }],
  };
}

describe('planner rollout (CLI)', function () {
  this.timeout(60_000);
  let db: ScratchDatabase;
  const env = (extra: Record<string, string> = {}) => ({
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    PLANNER_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
    ...extra,
  });
  async function cli(args: string[], extra: Record<string, string> = {}) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runRollout(args, env(extra), { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  beforeEach(async () => {
    db = await createScratchDatabase();
    const ds = createDataSource(db.url, { poolSize: 2 });
    await ds.initialize();
    try {
      await migrateUp(ds);
      await new FeatureStore(ds).ensureSeeded();
      // Two instances' collectors add to the same rows: flag "undo" on 150 ok + 150 with 12 % errors
      // vs off 150 with 1 error.
      const a = new RolloutCollector(ds, { flushIntervalMs: 0 });
      const b = new RolloutCollector(ds, { flushIntervalMs: 0 });
      for (let i = 0; i < 150; i++) {
        a.record(sample('undo', 'on', 10 + (i % 5), i % 8 === 0));
        b.record(sample('undo', 'off', 10 + (i % 5), i === 0));
      }
      await Promise.all([a.flush(), b.flush()]);
    } finally {
      await ds.destroy();
    }
  });
  afterEach(async () => {
    await db.drop();
  });

  it('reports per variant as a table and as JSON', async () => {
    const table = await cli(['report', 'undo']);
    expect(table.code, table.err).to.equal(0);
    expect(table.out).to.match(/undo\s+2\s+on\s+on\s+150\s+12\.67%/);
    expect(table.out).to.match(/undo\s+2\s+on\s+off \(control\)\s+150\s+0\.67%/);
    const json = await cli(['report', '--json']);
    const undo = (
      JSON.parse(json.out) as {
        features: Array<{ key: string; variants: Array<{ variant: string; count: number; errors: number }> }>;
      }
    ).features.find((f) => f.key === 'undo')!;
    expect(undo.variants.map((v) => [v.variant, v.count, v.errors])).to.deep.equal([
      ['off', 150, 1],
      ['on', 150, 19],
    ]);
  });

  it('an error rate beyond noise (two-proportion z-test) is a breach; exit 1', async () => {
    const r = await cli(['check', 'undo']);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(
      /^undo: breach - on vs off: breach \(error_rate: errors 19\/150 vs 1\/150 \(z=4\.\d\d/,
    );
    // With a minimum sample above what exists it is insufficient instead, and exits 0.
    const few = await cli(['check', 'undo', '--min-sample', '500']);
    expect(few.code).to.equal(0);
    expect(few.out).to.match(/^undo: insufficient/);
  });

  it('with a remote GrowthBook, --enforce writes nothing and says the change must be made there', async () => {
    const r = await cli(['check', '--enforce'], {
      GROWTHBOOK_API_HOST: 'http://127.0.0.1:9',
      GROWTHBOOK_CLIENT_KEY: 'sdk-test',
    });
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/remote mode: .*nothing was changed here\. Make the change there: turn undo off/);
    const report = await cli(['report', '--json']);
    expect((JSON.parse(report.out) as { rollbacks: unknown[] }).rollbacks).to.deep.equal([]);
  });

  it('--enforce turns a breaching flag off and records the rollback', async () => {
    const r = await cli(['check', '--enforce', '--actor', 'oncall']);
    expect(r.code).to.equal(1);
    expect(r.out).to.match(/rollback undo: turned off \(payload version 2/);
    const raw = await cli(['report', 'undo', '--json']);
    const report = JSON.parse(raw.out) as {
      features: Array<{ state: string }>;
      rollbacks: Array<{ actor: string; command: string }>;
    };
    expect(report.features[0]!.state).to.equal('off');
    expect(report.rollbacks[0]!.actor).to.equal('rollout:guardrail:oncall');
    expect(report.rollbacks[0]!.command).to.match(/^rollout check --enforce: undo breach: .*error_rate/);
  });

  it('refuses bad usage with exit 2', async () => {
    expect((await cli(['report', 'nope'])).code).to.equal(2);
    expect((await cli(['check', '--min-sample', '0'])).code).to.equal(2);
    expect((await cli(['report', '--enforce'])).code).to.equal(2);
    expect((await cli(['frobnicate'])).code).to.equal(2);
  });
});
