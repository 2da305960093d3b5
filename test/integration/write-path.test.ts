/**
 * The write path's guarantees under concurrency, at the world level against the real database:
 * one user's concurrent operations are serialised by the user row lock, so detection always sees
 * the committed plan (no write skew: every overlapping pair is reported even when all arrive at
 * once), and the outbox's per-user seq stays gap-free and in commit order.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { ManualClock } from '../../src/world/clock';
import { createWorld, type World } from '../../src/world/world';
import { testDatabaseUrl } from '../support/db';

describe('the write path under concurrency (one user)', () => {
  let ds: DataSource;
  let world: World;

  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 8, applicationName: 'write-path' });
    await ds.initialize();
    world = createWorld(ds, new ManualClock('2026-12-01T06:00:00Z'), { undoDepth: 100 });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  it('reports every overlapping pair when six tasks on one slot arrive at once, with gap-free event seqs', async () => {
    const u = await world.users.findOrCreateByEmail(`wp-${randomUUID()}@example.com`);
    const actor = { userId: u.id, actor: `user:${u.id}` };
    const start = new Date('2026-12-02T10:00:00Z');
    const end = new Date('2026-12-02T11:00:00Z');
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        world.updater.createTask(actor, { title: `t${i}`, scheduledStart: start, scheduledEnd: end }),
      ),
    );
    for (const r of results) expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    // Operations are numbered in commit order, 1..6, and each saw every task committed before it.
    const bySeq = [...results].sort((a, b) => a.operation!.seq - b.operation!.seq);
    expect(bySeq.map((r) => r.operation!.seq)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    bySeq.forEach((r, i) => expect(r.conflicts.filter((c) => c.kind === 'OVERLAP')).to.have.length(i));
    const open = await ds.query(
      `SELECT count(*)::int AS n FROM conflicts WHERE user_id = $1 AND kind = 'OVERLAP' AND status = 'OPEN'`,
      [u.id],
    );
    expect(open[0].n).to.equal(15); // every pair of six
    const seqs = (await ds.query('SELECT seq FROM events WHERE user_id = $1 ORDER BY seq', [u.id])) as Array<{
      seq: string;
    }>;
    expect(seqs.map((s) => Number(s.seq))).to.deep.equal(
      Array.from({ length: seqs.length }, (_, i) => i + 1),
    );
    const user = await ds.query('SELECT op_seq, event_seq FROM users WHERE id = $1', [u.id]);
    expect(Number(user[0].op_seq)).to.equal(6);
    expect(Number(user[0].event_seq)).to.equal(seqs.length);
  });
});
