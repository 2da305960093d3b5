/** autoSchedule: place tasks (or the whole backlog) in free working time, in one load and one write. */
import { plannedDurationMinutes, planAutoSchedule } from '../../domain/autoschedule';
import type { PlanTask } from '../../domain/types';
import { toPlanTask } from '../conflict-sync';
import { DomainError } from '../errors';
import type { OperationSpec } from '../runner';
import type { TaskPatch } from '../tx';
import { isUuid } from '../user-service';
import type { PlacementView, TaskView } from '../views';
import { noteAutoSchedule, proposedMinutes, shapingOf } from '../memory-shaping';
import { settleConflicts } from './common';

const DAY_MS = 86_400_000;
const MAX_AUTO_SCHEDULE_TASKS = 500;
const MAX_AUTO_SCHEDULE_DAYS = 62;

export function autoScheduleOp(taskIds: string[] | null, from: Date, to: Date): OperationSpec {
  const valid =
    to.getTime() > from.getTime() && to.getTime() - from.getTime() <= MAX_AUTO_SCHEDULE_DAYS * DAY_MS;
  // Two days either side: a local day (up to 25 h, offsets up to ±14 h) touched by a placement lies inside.
  const window = valid
    ? [{ start: new Date(from.getTime() - 2 * DAY_MS), end: new Date(to.getTime() + 2 * DAY_MS) }]
    : [];
  const ids = taskIds === null ? [] : [...new Set(taskIds)];
  return {
    kind: 'AUTO_SCHEDULE',
    args: { taskIds, from, to },
    load: {
      taskIds: ids.length <= MAX_AUTO_SCHEDULE_TASKS ? ids.filter(isUuid) : [],
      ranges: window,
      windowsOfFocus: false,
      backlog: taskIds === null ? MAX_AUTO_SCHEDULE_TASKS : undefined,
    },
    decide: (tx) => {
      if (!(to.getTime() > from.getTime()))
        throw new DomainError('VALIDATION', '`to` must be after `from`', ['to']);
      if (!valid) {
        throw new DomainError('VALIDATION', `the window may span at most ${MAX_AUTO_SCHEDULE_DAYS} days`, [
          'to',
        ]);
      }
      let toPlace: TaskView[];
      if (taskIds !== null) {
        if (ids.length > MAX_AUTO_SCHEDULE_TASKS) {
          throw new DomainError('VALIDATION', `at most ${MAX_AUTO_SCHEDULE_TASKS} tasks at once`, [
            'taskIds',
          ]);
        }
        const bad = ids.filter((i) => !isUuid(i));
        const missing = [...bad, ...tx.missingTasks(ids.filter(isUuid))];
        if (missing.length > 0) {
          throw DomainError.many(
            missing.map((m) => ({
              code: 'NOT_FOUND',
              message: `No such task: ${m}`,
              path: ['taskIds', String(taskIds.indexOf(m))],
            })),
          );
        }
        toPlace = tx.tasks(ids).filter((t) => t.status !== 'DONE' && t.status !== 'CANCELLED');
      } else {
        tx.need({ backlog: MAX_AUTO_SCHEDULE_TASKS });
        toPlace = tx.tasks(tx.base.backlog ?? []);
      }
      const world = new Map<string, PlanTask>();
      for (const t of tx.planTasksMeeting(window)) world.set(t.id, t);
      // Dependencies bound a placement's start; scheduled dependents (even outside the window) bound its end.
      for (const t of tx.dependencyNeighbours(toPlace.map((x) => x.id)))
        if (!world.has(t.id)) world.set(t.id, t);
      const placing = toPlace.map(toPlanTask);
      for (const t of placing) world.set(t.id, t);
      // Semantic memory: preferred windows first, durations from learned patterns (estimates untouched).
      const shaping = shapingOf(tx);
      const tz = tx.user.time_zone;
      const plan = planAutoSchedule(
        placing,
        [...world.values()],
        tx.settings(),
        { from, to },
        tx.now,
        shaping
          ? {
              preferredWindows: (t, day) => shaping.preferredWindows(t.title, day, tz),
              durationMinutes: (t) => {
                const base = plannedDurationMinutes(t);
                return (
                  proposedMinutes(shaping, { title: t.title, estimateMinutes: base }, base)?.minutes ?? base
                );
              },
            }
          : {},
      );
      if (shaping) noteAutoSchedule(tx, shaping, placing, plan.placed);
      const placements: PlacementView[] = [];
      for (const p of plan.placed) {
        const t = world.get(p.taskId)!;
        const patch: TaskPatch = { scheduledStart: p.start, scheduledEnd: p.end };
        if (t.status === 'BACKLOG' || t.status === 'TODO') patch.status = 'SCHEDULED';
        tx.updateTask(p.taskId, patch);
        placements.push({ taskId: p.taskId, start: p.start, end: p.end });
      }
      return {
        placements,
        unplaced: plan.unplaced.map((u) => ({ taskId: u.taskId, code: u.code, reason: u.reason })),
      };
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}
