/**
 * Semantic memory on the real database (issue 14): remember / recall / forgetMemories, privacy
 * (memory text only in the memory tables; erasure complete, found nowhere else), isolation between
 * users, not undoable, the flag, and the per-user cap.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { defaultPayload, FlagService, FLAGS } from '../../src/flags';
import { disable } from '../../src/flags/admin';
import { ManualClock } from '../../src/world/clock';
import { createWorld, type World } from '../../src/world/world';
import { findEverywhere, newUser } from '../support/memory';
import { testDatabaseUrl } from '../support/db';

describe('semantic memory: remember, recall, forget (real Postgres)', () => {
  let ds: DataSource;
  let world: World;
  const clock = new ManualClock('2026-12-01T08:00:00Z');

  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 4, applicationName: 'memory-test' });
    await ds.initialize();
    world = createWorld(ds, clock, { undoDepth: 100, memory: { maxItems: 10, ttlDays: 30 } });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  it('remember stores a FACT that memories(query) recalls by similarity, within the user only', async () => {
    const alice = await newUser(world);
    const bob = await newUser(world);
    const r = await world.updater.remember(alice, 'I take the kids to school at 8:30 on weekdays');
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    expect(r.operation!.kind).to.equal('REMEMBER');
    expect(r.memory).to.have.length(1);
    expect(r.memory[0]!.effect).to.match(/remembered/);
    await world.updater.remember(alice, 'My dentist is Dr Molar on Baker Street');
    await world.updater.remember(alice, 'Gym sessions happen after work');

    const found = await world.queries.memories(alice.userId, { query: 'school run for the kids', first: 5 });
    expect(found.map((m) => m.text)[0]).to.equal('I take the kids to school at 8:30 on weekdays');
    expect(found[0]!.kind).to.equal('FACT');
    expect(found[0]!.score).to.be.greaterThan(found[found.length - 1]!.score!);
    const gym = await world.queries.memories(alice.userId, { query: 'gym', first: 1 });
    expect(gym.map((m) => m.text)).to.deep.equal(['Gym sessions happen after work']);

    // Bob asks the same question and recalls nothing of Alice's.
    expect(await world.queries.memories(bob.userId, { query: 'school run for the kids' })).to.deep.equal([]);
    await world.updater.remember(bob, 'I like school holidays');
    const bobs = await world.queries.memories(bob.userId, { query: 'take the kids to school', first: 100 });
    expect(bobs.map((m) => m.text)).to.deep.equal(['I like school holidays']);
  });

  it('refuses empty and over-long text and a bad page size with VALIDATION, writing nothing', async () => {
    const u = await newUser(world);
    const empty = await world.updater.remember(u, '   ');
    expect(empty.ok).to.equal(false);
    expect(empty.errors[0]).to.include({ code: 'VALIDATION' });
    const long = await world.updater.remember(u, 'x'.repeat(1001));
    expect(long.errors[0]).to.include({ code: 'VALIDATION' });
    expect(await world.queries.memories(u.userId)).to.deep.equal([]);
    let thrown: unknown;
    try {
      await world.queries.memories(u.userId, { first: -1 });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).to.have.property('code', 'VALIDATION');
  });

  it('keeps memory text out of the operation log, the outbox and the idempotency record; forgetting erases it everywhere', async () => {
    const u = await newUser(world);
    const canary = `canary-${randomUUID()}`;
    const r = await world.updater.remember(u, `Remember the ${canary} please`, { idempotencyKey: 'k1' });
    expect(r.ok).to.equal(true);
    const id = r.memory[0]!.memoryId!;
    // Only the memory table holds it.
    expect(await findEverywhere(ds, canary)).to.deep.equal(['memory_items: 1']);
    const op = (await ds.query(`SELECT input FROM operations WHERE user_id = $1 AND kind = 'REMEMBER'`, [
      u.userId,
    ])) as Array<{ input: unknown }>;
    expect(op[0]!.input).to.deep.equal({ memoryId: id });
    // A retry with the same key answers from the record (ids, not text) and writes nothing twice.
    const again = await world.updater.remember(u, `Remember the ${canary} please`, { idempotencyKey: 'k1' });
    expect(again.replayed).to.equal(true);
    expect(again.memory[0]!.memoryId).to.equal(id);
    expect(again.memory[0]!.text).not.to.include(canary);
    expect(await world.queries.memories(u.userId)).to.have.length(1);

    const f = await world.updater.forgetMemories(u, [id]);
    expect(f.ok, JSON.stringify(f.errors)).to.equal(true);
    expect(f.operation!.kind).to.equal('FORGET_MEMORIES');
    expect(await world.queries.memories(u.userId)).to.deep.equal([]);
    expect(await findEverywhere(ds, canary)).to.deep.equal([]);
    // The erasure is in the audit trail, by id.
    const trail = await world.queries.operations(u.userId);
    expect(trail.items.map((e) => e.node.kind)).to.deep.equal(['FORGET_MEMORIES', 'REMEMBER']);
    const rows = (await ds.query(
      `SELECT input FROM operations WHERE user_id = $1 AND kind = 'FORGET_MEMORIES'`,
      [u.userId],
    )) as Array<{ input: unknown }>;
    expect(rows[0]!.input).to.deep.equal({ ids: [id] });
  });

  it('remember and forgetMemories are final: not on the undo stack, never an undo target', async () => {
    const u = await newUser(world);
    const t = await world.updater.createTask(u, { title: 'write report' });
    const r = await world.updater.remember(u, 'I prefer short meetings');
    expect(r.undo.depth).to.equal(1);
    expect(r.undo.nextUndo!.id).to.equal(t.operation!.id);
    const byId = await world.updater.undo(u, r.operation!.id);
    expect(byId.ok).to.equal(false);
    expect(byId.errors[0]!.code).to.equal('VALIDATION');
    expect(byId.errors[0]!.message).to.match(/final/);
    // Undo takes back the task, not the memory.
    const undo = await world.updater.undo(u, null);
    expect(undo.ok).to.equal(true);
    expect(undo.changes.some((c) => c.entity === 'Task')).to.equal(true);
    expect(await world.queries.memories(u.userId)).to.have.length(1);
    const f = await world.updater.forgetMemories(u, null);
    expect(f.undo.canRedo).to.equal(true); // forgetting does not end the redo stack either
    expect((await world.updater.undo(u, f.operation!.id)).errors[0]!.code).to.equal('VALIDATION');
    expect(await world.queries.memories(u.userId)).to.deep.equal([]);
  });

  it('with semantic_memory off: remember is FEATURE_DISABLED, stored items stay listed, exportable and erasable', async () => {
    const off = createWorld(ds, clock, {
      flags: {
        service: new FlagService(disable(defaultPayload(), FLAGS.SEMANTIC_MEMORY), {
          origin: 'static',
          version: 1,
        }),
        recorder: null,
      },
    });
    const u = await newUser(world);
    await world.updater.remember(u, 'stated while memory was on');
    const refused = await off.updater.remember(u, 'stated while memory is off');
    expect(refused.ok).to.equal(false);
    expect(refused.errors[0]!.code).to.equal('FEATURE_DISABLED');
    expect((await off.queries.memories(u.userId)).map((m) => m.text)).to.deep.equal([
      'stated while memory was on',
    ]);
    const exported = (await off.queries.exportMyData(u.userId)) as { memories: Array<{ text: string }> };
    expect(exported.memories.map((m) => m.text)).to.deep.equal(['stated while memory was on']);
    const f = await off.updater.forgetMemories(u, null);
    expect(f.ok).to.equal(true);
    expect(await off.queries.memories(u.userId)).to.deep.equal([]);
  });

  it('the per-user cap evicts the least useful items (never used, oldest) and never another user', async () => {
    const u = await newUser(world);
    const other = await newUser(world);
    await world.updater.remember(other, 'the other user keeps this');
    const start = clock.now().getTime();
    for (let i = 0; i < 13; i++) {
      clock.set(new Date(start + i * 60_000));
      const r = await world.updater.remember(u, `fact number ${i}`);
      expect(r.ok).to.equal(true);
      if (i === 0) {
        // The first one was used (it shaped a plan): it survives although it is the oldest.
        await ds.query(`UPDATE memory_items SET uses = 3 WHERE user_id = $1`, [u.userId]);
      }
    }
    const left = (await world.queries.memories(u.userId, { first: 100 })).map((m) => m.text).sort();
    expect(left).to.have.length(10);
    expect(left).to.include('fact number 0');
    expect(left).to.include('fact number 12');
    for (const gone of ['fact number 1', 'fact number 2', 'fact number 3']) expect(left).not.to.include(gone);
    expect((await world.queries.memories(other.userId)).map((m) => m.text)).to.deep.equal([
      'the other user keeps this',
    ]);
  });
});
