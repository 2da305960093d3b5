/** Task operations: create, update, schedule, unschedule, complete, delete. */
import type { ConflictPolicy, Priority, TaskStatus } from '../../domain/types';
import { normaliseTags, validateSchedule, validateTaskFields } from '../../domain/validation';
import { detectionWindowsFor } from '../conflict-sync';
import type { LoadRequest } from '../loaded';
import type { OperationSpec } from '../runner';
import type { TaskContent, TaskPatch } from '../tx';
import { isUuid } from '../user-service';
import { asDate, checkReferences, problemsToError, requireTask, settleConflicts } from './common';

export interface CreateTaskInput {
  title: string;
  notes?: string | null;
  priority?: Priority | null;
  estimateMinutes?: number | null;
  dueAt?: Date | null;
  scheduledStart?: Date | null;
  scheduledEnd?: Date | null;
  tags?: string[] | null;
  goalId?: string | null;
  dependsOn?: string[] | null;
}

export interface UpdateTaskInput extends Partial<CreateTaskInput> {
  status?: TaskStatus | null;
}

const DAY_MS = 86_400_000;

/** Windows around a would-be position (nothing for invalid instants: validation answers those). */
function positionWindows(now: Date, start: Date | null | undefined, end: Date | null | undefined) {
  if (!(start instanceof Date) || Number.isNaN(start.getTime())) return [];
  const e =
    end instanceof Date && !Number.isNaN(end.getTime()) && end > start
      ? end
      : new Date(start.getTime() + DAY_MS);
  if (Math.abs(start.getTime()) > 8.64e15 - 40 * DAY_MS || e.getTime() > 8.64e15 - 40 * DAY_MS) return [];
  return detectionWindowsFor({ now }, [{ start, end: e }]);
}

const uuids = (ids: Array<string | null | undefined>) => ids.filter((x): x is string => !!x && isUuid(x));

/** The load of an operation on one task: the task (with windows around its stored position) and what the input names. */
function taskLoad(
  now: Date,
  ids: string[],
  input: Partial<CreateTaskInput>,
  withFocusWindows: boolean,
): LoadRequest {
  return {
    taskIds: uuids([...ids, ...(input.dependsOn ?? [])]),
    goalIds: uuids([input.goalId]),
    ranges: positionWindows(now, input.scheduledStart, input.scheduledEnd),
    windowsOfFocus: withFocusWindows,
  };
}

export function createTaskOp(now: Date, input: CreateTaskInput, policy: ConflictPolicy): OperationSpec {
  return {
    kind: 'CREATE_TASK',
    args: { input },
    load: taskLoad(now, [], input, false),
    decide: (tx) => {
      const problems = validateTaskFields(input, true);
      const start = input.scheduledStart ?? null;
      const end = input.scheduledEnd ?? null;
      problems.push(
        ...validateSchedule(start, end, {
          start: ['input', 'scheduledStart'],
          end: ['input', 'scheduledEnd'],
        }),
      );
      if (problems.length > 0) throw problemsToError(problems);
      const deps = [...new Set(input.dependsOn ?? [])];
      checkReferences(tx, null, input.goalId ?? null, deps);
      const content: TaskContent = {
        title: input.title.trim(),
        notes: input.notes ?? null,
        status: start ? 'SCHEDULED' : 'BACKLOG',
        priority: input.priority ?? 'MEDIUM',
        estimateMinutes: input.estimateMinutes ?? null,
        dueAt: input.dueAt ?? null,
        scheduledStart: start,
        scheduledEnd: end,
        tags: normaliseTags(input.tags ?? []),
        goalId: input.goalId ?? null,
        dependsOn: deps.sort(),
      };
      return { task: tx.insertTask(content) };
    },
    settle: (tx, out) => settleConflicts(tx, policy, out),
  };
}

export function updateTaskOp(
  now: Date,
  id: string,
  input: UpdateTaskInput,
  expectedVersion: number | null,
  policy: ConflictPolicy,
): OperationSpec {
  return {
    kind: 'UPDATE_TASK',
    args: { id, input, expectedVersion },
    load: {
      ...taskLoad(now, [id], input, true),
      reachFrom: input.dependsOn ? uuids(input.dependsOn) : undefined,
    },
    decide: (tx) => {
      const current = requireTask(tx, id);
      const problems = validateTaskFields(input, false);
      if (input.title === null) problems.push({ path: ['input', 'title'], message: 'title cannot be null' });
      if (input.status === null)
        problems.push({ path: ['input', 'status'], message: 'status cannot be null' });
      if (input.priority === null)
        problems.push({ path: ['input', 'priority'], message: 'priority cannot be null' });
      const start =
        input.scheduledStart !== undefined ? input.scheduledStart : asDate(current.scheduledStart);
      const end = input.scheduledEnd !== undefined ? input.scheduledEnd : asDate(current.scheduledEnd);
      problems.push(
        ...validateSchedule(start, end, {
          start: ['input', 'scheduledStart'],
          end: ['input', 'scheduledEnd'],
        }),
      );
      if (problems.length > 0) throw problemsToError(problems);
      const deps = input.dependsOn === undefined ? undefined : [...new Set(input.dependsOn ?? [])].sort();
      checkReferences(tx, id, input.goalId ?? null, deps ?? []);
      if (start && end)
        tx.need({
          ranges: positionWindows(tx.now, start, end).filter(
            (w) => !tx.base.covers(w.start.getTime(), w.end.getTime()),
          ),
        });
      const patch: TaskPatch = {};
      if (input.title != null) patch.title = input.title.trim();
      if (input.notes !== undefined) patch.notes = input.notes;
      if (input.priority != null) patch.priority = input.priority;
      if (input.estimateMinutes !== undefined) patch.estimateMinutes = input.estimateMinutes;
      if (input.dueAt !== undefined) patch.dueAt = input.dueAt;
      if (input.scheduledStart !== undefined) patch.scheduledStart = input.scheduledStart;
      if (input.scheduledEnd !== undefined) patch.scheduledEnd = input.scheduledEnd;
      if (input.tags !== undefined) patch.tags = normaliseTags(input.tags ?? []);
      if (input.goalId !== undefined) patch.goalId = input.goalId;
      if (deps !== undefined) patch.dependsOn = deps;
      if (input.status != null) patch.status = input.status;
      else if (
        start &&
        !current.scheduledStart &&
        (current.status === 'BACKLOG' || current.status === 'TODO')
      ) {
        patch.status = 'SCHEDULED';
      } else if (!start && current.scheduledStart && current.status === 'SCHEDULED') patch.status = 'BACKLOG';
      return { task: tx.updateTask(id, patch, expectedVersion, current) };
    },
    settle: (tx, out) => settleConflicts(tx, policy, out),
  };
}

export function scheduleTaskOp(
  now: Date,
  id: string,
  start: Date,
  end: Date | null,
  policy: ConflictPolicy,
): OperationSpec {
  return {
    kind: 'SCHEDULE_TASK',
    args: { id, start, end },
    load: taskLoad(now, [id], { scheduledStart: start, scheduledEnd: end }, true),
    decide: (tx) => {
      const current = requireTask(tx, id);
      let finish = end;
      if (finish === null) {
        finish = new Date(start.getTime() + (current.estimateMinutes ?? 30) * 60_000);
        if (current.estimateMinutes === null)
          tx.warnings.push('No end given and no estimate: scheduled for 30 minutes.');
      }
      const problems = validateSchedule(start, finish, { start: ['start'], end: ['end'] });
      if (Number.isNaN(start.getTime()))
        problems.push({ path: ['start'], message: 'start is not a valid instant' });
      if (problems.length > 0) throw problemsToError(problems);
      const patch: TaskPatch = { scheduledStart: start, scheduledEnd: finish };
      if (current.status === 'BACKLOG' || current.status === 'TODO') patch.status = 'SCHEDULED';
      if (current.status === 'DONE' || current.status === 'CANCELLED') {
        tx.warnings.push(
          `The task is ${current.status}: it is scheduled but does not take part in conflict checks.`,
        );
      }
      return { task: tx.updateTask(id, patch, null, current) };
    },
    settle: (tx, out) => settleConflicts(tx, policy, out),
  };
}

/** unschedule, complete, delete: operations on one existing task with no new position. */
export function simpleTaskOp(
  now: Date,
  kind: 'UNSCHEDULE_TASK' | 'COMPLETE_TASK' | 'DELETE_TASK',
  id: string,
): OperationSpec {
  return {
    kind,
    args: { id },
    load: taskLoad(now, [id], {}, true),
    decide: (tx) => {
      const current = requireTask(tx, id);
      switch (kind) {
        case 'UNSCHEDULE_TASK': {
          const patch: TaskPatch = { scheduledStart: null, scheduledEnd: null };
          if (current.status === 'SCHEDULED') patch.status = 'BACKLOG';
          return { task: tx.updateTask(id, patch, null, current) };
        }
        case 'COMPLETE_TASK':
          if (current.status === 'DONE') tx.warnings.push('The task was already DONE.');
          return { task: tx.updateTask(id, { status: 'DONE' }, null, current) };
        case 'DELETE_TASK':
          tx.deleteTask(id);
          return { task: null };
      }
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}
