/**
 * The memory learner on the real database (issue 14): it learns preferences and patterns from the
 * outbox, off the request path; one consumer per database (advisory lock); the cursor lives in the
 * database, so learning resumes after a restart or a crash without counting evidence twice; the
 * flag off learns nothing; the TTL sweep erases expired items. A scratch database of its own: the
 * learner reads every user's events.
 */
import { expect } from 'chai';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { createDataSource, migrateDown, migrateUp } from '../../src/db/data-source';
import { HashedNgramEmbedder, type Embedder } from '../../src/memory/embedder';
import { LEARNER_LOCK_SQL, MemoryLearner, type LearnerOptions } from '../../src/memory/learner';
import { ManualClock } from '../../src/world/clock';
import { createWorld, type World } from '../../src/world/world';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { eveningReschedules, newUser, openEvenings } from '../support/memory';

const H = 3600_000;

describe('semantic memory: the learner (outbox consumer, real Postgres)', () => {
  let scratch: ScratchDatabase;
  let ds: DataSource;
  let world: World;
  const clock = new ManualClock('2026-12-01T06:00:00Z');
  const learner = (over: Partial<LearnerOptions> = {}) =>
    new MemoryLearner(ds, {
      intervalMs: 0,
      embedder: new HashedNgramEmbedder(),
      ttlDays: 30,
      maxItems: 200,
      now: () => clock.now(),
      ...over,
    });
  const items = async (userId: string) =>
    (await ds.query(
      `SELECT key, kind, text, active, rule, cardinality(evidence) AS n FROM memory_items WHERE user_id = $1 ORDER BY key`,
      [userId],
    )) as Array<{
      key: string;
      kind: string;
      text: string;
      active: boolean;
      rule: Record<string, unknown>;
      n: number;
    }>;

  before(async () => {
    scratch = await createScratchDatabase();
    ds = createDataSource(scratch.url, { poolSize: 6, applicationName: 'memory-learner-test' });
    await ds.initialize();
    await migrateUp(ds);
    world = createWorld(ds, clock, { undoDepth: 100 });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
    await scratch?.drop();
  });

  it('a week of evening reschedules of gym tasks becomes an active evening PREFERENCE, with the moves as evidence', async () => {
    const u = await newUser(world);
    await openEvenings(world, u);
    await eveningReschedules(world, u, '2026-12-07', 2);
    await learner().drain();
    let tod = (await items(u.userId)).find((i) => i.key === 'tod:gym')!;
    expect(tod).to.include({ kind: 'PREFERENCE', active: false }); // two moves: not yet
    await eveningReschedules(world, u, '2026-12-09', 5);
    const pass = await learner().drain();
    expect(pass.ran).to.equal(true);
    tod = (await items(u.userId)).find((i) => i.key === 'tod:gym')!;
    expect(tod).to.include({ kind: 'PREFERENCE', active: true, n: 7 });
    expect(tod.text).to.match(/^Prefers "gym" tasks in the evening \(17:00–22:00\), from 7 of 7 moves$/);
    // Weekdays were all different: no weekday preference.
    expect((await items(u.userId)).find((i) => i.key === 'wd:gym')).to.include({ active: false });
    const recalled = await world.queries.memories(u.userId, { query: 'when do I go to the gym?', first: 1 });
    expect(recalled[0]!.text).to.equal(tod.text);
  });

  it('resumes from its cursor after a restart or a crash without counting evidence twice', async () => {
    const u = await newUser(world);
    await openEvenings(world, u);
    await eveningReschedules(world, u, '2026-12-07', 3);
    await learner().drain();
    expect((await items(u.userId)).find((i) => i.key === 'tod:gym')!.n).to.equal(3);
    // A restart: a new learner reads from the stored cursor and finds nothing new.
    const again = await learner().drain();
    expect(again.observations).to.equal(0);
    expect((await items(u.userId)).find((i) => i.key === 'tod:gym')!.n).to.equal(3);
    // A crash mid-pass (the embedder fails after the events were read): nothing is kept...
    await eveningReschedules(world, u, '2026-12-10', 2);
    const failing: Embedder = {
      name: 'failing',
      dimensions: 256,
      embed: () => Promise.reject(new Error('embedder down')),
    };
    let crashed: unknown;
    try {
      await learner({ embedder: failing }).drain();
    } catch (e) {
      crashed = e;
    }
    expect(String(crashed)).to.match(/embedder down/);
    expect((await items(u.userId)).find((i) => i.key === 'tod:gym')!.n).to.equal(3);
    // ...and the next learner counts the two moves exactly once.
    await learner().drain();
    await learner().drain();
    const tod = (await items(u.userId)).find((i) => i.key === 'tod:gym')!;
    expect(tod.n).to.equal(5);
    expect((tod.rule as { counts: Record<string, number> }).counts.EVENING).to.equal(5);
    const cursor = (await ds.query(`SELECT event_seq FROM memory_learner_cursors WHERE user_id = $1`, [
      u.userId,
    ])) as Array<{
      event_seq: string;
    }>;
    const user = (await ds.query(`SELECT event_seq FROM users WHERE id = $1`, [u.userId])) as Array<{
      event_seq: string;
    }>;
    expect(cursor[0]!.event_seq).to.equal(user[0]!.event_seq);
  });

  it('runs on one instance at a time: the advisory lock elects it', async () => {
    const other = new Client({ connectionString: scratch.url });
    await other.connect();
    try {
      await other.query(`SELECT pg_advisory_lock(${LEARNER_LOCK_SQL})`);
      const u = await newUser(world);
      await openEvenings(world, u);
      await eveningReschedules(world, u, '2026-12-07', 1);
      const skipped = await learner().runOnce();
      expect(skipped.ran).to.equal(false);
      expect(await items(u.userId)).to.deep.equal([]);
      await other.query(`SELECT pg_advisory_unlock(${LEARNER_LOCK_SQL})`);
      expect((await learner().drain()).ran).to.equal(true);
      expect((await items(u.userId)).length).to.be.greaterThan(0);
    } finally {
      await other.end();
    }
  });

  it('learns a duration PATTERN from completions against the estimate', async () => {
    const u = await newUser(world);
    await openEvenings(world, u);
    for (let d = 0; d < 3; d++) {
      const day = new Date('2026-12-02T00:00:00Z').getTime() + d * 24 * H;
      clock.set(new Date(day + 6 * H));
      const c = await world.updater.createTask(u, {
        title: 'Write chapter',
        estimateMinutes: 60,
        scheduledStart: new Date(day + 9 * H),
        scheduledEnd: new Date(day + 10 * H),
      });
      clock.set(new Date(day + 10.5 * H)); // done after 90 minutes
      expect((await world.updater.completeTask(u, c.task!.id)).ok).to.equal(true);
    }
    clock.set('2026-12-01T06:00:00Z');
    await learner().drain();
    const dur = (await items(u.userId)).find((i) => i.key === 'dur:write')!;
    expect(dur).to.include({ kind: 'PATTERN', active: true, n: 3 });
    expect(dur.text).to.equal('"write" tasks take about 1.5× their estimate, from 3 completions');
  });

  it('with semantic_memory off for the user: the cursor moves on and nothing is learned', async () => {
    const u = await newUser(world);
    await openEvenings(world, u);
    await eveningReschedules(world, u, '2026-12-07', 4);
    await learner({ enabledFor: (x) => x.id !== u.userId }).drain();
    expect(await items(u.userId)).to.deep.equal([]);
    // Turning it on later does not learn from what happened while it was off.
    await learner().drain();
    expect(await items(u.userId)).to.deep.equal([]);
  });

  it('the TTL sweep erases expired items, and only those', async () => {
    const u = await newUser(world);
    await openEvenings(world, u);
    clock.set('2026-12-01T06:00:00Z');
    const month = createWorld(ds, clock, { memory: { ttlDays: 30 } });
    await month.updater.remember(u, 'gone: stated on day 0');
    await eveningReschedules(world, u, '2026-12-07', 3);
    await learner().drain();
    const before = (await items(u.userId)).length;
    expect(before).to.be.greaterThan(1);
    // After 30 days the learned items (last evidence on day 0) and the day-0 fact expire; a fact stated on day 20 stays.
    clock.set('2026-12-21T06:00:00Z');
    await month.updater.remember(u, 'kept: stated on day 20');
    clock.set('2026-12-31T07:00:00Z');
    const pass = await learner().runOnce();
    expect(pass.swept).to.be.greaterThan(0);
    const left = (await world.queries.memories(u.userId, { first: 100 })).map((m) => m.text);
    expect(left).to.deep.equal(['kept: stated on day 20']);
    clock.set('2026-12-01T06:00:00Z');
  });

  it('the migration reverses exactly: down drops the memory tables and restores the guard, up brings them back', async () => {
    const shape = async () =>
      (await ds.query(
        `SELECT (SELECT json_agg(t ORDER BY t) FROM (SELECT table_name || '.' || column_name || ':' || data_type AS t
            FROM information_schema.columns WHERE table_schema = 'public') x) AS columns,
          (SELECT json_agg(indexdef ORDER BY indexdef) FROM pg_indexes WHERE schemaname = 'public') AS indexes,
          pg_get_functiondef('operations_append_only'::regproc) AS guard,
          obj_description('operations_append_only'::regproc, 'pg_proc') AS comment`,
      )) as Array<{ columns: string[]; indexes: string[]; guard: string; comment: string | null }>;
    const up = (await shape())[0]!;
    expect(up.guard).to.include('planner forget');
    expect(up.comment).to.match(/planner forget/);
    // Revert the later migrations first, then this one; migrateUp below re-applies them all.
    const reverted: string[] = [];
    while (reverted.at(-1) !== 'SemanticMemory1796100000000') {
      const name = await migrateDown(ds);
      expect(name, `reverted so far: ${reverted.join(', ')}`).to.be.a('string');
      reverted.push(name as string);
    }
    const down = (await shape())[0]!;
    expect(down.columns.filter((c) => c.startsWith('memory_'))).to.deep.equal([]);
    expect(down.indexes.filter((i) => i.includes('memory_'))).to.deep.equal([]);
    expect(down.guard).not.to.include('HINT');
    expect(down.comment).to.equal(null);
    await migrateUp(ds);
    expect((await shape())[0]).to.deep.equal(up);
  });
});
