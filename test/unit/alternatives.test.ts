import { expect } from 'chai';
import fc from 'fast-check';
import { proposeAlternatives } from '../../src/domain/alternatives';
import { detectConflicts } from '../../src/domain/conflicts';
import {
  WEEKDAYS,
  type AlternativeProposal,
  type PlanTask,
  type UserSettings,
  type WorkingHours,
} from '../../src/domain/types';
import { BLOCK_MS, oracleConflicts, planArb, settingsArb } from '../support/oracle';
import { scheduledTask, weekdays } from '../support/plan-fixtures';

const task = scheduledTask;

const BERLIN: UserSettings = {
  timeZone: 'Europe/Berlin',
  workingHours: weekdays('09:00', '17:00'),
  dailyCapacityMinutes: 480,
};

/** The plan after applying a proposal. */
function apply(tasks: PlanTask[], p: AlternativeProposal): PlanTask[] {
  return tasks.map((t) =>
    t.id !== p.taskId
      ? t
      : p.action === 'MOVE'
        ? { ...t, start: p.start, end: p.end }
        : { ...t, start: null, end: null, status: 'BACKLOG' as const },
  );
}

describe('domain/alternatives', () => {
  // Tue 1 Dec 2026; Berlin is UTC+1.
  const now = new Date('2026-12-01T07:00:00Z'); // 08:00 local
  const report = task('report', '2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z', { title: 'Write report' });
  const gym = task('gym', '2026-12-01T08:30:00Z', '2026-12-01T09:30:00Z', { title: 'Gym' });

  it('moves the subject of an overlap to the nearest free slot on the same day first', () => {
    const [conflict] = detectConflicts([report, gym], new Set(['gym']), BERLIN);
    expect(conflict.taskIds).to.deep.equal(['gym', 'report']);
    const alts = proposeAlternatives(conflict, [report, gym], BERLIN, now);
    expect(alts.length).to.be.within(1, 5);
    const best = alts[0];
    expect(best.action).to.equal('MOVE');
    expect(best.taskId).to.equal('gym');
    expect(best.start!.toISOString()).to.equal('2026-12-01T09:00:00.000Z');
    expect(best.end!.toISOString()).to.equal('2026-12-01T10:00:00.000Z');
    expect(best.description).to.equal(
      'Move "Gym" to Tue 1 Dec 10:00–11:00 (Europe/Berlin): same day, 30 min later, inside working hours, ' +
        'day total 2 h of 8 h',
    );
    expect(best.id).to.match(/^alt_[0-9a-f]{16}$/);
    // Deterministic.
    expect(proposeAlternatives(conflict, [report, gym], BERLIN, now)).to.deep.equal(alts);
    // Ranked by score, scores in range, BACKLOG lowest.
    for (let i = 1; i < alts.length; i++) expect(alts[i - 1].score).to.be.at.least(alts[i].score);
    for (const a of alts) {
      expect(a.score).to.be.within(0, 1);
      if (a.action === 'BACKLOG') expect(a.score).to.be.at.most(0.2);
      else expect(a.score).to.be.greaterThan(0.2);
    }
    const all = proposeAlternatives(conflict, [report, gym], BERLIN, now, { max: 50 });
    expect(all.some((a) => a.action === 'BACKLOG' && a.taskId === 'gym')).to.equal(true);
    expect(all.some((a) => a.action === 'BACKLOG' && a.taskId === 'report')).to.equal(true);
    expect(all.some((a) => a.action === 'MOVE' && a.taskId === 'report')).to.equal(true);
    expect(new Set(all.map((a) => a.id)).size).to.equal(all.length);
  });

  it('moves a past-due task earlier, before its due time', () => {
    const due = new Date('2026-12-02T12:00:00Z');
    const late = task('late', '2026-12-03T09:00:00Z', '2026-12-03T10:00:00Z', { dueAt: due, title: 'Tax' });
    const [conflict] = detectConflicts([late], null, BERLIN);
    expect(conflict.kind).to.equal('PAST_DUE');
    const alts = proposeAlternatives(conflict, [late], BERLIN, now);
    const moves = alts.filter((a) => a.action === 'MOVE');
    expect(moves).to.not.be.empty;
    for (const m of moves) {
      expect(m.end!.getTime()).to.be.at.most(due.getTime());
      expect(m.start!.getTime()).to.be.at.least(now.getTime());
    }
  });

  it('moves a task outside working hours into them and never before now', () => {
    const evening = task('eve', '2026-12-01T18:00:00Z', '2026-12-01T19:00:00Z', { title: 'Calls' });
    const [conflict] = detectConflicts([evening], null, BERLIN);
    expect(conflict.kind).to.equal('OUTSIDE_WORKING_HOURS');
    const lateNow = new Date('2026-12-01T10:07:00Z');
    const alts = proposeAlternatives(conflict, [evening], BERLIN, lateNow);
    expect(alts[0].action).to.equal('MOVE');
    // Latest same-day slot ending at 17:00 local (16:00Z) is closest to the original 19:00 local.
    expect(alts[0].start!.toISOString()).to.equal('2026-12-01T15:00:00.000Z');
    for (const a of alts.filter((x) => x.action === 'MOVE')) {
      expect(a.start!.getTime()).to.be.at.least(lateNow.getTime());
      expect(detectConflicts(apply([evening], a), null, BERLIN)).to.deep.equal([]);
    }
  });

  it('resolves over-capacity by moving to another day with room', () => {
    const s = { ...BERLIN, dailyCapacityMinutes: 120 };
    const a = task('a', '2026-12-01T08:00:00Z', '2026-12-01T09:30:00Z');
    const b = task('b', '2026-12-01T10:00:00Z', '2026-12-01T11:00:00Z');
    const [conflict] = detectConflicts([a, b], new Set(['b']), s);
    expect(conflict.key).to.equal('OVER_CAPACITY:2026-12-01');
    const alts = proposeAlternatives(conflict, [a, b], s, now);
    const move = alts.find((x) => x.action === 'MOVE')!;
    expect(move.taskId).to.equal('b');
    expect(move.start!.toISOString().slice(0, 10)).to.equal('2026-12-02');
    expect(move.description).to.contain('1 day later');
    expect(detectConflicts(apply([a, b], move), null, s)).to.deep.equal([]);
  });

  it('respects dependencies in both directions', () => {
    const d = task('d', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z');
    const t = task('t', '2026-12-01T09:30:00Z', '2026-12-01T10:30:00Z', { dependsOn: ['d'] });
    const after = task('after', '2026-12-01T13:00:00Z', '2026-12-01T14:00:00Z', { dependsOn: ['t'] });
    const world = [d, t, after];
    const conflicts = detectConflicts(world, new Set(['t']), BERLIN);
    const order = conflicts.find((c) => c.kind === 'DEPENDENCY_ORDER')!;
    const alts = proposeAlternatives(order, world, BERLIN, now, { max: 20 });
    const tMoves = alts.filter((a) => a.action === 'MOVE' && a.taskId === 't');
    expect(tMoves).to.not.be.empty;
    for (const m of tMoves) {
      expect(m.start!.getTime()).to.be.at.least(d.end!.getTime());
      expect(m.end!.getTime()).to.be.at.most(after.start!.getTime());
    }
    for (const a of alts)
      expect(detectConflicts(apply(world, a), new Set([a.taskId]), BERLIN)).to.deep.equal([]);
  });

  it('stays at 09:00-17:00 local on the Berlin 23-hour day', () => {
    const s = {
      ...BERLIN,
      workingHours: Object.fromEntries(
        WEEKDAYS.map((d) => [d, [{ start: '09:00', end: '17:00' }]]),
      ) as WorkingHours,
    };
    // Sun 29 Mar 2026 (CEST from 03:00): 08:00-09:00 local = 06:00-07:00Z, outside working hours.
    const early = task('early', '2026-03-29T06:00:00Z', '2026-03-29T07:00:00Z');
    const [conflict] = detectConflicts([early], null, s);
    const alts = proposeAlternatives(conflict, [early], s, new Date('2026-03-28T00:00:00Z'));
    expect(alts[0].start!.toISOString()).to.equal('2026-03-29T07:00:00.000Z');
    expect(alts[0].description).to.contain('Sun 29 Mar 09:00–10:00');
  });

  describe('properties', () => {
    it('every offered alternative leaves no conflict involving the changed task (checked by the oracle)', () => {
      fc.assert(
        fc.property(
          planArb(10, 16),
          settingsArb,
          fc.integer({ min: 0, max: 3 * 96 }),
          ({ anchor, tasks }, s, nowBlock) => {
            const nowDate = new Date(anchor + nowBlock * BLOCK_MS);
            // One conflict of each kind.
            const conflicts = detectConflicts(tasks, null, s).filter(
              (c, i, all) => all.findIndex((x) => x.kind === c.kind) === i,
            );
            for (const conflict of conflicts) {
              const alts = proposeAlternatives(conflict, tasks, s, nowDate, { max: 6, horizonDays: 3 });
              expect(alts.length).to.be.at.most(6);
              expect(new Set(alts.map((a) => a.id)).size).to.equal(alts.length);
              for (let i = 1; i < alts.length; i++) {
                const prev = alts[i - 1];
                const cur = alts[i];
                expect(
                  prev.score > cur.score ||
                    (prev.score === cur.score &&
                      (prev.start?.getTime() ?? Infinity) <= (cur.start?.getTime() ?? Infinity)),
                ).to.equal(true);
              }
              for (const a of alts) {
                expect(conflict.taskIds).to.include(a.taskId);
                expect(a.score).to.be.within(0, 1);
                const next = apply(tasks, a);
                expect(oracleConflicts(next, new Set([a.taskId]), s), a.description).to.deep.equal([]);
                const original = tasks.find((t) => t.id === a.taskId)!;
                if (a.action === 'MOVE') {
                  expect(a.score).to.be.greaterThan(0.2);
                  expect(a.start!.getTime()).to.be.at.least(nowDate.getTime());
                  expect(a.end!.getTime() - a.start!.getTime()).to.equal(
                    original.end!.getTime() - original.start!.getTime(),
                  );
                  if (original.dueAt) expect(a.end!.getTime()).to.be.at.most(original.dueAt.getTime());
                } else {
                  expect(a.score).to.be.at.most(0.2);
                }
                // The conflict itself is gone, except for partial over-capacity relief that says so.
                const stillThere = oracleConflicts(next, null, s).some((c) => c.key === conflict.key);
                if (stillThere) {
                  expect(conflict.kind).to.equal('OVER_CAPACITY');
                  expect(a.description).to.contain('still over capacity');
                }
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });
  });

  it('proposes the nearest free slot in a plan of 10,000 tasks', () => {
    const base = Date.parse('2026-01-05T00:00:00Z');
    const tasks: PlanTask[] = [];
    for (let i = 0; i < 10_000; i++) {
      const start = base + Math.floor(i / 4) * 86_400_000 + (i % 4) * 7_200_000 + 8 * 3_600_000;
      tasks.push(task(`p${i}`, new Date(start).toISOString(), new Date(start + 3_600_000).toISOString()));
    }
    // 2026-03-02 is a Monday; 08:00Z-09:00Z is taken by p(56*4).
    tasks.push(task('focus', '2026-03-02T08:30:00Z', '2026-03-02T09:00:00Z'));
    const s = {
      ...BERLIN,
      timeZone: 'UTC',
      workingHours: Object.fromEntries(
        WEEKDAYS.map((d) => [d, [{ start: '08:00', end: '18:00' }]]),
      ) as WorkingHours,
    };
    const [conflict] = detectConflicts(tasks, new Set(['focus']), s);
    const alts = proposeAlternatives(conflict, tasks, s, new Date('2026-03-01T00:00:00Z'));
    expect(alts[0].taskId).to.equal('focus');
    expect(alts[0].start!.toISOString()).to.equal('2026-03-02T09:00:00.000Z');
  });
});
