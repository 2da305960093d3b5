import { expect } from 'chai';
import fc from 'fast-check';
import { detectConflicts, relevantSubset } from '../../src/domain/conflicts';
import type { PlanTask, UserSettings } from '../../src/domain/types';
import { focusArb, oracleConflicts, planArb, settingsArb, shape } from '../support/oracle';
import { everyDay, scheduledTask } from '../support/plan-fixtures';

const task = scheduledTask;

const BERLIN: UserSettings = {
  timeZone: 'Europe/Berlin',
  workingHours: everyDay('09:00', '17:00'),
  dailyCapacityMinutes: 480,
};

describe('domain/conflicts', () => {
  describe('examples', () => {
    it('reports an overlap with the focus task first and a readable message', () => {
      const tasks = [
        task('b', '2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z', { title: 'Write report' }),
        task('a', '2026-12-01T08:30:00Z', '2026-12-01T10:00:00Z', { title: 'Gym' }),
      ];
      const [c] = detectConflicts(tasks, new Set(['b']), BERLIN);
      expect(c.key).to.equal('OVERLAP:a:b');
      expect(c.taskIds).to.deep.equal(['b', 'a']);
      expect(c.message).to.equal(
        '"Write report" overlaps "Gym" from 2026-12-01T08:30:00.000Z to 2026-12-01T09:00:00.000Z',
      );
      expect(detectConflicts(tasks, null, BERLIN).map((x) => x.taskIds)).to.deep.equal([['a', 'b']]);
    });

    it('does not treat touching intervals, done tasks or unscheduled tasks as overlapping', () => {
      const tasks = [
        task('a', '2026-12-01T08:00:00Z', '2026-12-01T09:00:00Z'),
        task('b', '2026-12-01T09:00:00Z', '2026-12-01T10:00:00Z'),
        task('c', '2026-12-01T08:00:00Z', '2026-12-01T10:00:00Z', { status: 'DONE' }),
        task('d', null, null),
      ];
      expect(detectConflicts(tasks, null, BERLIN)).to.deep.equal([]);
    });

    it('reports past due, dependency order and outside working hours', () => {
      const tasks = [
        task('dep', '2026-12-01T09:00:00Z', '2026-12-01T11:00:00Z'),
        task('t', '2026-12-01T10:00:00Z', '2026-12-01T10:30:00Z', {
          dependsOn: ['dep', 'missing'],
          dueAt: new Date('2026-12-01T10:15:00Z'),
        }),
        task('late', '2026-12-01T16:30:00Z', '2026-12-01T17:30:00Z'),
      ];
      const keys = detectConflicts(tasks, new Set(['t', 'late']), BERLIN).map((c) => c.key);
      expect(keys).to.deep.equal([
        'DEPENDENCY_ORDER:t:dep',
        'OUTSIDE_WORKING_HOURS:late',
        'OVERLAP:dep:t',
        'PAST_DUE:t',
      ]);
      // Focus on the dependency alone still reports the order violation.
      expect(detectConflicts(tasks, new Set(['dep']), BERLIN).map((c) => c.key)).to.include(
        'DEPENDENCY_ORDER:t:dep',
      );
      // An unscheduled dependency is not a conflict.
      const unscheduled = tasks.map((t) => (t.id === 'dep' ? { ...t, start: null, end: null } : t));
      expect(detectConflicts(unscheduled, new Set(['t']), BERLIN).map((c) => c.key)).to.deep.equal([
        'PAST_DUE:t',
      ]);
    });

    it('counts capacity on the 25-hour Berlin day and only for days touched by the focus', () => {
      const s = { ...BERLIN, workingHours: everyDay('00:00', '24:00'), dailyCapacityMinutes: 1440 };
      const whole = task('w', '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z');
      const c = detectConflicts([whole], null, s);
      expect(c.map((x) => x.key)).to.deep.equal(['OVER_CAPACITY:2026-10-25']);
      expect(c[0].message).to.contain('1500 min');
      const spring = task('w', '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z');
      expect(detectConflicts([spring], null, s)).to.deep.equal([]);
      const other = task('o', '2026-10-26T10:00:00Z', '2026-10-26T11:00:00Z');
      expect(detectConflicts([whole, other], new Set(['o']), s)).to.deep.equal([]);
      expect(
        detectConflicts([whole, other], new Set(['o']), s, { extraDays: ['2026-10-25'] }),
      ).to.have.length(1);
    });

    it('orders over-capacity task ids with focus tasks first', () => {
      const s = { ...BERLIN, dailyCapacityMinutes: 60 };
      const tasks = [
        task('x', '2026-12-01T09:00:00Z', '2026-12-01T09:45:00Z'),
        task('y', '2026-12-01T10:00:00Z', '2026-12-01T10:45:00Z'),
      ];
      const [c] = detectConflicts(tasks, new Set(['y']), s);
      expect(c.key).to.equal('OVER_CAPACITY:2026-12-01');
      expect(c.taskIds).to.deep.equal(['y', 'x']);
    });
  });

  describe('properties', () => {
    it('detectConflicts(tasks, null) equals the brute-force oracle', () => {
      fc.assert(
        fc.property(planArb(), settingsArb, ({ tasks }, s) => {
          expect(shape(detectConflicts(tasks, null, s))).to.deep.equal(oracleConflicts(tasks, null, s));
        }),
        { numRuns: 200 },
      );
    });

    it('with a focus, equals the oracle restricted to conflicts involving the focus', () => {
      fc.assert(
        fc.property(
          planArb().chain((p) => fc.tuple(fc.constant(p), focusArb(p.tasks.map((t) => t.id)))),
          settingsArb,
          ([{ tasks }, focus], s) => {
            const expected = oracleConflicts(tasks, focus, s);
            expect(shape(detectConflicts(tasks, focus, s))).to.deep.equal(expected);
            // Filtering the unfocused oracle by involvement gives the same keys.
            const filtered = oracleConflicts(tasks, null, s)
              .filter((c) => focus === null || c.taskIds.some((id) => focus.has(id)))
              .map((c) => c.key);
            expect(expected.map((c) => c.key)).to.deep.equal(filtered);
            if (focus) {
              const subset = relevantSubset(tasks, focus, s);
              expect(shape(detectConflicts(subset, focus, s))).to.deep.equal(expected);
            }
          },
        ),
        { numRuns: 200 },
      );
    });
  });

  describe('at scale (timings live in npm run bench)', () => {
    it('checks one task against 10,000 scheduled tasks and finds exactly its conflicts', () => {
      const base = Date.parse('2026-01-05T00:00:00Z');
      const tasks: PlanTask[] = [];
      for (let i = 0; i < 10_000; i++) {
        const start = base + Math.floor(i / 8) * 86_400_000 + (i % 8) * 3_600_000 + 8 * 3_600_000;
        tasks.push(task(`p${i}`, new Date(start).toISOString(), new Date(start + 45 * 60_000).toISOString()));
      }
      tasks.push(task('focus', '2026-03-02T10:30:00Z', '2026-03-02T12:00:00Z', { dependsOn: ['p5'] }));
      const s = { ...BERLIN, timeZone: 'UTC' };
      const result = detectConflicts(tasks, new Set(['focus']), s);
      expect(result.map((c) => c.key)).to.deep.equal(['OVERLAP:focus:p450', 'OVERLAP:focus:p451']);
      // The whole-plan scan agrees with the focused one on the focus task's conflicts.
      const all = detectConflicts(tasks, null, s).filter((c) => c.taskIds.includes('focus'));
      expect(all.map((c) => c.key)).to.deep.equal(result.map((c) => c.key));
    });
  });
});
