/**
 * The WorldUpdater: the one way the plan changes. Each operation runs in one transaction that first
 * locks the user's row (so one user's operations are serialised and detection always sees the
 * committed plan), applies tracked writes, re-evaluates conflicts for what it touched, records the
 * operation with its exact inverse, writes outbox events (announced by NOTIFY on commit), stores the
 * idempotency key, and answers with a rich UpdateResult. Domain problems roll everything back and
 * come back as `errors`.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { DataSource, QueryRunner } from 'typeorm';
import { planAutoSchedule } from '../domain/autoschedule';
import { detectConflicts } from '../domain/conflicts';
import { isValidTimeZone, validateWorkingHours } from '../domain/time';
import type {
  ConflictPolicy,
  DetectedConflict,
  GoalStatus,
  LocalInterval,
  PlanTask,
  Priority,
  TaskStatus,
  Weekday,
  WorkingHours,
} from '../domain/types';
import {
  normaliseTags,
  validateGoalFields,
  validateSchedule,
  validateTaskFields,
  type Problem,
} from '../domain/validation';
import type { Clock } from './clock';
import {
  alternativesFor,
  checkAlternative,
  loadDependencyNeighbours,
  loadRelevantWorld,
  loadWindow,
  syncConflicts,
  toPlanTask,
  type AlternativeFit,
  type SyncOutcome,
} from './conflict-sync';
import { DomainError, type UserErrorDetail } from './errors';
import { QueryService, undoStateWith } from './query-service';
import { mapConflict, mapOperation, type ConflictRow, type OperationRow, type UserRow } from './rows';
import { entityKey, fieldChanges, sameContent, type EntityName, type Row, type Snapshot } from './snapshots';
import { WorldTx, type TaskContent, type TaskPatch } from './tx';
import { isUuid } from './user-service';
import type {
  Actor,
  AlternativeView,
  ConflictView,
  GoalView,
  PlacementView,
  TaskView,
  UnplacedView,
  UpdateResultView,
} from './views';

/** The Postgres channel NOTIFY uses to wake event relays (payload: `<userId>:<seq>`, a hint only). */
export const EVENTS_CHANNEL = 'planner_events';
const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
const NON_ORDINARY = new Set(['UNDO', 'REDO']);
const AUTO_RESOLVE_ROUNDS = 5;
const MAX_AUTO_SCHEDULE_TASKS = 500;
const MAX_AUTO_SCHEDULE_DAYS = 62;

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

export interface CreateGoalInput {
  title: string;
  priority?: Priority | null;
  targetDate?: Date | null;
}

export interface UpdateGoalInput {
  title?: string | null;
  priority?: Priority | null;
  status?: GoalStatus | null;
  targetDate?: Date | null;
}

export interface SettingsInput {
  timeZone?: string | null;
  /** Weekdays listed replace that day's hours; weekdays not listed keep theirs. */
  workingHours?: Array<{ weekday: Weekday; intervals: LocalInterval[] }> | null;
  dailyCapacityMinutes?: number | null;
  displayName?: string | null;
}

export interface MutationOptions {
  onConflict?: ConflictPolicy | null;
  idempotencyKey?: string | null;
}

interface BodyResult {
  task?: TaskView | null;
  goal?: GoalView | null;
  placements?: PlacementView[];
  unplaced?: UnplacedView[];
  targetOperationId?: string;
  /** Conflict status changes are made by the body itself (dismiss): skip detection. */
  skipConflictSync?: boolean;
  /** Extra task ids whose conflicts must be re-evaluated (settings changes). */
  alsoCheck?: string[];
}

/** A DomainError that also carries conflicts to show (CONFLICT_REJECTED, ALTERNATIVE_STALE). */
class DomainErrorWithConflicts extends DomainError {
  constructor(
    code: 'CONFLICT_REJECTED' | 'ALTERNATIVE_STALE' | 'NOT_FOUND',
    message: string,
    path: string[] | null,
    readonly conflicts: ConflictView[],
  ) {
    super(code, message, path);
  }
}

function problemsToError(problems: Problem[]): DomainError {
  return DomainError.many(problems.map((p) => ({ code: 'VALIDATION', message: p.message, path: p.path })));
}

function emptySync(): SyncOutcome {
  return { opened: [], resolved: [], open: [], changes: [] };
}

export class WorldUpdater {
  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
    private readonly queries: QueryService,
    private readonly opts: { undoDepth: number },
  ) {}

  // ================================================================= tasks

  async createTask(
    actor: Actor,
    input: CreateTaskInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'CREATE_TASK', { input }, opts, async (tx) => {
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
      await this.checkReferences(tx, null, input.goalId ?? null, deps);
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
      return { task: await tx.insertTask(content) };
    });
  }

  async updateTask(
    actor: Actor,
    id: string,
    input: UpdateTaskInput,
    opts: MutationOptions & { expectedVersion?: number | null } = {},
  ): Promise<UpdateResultView> {
    return this.run(
      actor,
      'UPDATE_TASK',
      { id, input, expectedVersion: opts.expectedVersion ?? null },
      opts,
      async (tx) => {
        const current = await this.requireTask(tx, id);
        const problems = validateTaskFields(input, false);
        if (input.title === null)
          problems.push({ path: ['input', 'title'], message: 'title cannot be null' });
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
        await this.checkReferences(tx, id, input.goalId ?? null, deps ?? []);
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
        } else if (!start && current.scheduledStart && current.status === 'SCHEDULED')
          patch.status = 'BACKLOG';
        return { task: await tx.updateTask(id, patch, opts.expectedVersion, current) };
      },
    );
  }

  async scheduleTask(
    actor: Actor,
    id: string,
    start: Date,
    end: Date | null,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'SCHEDULE_TASK', { id, start, end }, opts, async (tx) => {
      const current = await this.requireTask(tx, id);
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
      return { task: await tx.updateTask(id, patch, null, current) };
    });
  }

  async unscheduleTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.run(actor, 'UNSCHEDULE_TASK', { id }, opts, async (tx) => {
      const current = await this.requireTask(tx, id);
      const patch: TaskPatch = { scheduledStart: null, scheduledEnd: null };
      if (current.status === 'SCHEDULED') patch.status = 'BACKLOG';
      return { task: await tx.updateTask(id, patch, null, current) };
    });
  }

  async completeTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.run(actor, 'COMPLETE_TASK', { id }, opts, async (tx) => {
      const current = await this.requireTask(tx, id);
      if (current.status === 'DONE') tx.warnings.push('The task was already DONE.');
      return { task: await tx.updateTask(id, { status: 'DONE' }, null, current) };
    });
  }

  async deleteTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.run(actor, 'DELETE_TASK', { id }, opts, async (tx) => {
      await this.requireTask(tx, id);
      await tx.deleteTask(id);
      return { task: null };
    });
  }

  // ================================================================= goals

  async createGoal(
    actor: Actor,
    input: CreateGoalInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'CREATE_GOAL', { input }, opts, async (tx) => {
      const problems = validateGoalFields(input, true);
      if (problems.length > 0) throw problemsToError(problems);
      const goal = await tx.insertGoal({
        title: input.title.trim(),
        status: 'ACTIVE',
        priority: input.priority ?? 'MEDIUM',
        targetDate: input.targetDate ?? null,
      });
      return { goal };
    });
  }

  async updateGoal(
    actor: Actor,
    id: string,
    input: UpdateGoalInput,
    opts: MutationOptions & { expectedVersion?: number | null } = {},
  ): Promise<UpdateResultView> {
    return this.run(
      actor,
      'UPDATE_GOAL',
      { id, input, expectedVersion: opts.expectedVersion ?? null },
      opts,
      async (tx) => {
        if (!isUuid(id) || !(await tx.goal(id))) throw new DomainError('NOT_FOUND', 'No such goal', ['id']);
        const problems = validateGoalFields(input, false);
        if (input.title === null)
          problems.push({ path: ['input', 'title'], message: 'title cannot be null' });
        if (problems.length > 0) throw problemsToError(problems);
        const goal = await tx.updateGoal(
          id,
          {
            title: input.title?.trim() ?? undefined,
            priority: input.priority ?? undefined,
            status: input.status ?? undefined,
            targetDate: input.targetDate,
          },
          opts.expectedVersion,
        );
        return { goal };
      },
    );
  }

  // ================================================================= settings

  async updateSettings(
    actor: Actor,
    input: SettingsInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'UPDATE_SETTINGS', { input }, opts, async (tx) => {
      const problems: Problem[] = [];
      if (input.timeZone != null && !isValidTimeZone(input.timeZone)) {
        problems.push({
          path: ['input', 'timeZone'],
          message: `"${input.timeZone}" is not an IANA time zone`,
        });
      }
      let workingHours: WorkingHours | undefined;
      if (input.workingHours != null) {
        const merged: WorkingHours = { ...tx.user.working_hours };
        const seen = new Set<string>();
        input.workingHours.forEach((d, i) => {
          if (seen.has(d.weekday)) {
            problems.push({
              path: ['input', 'workingHours', String(i), 'weekday'],
              message: `${d.weekday} is listed twice`,
            });
          }
          seen.add(d.weekday);
          merged[d.weekday] = d.intervals.map((x) => ({ start: x.start, end: x.end }));
        });
        const msg = validateWorkingHours(merged);
        if (msg) problems.push({ path: ['input', 'workingHours'], message: msg });
        workingHours = merged;
      }
      const cap = input.dailyCapacityMinutes;
      if (cap != null && (!Number.isInteger(cap) || cap < 1 || cap > 1440)) {
        problems.push({
          path: ['input', 'dailyCapacityMinutes'],
          message: `dailyCapacityMinutes must be 1–1440, got ${cap}`,
        });
      }
      if (
        input.displayName != null &&
        (input.displayName.trim().length < 1 || input.displayName.trim().length > 200)
      ) {
        problems.push({ path: ['input', 'displayName'], message: 'displayName must be 1–200 characters' });
      }
      if (problems.length > 0) throw problemsToError(problems);
      await tx.updateSettings({
        timeZone: input.timeZone ?? undefined,
        workingHours,
        dailyCapacityMinutes: cap ?? undefined,
        displayName: input.displayName?.trim() ?? undefined,
      });
      // Hours, zone and capacity change what conflicts: re-check the tasks of every stored open (or
      // dismissed, still active) conflict, wherever they lie, and the plan from a day ago to 60 days ahead.
      const stored = await tx.query<{ id: string }>(
        `SELECT DISTINCT unnest(task_ids) AS id FROM conflicts
         WHERE user_id = $1 AND (status = 'OPEN' OR (status = 'DISMISSED' AND active))`,
        [tx.userId],
      );
      const from = new Date(tx.now.getTime() - 86_400_000);
      const upcoming = await loadWindow(tx, from, new Date(tx.now.getTime() + 60 * 86_400_000));
      const ids = [...new Set([...stored.map((r) => r.id), ...upcoming.map((t) => t.id)])];
      return { alsoCheck: ids.slice(0, 2000) };
    });
  }

  // ================================================================= planning

  async autoSchedule(
    actor: Actor,
    taskIds: string[] | null,
    from: Date,
    to: Date,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'AUTO_SCHEDULE', { taskIds, from, to }, opts, async (tx) => {
      if (!(to.getTime() > from.getTime()))
        throw new DomainError('VALIDATION', '`to` must be after `from`', ['to']);
      if (to.getTime() - from.getTime() > MAX_AUTO_SCHEDULE_DAYS * 86_400_000) {
        throw new DomainError('VALIDATION', `the window may span at most ${MAX_AUTO_SCHEDULE_DAYS} days`, [
          'to',
        ]);
      }
      let toPlace: TaskView[];
      if (taskIds !== null) {
        const ids = [...new Set(taskIds)];
        if (ids.length > MAX_AUTO_SCHEDULE_TASKS) {
          throw new DomainError('VALIDATION', `at most ${MAX_AUTO_SCHEDULE_TASKS} tasks at once`, [
            'taskIds',
          ]);
        }
        const bad = ids.filter((i) => !isUuid(i));
        const missing = [...bad, ...(await tx.missingTasks(ids.filter(isUuid)))];
        if (missing.length > 0) {
          throw DomainError.many(
            missing.map((m) => ({
              code: 'NOT_FOUND',
              message: `No such task: ${m}`,
              path: ['taskIds', String(taskIds.indexOf(m))],
            })),
          );
        }
        toPlace = (await tx.tasks(ids)).filter((t) => t.status !== 'DONE' && t.status !== 'CANCELLED');
      } else {
        const rows = await tx.query<{ id: string }>(
          `SELECT id FROM tasks WHERE user_id = $1 AND status IN ('BACKLOG','TODO') AND scheduled_start IS NULL
           ORDER BY created_at, id LIMIT $2`,
          [tx.userId, MAX_AUTO_SCHEDULE_TASKS],
        );
        toPlace = await tx.tasks(rows.map((r) => r.id));
      }
      const world = new Map<string, PlanTask>();
      // Two days either side: a local day (up to 25 h, offsets up to ±14 h) touched by a placement lies inside.
      for (const t of await loadWindow(
        tx,
        new Date(from.getTime() - 2 * 86_400_000),
        new Date(to.getTime() + 2 * 86_400_000),
      )) {
        world.set(t.id, t);
      }
      // Dependencies bound a placement's start; scheduled dependents (even outside the window) bound its end.
      for (const t of await loadDependencyNeighbours(
        tx,
        toPlace.map((x) => x.id),
      ))
        if (!world.has(t.id)) world.set(t.id, t);
      const placing = toPlace.map(toPlanTask);
      for (const t of placing) world.set(t.id, t);
      const plan = planAutoSchedule(placing, [...world.values()], tx.settings(), { from, to }, tx.now);
      const placements: PlacementView[] = [];
      for (const p of plan.placed) {
        const t = world.get(p.taskId)!;
        const patch: TaskPatch = { scheduledStart: p.start, scheduledEnd: p.end };
        if (t.status === 'BACKLOG' || t.status === 'TODO') patch.status = 'SCHEDULED';
        await tx.updateTask(p.taskId, patch);
        placements.push({ taskId: p.taskId, start: p.start, end: p.end });
      }
      return {
        placements,
        unplaced: plan.unplaced.map((u) => ({ taskId: u.taskId, code: u.code, reason: u.reason })),
      };
    });
  }

  async resolveConflict(
    actor: Actor,
    conflictId: string,
    alternativeId: string,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'RESOLVE_CONFLICT', { conflictId, alternativeId }, opts, async (tx) => {
      const conflict = await this.requireConflict(tx, conflictId);
      if (conflict.status !== 'OPEN') {
        throw new DomainError('VALIDATION', `The conflict is already ${conflict.status}`, ['conflictId']);
      }
      const ref = {
        kind: conflict.kind,
        key: await this.conflictKey(tx, conflict.id),
        taskIds: conflict.taskIds,
      };
      // The stored alternative is re-checked against the plan as it is now (not looked up in a fresh top 5:
      // an alternative that still fits must not be refused because newer ones outrank it).
      const stored = conflict.alternatives.find((a) => a.id === alternativeId);
      let alt: AlternativeView | undefined;
      let fit: AlternativeFit = 'STALE';
      if (stored) {
        fit = await checkAlternative(tx, ref, stored);
        if (fit !== 'STALE') alt = stored;
      }
      if (!alt) {
        const fresh = await this.freshAlternatives(tx, conflict);
        if (!fresh.detected) {
          // Its cause is already gone: re-evaluating the conflict's tasks marks it RESOLVED.
          tx.warnings.push(
            'The conflict no longer holds: it is marked RESOLVED and the alternative was not applied.',
          );
          return { task: null, alsoCheck: conflict.taskIds };
        }
        const freshView: ConflictView = {
          ...conflict,
          message: fresh.detected.message,
          taskIds: fresh.detected.taskIds,
          alternatives: fresh.alternatives,
        };
        const candidate = fresh.alternatives.find((a) => a.id === alternativeId);
        if (candidate) fit = await checkAlternative(tx, ref, candidate);
        if (!candidate || fit === 'STALE') {
          throw new DomainErrorWithConflicts(
            stored || candidate ? 'ALTERNATIVE_STALE' : 'NOT_FOUND',
            stored || candidate
              ? 'The plan changed since this alternative was offered and it no longer fits: choose one of the fresh alternatives'
              : 'No such alternative for this conflict',
            ['alternativeId'],
            [freshView],
          );
        }
        alt = candidate;
      }
      await this.applyAlternative(tx, alt);
      if (fit === 'PARTIAL') {
        // Only lowers the day's total: the conflict still holds and stays OPEN (refreshed by detection).
        tx.warnings.push(
          `Applied: ${alt.description}. The day is still over capacity, so the conflict stays OPEN.`,
        );
      } else {
        await tx.setConflictStatus(conflict.id, 'RESOLVED', alt.id);
        await tx.query('UPDATE conflicts SET active = false WHERE user_id = $1 AND id = $2', [
          tx.userId,
          conflict.id,
        ]);
        tx.events.push({
          topic: 'conflict',
          type: 'RESOLVED',
          payload: { conflict: { ...conflict, status: 'RESOLVED', chosenAlternativeId: alt.id } },
        });
      }
      const task = alt.taskId ? await tx.task(alt.taskId) : null;
      return { task };
    });
  }

  async dismissConflict(
    actor: Actor,
    conflictId: string,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'DISMISS_CONFLICT', { conflictId }, opts, async (tx) => {
      const conflict = await this.requireConflict(tx, conflictId);
      if (conflict.status !== 'OPEN') {
        throw new DomainError('VALIDATION', `The conflict is already ${conflict.status}`, ['conflictId']);
      }
      await tx.setConflictStatus(conflict.id, 'DISMISSED', null);
      tx.events.push({
        topic: 'conflict',
        type: 'DISMISSED',
        payload: { conflict: { ...conflict, status: 'DISMISSED' } },
      });
      return { skipConflictSync: true };
    });
  }

  // ================================================================= undo / redo

  async undo(
    actor: Actor,
    operationId: string | null,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.run(actor, 'UNDO', { operationId }, opts, async (tx) => {
      ensureMayUndo(actor, operationId === null ? null : ['operationId']);
      const window = await tx.query<OperationRow>(
        `SELECT * FROM operations WHERE user_id = $1 AND kind NOT IN ('UNDO','REDO') ORDER BY seq DESC LIMIT $2`,
        [tx.userId, this.opts.undoDepth],
      );
      let target: OperationRow | undefined;
      if (operationId === null) {
        target = window.find((o) => o.state === 'APPLIED');
        if (!target) throw new DomainError('NOTHING_TO_UNDO', 'There is no operation to undo', null);
      } else {
        const rows = isUuid(operationId)
          ? await tx.query<OperationRow>('SELECT * FROM operations WHERE user_id = $1 AND id = $2', [
              tx.userId,
              operationId,
            ])
          : [];
        target = rows[0];
        if (!target) throw new DomainError('NOT_FOUND', 'No such operation', ['operationId']);
        if (NON_ORDINARY.has(target.kind)) {
          throw new DomainError(
            'VALIDATION',
            `An ${target.kind} cannot itself be undone: use ${target.kind === 'UNDO' ? 'redo' : 'undo'}`,
            ['operationId'],
          );
        }
        if (target.state === 'UNDONE')
          throw new DomainError('NOTHING_TO_UNDO', 'That operation is already undone', ['operationId']);
        if (!window.some((o) => o.id === target!.id)) {
          throw new DomainError(
            'UNDO_BLOCKED',
            `Operation #${target.seq} is older than the undo depth (${this.opts.undoDepth})`,
            ['operationId'],
          );
        }
      }
      const delta = contentDelta(target);
      await this.ensureClean(tx, target, delta.forward);
      await this.ensureReferences(tx, target, delta.inverse);
      await this.applySnapshots(tx, delta.inverse);
      const undoSeq = Number(tx.user.op_seq) + 1;
      await tx.query(
        `UPDATE operations SET state = 'UNDONE', state_changed_at = $3, undone_by_seq = $4, redoable = true
         WHERE user_id = $1 AND id = $2`,
        [tx.userId, target.id, tx.now, undoSeq],
      );
      tx.events.push({
        topic: 'undo',
        type: 'UNDONE',
        payload: { operation: { ...mapOperation(target), state: 'UNDONE' } },
      });
      const task = await this.mainTaskOf(tx, target);
      return { targetOperationId: target.id, task };
    });
  }

  async redo(actor: Actor, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.run(actor, 'REDO', {}, opts, async (tx) => {
      ensureMayUndo(actor, null);
      const rows = await tx.query<OperationRow>(
        `SELECT * FROM operations WHERE user_id = $1 AND state = 'UNDONE' AND redoable ORDER BY undone_by_seq DESC LIMIT 1`,
        [tx.userId],
      );
      const target = rows[0];
      if (!target) throw new DomainError('NOTHING_TO_REDO', 'There is no undone operation to redo', null);
      const delta = contentDelta(target);
      await this.ensureClean(tx, target, delta.inverse);
      await this.ensureReferences(tx, target, delta.forward);
      await this.applySnapshots(tx, delta.forward);
      await tx.query(
        `UPDATE operations SET state = 'APPLIED', state_changed_at = $3, redoable = false WHERE user_id = $1 AND id = $2`,
        [tx.userId, target.id, tx.now],
      );
      tx.events.push({
        topic: 'undo',
        type: 'REDONE',
        payload: { operation: { ...mapOperation(target), state: 'APPLIED' } },
      });
      const task = await this.mainTaskOf(tx, target);
      return { targetOperationId: target.id, task };
    });
  }

  /** Semantic memory is a later feature: answered as FEATURE_DISABLED until it ships. */
  async memoryDisabled(actor: Actor, kind: 'REMEMBER' | 'FORGET_MEMORIES'): Promise<UpdateResultView> {
    return this.failure(actor, [
      {
        code: 'FEATURE_DISABLED',
        message: `${kind === 'REMEMBER' ? 'remember' : 'forgetMemories'} is not available yet`,
        path: null,
      },
    ]);
  }

  // ================================================================= internals

  private async requireTask(tx: WorldTx, id: string): Promise<TaskView> {
    const t = isUuid(id) ? await tx.task(id) : null;
    if (!t) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
    return t;
  }

  private async requireConflict(tx: WorldTx, id: string): Promise<ConflictView> {
    const rows = isUuid(id)
      ? await tx.query<ConflictRow>('SELECT * FROM conflicts WHERE user_id = $1 AND id = $2', [tx.userId, id])
      : [];
    if (!rows[0]) throw new DomainError('NOT_FOUND', 'No such conflict', ['conflictId']);
    return mapConflict(rows[0]);
  }

  /** The goal and dependencies must be the user's own, and dependencies must not close a cycle. */
  private async checkReferences(
    tx: WorldTx,
    taskId: string | null,
    goalId: string | null,
    deps: string[],
  ): Promise<void> {
    const problems: UserErrorDetail[] = [];
    if (goalId !== null && (!isUuid(goalId) || !(await tx.goal(goalId)))) {
      problems.push({
        code: 'VALIDATION',
        message: 'goalId is not one of your goals',
        path: ['input', 'goalId'],
      });
    }
    const bad = deps.filter((d) => !isUuid(d));
    const missing = new Set([...bad, ...(await tx.missingTasks(deps.filter(isUuid)))]);
    deps.forEach((d, i) => {
      if (missing.has(d))
        problems.push({
          code: 'VALIDATION',
          message: `dependsOn: ${d} is not one of your tasks`,
          path: ['input', 'dependsOn', String(i)],
        });
    });
    if (problems.length === 0 && taskId !== null && deps.length > 0) {
      if (deps.includes(taskId) || (await tx.wouldCycle(taskId, deps))) {
        problems.push({
          code: 'VALIDATION',
          message: 'dependsOn would create a dependency cycle',
          path: ['input', 'dependsOn'],
        });
      }
    }
    if (problems.length > 0) throw DomainError.many(problems);
  }

  /** Each entity must still be as `expected` (content, not bookkeeping), or the undo/redo is blocked. */
  private async ensureClean(tx: WorldTx, op: OperationRow, expected: Snapshot[]): Promise<void> {
    for (const s of expected) {
      const current = await tx.snapshot(s.entity, s.id);
      const expectedRow =
        s.entity === 'Conflict' && s.row
          ? { status: s.row.status, chosenAlternativeId: s.row.chosenAlternativeId }
          : s.row;
      if (sameContent(current, expectedRow as Row | null)) continue;
      const b = await this.blockerOf(tx, op, s.entity, s.id);
      throw new DomainError(
        'UNDO_BLOCKED',
        b
          ? `${s.entity} ${s.id} was changed since by operation #${b.seq} (${b.kind}, id ${b.id}): undo that first`
          : `${s.entity} ${s.id} was changed since: the operation can no longer be cleanly reversed`,
        ['operationId'],
      );
    }
  }

  /**
   * The applied operation, later than `op`, that last changed an entity: ordinary operations first
   * (an UNDO/REDO cannot itself be undone, so naming one would not help the user).
   */
  private async blockerOf(
    tx: WorldTx,
    op: OperationRow,
    entity: EntityName,
    id: string,
  ): Promise<OperationRow | undefined> {
    const rows = await tx.query<OperationRow>(
      `SELECT * FROM operations WHERE user_id = $1 AND seq > $2 AND entities @> ARRAY[$3]::text[] AND state = 'APPLIED'
       ORDER BY (kind IN ('UNDO','REDO')), seq DESC LIMIT 1`,
      [tx.userId, op.seq, entityKey(entity, id)],
    );
    return rows[0];
  }

  /**
   * Applying `snaps` must neither leave a dangling reference nor silently rewrite an entity outside
   * them: every dependency and goal a restored task names must exist (or come back in the same
   * pass), and no task outside the pass may still depend on a task (or belong to a goal) that the
   * pass removes. Otherwise UNDO_BLOCKED, naming the later operation in the way.
   */
  private async ensureReferences(tx: WorldTx, op: OperationRow, snaps: Snapshot[]): Promise<void> {
    const inPass = new Map(snaps.map((s) => [entityKey(s.entity, s.id), s.row]));
    const blocked = async (entity: EntityName, id: string, why: string): Promise<never> => {
      const b = await this.blockerOf(tx, op, entity, id);
      throw new DomainError(
        'UNDO_BLOCKED',
        b
          ? `${why} (operation #${b.seq}, ${b.kind}, id ${b.id}): undo that first`
          : `${why}: the operation can no longer be cleanly reversed`,
        ['operationId'],
      );
    };
    for (const s of snaps) {
      if (s.entity !== 'Task' || s.row === null) continue;
      const deps = ((s.row.dependsOn as string[] | undefined) ?? []).filter(
        (d) => !inPass.has(entityKey('Task', d)),
      );
      for (const d of await tx.missingTasks(deps))
        await blocked('Task', d, `Task ${d}, a dependency of task ${s.id}, no longer exists`);
      const goalId = (s.row.goalId as string | null | undefined) ?? null;
      if (goalId !== null && !inPass.has(entityKey('Goal', goalId)) && !(await tx.goal(goalId))) {
        await blocked('Goal', goalId, `Goal ${goalId} of task ${s.id} no longer exists`);
      }
    }
    for (const s of snaps) {
      if (s.row !== null || (s.entity !== 'Task' && s.entity !== 'Goal')) continue;
      const refs =
        s.entity === 'Task'
          ? await tx.query<{ id: string }>(
              'SELECT task_id AS id FROM task_dependencies WHERE user_id = $1 AND depends_on_id = $2',
              [tx.userId, s.id],
            )
          : await tx.query<{ id: string }>('SELECT id FROM tasks WHERE user_id = $1 AND goal_id = $2', [
              tx.userId,
              s.id,
            ]);
      for (const r of refs) {
        const target = inPass.get(entityKey('Task', r.id));
        if (target === null) continue; // removed in the same pass
        if (target !== undefined) {
          const still =
            s.entity === 'Task'
              ? ((target.dependsOn as string[] | undefined) ?? []).includes(s.id)
              : target.goalId === s.id;
          if (!still) continue; // the pass itself drops the reference
        }
        await blocked(
          'Task',
          r.id,
          s.entity === 'Task'
            ? `Task ${r.id} depends on task ${s.id}`
            : `Task ${r.id} belongs to goal ${s.id}`,
        );
      }
    }
  }

  /** Brings every entity to its snapshot, in an order that satisfies references. */
  private async applySnapshots(tx: WorldTx, snaps: Snapshot[]): Promise<void> {
    const of = (e: EntityName, present: boolean) =>
      snaps.filter((s) => s.entity === e && (s.row !== null) === present);
    for (const s of of('Goal', true)) await tx.restore('Goal', s.id, s.row);
    // Tasks first without dependencies (a dependency may be a task restored in this same pass) ...
    for (const s of of('Task', true)) await tx.restore('Task', s.id, { ...s.row!, dependsOn: [] });
    // ... then with them.
    for (const s of of('Task', true)) await tx.restore('Task', s.id, s.row);
    for (const s of of('Task', false)) await tx.restore('Task', s.id, null);
    for (const s of of('Goal', false)) await tx.restore('Goal', s.id, null);
    for (const s of snaps.filter((x) => x.entity === 'User' || x.entity === 'Conflict'))
      await tx.restore(s.entity, s.id, s.row);
  }

  private async mainTaskOf(tx: WorldTx, op: OperationRow): Promise<TaskView | null> {
    const first = (op.forward as Snapshot[]).find((s) => s.entity === 'Task');
    return first ? tx.task(first.id) : null;
  }

  private async applyAlternative(tx: WorldTx, alt: AlternativeView): Promise<void> {
    if (!alt.taskId) return;
    const t = await tx.task(alt.taskId);
    if (!t)
      throw new DomainError('ALTERNATIVE_STALE', 'The task of this alternative no longer exists', [
        'alternativeId',
      ]);
    if (alt.action === 'BACKLOG') {
      await tx.updateTask(
        alt.taskId,
        { scheduledStart: null, scheduledEnd: null, status: 'BACKLOG' },
        null,
        t,
      );
    } else {
      const patch: TaskPatch = { scheduledStart: new Date(alt.start!), scheduledEnd: new Date(alt.end!) };
      if (t.status === 'BACKLOG' || t.status === 'TODO') patch.status = 'SCHEDULED';
      await tx.updateTask(alt.taskId, patch, null, t);
    }
  }

  /** The stored key of a conflict (not part of its view). */
  private async conflictKey(tx: WorldTx, id: string): Promise<string> {
    const rows = await tx.query<{ key: string }>('SELECT key FROM conflicts WHERE user_id = $1 AND id = $2', [
      tx.userId,
      id,
    ]);
    return rows[0]!.key;
  }

  /** Recomputes a stored conflict against the current plan: the detection (null when gone) and fresh alternatives. */
  private async freshAlternatives(
    tx: WorldTx,
    conflict: ConflictView,
  ): Promise<{ detected: DetectedConflict | null; alternatives: AlternativeView[] }> {
    const key = await this.conflictKey(tx, conflict.id);
    const extraDays = conflict.kind === 'OVER_CAPACITY' ? [key.slice('OVER_CAPACITY:'.length)] : [];
    const near = await loadRelevantWorld(tx, conflict.taskIds, [], extraDays);
    const detected = detectConflicts([...near.values()], new Set(conflict.taskIds), tx.settings(), {
      extraDays,
    });
    const d = detected.find((x) => x.key === key);
    if (!d) return { detected: null, alternatives: [] };
    return { detected: d, alternatives: await alternativesFor(tx, d, near, tx.settings()) };
  }

  /** Detected conflicts for `touched` that are not already stored OPEN / dismissed (what a change would add). */
  private async newConflicts(
    tx: WorldTx,
    touched: string[],
  ): Promise<{ fresh: DetectedConflict[]; near: Map<string, PlanTask> }> {
    const near = await loadRelevantWorld(tx, touched, tx.oldRanges, []);
    const detected = detectConflicts([...near.values()], new Set(touched), tx.settings());
    if (detected.length === 0) return { fresh: [], near };
    const known = await tx.query<{ key: string }>(
      `SELECT key FROM conflicts WHERE user_id = $1 AND key = ANY($2::text[]) AND (status = 'OPEN' OR (status = 'DISMISSED' AND active))`,
      [tx.userId, detected.map((d) => d.key)],
    );
    const knownKeys = new Set(known.map((k) => k.key));
    return { fresh: detected.filter((d) => !knownKeys.has(d.key)), near };
  }

  /** Applies the conflict policy, then stores conflicts. Returns the sync outcome and what AUTO_RESOLVE did. */
  private async settleConflicts(tx: WorldTx, policy: ConflictPolicy, extra: string[]): Promise<SyncOutcome> {
    const touched = () => [...new Set([...tx.tracker.ids('Task'), ...extra])];
    if (policy === 'REJECT') {
      const { fresh, near } = await this.newConflicts(tx, touched());
      if (fresh.length > 0) {
        const views: ConflictView[] = [];
        for (const d of fresh) {
          views.push({
            id: randomUUID(),
            kind: d.kind,
            status: 'OPEN',
            message: d.message,
            taskIds: d.taskIds,
            alternatives: await alternativesFor(tx, d, near, tx.settings()),
            chosenAlternativeId: null,
            detectedAt: tx.now,
            closedAt: null,
          });
        }
        throw new DomainErrorWithConflicts(
          'CONFLICT_REJECTED',
          `The change would cause ${fresh.length} conflict(s); nothing was written (onConflict: REJECT)`,
          null,
          views,
        );
      }
    } else if (policy === 'AUTO_RESOLVE') {
      for (let round = 0; round < AUTO_RESOLVE_ROUNDS; round++) {
        const { fresh, near } = await this.newConflicts(tx, touched());
        if (fresh.length === 0) break;
        const d = fresh[0]!;
        const alternatives = await alternativesFor(tx, d, near, tx.settings());
        const best = alternatives[0];
        if (!best) {
          tx.warnings.push(`AUTO_RESOLVE: no alternative found for: ${d.message}`);
          break;
        }
        await this.applyAlternative(tx, best);
        tx.warnings.push(`AUTO_RESOLVE: ${d.message} → applied: ${best.description}`);
      }
    }
    return syncConflicts(tx, touched());
  }

  private async failure(
    actor: Actor,
    errors: UserErrorDetail[],
    conflicts: ConflictView[] = [],
  ): Promise<UpdateResultView> {
    return {
      ok: false,
      operation: null,
      task: null,
      goal: null,
      tasks: [],
      changes: [],
      conflicts,
      errors: errors.map((e) => ({ code: e.code, message: e.message, path: e.path })),
      warnings: [],
      undo: await this.queries.undoState(actor.userId),
      memory: [],
      flags: [],
      placements: [],
      unplaced: [],
      replayed: false,
    };
  }

  /** The skeleton every operation runs in. */
  private async run(
    actor: Actor,
    kind: string,
    args: Record<string, unknown>,
    opts: MutationOptions,
    body: (tx: WorldTx) => Promise<BodyResult>,
    attempt = 0,
  ): Promise<UpdateResultView> {
    const key = opts.idempotencyKey ?? null;
    if (key !== null && (key.length < 1 || [...key].length > 255)) {
      return this.failure(actor, [
        { code: 'VALIDATION', message: 'idempotencyKey must be 1–255 characters', path: ['idempotencyKey'] },
      ]);
    }
    const hash = createHash('sha256')
      .update(JSON.stringify({ kind, args, onConflict: opts.onConflict ?? 'ALLOW' }))
      .digest('hex');
    const qr = this.ds.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      const users = (await qr.query('SELECT * FROM users WHERE id = $1 FOR UPDATE', [
        actor.userId,
      ])) as UserRow[];
      if (!users[0]) throw new DomainError('NOT_FOUND', 'Your account no longer exists', null);
      const now = this.clock.now();
      if (key !== null) {
        const prior = (await qr.query(
          'SELECT request_hash, result, created_at FROM idempotency_keys WHERE user_id = $1 AND key = $2',
          [actor.userId, key],
        )) as Array<{ request_hash: string; result: UpdateResultView; created_at: Date }>;
        const p = prior[0];
        if (p && now.getTime() - p.created_at.getTime() < IDEMPOTENCY_TTL_MS) {
          if (p.request_hash !== hash) {
            throw new DomainError('VALIDATION', 'idempotencyKey was already used for a different request', [
              'idempotencyKey',
            ]);
          }
          // The first result, with the undo state as it is now (it may have moved since).
          const undo = await undoStateWith(
            (sql, params) => qr.query(sql, params),
            actor.userId,
            this.opts.undoDepth,
          );
          await qr.rollbackTransaction();
          return { ...p.result, undo, replayed: true };
        }
        // Expired keys of this user (this one included, if it was) are forgotten.
        await qr.query('DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at <= $2', [
          actor.userId,
          new Date(now.getTime() - IDEMPOTENCY_TTL_MS),
        ]);
      }
      const tx = new WorldTx(qr, users[0], now, actor);
      const out = await body(tx);
      const sync = out.skipConflictSync
        ? emptySync()
        : await this.settleConflicts(tx, opts.onConflict ?? 'ALLOW', out.alsoCheck ?? []);
      const result = await this.record(qr, tx, actor, kind, args, out, sync);
      if (key !== null) {
        await qr.query(
          `INSERT INTO idempotency_keys (user_id, key, request_hash, operation_id, result, created_at) VALUES ($1,$2,$3,$4,$5,$6)`,
          [actor.userId, key, hash, result.operation?.id ?? null, JSON.stringify(result), now],
        );
      }
      await qr.commitTransaction();
      return result;
    } catch (err) {
      if (qr.isTransactionActive) await qr.rollbackTransaction();
      if (err instanceof DomainErrorWithConflicts) return this.failure(actor, err.details, err.conflicts);
      if (err instanceof DomainError) return this.failure(actor, err.details);
      const code =
        (err as { code?: string; driverError?: { code?: string } }).driverError?.code ??
        (err as { code?: string }).code;
      // Serialisation by the user lock makes these rare; one retry settles a lost race cleanly.
      if ((code === '23505' || code === '40001' || code === '40P01') && attempt === 0) {
        return this.run(actor, kind, args, opts, body, attempt + 1);
      }
      throw err;
    } finally {
      await qr.release();
    }
  }

  /** Writes the operation, its events and NOTIFY; builds the result. */
  private async record(
    qr: QueryRunner,
    tx: WorldTx,
    actor: Actor,
    kind: string,
    args: Record<string, unknown>,
    out: BodyResult,
    sync: SyncOutcome,
  ): Promise<UpdateResultView> {
    const effective = tx.tracker.effective();
    const seq = Number(tx.user.op_seq) + 1;
    const opId = randomUUID();
    const forward: Snapshot[] = effective.map((e) => ({ entity: e.entity, id: e.id, row: e.after }));
    const inverse: Snapshot[] = effective.map((e) => ({ entity: e.entity, id: e.id, row: e.before }));
    await qr.query('UPDATE users SET op_seq = $2 WHERE id = $1', [tx.userId, seq]);
    if (!NON_ORDINARY.has(kind)) {
      await qr.query('UPDATE operations SET redoable = false WHERE user_id = $1 AND redoable', [tx.userId]);
    }
    const opRows = (await qr.query(
      `INSERT INTO operations (id, user_id, seq, actor, kind, input, forward, inverse, entities, target_operation_id, created_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING *`,
      [
        opId,
        tx.userId,
        seq,
        actor.actor,
        kind,
        JSON.stringify(args),
        JSON.stringify(forward),
        JSON.stringify(inverse),
        effective.map((e) => entityKey(e.entity, e.id)),
        out.targetOperationId ?? null,
        tx.now,
      ],
    )) as OperationRow[];
    const operation = mapOperation(opRows[0]!);
    const changes = [...fieldChanges(effective), ...sync.changes];

    const events = [{ topic: 'plan', type: kind, payload: { operation, changes } }, ...tx.events];
    let eventSeq = Number(tx.user.event_seq);
    for (const e of events) {
      eventSeq += 1;
      await qr.query(
        `INSERT INTO events (user_id, seq, topic, type, payload, created_at) VALUES ($1,$2,$3,$4,$5,$6)`,
        [tx.userId, eventSeq, e.topic, e.type, JSON.stringify(e.payload), tx.now],
      );
    }
    await qr.query('UPDATE users SET event_seq = $2 WHERE id = $1', [tx.userId, eventSeq]);
    await qr.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, `${tx.userId}:${eventSeq}`]);

    const taskIds = effective.filter((e) => e.entity === 'Task' && e.after !== null).map((e) => e.id);
    const tasks = await tx.tasks(taskIds);
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const main = out.task !== undefined ? (out.task ? (byId.get(out.task.id) ?? out.task) : null) : null;
    return {
      ok: true,
      operation,
      task: main,
      goal: out.goal ?? null,
      tasks: taskIds.map((id) => byId.get(id)!).filter(Boolean),
      changes,
      conflicts: sync.open,
      errors: [],
      warnings: tx.warnings,
      undo: await undoStateWith((sql, p) => qr.query(sql, p), tx.userId, this.opts.undoDepth),
      memory: [],
      flags: [],
      placements: out.placements ?? [],
      unplaced: out.unplaced ?? [],
      replayed: false,
    };
  }
}

/**
 * Who may undo or redo a user's operations: the user, or an agent acting for them.
 * (TODO: agents only when the user allows it — needs the per-user agent permission of the agents issue.)
 * Anyone else is answered as if the operations did not exist.
 */
function ensureMayUndo(actor: Actor, path: string[] | null): void {
  if (actor.actor === `user:${actor.userId}` || /^agent:.+/.test(actor.actor)) return;
  throw new DomainError('NOT_FOUND', 'No such operation', path);
}

/**
 * An operation's forward and inverse snapshots, restricted to the entities whose content it really
 * changed: an entity it only touched (a version bump) is neither checked nor restored, so undoing
 * it never overwrites what a later operation did to that entity.
 */
function contentDelta(op: OperationRow): { forward: Snapshot[]; inverse: Snapshot[] } {
  const inverse = new Map((op.inverse as Snapshot[]).map((s) => [entityKey(s.entity, s.id), s]));
  const forward: Snapshot[] = [];
  const before: Snapshot[] = [];
  for (const f of op.forward as Snapshot[]) {
    const i = inverse.get(entityKey(f.entity, f.id));
    if (!i || sameContent(f.row, i.row)) continue;
    forward.push(f);
    before.push(i);
  }
  return { forward, inverse: before };
}

function asDate(v: Date | string | null): Date | null {
  return v === null ? null : new Date(v);
}
