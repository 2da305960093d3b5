/**
 * WorldReader: the decide step's reading side — the loaded world ({@link LoadedWorld}) with this
 * operation's staged rows laid over it. Every read answers from memory; a read outside what was
 * loaded throws NeedMore (the runner loads it and decides again). Writes live in WorldTx.
 */
import type { GoalStatus, PlanTask, Priority, TaskStatus, UserSettings, WorkingHours } from '../domain/types';
import { planOfRow, type LoadedWorld, type LoadRequest } from './loaded';
import {
  mapConflict,
  mapGoal,
  mapTask,
  type ConflictRow,
  type GoalRow,
  type TaskRow,
  type UserRow,
} from './rows';
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
  allowedAgents: string[];
  agentsMayUndoMine: boolean;
}

export interface PendingEvent {
  topic: 'plan' | 'conflict' | 'undo';
  type: string;
  payload: Record<string, unknown>;
}

export type StoredConflict = ConflictRow & { version: number };

export const isActive = (c: StoredConflict): boolean =>
  c.status === 'OPEN' || (c.status === 'DISMISSED' && c.active);

export class WorldReader {
  /** Staged rows: the value is the row after this operation (null: deleted). */
  readonly stagedTasks = new Map<string, TaskRow | null>();
  readonly stagedGoals = new Map<string, GoalRow | null>();
  readonly stagedConflicts = new Map<string, StoredConflict>();
  /** The user's row, as staged (settings changes). */
  user: UserRow;

  constructor(
    readonly base: LoadedWorld,
    readonly now: Date,
    readonly actor: Actor,
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

  protected taskRow(id: string): TaskRow | null {
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

  protected goalRow(id: string): GoalRow | null {
    if (this.stagedGoals.has(id)) return this.stagedGoals.get(id)!;
    if (!this.base.goals.has(id)) this.need({ goalIds: [id] });
    return this.base.goals.get(id) ?? null;
  }
}
