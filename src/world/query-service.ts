/**
 * Reads, always scoped to one user. Lists are keyset-paginated with opaque cursors and a stable
 * order; `first` is capped at 100. A bad cursor or argument throws DomainError VALIDATION.
 */
import type { DataSource } from 'typeorm';
import type { ConflictStatus, Priority, TaskStatus } from '../domain/types';
import type { Clock } from './clock';
import { DomainError } from './errors';
import {
  mapConflict,
  mapGoal,
  mapOperation,
  mapTask,
  mapUser,
  TASK_COLUMNS,
  type ConflictRow,
  type GoalRow,
  type OperationRow,
  type TaskRow,
  type UserRow,
} from './rows';
import { NOT_UNDOABLE_SQL } from './not-undoable';
import { isUuid } from './user-service';
import { createEmbedder, type Embedder } from '../memory/embedder';
import type { FlagRuntime } from './flag-gates';
import { exportUserData, recallMemories } from './personal-data';
import type {
  ConflictView,
  GoalView,
  MemoryItemView,
  OperationView,
  Page,
  TaskView,
  UndoStateView,
  UserView,
} from './views';

export type { MemoryItemView };

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;
/** The longest range `schedule(from, to)` accepts, in days. */
export const MAX_SCHEDULE_RANGE_DAYS = 366;
/** The most tasks `schedule(from, to)` returns (the earliest by start); the cost limit counts this many. */
export const MAX_SCHEDULE_ITEMS = 1000;

export interface TaskFilter {
  status?: TaskStatus[] | null;
  priority?: Priority[] | null;
  tag?: string | null;
  goalId?: string | null;
  dueBefore?: Date | null;
  dueAfter?: Date | null;
  text?: string | null;
  scheduled?: boolean | null;
}

type Query = (sql: string, params: unknown[]) => Promise<unknown[]>;

function encodeCursor(parts: unknown[]): string {
  return Buffer.from(JSON.stringify(parts)).toString('base64url');
}

function decodeCursor(cursor: string, shape: Array<'date' | 'uuid' | 'int'>, arg = 'after'): unknown[] {
  let parts: unknown;
  try {
    parts = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parts = null;
  }
  const ok =
    Array.isArray(parts) &&
    parts.length === shape.length &&
    shape.every((s, i) => {
      const v = parts[i];
      if (s === 'date') return typeof v === 'string' && !Number.isNaN(Date.parse(v));
      if (s === 'uuid') return typeof v === 'string' && isUuid(v);
      return Number.isInteger(v);
    });
  if (!ok) throw new DomainError('VALIDATION', 'not a cursor this list issued', [arg]);
  return parts as unknown[];
}

/** Validates and caps `first`. */
export function pageSize(first: number | null | undefined): number {
  if (first === null || first === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(first) || first < 0) {
    throw new DomainError('VALIDATION', `first must be a non-negative integer, got ${first}`, ['first']);
  }
  return Math.min(first, MAX_PAGE);
}

function page<T>(rows: T[], limit: number, cursorOf: (r: T) => unknown[]): Page<T> {
  const items = rows.slice(0, limit).map((node) => ({ cursor: encodeCursor(cursorOf(node)), node }));
  return {
    items,
    hasNextPage: rows.length > limit,
    endCursor: items.length > 0 ? items[items.length - 1]!.cursor : null,
  };
}

function iso(v: Date | string): string {
  return typeof v === 'string' ? v : v.toISOString();
}

/** Undo state computed with any query function (the DataSource, or an open transaction). */
/**
 * The undo state in one statement ($1 user, $2 undo depth): the few columns it needs (never the
 * snapshots' JSON) backwards through operations_user_seq_key, and the redo probe through
 * operations_user_redoable_idx.
 */
export const UNDO_STATE_SQL = `SELECT (SELECT COALESCE(json_agg(w ORDER BY w.seq DESC), '[]') FROM (
    SELECT id, seq, kind, actor, state, created_at, target_operation_id FROM operations
    WHERE user_id = $1 AND kind NOT IN ${NOT_UNDOABLE_SQL} ORDER BY seq DESC LIMIT $2
  ) w WHERE w.state = 'APPLIED') AS applied,
  EXISTS (SELECT 1 FROM operations WHERE user_id = $1 AND redoable) AS can_redo`;

export async function undoStateWith(query: Query, userId: string, undoDepth: number): Promise<UndoStateView> {
  const rows = (await query(UNDO_STATE_SQL, [userId, undoDepth])) as Array<{
    applied: Array<Record<string, unknown>>;
    can_redo: boolean;
  }>;
  const applied = rows[0]!.applied.map(
    (o) => ({ ...o, created_at: new Date(o.created_at as string) }) as unknown as OperationRow,
  );
  return {
    canUndo: applied.length > 0,
    canRedo: rows[0]!.can_redo,
    depth: applied.length,
    nextUndo: applied[0] ? mapOperation(applied[0]) : null,
  };
}

export class QueryService {
  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
    private readonly opts: { undoDepth: number; embedder?: Embedder; flags?: FlagRuntime },
  ) {}

  /**
   * Recall: the user's memory items, the most similar to `query` first (see personal-data.ts).
   * `first` defaults to 20, at most 100. The agent tool `recall_memories` calls exactly this.
   */
  async memories(
    userId: string,
    args: { query?: string | null; first?: number | null } = {},
  ): Promise<MemoryItemView[]> {
    return recallMemories(this.q, this.clock.now(), this.opts.embedder ?? createEmbedder('local'), userId, {
      query: args.query ?? null,
      limit: pageSize(args.first),
    });
  }

  private q = async <T>(sql: string, params: unknown[]): Promise<T[]> =>
    (await this.ds.query(sql, params)) as T[];

  async me(userId: string): Promise<UserView> {
    const rows = await this.q<UserRow>('SELECT * FROM users WHERE id = $1', [userId]);
    if (!rows[0]) throw new DomainError('NOT_FOUND', 'user no longer exists', null);
    return { ...mapUser(rows[0]), eventCursor: String(rows[0].event_seq) };
  }

  async task(userId: string, id: string): Promise<TaskView | null> {
    if (!isUuid(id)) return null;
    const rows = await this.q<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.user_id = $1 AND t.id = $2`,
      [userId, id],
    );
    return rows[0] ? mapTask(rows[0]) : null;
  }

  /** Batch lookup for DataLoaders: result aligned with `ids`, null where absent. */
  async tasksByIds(userId: string, ids: readonly string[]): Promise<Array<TaskView | null>> {
    const valid = ids.filter(isUuid);
    const rows =
      valid.length === 0
        ? []
        : await this.q<TaskRow>(
            `SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.user_id = $1 AND t.id = ANY($2::uuid[])`,
            [userId, valid],
          );
    const byId = new Map(rows.map((r) => [r.id, mapTask(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  async goalsByIds(userId: string, ids: readonly string[]): Promise<Array<GoalView | null>> {
    const valid = ids.filter(isUuid);
    const rows =
      valid.length === 0
        ? []
        : await this.q<GoalRow>('SELECT * FROM goals WHERE user_id = $1 AND id = ANY($2::uuid[])', [
            userId,
            valid,
          ]);
    const byId = new Map(rows.map((r) => [r.id, mapGoal(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** OPEN conflicts per task id, for Task.conflicts. */
  async openConflictsByTaskIds(userId: string, ids: readonly string[]): Promise<ConflictView[][]> {
    const rows = await this.q<ConflictRow>(
      `SELECT * FROM conflicts WHERE user_id = $1 AND status = 'OPEN' AND task_ids && $2::uuid[] ORDER BY detected_at, id`,
      [userId, ids.filter(isUuid)],
    );
    return ids.map((id) => rows.filter((r) => r.task_ids.includes(id)).map(mapConflict));
  }

  /**
   * OPEN conflicts per task id, at most `cap` per task (oldest first), in ONE statement whatever
   * the number of tasks: the per-request loader behind Task.conflicts.
   */
  async openConflictsOfTasks(userId: string, ids: readonly string[], cap: number): Promise<ConflictView[][]> {
    const valid = [...new Set(ids.filter(isUuid))];
    const rows =
      valid.length === 0
        ? []
        : await this.q<ConflictRow & { key_task_id: string }>(
            `SELECT k.task_id AS key_task_id, c.* FROM unnest($2::uuid[]) AS k(task_id)
             CROSS JOIN LATERAL (
               SELECT * FROM conflicts c
               WHERE c.user_id = $1 AND c.status = 'OPEN' AND c.task_ids @> ARRAY[k.task_id]
               ORDER BY c.detected_at, c.id LIMIT $3
             ) c`,
            [userId, valid, cap],
          );
    const byTask = new Map<string, ConflictView[]>();
    for (const r of rows) {
      const list = byTask.get(r.key_task_id) ?? [];
      list.push(mapConflict(r));
      byTask.set(r.key_task_id, list);
    }
    return ids.map((id) => byTask.get(id) ?? []);
  }

  /**
   * Goal.tasks for many goals in ONE statement (a LATERAL page per goal): each key is one goal's
   * page arguments. A bad `first` or cursor fails only its own key (a DomainError in its slot).
   */
  async tasksOfGoals(
    userId: string,
    keys: ReadonlyArray<{ goalId: string; first?: number | null; after?: string | null }>,
  ): Promise<Array<Page<TaskView> | DomainError>> {
    const out: Array<Page<TaskView> | DomainError> = keys.map(() => ({
      items: [],
      hasNextPage: false,
      endCursor: null,
    }));
    const slot: number[] = [];
    const goalIds: string[] = [];
    const afterAt: Array<string | null> = [];
    const afterId: Array<string | null> = [];
    const limits: number[] = [];
    keys.forEach((k, i) => {
      if (!isUuid(k.goalId)) return;
      try {
        const limit = pageSize(k.first);
        const [at, id] = k.after ? decodeCursor(k.after, ['date', 'uuid']) : [null, null];
        slot.push(i);
        goalIds.push(k.goalId);
        afterAt.push(at as string | null);
        afterId.push(id as string | null);
        limits.push(limit);
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        out[i] = err;
      }
    });
    if (slot.length === 0) return out;
    const rows = await this.q<TaskRow & { key_ord: string }>(
      `SELECT k.ord AS key_ord, t.* FROM unnest($2::uuid[], $3::timestamptz[], $4::uuid[], $5::int[])
         WITH ORDINALITY AS k(goal_id, after_at, after_id, lim, ord)
       CROSS JOIN LATERAL (
         SELECT ${TASK_COLUMNS} FROM tasks t
         WHERE t.user_id = $1 AND t.goal_id = k.goal_id
           AND (k.after_at IS NULL OR (t.created_at, t.id) > (k.after_at, k.after_id))
         ORDER BY t.created_at, t.id LIMIT k.lim + 1
       ) t
       ORDER BY k.ord, t.created_at, t.id`,
      [userId, goalIds, afterAt, afterId, limits],
    );
    const byKey = new Map<number, TaskView[]>();
    for (const r of rows) {
      const k = Number(r.key_ord) - 1;
      const list = byKey.get(k) ?? [];
      list.push(mapTask(r));
      byKey.set(k, list);
    }
    slot.forEach((i, k) => {
      out[i] = page(byKey.get(k) ?? [], limits[k]!, (t) => [iso(t.createdAt), t.id]);
    });
    return out;
  }

  /** Operations by id (the undo/redo target), aligned with `ids`, null where absent; no JSON columns. */
  async operationsByIds(userId: string, ids: readonly string[]): Promise<Array<OperationView | null>> {
    const valid = ids.filter(isUuid);
    const rows =
      valid.length === 0
        ? []
        : await this.q<OperationRow>(
            `SELECT id, seq, kind, actor, state, created_at, target_operation_id FROM operations
             WHERE user_id = $1 AND id = ANY($2::uuid[])`,
            [userId, valid],
          );
    const byId = new Map(rows.map((r) => [r.id, mapOperation(r)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** Tasks matching `filter`, oldest first (created_at, id), keyset-paginated. */
  async tasks(
    userId: string,
    filter: TaskFilter | null | undefined,
    first?: number | null,
    after?: string | null,
  ): Promise<Page<TaskView>> {
    const limit = pageSize(first);
    const where: string[] = ['t.user_id = $1'];
    const params: unknown[] = [userId];
    const add = (sql: (n: string) => string, v: unknown) => {
      params.push(v);
      where.push(sql(`$${params.length}`));
    };
    const f = filter ?? {};
    if (f.status && f.status.length > 0) add((n) => `t.status = ANY(${n}::task_status[])`, f.status);
    if (f.priority && f.priority.length > 0)
      add((n) => `t.priority = ANY(${n}::task_priority[])`, f.priority);
    if (f.tag) add((n) => `${n} = ANY(t.tags)`, f.tag.trim());
    if (f.goalId) {
      if (!isUuid(f.goalId)) return { items: [], hasNextPage: false, endCursor: null };
      add((n) => `t.goal_id = ${n}`, f.goalId);
    }
    if (f.dueBefore) add((n) => `t.due_at < ${n}`, f.dueBefore);
    if (f.dueAfter) add((n) => `t.due_at > ${n}`, f.dueAfter);
    if (f.text) {
      if (f.text.length > 200)
        throw new DomainError('VALIDATION', 'text filter is at most 200 characters', ['filter', 'text']);
      const pattern = `%${f.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      add((n) => `(t.title ILIKE ${n} OR t.notes ILIKE ${n})`, pattern);
    }
    if (f.scheduled === true) where.push('t.scheduled_start IS NOT NULL');
    if (f.scheduled === false) where.push('t.scheduled_start IS NULL');
    if (after) {
      const [at, id] = decodeCursor(after, ['date', 'uuid']);
      params.push(at, id);
      where.push(`(t.created_at, t.id) > ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(limit + 1);
    const rows = await this.q<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t WHERE ${where.join(' AND ')}
       ORDER BY t.created_at, t.id LIMIT $${params.length}`,
      params,
    );
    return page(rows.map(mapTask), limit, (t) => [iso(t.createdAt), t.id]);
  }

  async goals(userId: string, first?: number | null, after?: string | null): Promise<Page<GoalView>> {
    const limit = pageSize(first);
    const params: unknown[] = [userId];
    let cond = '';
    if (after) {
      const [at, id] = decodeCursor(after, ['date', 'uuid']);
      params.push(at, id);
      cond = 'AND (created_at, id) > ($2::timestamptz, $3::uuid)';
    }
    params.push(limit + 1);
    const rows = await this.q<GoalRow>(
      `SELECT * FROM goals WHERE user_id = $1 ${cond} ORDER BY created_at, id LIMIT $${params.length}`,
      params,
    );
    return page(rows.map(mapGoal), limit, (g) => [iso(g.createdAt), g.id]);
  }

  /** Tasks scheduled in any part of [from, to), by start. */
  async schedule(userId: string, from: Date, to: Date): Promise<TaskView[]> {
    if (!(to.getTime() > from.getTime()))
      throw new DomainError('VALIDATION', '`to` must be after `from`', ['to']);
    if (to.getTime() - from.getTime() > MAX_SCHEDULE_RANGE_DAYS * 86_400_000) {
      throw new DomainError('VALIDATION', `the range may span at most ${MAX_SCHEDULE_RANGE_DAYS} days`, [
        'to',
      ]);
    }
    const rows = await this.q<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t
       WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
         AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && tstzrange($2, $3, '[)')
       ORDER BY t.scheduled_start, t.id LIMIT $4`,
      [userId, from, to, MAX_SCHEDULE_ITEMS],
    );
    return rows.map(mapTask);
  }

  /** Conflicts, newest first, optionally by status. */
  async conflicts(
    userId: string,
    status?: ConflictStatus | null,
    first?: number | null,
    after?: string | null,
  ): Promise<Page<ConflictView>> {
    const limit = pageSize(first);
    const params: unknown[] = [userId];
    const where = ['user_id = $1'];
    if (status) {
      params.push(status);
      where.push(`status = $${params.length}`);
    }
    if (after) {
      const [at, id] = decodeCursor(after, ['date', 'uuid']);
      params.push(at, id);
      where.push(`(detected_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
    }
    params.push(limit + 1);
    const rows = await this.q<ConflictRow>(
      `SELECT * FROM conflicts WHERE ${where.join(' AND ')} ORDER BY detected_at DESC, id DESC LIMIT $${params.length}`,
      params,
    );
    return page(rows.map(mapConflict), limit, (c) => [iso(c.detectedAt), c.id]);
  }

  async conflict(userId: string, id: string): Promise<ConflictView | null> {
    if (!isUuid(id)) return null;
    const rows = await this.q<ConflictRow>('SELECT * FROM conflicts WHERE user_id = $1 AND id = $2', [
      userId,
      id,
    ]);
    return rows[0] ? mapConflict(rows[0]) : null;
  }

  /** The audit trail, newest first. */
  async operations(
    userId: string,
    first?: number | null,
    after?: string | null,
  ): Promise<Page<OperationView>> {
    const limit = pageSize(first);
    const params: unknown[] = [userId];
    let cond = '';
    if (after) {
      const [seq] = decodeCursor(after, ['int']);
      params.push(seq);
      cond = 'AND seq < $2';
    }
    params.push(limit + 1);
    const rows = await this.q<OperationRow>(
      `SELECT * FROM operations WHERE user_id = $1 ${cond} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return page(rows.map(mapOperation), limit, (o) => [o.seq]);
  }

  async operation(userId: string, id: string): Promise<OperationView | null> {
    if (!isUuid(id)) return null;
    const rows = await this.q<OperationRow>('SELECT * FROM operations WHERE user_id = $1 AND id = $2', [
      userId,
      id,
    ]);
    return rows[0] ? mapOperation(rows[0]) : null;
  }

  async undoState(userId: string): Promise<UndoStateView> {
    return undoStateWith((sql, p) => this.ds.query(sql, p), userId, this.opts.undoDepth);
  }

  /** Everything held about the user (GDPR-style export; see personal-data.ts). */
  async exportMyData(userId: string): Promise<Record<string, unknown>> {
    const { eventCursor: _cursor, ...me } = await this.me(userId);
    return exportUserData(this.q, { me, now: this.clock.now(), flags: this.opts.flags ?? null }, userId);
  }
}
