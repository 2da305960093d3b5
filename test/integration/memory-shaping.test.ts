/**
 * Semantic memory visibly shapes the plan (issue 14), on the real database: after a week of
 * synthetic evening reschedules of gym tasks, a conflict's evening alternatives rank first in both
 * arms of alternative_ranking, and UpdateResult.memory says so; autoSchedule places gym tasks in
 * the evening; a learned duration pattern sizes the proposed slots without touching the estimate.
 * After forgetMemories the ranking is the default again and the memory's text is found nowhere.
 */
import { expect } from 'chai';
import type { DataSource } from 'typeorm';
import { createDataSource, migrateUp } from '../../src/db/data-source';
import { defaultPayload, FlagService, FLAGS, type FeaturePayload } from '../../src/flags';
import { disable } from '../../src/flags/admin';
import { HashedNgramEmbedder } from '../../src/memory/embedder';
import { MemoryLearner } from '../../src/memory/learner';
import { ManualClock } from '../../src/world/clock';
import type { Actor, UpdateResultView } from '../../src/world/views';
import { createWorld, type World } from '../../src/world/world';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { eveningReschedules, findEverywhere, newUser, openEvenings } from '../support/memory';

const H = 3600_000;
const DAY = '2026-12-15';
const at = (h: number) => new Date(new Date(`${DAY}T00:00:00Z`).getTime() + h * H);

function withVariant(
  variant: 'current' | 'smallest_move',
  payload: FeaturePayload = defaultPayload(),
): FeaturePayload {
  return {
    ...payload,
    features: { ...payload.features, alternative_ranking: { defaultValue: variant } },
  } as FeaturePayload;
}

describe('semantic memory shapes the plan (real Postgres)', () => {
  let scratch: ScratchDatabase;
  let ds: DataSource;
  const clock = new ManualClock('2026-12-01T06:00:00Z');
  const worlds: Record<string, World> = {};
  let learner: MemoryLearner;
  const arm = (v: 'current' | 'smallest_move', payload?: FeaturePayload) =>
    createWorld(ds, clock, {
      flags: {
        service: new FlagService(withVariant(v, payload), { origin: 'static', version: 1 }),
        recorder: null,
      },
    });

  before(async () => {
    scratch = await createScratchDatabase();
    ds = createDataSource(scratch.url, { poolSize: 6, applicationName: 'memory-shaping-test' });
    await ds.initialize();
    await migrateUp(ds);
    worlds.current = arm('current');
    worlds.smallest_move = arm('smallest_move');
    worlds.off = arm('current', disable(defaultPayload(), FLAGS.SEMANTIC_MEMORY));
    learner = new MemoryLearner(ds, {
      intervalMs: 0,
      embedder: new HashedNgramEmbedder(),
      ttlDays: 180,
      maxItems: 200,
      now: () => clock.now(),
    });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
    await scratch?.drop();
  });

  /** A gym session overlapping a meeting at 08:00 on DAY: the conflict's alternatives. */
  async function conflictOn(world: World, u: Actor): Promise<UpdateResultView> {
    const meeting = await world.updater.createTask(u, {
      title: 'Team meeting',
      scheduledStart: at(8),
      scheduledEnd: at(9),
    });
    expect(meeting.ok).to.equal(true);
    const gym = await world.updater.createTask(u, {
      title: 'Gym session',
      scheduledStart: at(8),
      scheduledEnd: at(9),
    });
    expect(gym.ok, JSON.stringify(gym.errors)).to.equal(true);
    expect(gym.conflicts).to.have.length(1);
    cleanup.push(async () => {
      await world.updater.deleteTask(u, gym.task!.id);
      await world.updater.deleteTask(u, meeting.task!.id);
    });
    return gym;
  }
  const cleanup: Array<() => Promise<void>> = [];
  const clean = async () => {
    for (const c of cleanup.splice(0)) await c();
  };
  const gymMoves = (r: UpdateResultView) =>
    r.conflicts[0]!.alternatives.filter((a) => a.action === 'MOVE' && a.taskId === r.task!.id);
  const hourOf = (at: string | Date | null) => new Date(at!).getUTCHours();

  for (const variant of ['current', 'smallest_move'] as const) {
    it(`after a week of evening gym reschedules, evening alternatives rank first (${variant} arm) and the result says why`, async () => {
      const world = worlds[variant]!;
      const u = await newUser(world);
      await openEvenings(world, u);
      // Before learning: the default ranking offers morning slots near 08:00 first.
      const before = await conflictOn(world, u);
      expect(before.memory).to.deep.equal([]);
      const first = before.conflicts[0]!.alternatives[0]!;
      expect(first.start === null || hourOf(first.start) < 17).to.equal(true);
      await clean();

      await eveningReschedules(world, u, '2026-12-07', 7);
      await learner.drain();
      const pref = (await world.queries.memories(u.userId, { query: 'gym' })).find(
        (m) => m.kind === 'PREFERENCE',
      )!;
      expect(pref.text).to.match(/Prefers "gym" tasks in the evening/);

      const after = await conflictOn(world, u);
      const alts = after.conflicts[0]!.alternatives;
      expect(alts[0]!.action).to.equal('MOVE');
      expect(alts[0]!.taskId).to.equal(after.task!.id);
      expect(hourOf(alts[0]!.start)).to.be.within(17, 21);
      expect(alts[0]!.description).to.match(/in your preferred time/);
      // Still the contract: at most 5, scores descending.
      expect(alts.length).to.be.at.most(5);
      expect(alts.map((a) => a.score)).to.deep.equal([...alts.map((a) => a.score)].sort((x, y) => y - x));
      const note = after.memory.find((n) => n.memoryId === pref.id)!;
      expect(note, JSON.stringify(after.memory)).to.exist;
      expect(note.text).to.equal(pref.text);
      expect(note.effect).to.match(/^ranked \d+ alternatives? in your preferred time first$/);
      // Its use is counted (least-useful eviction keeps it).
      const used = (await ds.query(
        `SELECT uses, last_used_at FROM memory_items WHERE user_id = $1 AND id = $2`,
        [u.userId, pref.id],
      )) as Array<{ uses: number; last_used_at: Date | null }>;
      expect(used[0]!.uses).to.be.greaterThan(0);

      // Forgetting it: the ranking returns to the default, and its text is gone from every table.
      await clean();
      const f = await world.updater.forgetMemories(u, null);
      expect(f.ok).to.equal(true);
      const plain = await conflictOn(world, u);
      expect(plain.memory).to.deep.equal([]);
      expect(gymMoves(plain).map((a) => a.start)).to.deep.equal(gymMoves(before).map((a) => a.start));
      expect(await findEverywhere(ds, pref.text)).to.deep.equal([]);
      expect(await findEverywhere(ds, 'Prefers "gym"')).to.deep.equal([]);
      // Nothing from before the erasure teaches it again.
      await learner.drain();
      expect(await world.queries.memories(u.userId)).to.deep.equal([]);
    });
  }

  it('semantic_memory off: stored preferences shape nothing', async () => {
    const u = await newUser(worlds.current!);
    await openEvenings(worlds.current!, u);
    await eveningReschedules(worlds.current!, u, '2026-12-07', 7);
    await learner.drain();
    const off = await conflictOn(worlds.off!, u);
    expect(off.memory).to.deep.equal([]);
    expect(hourOf(off.conflicts[0]!.alternatives[0]!.start ?? at(8).toISOString())).to.be.below(17);
  });

  it('autoSchedule places gym tasks in the evening and sizes writing tasks by their learned pattern, estimates untouched', async () => {
    const world = worlds.current!;
    const u = await newUser(world);
    await openEvenings(world, u);
    await eveningReschedules(world, u, '2026-12-07', 7);
    for (let d = 0; d < 3; d++) {
      const day = new Date('2026-12-02T00:00:00Z').getTime() + d * 24 * H;
      clock.set(new Date(day + 6 * H));
      const c = await world.updater.createTask(u, {
        title: 'Write chapter',
        estimateMinutes: 60,
        scheduledStart: new Date(day + 9 * H),
        scheduledEnd: new Date(day + 10 * H),
      });
      clock.set(new Date(day + 10.5 * H));
      expect((await world.updater.completeTask(u, c.task!.id)).ok).to.equal(true);
    }
    clock.set('2026-12-01T06:00:00Z');
    await learner.drain();
    const gym = await world.updater.createTask(u, { title: 'Gym workout', estimateMinutes: 60 });
    const write = await world.updater.createTask(u, { title: 'Write blog post', estimateMinutes: 60 });
    const r = await world.updater.autoSchedule(u, [gym.task!.id, write.task!.id], at(0), at(24));
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    const byTask = new Map(r.placements.map((p) => [p.taskId, p]));
    const g = byTask.get(gym.task!.id)!;
    expect(new Date(g.start).getUTCHours()).to.be.within(17, 21);
    const w = byTask.get(write.task!.id)!;
    expect((new Date(w.end).getTime() - new Date(w.start).getTime()) / 60_000).to.equal(90);
    expect(r.memory.map((n) => n.effect)).to.include.members([
      'placed 1 task in your preferred time',
      'planned 1 h 30 min instead of the estimated 1 h',
    ]);
    const stored = r.tasks.find((t) => t.id === write.task!.id)!;
    expect(stored.estimateMinutes).to.equal(60);
  });
});
