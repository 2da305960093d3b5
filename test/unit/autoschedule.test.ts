import { expect } from 'chai';
import fc from 'fast-check';
import {
  planAutoSchedule,
  plannedDurationMinutes,
  type AutoSchedulePlan,
} from '../../src/domain/autoschedule';
import { detectConflicts } from '../../src/domain/conflicts';
import type { PlanTask, UserSettings } from '../../src/domain/types';
import { BLOCK_MS, oracleConflicts, planArb, settingsArb } from '../support/oracle';
import { everyDay } from '../support/plan-fixtures';

function task(id: string, extra: Partial<PlanTask> = {}): PlanTask {
  return {
    id,
    title: extra.title ?? id,
    status: 'BACKLOG',
    priority: 'MEDIUM',
    estimateMinutes: 60,
    dueAt: null,
    start: null,
    end: null,
    dependsOn: [],
    ...extra,
  };
}

const NY: UserSettings = {
  timeZone: 'America/New_York',
  workingHours: everyDay('09:00', '17:00'),
  dailyCapacityMinutes: 480,
};

/**
 * The plan after applying the result: placed tasks scheduled; other tasks to place keep their slot
 * (`unscheduleRest` false, what the WorldUpdater does) or lose it.
 */
function applyPlan(
  world: PlanTask[],
  toPlace: PlanTask[],
  plan: AutoSchedulePlan,
  unscheduleRest = false,
): PlanTask[] {
  const placeIds = new Set(toPlace.map((t) => t.id));
  const placed = new Map(plan.placed.map((p) => [p.taskId, p]));
  const merged = new Map(world.map((t) => [t.id, t]));
  for (const t of toPlace) merged.set(t.id, t);
  return [...merged.values()].map((t) => {
    if (!placeIds.has(t.id)) return t;
    const p = placed.get(t.id);
    if (p) {
      return {
        ...t,
        start: p.start,
        end: p.end,
        status: t.status === 'IN_PROGRESS' ? t.status : ('SCHEDULED' as const),
      };
    }
    return unscheduleRest ? { ...t, start: null, end: null } : t;
  });
}

const iso = (d: Date): string => d.toISOString();

describe('domain/autoschedule', () => {
  // Sun 1 Nov 2026 is the 25-hour day in New York (EST from 02:00 local).
  const from = new Date('2026-11-01T04:00:00Z'); // local midnight
  const to = new Date('2026-11-04T05:00:00Z');
  const now = new Date('2026-10-30T12:00:00Z');

  it('places by dependency, then priority, into 09:00-17:00 local across the DST switch', () => {
    const a = task('a', { title: 'Alpha', priority: 'LOW', estimateMinutes: 120 });
    const b = task('b', { title: 'Beta', priority: 'URGENT', estimateMinutes: 60, dependsOn: ['a'] });
    const c = task('c', { title: 'Gamma', priority: 'HIGH', estimateMinutes: 30 });
    const plan = planAutoSchedule([a, b, c], [a, b, c], NY, { from, to }, now);
    expect(plan.unplaced).to.deep.equal([]);
    expect(plan.placed.map((p) => [p.taskId, iso(p.start), iso(p.end)])).to.deep.equal([
      ['c', '2026-11-01T14:00:00.000Z', '2026-11-01T14:30:00.000Z'], // 09:00 EST
      ['a', '2026-11-01T14:30:00.000Z', '2026-11-01T16:30:00.000Z'],
      ['b', '2026-11-01T16:30:00.000Z', '2026-11-01T17:30:00.000Z'],
    ]);
  });

  it('skips occupied slots, respects capacity and the old slot of a task being placed is free', () => {
    const busy = task('busy', {
      status: 'SCHEDULED',
      start: new Date('2026-11-01T14:00:00Z'),
      end: new Date('2026-11-01T20:00:00Z'),
    });
    const moving = task('m', {
      status: 'SCHEDULED',
      estimateMinutes: 60,
      start: new Date('2026-11-01T20:00:00Z'),
      end: new Date('2026-11-01T21:00:00Z'),
    });
    const big = task('big', { estimateMinutes: 180 });
    const plan = planAutoSchedule([moving, big], [busy, moving, big], NY, { from, to }, now);
    expect(plan.placed.map((p) => [p.taskId, iso(p.start)])).to.deep.equal([
      ['big', '2026-11-02T14:00:00.000Z'], // 6 h used on Nov 1; 3 h more would exceed 8 h
      ['m', '2026-11-01T20:00:00.000Z'],
    ]);
  });

  it('reports reasons: cycle, unplaced dependency, too long, past due, no room', () => {
    const x = task('x', { dependsOn: ['y'] });
    const y = task('y', { dependsOn: ['x'] });
    const z = task('z', { dependsOn: ['x'] });
    const long = task('long', { estimateMinutes: 600 });
    const due = task('due', { dueAt: new Date('2026-10-31T12:00:00Z') });
    const huge = [1, 2, 3, 4].map((i) => task(`h${i}`, { estimateMinutes: 480, priority: 'URGENT' }));
    const toPlace = [x, y, z, long, due, ...huge];
    const plan = planAutoSchedule(toPlace, toPlace, NY, { from, to }, now);
    const codes = Object.fromEntries(plan.unplaced.map((u) => [u.taskId, u.code]));
    expect(codes).to.deep.include({
      x: 'DEPENDENCY_CYCLE',
      y: 'DEPENDENCY_CYCLE',
      z: 'DEPENDENCY_UNPLACED',
      long: 'NO_ESTIMATE_SLOT',
      due: 'NO_SLOT_BEFORE_DUE',
      h4: 'NO_SLOT_IN_WINDOW',
    });
    expect(plan.placed.map((p) => p.taskId)).to.deep.equal(['h1', 'h2', 'h3']);
    for (const u of plan.unplaced) expect(u.reason).to.be.a('string').and.not.equal('');
  });

  it('does not place over the old slot of a task that stays unplaced', () => {
    // "stuck" (scheduled 09:00-10:00 EST on Nov 1) cannot move: its due time is before the window.
    const stuck = task('stuck', {
      status: 'SCHEDULED',
      priority: 'URGENT',
      estimateMinutes: 60,
      dueAt: new Date('2026-10-31T12:00:00Z'),
      start: new Date('2026-11-01T14:00:00Z'),
      end: new Date('2026-11-01T15:00:00Z'),
    });
    const other = task('other', { estimateMinutes: 60 });
    const plan = planAutoSchedule([stuck, other], [stuck, other], NY, { from, to }, now);
    expect(plan.unplaced.map((u) => [u.taskId, u.code])).to.deep.equal([['stuck', 'NO_SLOT_BEFORE_DUE']]);
    expect(plan.placed.map((p) => [p.taskId, iso(p.start)])).to.deep.equal([
      ['other', '2026-11-01T15:00:00.000Z'],
    ]);
  });

  it('never places before now and uses 30 minutes without an estimate', () => {
    const t = task('t', { estimateMinutes: null });
    const later = new Date('2026-11-02T15:07:00Z'); // 10:07 EST
    const plan = planAutoSchedule([t], [t], NY, { from, to }, later);
    expect(plan.placed.map((p) => [iso(p.start), iso(p.end)])).to.deep.equal([
      ['2026-11-02T15:10:00.000Z', '2026-11-02T15:40:00.000Z'],
    ]);
  });

  it('keeps placed tasks before scheduled dependents outside the set', () => {
    const t = task('t', { estimateMinutes: 60 });
    const dependent = task('dep', {
      status: 'SCHEDULED',
      dependsOn: ['t'],
      start: new Date('2026-11-01T14:30:00Z'),
      end: new Date('2026-11-01T15:00:00Z'),
    });
    const plan = planAutoSchedule([t], [t, dependent], NY, { from, to }, now);
    expect(plan.unplaced.map((u) => u.code)).to.deep.equal(['NO_SLOT_IN_WINDOW']);
  });

  describe('properties', () => {
    it('placements are conflict-free (oracle), inside the window and complete', () => {
      fc.assert(
        fc.property(
          planArb(10, 24).chain((p) =>
            fc.tuple(
              fc.constant(p),
              fc.subarray(p.tasks),
              fc.integer({ min: 0, max: 2 * 96 }),
              fc.integer({ min: 1, max: 4 * 96 }),
              fc.integer({ min: 0, max: 3 * 96 }),
            ),
          ),
          settingsArb,
          ([{ anchor, tasks }, toPlace, fromBlock, lenBlocks, nowBlock], s) => {
            const window = {
              from: new Date(anchor + fromBlock * BLOCK_MS),
              to: new Date(anchor + (fromBlock + lenBlocks) * BLOCK_MS),
            };
            const nowDate = new Date(anchor + nowBlock * BLOCK_MS);
            const plan = planAutoSchedule(toPlace, tasks, s, window, nowDate);
            const ids = [...plan.placed.map((p) => p.taskId), ...plan.unplaced.map((u) => u.taskId)].sort();
            expect(ids).to.deep.equal(toPlace.map((t) => t.id).sort());
            const lower = Math.max(window.from.getTime(), nowDate.getTime());
            for (const p of plan.placed) {
              const t = toPlace.find((x) => x.id === p.taskId)!;
              expect(p.start.getTime()).to.be.at.least(lower);
              expect(p.end.getTime()).to.be.at.most(window.to.getTime());
              expect(p.end.getTime() - p.start.getTime()).to.equal(plannedDurationMinutes(t) * 60_000);
            }
            const placedIds = new Set(plan.placed.map((p) => p.taskId));
            for (const unscheduleRest of [false, true]) {
              const after = applyPlan(tasks, toPlace, plan, unscheduleRest);
              expect(oracleConflicts(after, placedIds, s)).to.deep.equal([]);
              expect(detectConflicts(after, placedIds, s)).to.deep.equal([]);
            }
            // A dependency inside the set is placed first, or stays unplaced keeping its current slot.
            const order = plan.placed.map((p) => p.taskId);
            for (const p of plan.placed) {
              const t = toPlace.find((x) => x.id === p.taskId)!;
              for (const d of t.dependsOn) {
                const dep = toPlace.find((x) => x.id === d);
                if (d === t.id || !dep) continue;
                if (order.includes(d)) expect(order.indexOf(d)).to.be.lessThan(order.indexOf(t.id));
                else
                  expect(dep.start, `${t.id} placed although its dependency ${d} was not`).to.not.equal(null);
              }
            }
          },
        ),
        { numRuns: 150 },
      );
    });

    it('an empty world with room places every task (nothing is lost to a bug)', () => {
      fc.assert(
        fc.property(
          fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 8 }),
          fc.constantFrom('Europe/Berlin', 'America/New_York', 'UTC', 'Asia/Kolkata'),
          (sizes, tz) => {
            const s: UserSettings = {
              timeZone: tz,
              workingHours: everyDay('09:00', '17:00'),
              dailyCapacityMinutes: 480,
            };
            const toPlace = sizes.map((n, i) => task(`t${i}`, { estimateMinutes: n * 15 }));
            const start = new Date('2026-03-07T00:00:00Z');
            const plan = planAutoSchedule(
              toPlace,
              toPlace,
              s,
              { from: start, to: new Date('2026-03-12T00:00:00Z') },
              start,
            );
            expect(plan.unplaced).to.deep.equal([]);
          },
        ),
        { numRuns: 50 },
      );
    });
  });
});
