/**
 * WorldTx: the decide step's view of the world. Reads come from what the load step brought in
 * (a {@link LoadedWorld}); writes are staged in memory and recorded with their before/after
 * snapshots, so the operation log gets its forward and exact inverse changes for free. Nothing here
 * touches the database: when a read falls outside what was loaded, it throws NeedMore and the
 * runner loads it and decides again. At the end, {@link WorldTx.changeSet} is what the write step
 * writes in one statement.
 */
import { randomUUID } from 'node:crypto';
import type { GoalStatus, PlanTask, Priority, TaskStatus, UserSettings, WorkingHours } from '../domain/types';
import { DomainError } from './errors';
import { planOfRow, type LoadedWorld, type LoadRequest } from './loaded';
import {
  mapConflict,
  mapGoal,
  mapTask,
  mapUser,
  type ConflictRow,
  type GoalRow,
  type TaskRow,
  type UserRow,
} from './rows';
import { ChangeTracker, toRow, type Row } from './snapshots';
import type { Actor, ConflictView, GoalView, TaskView } from './views';

export interface TaskContent {
  title: string;
  notes: string | null;
  status: TaskStatus;
  priority: Priority;
  estimateMinutes: number | null;
  dueAt: Date | null;
  scheduledStart: Date | null;
  scheduledEnd: Date | null;
  tags: string[];
  goalId: string | null;
  dependsOn: string[];
}

export type TaskPatch = Partial<TaskContent>;

export interface GoalContent {
  title: string;
  status: GoalStatus;
  priority: Priority;
  targetDate: Date | null;
}

export interface SettingsContent {
  timeZone: string;
  workingHours: WorkingHours;
  dailyCapacityMinutes: number;
  displayName: string;
}

export interface PendingEvent {
  topic: 'plan' | 'conflict' | 'undo';
  type: string;
  payload: Record<string, unknown>;
}

export type StoredConflict = ConflictRow & { version: number };

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

const isActive = (c: StoredConflict): boolean =>
  c.status === 'OPEN' || (c.status === 'DISMISSED' && c.active);

export class WorldTx {
  readonly tracker = new ChangeTracker();
  readonly events: PendingEvent[] = [];
  readonly warnings: string[] = [];
  /** Old time ranges that matter for re-evaluating conflicts (moved or deleted tasks). */
  readonly oldRanges: Array<{ start: Date; end: Date }> = [];
  /** Staged rows: the value is the row after this operation (null: deleted). */
  readonly stagedTasks = new Map<string, TaskRow | null>();
  readonly stagedGoals = new Map<string, GoalRow | null>();
  readonly stagedConflicts = new Map<string, StoredConflict>();
  /** The user's row, as staged (settings changes). */
  user: UserRow;
  settingsChanged = false;
  /** The operation ids whose state this operation changes (undo, redo), with their new state. */
  readonly operationStates: Array<{ id: string; state: 'APPLIED' | 'UNDONE'; redoable: boolean }> = [];

  constructor(
    readonly base: LoadedWorld,
    readonly now: Date,
    readonly actor: Actor,
    /** How far ahead alternatives look (the load windows must cover it). */
    readonly horizonDays: number,
  ) {
    this.user = base.user;
  }

  get userId(): string {
    return this.user.id;
  }

  settings(): UserSettings {
    return {
      timeZone: this.user.time_zone,
      workingHours: this.user.working_hours,
      dailyCapacityMinutes: this.user.daily_capacity_minutes,
    };
  }

  /** Throws NeedMore unless `req` is loaded. */
  need(req: LoadRequest): void {
    this.base.need(req);
  }

  // ---------------------------------------------------------------- reads

  private taskRow(id: string): TaskRow | null {
    if (this.stagedTasks.has(id)) return this.stagedTasks.get(id)!;
    if (!this.base.fullTasks.has(id)) this.need({ taskIds: [id] });
    return this.base.fullTasks.get(id) ?? null;
  }

  task(id: string): TaskView | null {
    const r = this.taskRow(id);
    return r ? mapTask(r) : null;
  }

  tasks(ids: string[]): TaskView[] {
    this.need({ taskIds: ids.filter((id) => !this.stagedTasks.has(id)) });
    return ids.map((id) => this.task(id)).filter((t): t is TaskView => t !== null);
  }

  goal(id: string): GoalView | null {
    if (this.stagedGoals.has(id)) {
      const g = this.stagedGoals.get(id)!;
      return g ? mapGoal(g) : null;
    }
    if (!this.base.goals.has(id)) this.need({ goalIds: [id] });
    const g = this.base.goals.get(id);
    return g ? mapGoal(g) : null;
  }

  /** Ids among `ids` that are not tasks of this user. */
  missingTasks(ids: string[]): string[] {
    this.need({ taskIds: ids.filter((id) => !this.stagedTasks.has(id)) });
    return ids.filter((id) => this.taskRow(id) === null);
  }

  /** Would "taskId depends on deps" close a cycle in this user's dependency graph? */
  wouldCycle(taskId: string, deps: string[]): boolean {
    if (deps.includes(taskId)) return true;
    if (deps.length === 0) return false;
    this.need({ reachFrom: deps });
    return this.base.reachable.has(taskId);
  }

  /** The plan view of a task (staged or loaded), undefined when absent. */
  planTask(id: string): PlanTask | undefined {
    if (this.stagedTasks.has(id)) {
      const r = this.stagedTasks.get(id)!;
      return r ? planOfRow(r) : undefined;
    }
    const p = this.base.planTasks.get(id);
    if (p) return p;
    if (!this.base.fullTasks.has(id)) this.need({ taskIds: [id] });
    return undefined;
  }

  /** Plan views of the tasks among `ids` that exist (one NeedMore for all that are unknown). */
  planTasks(ids: string[]): PlanTask[] {
    this.need({
      taskIds: ids.filter(
        (id) => !this.stagedTasks.has(id) && !this.base.planTasks.has(id) && !this.base.fullTasks.has(id),
      ),
    });
    return ids.map((id) => this.planTask(id)).filter((t): t is PlanTask => t !== undefined);
  }

  /** Every scheduled task meeting one of the [start, end) ranges, as it is after the staged changes. */
  planTasksMeeting(ranges: Array<{ start: Date; end: Date }>): PlanTask[] {
    this.need({
      ranges: ranges
        .filter((r) => !this.base.covers(r.start.getTime(), r.end.getTime()))
        .map((r) => ({ start: r.start, end: r.end })),
    });
    const meets = (t: PlanTask) =>
      t.start !== null &&
      t.end !== null &&
      ranges.some((r) => t.start!.getTime() < r.end.getTime() && r.start.getTime() < t.end!.getTime());
    const out = new Map<string, PlanTask>();
    for (const t of this.base.planTasks.values())
      if (!this.stagedTasks.has(t.id) && meets(t)) out.set(t.id, t);
    for (const r of this.stagedTasks.values()) {
      if (!r) continue;
      const t = planOfRow(r);
      if (meets(t)) out.set(t.id, t);
    }
    return [...out.values()];
  }

  /** The dependencies of, and the tasks depending on, `ids`. */
  dependencyNeighbours(ids: string[]): PlanTask[] {
    // A task created (or re-created) by this operation has no stored dependents.
    this.need({ taskIds: ids.filter((id) => !this.base.dependentsKnown.has(id) && !this.isNew(id)) });
    const want = new Set(ids);
    const out = new Map<string, PlanTask>();
    const deps = new Set<string>();
    for (const id of ids) for (const d of this.planTask(id)?.dependsOn ?? []) deps.add(d);
    for (const t of this.planTasks([...deps])) out.set(t.id, t);
    for (const t of this.base.planTasks.values()) {
      if (this.stagedTasks.has(t.id)) continue;
      if (t.dependsOn.some((d) => want.has(d))) out.set(t.id, t);
    }
    for (const r of this.stagedTasks.values()) {
      if (r && (r.depends_on ?? []).some((d) => want.has(d))) out.set(r.id, planOfRow(r));
    }
    return [...out.values()];
  }

  /** True for a task this operation creates (or re-creates): nothing about it is stored. */
  isNew(id: string): boolean {
    return this.stagedTasks.has(id) && !this.base.fullTasks.get(id);
  }

  /** Ids of tasks depending on `id` (after the staged changes). */
  dependentsOf(id: string): string[] {
    return this.dependencyNeighbours([id])
      .filter((t) => t.dependsOn.includes(id))
      .map((t) => t.id);
  }

  // ---------------------------------------------------------------- conflicts

  private conflictsView(): Map<string, StoredConflict> {
    const all = new Map(this.base.conflicts);
    for (const [id, c] of this.stagedConflicts) all.set(id, c);
    return all;
  }

  /** Active (OPEN, or DISMISSED and still active) conflicts naming any of `taskIds`. */
  activeConflictsTouching(taskIds: string[]): StoredConflict[] {
    const uncovered = taskIds.filter(
      (id) => !this.base.conflictTaskCover.has(id) && !this.base.allActiveConflicts,
    );
    this.need({ taskIds: uncovered.filter((id) => !this.isNew(id)) });
    // Tasks created in this operation have no stored conflicts.
    const ids = new Set(taskIds);
    return [...this.conflictsView().values()].filter(
      (c) => isActive(c) && c.task_ids.some((t) => ids.has(t)),
    );
  }

  /** Active conflicts with these keys. */
  activeConflictsByKeys(keys: string[]): StoredConflict[] {
    // A key naming a task created by this operation cannot be stored yet.
    const fresh = (k: string) =>
      !k.startsWith('OVER_CAPACITY:') &&
      k
        .split(':')
        .slice(1)
        .some((id) => this.isNew(id));
    this.need({ conflictKeys: keys.filter((k) => !this.base.keyCovered(k) && !fresh(k)) });
    const want = new Set(keys);
    return [...this.conflictsView().values()].filter((c) => isActive(c) && want.has(c.key));
  }

  /** Every active conflict of the user. */
  allActiveConflicts(): StoredConflict[] {
    this.need({ allActiveConflicts: true });
    return [...this.conflictsView().values()].filter(isActive);
  }

  /** A conflict by id, any status, with its stored alternatives. */
  conflictRow(id: string): StoredConflict | null {
    const staged = this.stagedConflicts.get(id);
    if (staged) return staged;
    this.need({ conflictIds: [id] });
    return this.base.conflicts.get(id) ?? null;
  }

  conflict(id: string): ConflictView | null {
    const r = this.conflictRow(id);
    return r ? mapConflict(r) : null;
  }

  /** Stages a conflict row (new or changed). */
  putConflict(c: StoredConflict): void {
    this.stagedConflicts.set(c.id, c);
  }

  /** A stored (or staged) conflict, lite or full: for re-evaluations that do not need the alternatives. */
  knownConflict(id: string): StoredConflict | undefined {
    return this.stagedConflicts.get(id) ?? this.base.conflicts.get(id);
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

  private goalRow(id: string): GoalRow | null {
    if (this.stagedGoals.has(id)) return this.stagedGoals.get(id)!;
    if (!this.base.goals.has(id)) this.need({ goalIds: [id] });
    return this.base.goals.get(id) ?? null;
  }

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

  /** Tasks (after the staged changes) that belong to the goal. */
  tasksOfGoal(goalId: string): string[] {
    if (!this.base.goalRefs.has(goalId)) this.need({ goalRefs: [goalId] });
    const ids = new Set(this.base.goalRefs.get(goalId) ?? []);
    this.need({ taskIds: [...ids].filter((id) => !this.stagedTasks.has(id)) });
    for (const [id, r] of this.stagedTasks) {
      if (r && r.goal_id === goalId) ids.add(id);
      else ids.delete(id);
    }
    return [...ids];
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

  /** Views of conflicts, for results. */
  conflictViews(rows: StoredConflict[]): ConflictView[] {
    return rows.map(mapConflict);
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
