/**
 * Flags on a real Postgres with the real GrowthBook SDK: the payload's home (seeding, atomic audited
 * changes, polling, refusal of a malformed payload), bucketing across instances and restarts,
 * exposures once per user and experiment, usage per variant, and remote mode against a local fake
 * GrowthBook (including its outage). Each test gets its own scratch database: the payload is global.
 */
import { expect } from 'chai';
import type { DataSource } from 'typeorm';
import { disable, enable } from '../../src/flags/admin';
import { startFlags, type Flags, type StartFlagsOptions } from '../../src/flags';
import { ALTERNATIVE_RANKING, EXPERIMENTS, FEATURE_KEYS, FLAGS, USAGE } from '../../src/flags/keys';
import { defaultPayload, PayloadError, type FeaturePayload } from '../../src/flags/payload';
import { rolloutAggregates } from '../../src/flags/report';
import type { FlagUser } from '../../src/flags/service';
import { createDataSource, migrateUp } from '../../src/db/data-source';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { startFakeGrowthBook, type FakeGrowthBook } from '../support/fake-growthbook';

interface Db {
  scratch: ScratchDatabase;
  ds: DataSource;
}

async function openScratch(): Promise<Db> {
  const scratch = await createScratchDatabase();
  const ds = createDataSource(scratch.url, { poolSize: 4, applicationName: 'planner-test-flags' });
  await ds.initialize();
  await migrateUp(ds);
  return { scratch, ds };
}

/** Creates `n` users and returns them as FlagUsers. */
async function createUsers(ds: DataSource, n: number): Promise<FlagUser[]> {
  const rows = (await ds.query(
    `INSERT INTO users (email, display_name, working_hours)
     SELECT 'u' || g || '@flags.test', 'u' || g, '{}'::jsonb FROM generate_series(1, $1) g
     RETURNING id, role, created_at, time_zone`,
    [n],
  )) as Array<{ id: string; role: 'USER' | 'ADMIN'; created_at: Date; time_zone: string }>;
  return rows.map((r) => ({ id: r.id, role: r.role, signupDate: r.created_at, timeZone: r.time_zone }));
}

function synthetic(i: number): FlagUser {
  return {
    id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    role: 'USER',
    signupDate: new Date('2026-02-01T00:00:00Z'),
    timeZone: 'UTC',
  };
}

describe('flags on Postgres (integration)', function () {
  this.timeout(60_000);
  let db: Db;
  const running: Flags[] = [];
  const warnings: string[] = [];

  /** Starts a flags runtime with timers that never fire during a test (polls are called by hand). */
  async function start(opts: StartFlagsOptions = {}): Promise<Flags> {
    const f = await startFlags(db.ds, {
      pollMs: 3_600_000,
      flushMs: 0,
      warn: (msg, fields) => warnings.push(`${msg} ${JSON.stringify(fields ?? {})}`),
      ...opts,
    });
    running.push(f);
    return f;
  }

  beforeEach(async () => {
    warnings.length = 0;
    db = await openScratch();
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.close()));
    await db.ds.destroy();
    await db.scratch.drop();
  });

  describe('the payload in the database', () => {
    it('is seeded once from the repository file, and a declared key missing later is added back', async () => {
      const [a, b, c] = await Promise.all([start(), start(), start()]);
      for (const f of [a!, b!, c!]) expect(f.service.payload).to.include({ origin: 'database', version: 1 });
      const stored = await a!.store.read();
      expect(stored?.payload).to.deep.equal(defaultPayload());
      expect((await a!.store.auditTrail()).map((e) => e.command)).to.deep.equal(['seed']);

      await db.ds.query(`UPDATE feature_payload SET payload = payload #- '{features,langgraph_tools}'`);
      const reseeded = await a!.store.ensureSeeded();
      expect(reseeded.version).to.equal(2);
      expect((reseeded.payload as FeaturePayload).features).to.have.keys([...FEATURE_KEYS]);
      const trail = await a!.store.auditTrail();
      expect(trail[0]).to.deep.include({ actor: 'system:seed', command: 'seed langgraph_tools', version: 2 });
    });

    it('changes are atomic and audited; running instances apply them on their next poll', async () => {
      const a = await start();
      const b = await start();
      const u = synthetic(1);
      expect(b.service.forUser(u).isOn(FLAGS.UNDO)).to.equal(true);

      const { stored, changed } = await a.store.update('tester', 'features disable undo', FLAGS.UNDO, (p) =>
        disable(p, FLAGS.UNDO),
      );
      expect(changed).to.deep.equal([FLAGS.UNDO]);
      expect(stored.version).to.equal(2);
      expect(b.service.forUser(u).isOn(FLAGS.UNDO)).to.equal(true); // not before its poll
      await b.poller!.poll();
      expect(b.service.payload.version).to.equal(2);
      expect(b.service.forUser(u).isOn(FLAGS.UNDO)).to.equal(false);

      const [entry] = await a.store.auditTrail(1);
      expect(entry).to.deep.include({
        actor: 'tester',
        command: 'features disable undo',
        feature: 'undo',
        version: 2,
      });
      expect(entry!.before).to.deep.equal({ undo: { defaultValue: true } });
      expect(entry!.after).to.deep.equal({ undo: { defaultValue: false } });

      // A change producing a malformed payload is refused: nothing written, no audit row.
      let err: unknown;
      try {
        await a.store.update('tester', 'bad', null, (p) => ({
          ...p,
          features: { ...p.features, undo: { defaultValue: 'on' } },
        }));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(PayloadError);
      expect((await a.store.read())?.version).to.equal(2);
      expect(await a.store.auditTrail()).to.have.length(2);

      // A change that changes nothing bumps nothing.
      const same = await a.store.update('tester', 'features disable undo', FLAGS.UNDO, (p) =>
        disable(p, FLAGS.UNDO),
      );
      expect(same.changed).to.deep.equal([]);
      expect(same.stored.version).to.equal(2);
    });

    it('a malformed payload written behind its back is refused with a clear message; the previous stays', async () => {
      const f = await start();
      await f.store.update('tester', 'features disable undo', FLAGS.UNDO, (p) => disable(p, FLAGS.UNDO));
      await f.poller!.poll();
      expect(f.service.payload.version).to.equal(2);

      await db.ds.query(
        `UPDATE feature_payload SET version = version + 1, payload = '{"features": {"undo": {"defaultValue": "yes"}}}'`,
      );
      await f.poller!.poll();
      await f.poller!.poll(); // the same bad version is not re-applied (nor re-logged)
      expect(f.service.payload.version).to.equal(2);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(false);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.SEMANTIC_MEMORY)).to.equal(true);
      const refused = warnings.filter((w) => w.startsWith('features payload refused'));
      expect(refused).to.have.length(1);
      expect(refused[0]).to.match(/features\.undo\.defaultValue: expected a boolean/);
      expect(refused[0]).to.match(/"inForce":2/);

      // Edits refuse a malformed base (saying how to repair it); a whole replacement repairs it.
      let err: unknown;
      try {
        await f.store.update('tester', 'features enable undo', FLAGS.UNDO, (p) => enable(p, FLAGS.UNDO));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(PayloadError);
      expect((err as Error).message).to.match(
        /database version 3 \(replace it: planner features import <file>\)/,
      );
      await f.store.replace('tester', 'features import fixed.json', enable(defaultPayload(), FLAGS.UNDO));
      await f.poller!.poll();
      expect(f.service.payload.version).to.equal(4);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(true);
    });
    it('a database outage keeps the payload in force and is logged once, not every period', async () => {
      const f = await start();
      await f.store.update('tester', 'features disable undo', FLAGS.UNDO, (p) => disable(p, FLAGS.UNDO));
      await db.ds.query(`ALTER TABLE feature_payload RENAME TO feature_payload_away`);
      await f.poller!.poll();
      await f.poller!.poll();
      expect(warnings.filter((w) => w.startsWith('features poll failed'))).to.have.length(1);
      expect(f.service.payload.version).to.equal(1);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(true);
      await db.ds.query(`ALTER TABLE feature_payload_away RENAME TO feature_payload`);
      await f.poller!.poll();
      expect(f.service.payload.version).to.equal(2);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(false);
    });
  });

  describe('bucketing', () => {
    it('is the same on two instances of one database and after a restart (30 % rollout and the experiment)', async () => {
      const a = await start();
      await a.store.update('tester', 'features enable undo --percent 30', FLAGS.UNDO, (p) =>
        enable(p, FLAGS.UNDO, { percent: 30 }),
      );
      const b = await start();
      await a.poller!.poll();
      const users = Array.from({ length: 2000 }, (_, i) => synthetic(i));
      const before = users.map((u) => a.service.forUser(u).evaluations());
      users.forEach((u, i) => expect(b.service.forUser(u).evaluations()).to.deep.equal(before[i]));
      const share = before.filter((e) => e.find((x) => x.key === FLAGS.UNDO)!.on).length / users.length;
      expect(share).to.be.within(0.25, 0.35); // 2,000 users: the ±2-point check over 10,000 is in the unit suite

      await Promise.all(running.splice(0).map((f) => f.close()));
      const restarted = await start();
      expect(restarted.service.payload.version).to.equal(2);
      users.forEach((u, i) => expect(restarted.service.forUser(u).evaluations()).to.deep.equal(before[i]));
    });
  });

  describe('exposures and usage', () => {
    it('records each exposure once per user and experiment, across requests, instances and restarts', async () => {
      const users = await createUsers(db.ds, 40);
      const a = await start();
      const b = await start();
      for (const f of [a, b, a, b]) {
        for (const u of users) {
          const flags = f.service.forUser(u); // one request
          flags.variant(EXPERIMENTS.ALTERNATIVE_RANKING);
          flags.evaluations({ expose: true });
          f.recorder.recordUsage(flags, USAGE.ALTERNATIVE_CHOSEN);
        }
      }
      expect(a.recorder.pending.exposures).to.equal(users.length); // once per instance in memory
      await Promise.all([a.recorder.flush(), b.recorder.flush()]);
      expect(a.recorder.pending).to.deep.equal({ exposures: 0, usage: 0 });

      const rows = (await db.ds.query(
        `SELECT user_id, experiment, variant, variation_id FROM experiment_exposures ORDER BY user_id`,
      )) as Array<{ user_id: string; experiment: string; variant: string; variation_id: number }>;
      expect(rows).to.have.length(users.length);
      for (const r of rows) {
        const expected = a.service
          .forUser(users.find((u) => u.id === r.user_id)!)
          .assignment(EXPERIMENTS.ALTERNATIVE_RANKING);
        expect(r).to.deep.include({ experiment: EXPERIMENTS.ALTERNATIVE_RANKING, variant: expected });
        expect(r.variation_id).to.equal(expected === ALTERNATIVE_RANKING.CURRENT ? 0 : 1);
      }

      // After a restart the same users are exposed again: still one row each.
      await Promise.all(running.splice(0).map((f) => f.close()));
      const c = await start();
      for (const u of users) c.service.forUser(u).variant(EXPERIMENTS.ALTERNATIVE_RANKING);
      await c.recorder.flush();
      expect(
        ((await db.ds.query(`SELECT count(*)::int AS n FROM experiment_exposures`)) as [{ n: number }])[0].n,
      ).to.equal(users.length);

      // Usage: 4 uses per user, attributed to each user's variant; aggregates per variant.
      const report = await rolloutAggregates(db.ds, { experiment: EXPERIMENTS.ALTERNATIVE_RANKING });
      expect(report.experiments).to.have.length(1);
      const variants = report.experiments[0]!.variants;
      expect(variants.map((v) => v.exposedUsers).reduce((x, y) => x + y, 0)).to.equal(users.length);
      for (const v of variants) {
        expect(v.usage[USAGE.ALTERNATIVE_CHOSEN]).to.deep.equal({
          count: 4 * v.exposedUsers,
          users: v.exposedUsers,
        });
        expect(v.usage[USAGE.UNDO_USED]).to.deep.equal({ count: 0, users: 0 });
      }
    });

    it('usage outside any experiment is counted under experiment ""; a failed flush keeps the rows for the next', async () => {
      const [u] = await createUsers(db.ds, 1);
      const f = await start();
      await f.store.update(
        'tester',
        'features disable alternative_ranking',
        EXPERIMENTS.ALTERNATIVE_RANKING,
        (p) => disable(p, EXPERIMENTS.ALTERNATIVE_RANKING),
      );
      await f.poller!.poll();
      const flags = f.service.forUser(u!);
      f.recorder.recordUsage(flags, USAGE.UNDO_USED);
      f.recorder.recordUsage(flags, USAGE.UNDO_USED, 2);

      await db.ds.query(`ALTER TABLE feature_usage RENAME TO feature_usage_away`);
      await f.recorder.flush();
      expect(f.recorder.pending.usage).to.equal(1);
      expect(warnings.some((w) => w.startsWith('usage flush failed'))).to.equal(true);
      await db.ds.query(`ALTER TABLE feature_usage_away RENAME TO feature_usage`);
      await f.recorder.flush();
      const rows = (await db.ds.query(
        `SELECT experiment, variant, metric, count::int AS count FROM feature_usage`,
      )) as unknown[];
      expect(rows).to.deep.equal([{ experiment: '', variant: '', metric: USAGE.UNDO_USED, count: 3 }]);
    });
  });

  describe('remote mode (a local fake GrowthBook)', () => {
    let gb: FakeGrowthBook;
    beforeEach(async () => {
      gb = await startFakeGrowthBook();
    });
    afterEach(async () => {
      await gb.close();
    });

    it('uses the remote payload, follows its changes and keeps the last good one through an outage', async () => {
      gb.answer(disable(defaultPayload(), FLAGS.UNDO));
      const f = await start({
        remote: { apiHost: gb.apiHost, clientKey: gb.clientKey, refreshMs: 3_600_000 },
      });
      expect(f.poller).to.equal(null);
      expect(f.service.payload).to.include({ origin: 'remote', version: 1 });
      const u = synthetic(3);
      expect(f.service.forUser(u).isOn(FLAGS.UNDO)).to.equal(false);

      gb.answer(disable(defaultPayload(), FLAGS.SEMANTIC_MEMORY));
      expect(await f.remote!.refresh()).to.equal(true);
      expect(f.service.payload.version).to.equal(2);
      expect(f.service.forUser(u).isOn(FLAGS.UNDO)).to.equal(true);
      expect(f.service.forUser(u).isOn(FLAGS.SEMANTIC_MEMORY)).to.equal(false);
      expect(await f.remote!.refresh()).to.equal(true); // unchanged: not re-applied
      expect(f.service.payload.version).to.equal(2);

      for (const outage of [
        () => gb.fail(503),
        () => gb.garbage(),
        () => gb.answer({ features: { undo: { defaultValue: 1 } } }),
      ]) {
        outage();
        expect(await f.remote!.refresh()).to.equal(false);
        expect(f.service.payload.version).to.equal(2);
        expect(f.service.forUser(u).isOn(FLAGS.SEMANTIC_MEMORY)).to.equal(false);
      }
      await gb.stop(); // connection refused
      expect(await f.remote!.refresh()).to.equal(false);
      expect(f.remote!.failures).to.equal(4);
      expect(f.service.forUser(u).isOn(FLAGS.SEMANTIC_MEMORY)).to.equal(false);
      expect(warnings.filter((w) => w.startsWith('remote features refresh failed'))).to.have.length(4);

      await gb.restart();
      gb.answer(defaultPayload());
      expect(await f.remote!.refresh()).to.equal(true);
      expect(f.remote!.failures).to.equal(0);
      expect(f.service.payload.version).to.equal(3);
      expect(f.service.forUser(u).isOn(FLAGS.SEMANTIC_MEMORY)).to.equal(true);
    });

    it('starts on the database payload when the remote is unreachable, and a wrong client key is not a payload', async () => {
      gb.fail(503);
      const f = await start({
        remote: { apiHost: gb.apiHost, clientKey: gb.clientKey, refreshMs: 3_600_000 },
      });
      expect(f.service.payload).to.include({ origin: 'database', version: 1 });
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(true);
      gb.answer(disable(defaultPayload(), FLAGS.UNDO));
      const wrongKey = await start({
        remote: { apiHost: gb.apiHost, clientKey: 'sdk-wrong', refreshMs: 3_600_000 },
      });
      expect(wrongKey.service.payload.origin).to.equal('database');
      expect(warnings.some((w) => /HTTP 404/.test(w))).to.equal(true);
      expect(warnings.some((w) => w.includes('sdk-wrong'))).to.equal(false); // the key is not logged
      expect(await f.remote!.refresh()).to.equal(true);
      expect(f.service.forUser(synthetic(1)).isOn(FLAGS.UNDO)).to.equal(false);
    });
  });
});
