/**
 * WorldTx: the tracked write primitives of one operation, inside one transaction that already
 * holds the user's row lock. Every write records a before/after snapshot, so the operation log
 * gets its forward and exact inverse changes for free.
 */
import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import type { GoalStatus, Priority, TaskStatus, UserSettings, WorkingHours } from '../domain/types';
import { DomainError } from './errors';
import { mapGoal, mapTask, mapUser, TASK_COLUMNS, type GoalRow, type TaskRow, type UserRow } from './rows';
import { ChangeTracker, toRow, type Row } from './snapshots';
import type { Actor, GoalView, TaskView } from './views';

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

const TASK_COLUMN_OF: Record<Exclude<keyof TaskContent, 'dependsOn'>, string> = {
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

const GOAL_COLUMN_OF: Record<keyof GoalContent, string> = {
  title: 'title',
  status: 'status',
  priority: 'priority',
  targetDate: 'target_date',
};

function dateOrNull(v: unknown): Date | null {
  return v === null || v === undefined ? null : new Date(v as string);
}

export class WorldTx {
  readonly tracker = new ChangeTracker();
  readonly events: PendingEvent[] = [];
  readonly warnings: string[] = [];
  /** Task ids whose old time range matters for re-evaluating conflicts (moved or deleted tasks). */
  readonly oldRanges: Array<{ start: Date; end: Date }> = [];

  constructor(
    readonly qr: QueryRunner,
    public user: UserRow,
    readonly now: Date,
    readonly actor: Actor,
  ) {}

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

  /** Runs SQL and returns its rows (also for UPDATE/DELETE … RETURNING, which TypeORM answers as [rows, count]). */
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return (await this.qr.query(sql, params, true)).records as T[];
  }

  // ---------------------------------------------------------------- reads

  async task(id: string): Promise<TaskView | null> {
    const rows = await this.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.user_id = $1 AND t.id = $2`,
      [this.userId, id],
    );
    return rows[0] ? mapTask(rows[0]) : null;
  }

  async tasks(ids: string[]): Promise<TaskView[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.user_id = $1 AND t.id = ANY($2::uuid[])`,
      [this.userId, ids],
    );
    return rows.map(mapTask);
  }

  async goal(id: string): Promise<GoalView | null> {
    const rows = await this.query<GoalRow>('SELECT * FROM goals WHERE user_id = $1 AND id = $2', [
      this.userId,
      id,
    ]);
    return rows[0] ? mapGoal(rows[0]) : null;
  }

  /** Ids among `ids` that are not tasks of this user. */
  async missingTasks(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const rows = await this.query<{ id: string }>(
      'SELECT id FROM tasks WHERE user_id = $1 AND id = ANY($2::uuid[])',
      [this.userId, ids],
    );
    const found = new Set(rows.map((r) => r.id));
    return ids.filter((i) => !found.has(i));
  }

  /** Would "taskId depends on deps" close a cycle in this user's dependency graph? */
  async wouldCycle(taskId: string, deps: string[]): Promise<boolean> {
    if (deps.includes(taskId)) return true;
    if (deps.length === 0) return false;
    const rows = await this.query<{ hit: number }>(
      `WITH RECURSIVE reach(id) AS (
         SELECT unnest($2::uuid[])
         UNION
         SELECT d.depends_on_id FROM task_dependencies d JOIN reach r ON d.task_id = r.id WHERE d.user_id = $1
       ) SELECT 1 AS hit FROM reach WHERE id = $3 LIMIT 1`,
      [this.userId, deps, taskId],
    );
    return rows.length > 0;
  }

  // ---------------------------------------------------------------- tasks

  /** Inserts a task (id given for restores, generated otherwise). */
  async insertTask(
    c: TaskContent,
    restore?: { id: string; createdAt: Date; version: number },
  ): Promise<TaskView> {
    const id = restore?.id ?? randomUUID();
    await this.query(
      `INSERT INTO tasks (id, user_id, title, notes, status, priority, estimate_minutes, due_at, scheduled_start,
         scheduled_end, tags, goal_id, version, created_at, updated_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`,
      [
        id,
        this.userId,
        c.title,
        c.notes,
        c.status,
        c.priority,
        c.estimateMinutes,
        c.dueAt,
        c.scheduledStart,
        c.scheduledEnd,
        c.tags,
        c.goalId,
        restore?.version ?? 1,
        restore?.createdAt ?? this.now,
        this.now,
      ],
    );
    await this.writeDependencies(id, c.dependsOn);
    const after = (await this.task(id))!;
    this.tracker.record('Task', id, null, toRow(after));
    return after;
  }

  /**
   * Updates a task. With `expectedVersion`, the UPDATE itself carries `AND version = $expected`
   * and a zero row count is answered with VERSION_CONFLICT (or NOT_FOUND when the task is absent).
   * `current`: the task as already read in this transaction (saves reading it again).
   */
  async updateTask(
    id: string,
    patch: TaskPatch,
    expectedVersion?: number | null,
    current?: TaskView,
  ): Promise<TaskView> {
    const before = current ?? (await this.task(id));
    if (!before) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
    await this.versionedUpdate('tasks', 'Task', id, TASK_COLUMN_OF, patch, expectedVersion, before.version);
    if (patch.dependsOn !== undefined) await this.writeDependencies(id, patch.dependsOn);
    if (before.scheduledStart && before.scheduledEnd) {
      this.oldRanges.push({ start: new Date(before.scheduledStart), end: new Date(before.scheduledEnd) });
    }
    const after = (await this.task(id))!;
    this.tracker.record('Task', id, toRow(before), toRow(after));
    return after;
  }

  /** Deletes a task; tasks that depended on it lose that dependency (recorded as their change). */
  async deleteTask(id: string): Promise<TaskView> {
    const before = await this.task(id);
    if (!before) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
    const dependents = await this.query<{ task_id: string }>(
      'SELECT task_id FROM task_dependencies WHERE user_id = $1 AND depends_on_id = $2',
      [this.userId, id],
    );
    const depIds = dependents.map((d) => d.task_id);
    const depBefore = await this.tasks(depIds);
    await this.query('DELETE FROM tasks WHERE user_id = $1 AND id = $2', [this.userId, id]);
    if (depIds.length > 0) {
      await this.query(
        'UPDATE tasks SET version = version + 1, updated_at = $3 WHERE user_id = $1 AND id = ANY($2::uuid[])',
        [this.userId, depIds, this.now],
      );
      const depAfter = new Map((await this.tasks(depIds)).map((t) => [t.id, t]));
      for (const b of depBefore) this.tracker.record('Task', b.id, toRow(b), toRow(depAfter.get(b.id)!));
    }
    if (before.scheduledStart && before.scheduledEnd) {
      this.oldRanges.push({ start: new Date(before.scheduledStart), end: new Date(before.scheduledEnd) });
    }
    this.tracker.record('Task', id, toRow(before), null);
    return before;
  }

  /**
   * `UPDATE <table> SET <patched columns>, updated_at, version = version + 1`: with an expected
   * version the statement itself carries `AND version = $expected`, and no row updated means
   * VERSION_CONFLICT (the caller has already checked that the row exists).
   */
  private async versionedUpdate(
    table: 'tasks' | 'goals',
    label: 'Task' | 'Goal',
    id: string,
    columns: Record<string, string>,
    patch: object,
    expectedVersion: number | null | undefined,
    currentVersion: number,
  ): Promise<void> {
    const sets: string[] = [];
    const params: unknown[] = [this.userId, id];
    const values = patch as Record<string, unknown>;
    for (const [field, column] of Object.entries(columns)) {
      if (values[field] !== undefined) {
        params.push(values[field]);
        sets.push(`${column} = $${params.length}`);
      }
    }
    params.push(this.now);
    sets.push(`updated_at = $${params.length}`, 'version = version + 1');
    let where = 'user_id = $1 AND id = $2';
    if (expectedVersion !== undefined && expectedVersion !== null) {
      params.push(expectedVersion);
      where += ` AND version = $${params.length}`;
    }
    const res = await this.qr.query(
      `UPDATE ${table} SET ${sets.join(', ')} WHERE ${where} RETURNING id`,
      params,
      true,
    );
    if ((res.affected ?? 0) === 0) {
      throw new DomainError(
        'VERSION_CONFLICT',
        `${label} was changed since version ${expectedVersion}: it is now at version ${currentVersion}`,
        ['expectedVersion'],
      );
    }
  }

  private async writeDependencies(taskId: string, deps: string[]): Promise<void> {
    await this.query('DELETE FROM task_dependencies WHERE user_id = $1 AND task_id = $2', [
      this.userId,
      taskId,
    ]);
    if (deps.length > 0) {
      await this.query(
        `INSERT INTO task_dependencies (user_id, task_id, depends_on_id)
         SELECT $1, $2, d FROM unnest($3::uuid[]) AS d ON CONFLICT DO NOTHING`,
        [this.userId, taskId, deps],
      );
    }
  }

  // ---------------------------------------------------------------- goals

  async insertGoal(
    c: GoalContent,
    restore?: { id: string; createdAt: Date; version: number },
  ): Promise<GoalView> {
    const id = restore?.id ?? randomUUID();
    await this.query(
      `INSERT INTO goals (id, user_id, title, status, priority, target_date, version, created_at, updated_at)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
      [
        id,
        this.userId,
        c.title,
        c.status,
        c.priority,
        c.targetDate,
        restore?.version ?? 1,
        restore?.createdAt ?? this.now,
        this.now,
      ],
    );
    const after = (await this.goal(id))!;
    this.tracker.record('Goal', id, null, toRow(after));
    return after;
  }

  async updateGoal(
    id: string,
    patch: Partial<GoalContent>,
    expectedVersion?: number | null,
  ): Promise<GoalView> {
    const before = await this.goal(id);
    if (!before) throw new DomainError('NOT_FOUND', 'No such goal', ['id']);
    await this.versionedUpdate('goals', 'Goal', id, GOAL_COLUMN_OF, patch, expectedVersion, before.version);
    const after = (await this.goal(id))!;
    this.tracker.record('Goal', id, toRow(before), toRow(after));
    return after;
  }

  async deleteGoal(id: string): Promise<void> {
    const before = await this.goal(id);
    if (!before) return;
    const refs = await this.query<{ id: string }>(
      'SELECT id FROM tasks WHERE user_id = $1 AND goal_id = $2 LIMIT 1',
      [this.userId, id],
    );
    if (refs.length > 0) {
      throw new DomainError('UNDO_BLOCKED', 'The goal still has tasks attached by a later change', ['goal']);
    }
    await this.query('DELETE FROM goals WHERE user_id = $1 AND id = $2', [this.userId, id]);
    this.tracker.record('Goal', id, toRow(before), null);
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

  async updateSettings(patch: Partial<SettingsContent>): Promise<void> {
    const before = this.settingsRow();
    // Structured result: for an UPDATE, TypeORM's plain query() answers [rows, count], not rows.
    const res = await this.qr.query(
      `UPDATE users SET time_zone = COALESCE($2, time_zone), working_hours = COALESCE($3, working_hours),
         daily_capacity_minutes = COALESCE($4, daily_capacity_minutes), display_name = COALESCE($5, display_name),
         version = version + 1, updated_at = $6
       WHERE id = $1 RETURNING *`,
      [
        this.userId,
        patch.timeZone ?? null,
        patch.workingHours ? JSON.stringify(patch.workingHours) : null,
        patch.dailyCapacityMinutes ?? null,
        patch.displayName ?? null,
        this.now,
      ],
      true,
    );
    this.user = (res.records as UserRow[])[0]!;
    this.tracker.record('User', this.userId, before, this.settingsRow());
  }

  userView() {
    return mapUser(this.user);
  }

  // ---------------------------------------------------------------- restore (undo / redo)

  /** Brings an entity to the content of `target` (null = absent), recording the change. */
  async restore(
    entity: 'Task' | 'Goal' | 'User' | 'Conflict',
    id: string,
    target: Row | null,
  ): Promise<void> {
    switch (entity) {
      case 'Task': {
        const current = await this.task(id);
        if (target === null) {
          if (current) await this.deleteTask(id);
          return;
        }
        const content = taskContentOf(target);
        if (current) await this.updateTask(id, content);
        else
          await this.insertTask(content, {
            id,
            createdAt: new Date(target.createdAt as string),
            version: Number(target.version) + 1,
          });
        return;
      }
      case 'Goal': {
        const current = await this.goal(id);
        if (target === null) {
          if (current) await this.deleteGoal(id);
          return;
        }
        const content: GoalContent = {
          title: target.title as string,
          status: target.status as GoalStatus,
          priority: target.priority as Priority,
          targetDate: dateOrNull(target.targetDate),
        };
        if (current) await this.updateGoal(id, content);
        else
          await this.insertGoal(content, {
            id,
            createdAt: new Date(target.createdAt as string),
            version: Number(target.version) + 1,
          });
        return;
      }
      case 'User':
        if (target)
          await this.updateSettings({
            timeZone: target.timeZone as string,
            workingHours: target.workingHours as unknown as WorkingHours,
            dailyCapacityMinutes: target.dailyCapacityMinutes as number,
            displayName: (target.displayName as string | undefined) ?? undefined,
          });
        return;
      case 'Conflict':
        if (target)
          await this.setConflictStatus(
            id,
            target.status as 'OPEN' | 'DISMISSED' | 'RESOLVED',
            target.chosenAlternativeId as string | null,
          );
        return;
    }
  }

  /** Current snapshot of an entity, for cleanliness checks. */
  async snapshot(entity: 'Task' | 'Goal' | 'User' | 'Conflict', id: string): Promise<Row | null> {
    switch (entity) {
      case 'Task': {
        const t = await this.task(id);
        return t ? toRow(t) : null;
      }
      case 'Goal': {
        const g = await this.goal(id);
        return g ? toRow(g) : null;
      }
      case 'User':
        return this.settingsRow();
      case 'Conflict': {
        const rows = await this.query<{ status: string; chosen_alternative_id: string | null }>(
          'SELECT status, chosen_alternative_id FROM conflicts WHERE user_id = $1 AND id = $2',
          [this.userId, id],
        );
        return rows[0]
          ? { status: rows[0].status, chosenAlternativeId: rows[0].chosen_alternative_id }
          : null;
      }
    }
  }

  /** Sets a conflict's status by a user's decision (dismiss / resolve): a tracked, undoable change. */
  async setConflictStatus(
    id: string,
    status: 'OPEN' | 'DISMISSED' | 'RESOLVED',
    chosen: string | null,
  ): Promise<void> {
    const before = await this.snapshot('Conflict', id);
    if (!before) throw new DomainError('NOT_FOUND', 'No such conflict', ['conflictId']);
    await this.query(
      `UPDATE conflicts SET status = $3, chosen_alternative_id = $4, closed_at = $5, version = version + 1
       WHERE user_id = $1 AND id = $2`,
      [this.userId, id, status, chosen, status === 'OPEN' ? null : this.now],
    );
    this.tracker.record('Conflict', id, before, { status, chosenAlternativeId: chosen });
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
