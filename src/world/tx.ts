/**
 * WorldTx: the decide step's view of the world. Reads come from what the load step brought in
 * (WorldReader over a LoadedWorld); writes are staged in memory and recorded with their
 * before/after snapshots, so the operation log gets its forward and exact inverse changes for
 * free. Nothing here touches the database: the write step writes the staged rows in one statement.
 */
import { randomUUID } from 'node:crypto';
import type { GoalStatus, Priority, TaskStatus, WorkingHours } from '../domain/types';
import { DomainError } from './errors';
import type { LoadedWorld } from './loaded';
import { mapGoal, mapTask, mapUser, type GoalRow, type TaskRow } from './rows';
import { ChangeTracker, toRow, type Row } from './snapshots';
import type { Actor, GoalView, MemoryNoteView, TaskView } from './views';
import {
  WorldReader,
  type GoalContent,
  type PendingEvent,
  type SettingsContent,
  type TaskContent,
  type TaskPatch,
} from './world-reader';

export type {
  GoalContent,
  PendingEvent,
  SettingsContent,
  StoredConflict,
  TaskContent,
  TaskPatch,
} from './world-reader';

const TASK_FIELD: Record<Exclude<keyof TaskContent, 'dependsOn'>, keyof TaskRow> = {
  title: 'title',
  notes: 'notes',
  status: 'status',
  priority: 'priority',
  estimateMinutes: 'estimate_minutes',
  dueAt: 'due_at',
  scheduledStart: 'scheduled_start',
  scheduledEnd: 'scheduled_end',
  tags: 'tags',
  goalId: 'goal_id',
};

function dateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : new Date(v as string);
}

export class WorldTx extends WorldReader {
  readonly tracker = new ChangeTracker();
  readonly events: PendingEvent[] = [];
  readonly warnings: string[] = [];
  /** Old time ranges that matter for re-evaluating conflicts (moved or deleted tasks). */
  readonly oldRanges: Array<{ start: Date; end: Date }> = [];
  settingsChanged = false;
  /** The operation ids whose state this operation changes (undo, redo), with their new state. */
  readonly operationStates: Array<{ id: string; state: 'APPLIED' | 'UNDONE'; redoable: boolean }> = [];
  /** What semantic memory contributed (UpdateResult.memory), one note per item and effect. */
  readonly memoryNotes: MemoryNoteView[] = [];
  /** Memory items that shaped this operation (their use is counted by the write statement). */
  readonly memoryUsed = new Set<string>();
  /** More writes riding in the operation's one write statement (remember, forgetMemories, memory use). */
  readonly extraWrites: Array<(param: (value: unknown) => string) => string> = [];

  constructor(base: LoadedWorld, now: Date, actor: Actor) {
    super(base, now, actor);
  }

  /** Sets a conflict's status by a user's decision (dismiss / resolve / their undo): a tracked, undoable change. */
  setConflictStatus(id: string, status: 'OPEN' | 'DISMISSED' | 'RESOLVED', chosen: string | null): void {
    const current = this.knownConflict(id) ?? this.conflictRow(id);
    if (!current) throw new DomainError('NOT_FOUND', 'No such conflict', ['conflictId']);
    const before = { status: current.status, chosenAlternativeId: current.chosen_alternative_id };
    this.putConflict({
      ...current,
      status,
      chosen_alternative_id: chosen,
      closed_at: status === 'OPEN' ? null : this.now,
      active: status === 'RESOLVED' ? false : status === 'OPEN' ? true : current.active,
      version: current.version + 1,
    });
    this.tracker.record('Conflict', id, before, { status, chosenAlternativeId: chosen });
  }

  // ---------------------------------------------------------------- tasks

  /** Inserts a task (id given for restores, generated otherwise). */
  insertTask(c: TaskContent, restore?: { id: string; createdAt: Date; version: number }): TaskView {
    const id = restore?.id ?? randomUUID();
    const row: TaskRow = {
      id,
      user_id: this.userId,
      title: c.title,
      notes: c.notes,
      status: c.status,
      priority: c.priority,
      estimate_minutes: c.estimateMinutes,
      due_at: c.dueAt,
      scheduled_start: c.scheduledStart,
      scheduled_end: c.scheduledEnd,
      tags: c.tags,
      goal_id: c.goalId,
      version: restore?.version ?? 1,
      created_at: restore?.createdAt ?? this.now,
      updated_at: this.now,
      depends_on: [...new Set(c.dependsOn)].sort(),
    };
    this.stagedTasks.set(id, row);
    const after = mapTask(row);
    this.tracker.record('Task', id, null, toRow(after));
    return after;
  }

  /**
   * Updates a task. With `expectedVersion`, a stale version is answered with VERSION_CONFLICT: the
   * version read here is the committed one, since the user's row lock serialises every write.
   */
  updateTask(id: string, patch: TaskPatch, expectedVersion?: number | null, _current?: TaskView): TaskView {
    const beforeRow = this.taskRow(id);
    if (!beforeRow) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
    if (expectedVersion !== undefined && expectedVersion !== null && beforeRow.version !== expectedVersion) {
      throw new DomainError(
        'VERSION_CONFLICT',
        `Task was changed since version ${expectedVersion}: it is now at version ${beforeRow.version}`,
        ['expectedVersion'],
      );
    }
    const row: TaskRow = { ...beforeRow, version: beforeRow.version + 1, updated_at: this.now };
    const values = patch as Record<string, unknown>;
    for (const [field, column] of Object.entries(TASK_FIELD)) {
      if (values[field] !== undefined) (row as unknown as Record<string, unknown>)[column] = values[field];
    }
    if (patch.dependsOn !== undefined) row.depends_on = [...new Set(patch.dependsOn)].sort();
    if (beforeRow.scheduled_start && beforeRow.scheduled_end) {
      this.oldRanges.push({
        start: new Date(beforeRow.scheduled_start),
        end: new Date(beforeRow.scheduled_end),
      });
    }
    this.stagedTasks.set(id, row);
    const after = mapTask(row);
    this.tracker.record('Task', id, toRow(mapTask(beforeRow)), toRow(after));
    return after;
  }

  /** Deletes a task; tasks that depended on it lose that dependency (recorded as their change). */
  deleteTask(id: string): TaskView {
    const beforeRow = this.taskRow(id);
    if (!beforeRow) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
    const dependents = this.dependentsOf(id);
    this.need({ taskIds: dependents.filter((d) => !this.stagedTasks.has(d)) });
    this.stagedTasks.set(id, null);
    for (const depId of dependents) {
      const b = this.taskRow(depId)!;
      const row: TaskRow = {
        ...b,
        depends_on: (b.depends_on ?? []).filter((x) => x !== id),
        version: b.version + 1,
        updated_at: this.now,
      };
      this.stagedTasks.set(depId, row);
      this.tracker.record('Task', depId, toRow(mapTask(b)), toRow(mapTask(row)));
    }
    if (beforeRow.scheduled_start && beforeRow.scheduled_end) {
      this.oldRanges.push({
        start: new Date(beforeRow.scheduled_start),
        end: new Date(beforeRow.scheduled_end),
      });
    }
    const before = mapTask(beforeRow);
    this.tracker.record('Task', id, toRow(before), null);
    return before;
  }

  // ---------------------------------------------------------------- goals

  insertGoal(c: GoalContent, restore?: { id: string; createdAt: Date; version: number }): GoalView {
    const id = restore?.id ?? randomUUID();
    const row: GoalRow = {
      id,
      user_id: this.userId,
      title: c.title,
      status: c.status,
      priority: c.priority,
      target_date: c.targetDate,
      version: restore?.version ?? 1,
      created_at: restore?.createdAt ?? this.now,
      updated_at: this.now,
    };
    this.stagedGoals.set(id, row);
    const after = mapGoal(row);
    this.tracker.record('Goal', id, null, toRow(after));
    return after;
  }

  updateGoal(id: string, patch: Partial<GoalContent>, expectedVersion?: number | null): GoalView {
    const beforeRow = this.goalRow(id);
    if (!beforeRow) throw new DomainError('NOT_FOUND', 'No such goal', ['id']);
    if (expectedVersion !== undefined && expectedVersion !== null && beforeRow.version !== expectedVersion) {
      throw new DomainError(
        'VERSION_CONFLICT',
        `Goal was changed since version ${expectedVersion}: it is now at version ${beforeRow.version}`,
        ['expectedVersion'],
      );
    }
    const row: GoalRow = { ...beforeRow, version: beforeRow.version + 1, updated_at: this.now };
    if (patch.title !== undefined) row.title = patch.title;
    if (patch.status !== undefined) row.status = patch.status;
    if (patch.priority !== undefined) row.priority = patch.priority;
    if (patch.targetDate !== undefined) row.target_date = patch.targetDate;
    this.stagedGoals.set(id, row);
    const after = mapGoal(row);
    this.tracker.record('Goal', id, toRow(mapGoal(beforeRow)), toRow(after));
    return after;
  }

  deleteGoal(id: string): void {
    const beforeRow = this.goalRow(id);
    if (!beforeRow) return;
    if (this.tasksOfGoal(id).length > 0) {
      throw new DomainError('UNDO_BLOCKED', 'The goal still has tasks attached by a later change', ['goal']);
    }
    this.stagedGoals.set(id, null);
    this.tracker.record('Goal', id, toRow(mapGoal(beforeRow)), null);
  }

  // ---------------------------------------------------------------- settings

  settingsRow(): Row {
    return toRow({
      timeZone: this.user.time_zone,
      workingHours: this.user.working_hours,
      dailyCapacityMinutes: this.user.daily_capacity_minutes,
      displayName: this.user.display_name,
      allowedAgents: this.user.allowed_agents ?? ['*'],
      agentsMayUndoMine: this.user.agents_may_undo_mine ?? false,
      version: this.user.version,
    });
  }

  updateSettings(patch: Partial<SettingsContent>): void {
    const before = this.settingsRow();
    this.user = {
      ...this.user,
      time_zone: patch.timeZone ?? this.user.time_zone,
      working_hours: patch.workingHours ?? this.user.working_hours,
      daily_capacity_minutes: patch.dailyCapacityMinutes ?? this.user.daily_capacity_minutes,
      display_name: patch.displayName ?? this.user.display_name,
      allowed_agents: patch.allowedAgents ?? this.user.allowed_agents,
      agents_may_undo_mine: patch.agentsMayUndoMine ?? this.user.agents_may_undo_mine,
      version: this.user.version + 1,
      updated_at: this.now,
    };
    this.settingsChanged = true;
    this.tracker.record('User', this.userId, before, this.settingsRow());
  }

  userView() {
    return mapUser(this.user);
  }

  // ---------------------------------------------------------------- restore (undo / redo)

  /** Brings a task or goal to the content of `target` (null = absent), recording the change. */
  restore(entity: 'Task' | 'Goal' | 'User', id: string, target: Row | null): void {
    switch (entity) {
      case 'Task': {
        const current = this.task(id);
        if (target === null) {
          if (current) this.deleteTask(id);
          return;
        }
        const content = taskContentOf(target);
        if (current) this.updateTask(id, content);
        else
          this.insertTask(content, {
            id,
            createdAt: new Date(target.createdAt as string),
            version: Number(target.version) + 1,
          });
        return;
      }
      case 'Goal': {
        const current = this.goal(id);
        if (target === null) {
          if (current) this.deleteGoal(id);
          return;
        }
        const content: GoalContent = {
          title: target.title as string,
          status: target.status as GoalStatus,
          priority: target.priority as Priority,
          targetDate: dateOrNull(target.targetDate),
        };
        if (current) this.updateGoal(id, content);
        else
          this.insertGoal(content, {
            id,
            createdAt: new Date(target.createdAt as string),
            version: Number(target.version) + 1,
          });
        return;
      }
      case 'User':
        if (target)
          this.updateSettings({
            timeZone: target.timeZone as string,
            workingHours: target.workingHours as unknown as WorkingHours,
            dailyCapacityMinutes: target.dailyCapacityMinutes as number,
            displayName: (target.displayName as string | undefined) ?? undefined,
            // Snapshots taken before the agent settings existed leave them as they are.
            allowedAgents: (target.allowedAgents as string[] | undefined) ?? undefined,
            agentsMayUndoMine: (target.agentsMayUndoMine as boolean | undefined) ?? undefined,
          });
        return;
    }
  }

  /** Current snapshot of an entity, for cleanliness checks. */
  snapshot(entity: 'Task' | 'Goal' | 'User' | 'Conflict', id: string): Row | null {
    switch (entity) {
      case 'Task': {
        const t = this.task(id);
        return t ? toRow(t) : null;
      }
      case 'Goal': {
        const g = this.goal(id);
        return g ? toRow(g) : null;
      }
      case 'User':
        return this.settingsRow();
      case 'Conflict': {
        const c = this.knownConflict(id) ?? this.conflictRow(id);
        return c ? { status: c.status, chosenAlternativeId: c.chosen_alternative_id } : null;
      }
    }
  }
}

/** The content fields of a task snapshot, for restoring it. */
export function taskContentOf(r: Row): TaskContent {
  return {
    title: r.title as string,
    notes: (r.notes as string | null) ?? null,
    status: r.status as TaskStatus,
    priority: r.priority as Priority,
    estimateMinutes: (r.estimateMinutes as number | null) ?? null,
    dueAt: dateOrNull(r.dueAt),
    scheduledStart: dateOrNull(r.scheduledStart),
    scheduledEnd: dateOrNull(r.scheduledEnd),
    tags: (r.tags as string[]) ?? [],
    goalId: (r.goalId as string | null) ?? null,
    dependsOn: (r.dependsOn as string[]) ?? [],
  };
}
