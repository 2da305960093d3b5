/**
 * The load step of the write path: what one operation may read, fetched in ONE statement, and the
 * in-memory copy of it (LoadedWorld) that the decide step works on.
 *
 * The first load of an operation also locks the user's row and reads the user, the idempotency
 * record and the undo window's few columns. Everything it loads is recorded as coverage (task ids,
 * time ranges, dependents, conflicts by task and by capacity day, ...). When the decide step asks
 * for something outside the coverage it throws {@link NeedMore}; the runner then loads exactly that
 * (one more statement, the user lock already held) and decides again from scratch. Decide is pure,
 * so re-running it is safe; the operations request generously up front so that this stays rare.
 */
import { localDaysTouched } from '../domain/time';
import type { PlanTask } from '../domain/types';
import type { ConflictRow, GoalRow, OperationRow, TaskRow, UserRow } from './rows';

const DAY_MS = 86_400_000;

/** What an operation needs loaded (all optional; unions are taken). */
export interface LoadRequest {
  /** Full task rows (absent ones are remembered as absent), their dependents and their open conflicts. */
  taskIds?: string[];
  /** Load windows around the focus tasks' stored positions too (default true). */
  windowsOfFocus?: boolean;
  /** Every scheduled task meeting these ranges (plan columns only), with their open conflicts. */
  ranges?: Array<{ start: Date; end: Date }>;
  /** Goals by id (absent ones remembered). */
  goalIds?: string[];
  /** The ids of the tasks that belong to these goals. */
  goalRefs?: string[];
  /** Conflicts by id, any status (with their alternatives). */
  conflictIds?: string[];
  /** Open (or dismissed and still active) conflicts by key. */
  conflictKeys?: string[];
  /** Every open (or dismissed and still active) conflict of the user. */
  allActiveConflicts?: boolean;
  /** Full operation rows by id. */
  operationIds?: string[];
  /** The full row of the newest APPLIED operation in the undo window. */
  latestUndoable?: boolean;
  /** The full row of the operation a redo would re-apply. */
  redoTarget?: boolean;
  /** Task ids reachable through dependencies from these (cycle checks). */
  reachFrom?: string[];
  /** Applied operations after `afterSeq` that touched any of `entities` (names the operation in the way). */
  blockers?: { afterSeq: number; entities: string[] };
  /** Ids of up to this many unscheduled BACKLOG/TODO tasks (auto-scheduling the whole backlog). */
  backlog?: number;
}

/** Thrown by the decide step when it needs data the loads did not cover. */
export class NeedMore extends Error {
  constructor(readonly request: LoadRequest) {
    super('the operation needs more of the plan loaded');
    this.name = 'NeedMore';
  }
}

/** The undo window's few columns. */
export interface OpLite {
  id: string;
  seq: number;
  kind: string;
  actor: string;
  state: 'APPLIED' | 'UNDONE';
  created_at: Date;
  target_operation_id: string | null;
}

export interface IdempotencyRecord {
  request_hash: string;
  result: unknown;
  created_at: Date;
}

type Json = Record<string, unknown>;

const d = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

function parseTask(r: Json): TaskRow {
  return {
    ...(r as unknown as TaskRow),
    due_at: d(r.due_at),
    scheduled_start: d(r.scheduled_start),
    scheduled_end: d(r.scheduled_end),
    created_at: d(r.created_at)!,
    updated_at: d(r.updated_at)!,
    tags: (r.tags as string[] | null) ?? [],
    depends_on: [...((r.depends_on as string[] | null) ?? [])].sort(),
  };
}

function parseGoal(r: Json): GoalRow {
  return {
    ...(r as unknown as GoalRow),
    target_date: d(r.target_date),
    created_at: d(r.created_at)!,
    updated_at: d(r.updated_at)!,
  };
}

function parseConflict(r: Json): ConflictRow & { version: number } {
  return {
    ...(r as unknown as ConflictRow & { version: number }),
    alternatives: (r.alternatives as ConflictRow['alternatives'] | undefined) ?? (undefined as never),
    detected_at: d(r.detected_at)!,
    closed_at: d(r.closed_at),
  };
}

function parseOp(r: Json): OperationRow {
  return { ...(r as unknown as OperationRow), seq: String(r.seq), created_at: d(r.created_at)! };
}

function parseOpLite(r: Json): OpLite {
  return { ...(r as unknown as OpLite), seq: Number(r.seq), created_at: d(r.created_at)! };
}

function parseUser(r: Json): UserRow {
  return {
    ...(r as unknown as UserRow),
    op_seq: String(r.op_seq),
    event_seq: String(r.event_seq),
    created_at: d(r.created_at)!,
    updated_at: d(r.updated_at)!,
  };
}

/** Plan rows (one per task and dependency) as PlanTasks, dependencies sorted. */
function parsePlan(rows: Json[]): PlanTask[] {
  const at = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));
  const byId = new Map<string, PlanTask>();
  for (const r of rows) {
    const id = r.id as string;
    let t = byId.get(id);
    if (!t) {
      t = {
        id,
        title: r.title as string,
        status: r.status as PlanTask['status'],
        priority: r.priority as PlanTask['priority'],
        estimateMinutes: (r.estimate_minutes as number | null) ?? null,
        dueAt: at(r.due_ms),
        start: at(r.start_ms),
        end: at(r.end_ms),
        dependsOn: [],
      };
      byId.set(id, t);
    }
    const dep = r.depends_on_id as string | null;
    if (dep !== null && !t.dependsOn.includes(dep)) t.dependsOn.push(dep);
  }
  for (const t of byId.values()) t.dependsOn.sort();
  return [...byId.values()];
}

export function planOfRow(r: TaskRow): PlanTask {
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    priority: r.priority,
    estimateMinutes: r.estimate_minutes,
    dueAt: r.due_at ? new Date(r.due_at) : null,
    start: r.scheduled_start ? new Date(r.scheduled_start) : null,
    end: r.scheduled_end ? new Date(r.scheduled_end) : null,
    dependsOn: [...(r.depends_on ?? [])],
  };
}

/** What the loads have brought in, and what they cover. Never changed by the decide step. */
export class LoadedWorld {
  user!: UserRow;
  idempotency: IdempotencyRecord | null = null;
  undoWindow: OpLite[] = [];
  /** The newest two redoable operations (a redo re-applies the first; the second says whether more remain). */
  redoTop: OpLite[] = [];

  readonly fullTasks = new Map<string, TaskRow | null>();
  readonly planTasks = new Map<string, PlanTask>();
  /** Every scheduled task meeting one of these [start, end) ranges (epoch ms) is in planTasks. */
  readonly coveredRanges: Array<[number, number]> = [];
  /** Every task depending on one of these ids is in planTasks. */
  readonly dependentsKnown = new Set<string>();
  readonly goals = new Map<string, GoalRow | null>();
  readonly goalRefs = new Map<string, string[]>();
  /** Conflicts by id: active ones loaded by coverage (without alternatives), others by id. */
  readonly conflicts = new Map<string, ConflictRow & { version: number }>();
  readonly conflictsAbsent = new Set<string>();
  /** Every active conflict naming one of these tasks is loaded. */
  readonly conflictTaskCover = new Set<string>();
  /** Every active conflict with one of these keys is loaded. */
  readonly conflictKeyCover = new Set<string>();
  /** Every active OVER_CAPACITY conflict of these local days is loaded. */
  readonly conflictDayCover = new Set<string>();
  allActiveConflicts = false;
  readonly operations = new Map<string, OperationRow | null>();
  latestUndoable: OperationRow | null | undefined = undefined;
  redoTarget: OperationRow | null | undefined = undefined;
  readonly reachSources = new Set<string>();
  readonly reachable = new Set<string>();
  blockersKey: string | null = null;
  blockers: Array<{ id: string; seq: number; kind: string; entities: string[] }> = [];
  backlog: string[] | null = null;
  /** How many load statements were run (for diagnostics). */
  loads = 0;

  /** The part of `req` that is not covered yet (null when everything is). */
  missing(req: LoadRequest): LoadRequest | null {
    const out: LoadRequest = {};
    let any = false;
    const ids = (req.taskIds ?? []).filter((id) => !this.fullTasks.has(id) || !this.dependentsKnown.has(id));
    if (ids.length) {
      out.taskIds = ids;
      any = true;
    }
    const ranges = (req.ranges ?? []).filter((r) => !this.covers(r.start.getTime(), r.end.getTime()));
    if (ranges.length) {
      out.ranges = ranges;
      any = true;
    }
    const goals = (req.goalIds ?? []).filter((g) => !this.goals.has(g));
    if (goals.length) {
      out.goalIds = goals;
      any = true;
    }
    const refs = (req.goalRefs ?? []).filter((g) => !this.goalRefs.has(g));
    if (refs.length) {
      out.goalRefs = refs;
      any = true;
    }
    const cids = (req.conflictIds ?? []).filter(
      (c) => !this.conflictsAbsent.has(c) && this.conflicts.get(c)?.alternatives === undefined,
    );
    if (cids.length) {
      out.conflictIds = cids;
      any = true;
    }
    const keys = (req.conflictKeys ?? []).filter((k) => !this.keyCovered(k));
    if (keys.length) {
      out.conflictKeys = keys;
      any = true;
    }
    if (req.allActiveConflicts && !this.allActiveConflicts) {
      out.allActiveConflicts = true;
      any = true;
    }
    const ops = (req.operationIds ?? []).filter((o) => !this.operations.has(o));
    if (ops.length) {
      out.operationIds = ops;
      any = true;
    }
    if (req.latestUndoable && this.latestUndoable === undefined) {
      out.latestUndoable = true;
      any = true;
    }
    if (req.redoTarget && this.redoTarget === undefined) {
      out.redoTarget = true;
      any = true;
    }
    const reach = (req.reachFrom ?? []).filter((r) => !this.reachSources.has(r));
    if (reach.length) {
      out.reachFrom = req.reachFrom;
      any = true;
    }
    if (req.blockers && this.blockersKey !== blockersKey(req.blockers)) {
      out.blockers = req.blockers;
      any = true;
    }
    if (req.backlog !== undefined && this.backlog === null) {
      out.backlog = req.backlog;
      any = true;
    }
    return any ? out : null;
  }

  /** Throws NeedMore unless `req` is covered. */
  need(req: LoadRequest): void {
    const m = this.missing(req);
    if (m) throw new NeedMore(m);
  }

  covers(start: number, end: number): boolean {
    // Ranges are merged on insertion, so one covering range is enough.
    return this.coveredRanges.some(([s, e]) => s <= start && end <= e);
  }

  keyCovered(key: string): boolean {
    if (this.allActiveConflicts || this.conflictKeyCover.has(key)) return true;
    const [kind, ...rest] = key.split(':');
    if (kind === 'OVER_CAPACITY') return this.conflictDayCover.has(rest.join(':'));
    return rest.some((id) => this.conflictTaskCover.has(id));
  }

  private addRange(start: number, end: number): void {
    const all = [...this.coveredRanges, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const r of all) {
      const last = merged[merged.length - 1];
      if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
      else merged.push([r[0], r[1]]);
    }
    this.coveredRanges.splice(0, this.coveredRanges.length, ...merged);
  }

  /** Folds one load's answer in. */
  absorb(req: LoadRequest, row: Json): void {
    this.loads += 1;
    if (row.user) this.user = parseUser(row.user as Json);
    if (row.idem !== undefined) this.idempotency = row.idem ? parseIdem(row.idem as Json) : null;
    if (row.undo_window !== undefined) this.undoWindow = ((row.undo_window as Json[]) ?? []).map(parseOpLite);
    if (row.redo_top !== undefined) this.redoTop = ((row.redo_top as Json[] | null) ?? []).map(parseOpLite);
    const focus = [...(req.taskIds ?? []), ...((row.focus_ids as string[] | null) ?? [])];
    for (const id of focus) this.fullTasks.set(id, null);
    for (const r of (row.tasks as Json[] | null) ?? []) {
      const t = parseTask(r);
      this.fullTasks.set(t.id, t);
      this.planTasks.set(t.id, planOfRow(t));
    }
    for (const t of parsePlan((row.plan as Json[] | null) ?? [])) {
      if (!this.fullTasks.get(t.id)) this.planTasks.set(t.id, t);
    }
    for (const id of focus) this.dependentsKnown.add(id);
    for (const w of (row.windows as Array<[number, number]> | null) ?? []) {
      this.addRange(Number(w[0]), Number(w[1]));
      if (this.user) {
        for (const day of localDaysTouched(
          new Date(Number(w[0])),
          new Date(Number(w[1])),
          this.user.time_zone,
        )) {
          this.conflictDayCover.add(day);
        }
      }
    }
    const goalIds = [...(req.goalIds ?? []), ...((row.goal_ids as string[] | null) ?? [])];
    for (const g of goalIds) this.goals.set(g, null);
    for (const r of (row.goals as Json[] | null) ?? []) {
      const g = parseGoal(r);
      this.goals.set(g.id, g);
    }
    const refIds = [...(req.goalRefs ?? []), ...((row.goal_ref_ids as string[] | null) ?? [])];
    for (const g of refIds) this.goalRefs.set(g, []);
    for (const r of (row.goal_refs as Json[] | null) ?? [])
      this.goalRefs.get(r.goal_id as string)?.push(r.id as string);
    for (const c of req.conflictIds ?? []) this.conflictsAbsent.add(c);
    for (const r of (row.conflicts as Json[] | null) ?? []) {
      const c = parseConflict(r);
      this.conflictsAbsent.delete(c.id);
      const had = this.conflicts.get(c.id);
      // A lite row never replaces a full one.
      if (!had || c.alternatives !== undefined) this.conflicts.set(c.id, c);
    }
    for (const id of focus) this.conflictTaskCover.add(id);
    for (const id of (row.range_task_ids as string[] | null) ?? []) {
      this.conflictTaskCover.add(id);
      this.dependentsKnown.add(id);
    }
    for (const id of (row.cover_task_ids as string[] | null) ?? []) this.conflictTaskCover.add(id);
    for (const k of req.conflictKeys ?? []) this.conflictKeyCover.add(k);
    if (req.allActiveConflicts) this.allActiveConflicts = true;
    for (const o of req.operationIds ?? []) this.operations.set(o, null);
    const ops = ((row.operations as Json[] | null) ?? []).map(parseOp);
    for (const o of ops) this.operations.set(o.id, o);
    if (req.latestUndoable) this.latestUndoable = ops[0] ?? null;
    if (req.redoTarget) this.redoTarget = ops[0] ?? null;
    if (req.reachFrom) {
      for (const s of req.reachFrom) this.reachSources.add(s);
      for (const id of (row.reach as string[] | null) ?? []) this.reachable.add(id);
    }
    if (req.blockers) {
      this.blockersKey = blockersKey(req.blockers);
      this.blockers = ((row.blockers as Json[] | null) ?? []).map((b) => ({
        id: b.id as string,
        seq: Number(b.seq),
        kind: b.kind as string,
        entities: b.entities as string[],
      }));
    }
    if (req.backlog !== undefined) this.backlog = (row.backlog as string[] | null) ?? [];
  }
}

function parseIdem(r: Json): IdempotencyRecord {
  return { request_hash: r.request_hash as string, result: r.result, created_at: d(r.created_at)! };
}

function blockersKey(b: { afterSeq: number; entities: string[] }): string {
  return `${b.afterSeq}|${[...b.entities].sort().join(',')}`;
}

/** Merges load requests (unions). */
export function mergeRequests(a: LoadRequest, b: LoadRequest): LoadRequest {
  const u = <T>(x?: T[], y?: T[]): T[] | undefined =>
    x || y ? [...new Set([...(x ?? []), ...(y ?? [])])] : undefined;
  return {
    taskIds: u(a.taskIds, b.taskIds),
    ranges: a.ranges || b.ranges ? [...(a.ranges ?? []), ...(b.ranges ?? [])] : undefined,
    windowsOfFocus: a.windowsOfFocus === false && b.windowsOfFocus === false ? false : undefined,
    goalIds: u(a.goalIds, b.goalIds),
    goalRefs: u(a.goalRefs, b.goalRefs),
    conflictIds: u(a.conflictIds, b.conflictIds),
    conflictKeys: u(a.conflictKeys, b.conflictKeys),
    allActiveConflicts: a.allActiveConflicts || b.allActiveConflicts || undefined,
    operationIds: u(a.operationIds, b.operationIds),
    latestUndoable: a.latestUndoable || b.latestUndoable || undefined,
    redoTarget: a.redoTarget || b.redoTarget || undefined,
    reachFrom: u(a.reachFrom, b.reachFrom),
    blockers: b.blockers ?? a.blockers,
    backlog: b.backlog ?? a.backlog,
  };
}

/** Widens a scheduled range to what detection (whole local days, a day's margin) and alternatives (the search horizon) read. */
export function windowAround(
  start: Date,
  end: Date,
  now: Date,
  horizonDays: number,
): { start: Date; end: Date } {
  const s = start.getTime();
  const e = end.getTime();
  const n = now.getTime();
  const from = Math.min(s - 3 * DAY_MS, Math.max(n, s - (horizonDays + 1) * DAY_MS) - 2 * DAY_MS);
  const to = Math.max(e + 3 * DAY_MS, Math.max(s, n) + (horizonDays + 2) * DAY_MS);
  return { start: new Date(from), end: new Date(to) };
}

// ------------------------------------------------------------------------------------------- SQL

const TASK_COLS = `t.id, t.title, t.notes, t.status, t.priority, t.estimate_minutes, t.due_at, t.scheduled_start,
  t.scheduled_end, t.tags, t.goal_id, t.version, t.created_at, t.updated_at,
  COALESCE((SELECT array_agg(x.depends_on_id ORDER BY x.depends_on_id) FROM task_dependencies x
    WHERE x.user_id = t.user_id AND x.task_id = t.id), '{}') AS depends_on`;
const PLAN_COLS = `t.id, t.title, t.status, t.priority, t.estimate_minutes,
  (extract(epoch FROM t.due_at) * 1000)::float8 AS due_ms,
  (extract(epoch FROM t.scheduled_start) * 1000)::float8 AS start_ms,
  (extract(epoch FROM t.scheduled_end) * 1000)::float8 AS end_ms, dep.depends_on_id`;
const PLAN_FROM = `tasks t LEFT JOIN task_dependencies dep ON dep.user_id = t.user_id AND dep.task_id = t.id`;
const CONFLICT_LITE = `id, kind, key, status, message, task_ids, chosen_alternative_id, detected_at, closed_at, active, version`;
const ACTIVE = `(status = 'OPEN' OR (status = 'DISMISSED' AND active))`;
const OP_LITE = `id, seq, kind, actor, state, created_at, target_operation_id`;
const OP_FULL = `id, user_id, seq, actor, kind, input, forward, inverse, entities, target_operation_id, created_at, state, redoable`;
const TZ = `(SELECT time_zone FROM users WHERE id = $1)`;

/**
 * Ids of the scheduled tasks meeting any of the ranges in the given array expression (tstzrange[]).
 * It matches the GiST index tasks_user_schedule_gist on (user_id, tstzrange(scheduled_start,
 * scheduled_end, '[)')) WHERE scheduled_start IS NOT NULL: the expression and the predicate are
 * repeated verbatim so the planner can use it (a bitmap index scan for the `&& ANY(array)` form).
 */
function rangesSql(ranges: string): string {
  return `SELECT t.id FROM tasks t WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
      AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && ANY(${ranges})`;
}
/** The range lookup of the load statement, standalone ($1 user, $2 ranges): EXPLAINed by the tests. */
export const RANGES_SQL = rangesSql('$2::tstzrange[]');

const agg = (alias: string, sql: string, order = '') =>
  `(SELECT COALESCE(json_agg(${alias}${order}), '[]') FROM (${sql}) ${alias})`;

/**
 * Builds the one load statement for `req`. `first`: also lock the user's row and read the user, the
 * idempotency record and the undo window (the first load of an operation).
 *
 * What the operation names is widened in SQL, so that one statement brings everything: the tasks
 * of the named conflicts, the tasks, goals, conflicts and dependencies named by the undo/redo
 * target's snapshots join the focus; every scheduled position of the focus tasks, of the snapshots
 * and of the conflicts' alternatives gets a window (detection's days and the alternatives' search
 * horizon, see {@link windowAround}); the tasks meeting the windows come as plan rows, with the
 * active conflicts of all of them.
 */
export function buildLoad(
  userId: string,
  req: LoadRequest,
  first: { idempotencyKey: string | null; undoDepth: number } | null,
  now: Date,
  horizonDays: number,
): { sql: string; params: unknown[] } {
  const params: unknown[] = [userId];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const ctes: string[] = [];
  const cols: string[] = [];
  if (first) {
    ctes.push(`lk AS (SELECT * FROM users WHERE id = $1 FOR UPDATE)`);
    cols.push(`(SELECT row_to_json(l) FROM lk l) AS user`);
    // The statement's snapshot predates the lock when it had to wait: compare to detect that.
    cols.push(`(SELECT event_seq FROM users WHERE id = $1) AS snap_event_seq`);
    cols.push(
      first.idempotencyKey === null
        ? `NULL::json AS idem`
        : `(SELECT row_to_json(i) FROM (SELECT request_hash, result, created_at FROM idempotency_keys
             WHERE user_id = $1 AND key = ${p(first.idempotencyKey)}) i) AS idem`,
    );
    cols.push(
      `${agg('o', `SELECT ${OP_LITE} FROM operations WHERE user_id = $1 AND kind NOT IN ('UNDO','REDO') ORDER BY seq DESC LIMIT ${p(first.undoDepth)}`, ' ORDER BY o.seq DESC')} AS undo_window`,
    );
    cols.push(
      `${agg('o', `SELECT ${OP_LITE}, undone_by_seq FROM operations WHERE user_id = $1 AND redoable ORDER BY undone_by_seq DESC LIMIT 2`, ' ORDER BY o.undone_by_seq DESC')} AS redo_top`,
    );
  } else {
    cols.push(`(SELECT row_to_json(u) FROM users u WHERE id = $1) AS user`);
  }
  const uuids = (list: string[] | undefined) => (list ?? []).filter(isUuidLike);

  // The undo/redo target and its snapshots.
  const hasTarget = Boolean(req.latestUndoable || req.redoTarget || req.operationIds?.length);
  if (hasTarget) {
    const which: string[] = [];
    if (req.operationIds?.length)
      which.push(
        `SELECT id FROM operations WHERE user_id = $1 AND id = ANY(${p(uuids(req.operationIds))}::uuid[])`,
      );
    if (req.latestUndoable) {
      which.push(`(SELECT w.id FROM (SELECT id, seq, state FROM operations WHERE user_id = $1 AND kind NOT IN ('UNDO','REDO')
        ORDER BY seq DESC LIMIT ${p(first?.undoDepth ?? 100)}) w WHERE w.state = 'APPLIED' ORDER BY w.seq DESC LIMIT 1)`);
    }
    if (req.redoTarget)
      which.push(
        `(SELECT id FROM operations WHERE user_id = $1 AND redoable ORDER BY undone_by_seq DESC LIMIT 1)`,
      );
    ctes.push(
      `tgt AS (SELECT ${OP_FULL} FROM operations WHERE user_id = $1 AND id IN (${which.join(' UNION ')}))`,
    );
    ctes.push(`snaps AS (SELECT s FROM tgt, jsonb_array_elements(tgt.forward || tgt.inverse) s)`);
    ctes.push(
      `srows AS (SELECT s->>'entity' AS entity, s->>'id' AS id, s->'row' AS r FROM snaps WHERE jsonb_typeof(s->'row') = 'object')`,
    );
    cols.push(`${agg('o', 'SELECT * FROM tgt')} AS operations`);
  }
  const conflictIdSources: string[] = [];
  if (req.conflictIds?.length)
    conflictIdSources.push(`SELECT unnest(${p(uuids(req.conflictIds))}::uuid[]) AS id`);
  if (hasTarget)
    conflictIdSources.push(`SELECT (s->>'id')::uuid AS id FROM snaps WHERE s->>'entity' = 'Conflict'`);
  if (conflictIdSources.length) {
    ctes.push(
      `cf AS (SELECT ${CONFLICT_LITE}, alternatives FROM conflicts WHERE user_id = $1 AND id IN (${conflictIdSources.join(' UNION ')}))`,
    );
  }

  if (req.backlog !== undefined) {
    ctes.push(`bl AS (SELECT id, created_at FROM tasks WHERE user_id = $1 AND status IN ('BACKLOG','TODO')
      AND scheduled_start IS NULL ORDER BY created_at, id LIMIT ${p(req.backlog)})`);
    cols.push(`(SELECT COALESCE(array_agg(id ORDER BY created_at, id), '{}') FROM bl) AS backlog`);
  }
  // The focus: full rows, their dependents, their active conflicts, windows around their positions.
  const focus: string[] = [];
  if (req.backlog !== undefined) focus.push('SELECT id FROM bl');
  if (req.taskIds?.length) focus.push(`SELECT unnest(${p(uuids(req.taskIds))}::uuid[]) AS id`);
  if (conflictIdSources.length) focus.push(`SELECT unnest(task_ids) AS id FROM cf`);
  if (hasTarget) {
    focus.push(`SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Task') x`);
    focus.push(
      `SELECT jsonb_array_elements_text(r->'dependsOn')::uuid AS id FROM srows WHERE entity = 'Task'`,
    );
  }
  const hasFocus = focus.length > 0;
  if (hasFocus) {
    ctes.push(`focus AS (${focus.join(' UNION ')})`);
    ctes.push(
      `ft AS (SELECT ${TASK_COLS} FROM tasks t WHERE t.user_id = $1 AND t.id IN (SELECT id FROM focus))`,
    );
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM focus) AS focus_ids`);
    cols.push(`${agg('t', 'SELECT * FROM ft')} AS tasks`);
  }
  // Positions whose windows to load.
  const positions: string[] = [];
  if (hasFocus && req.windowsOfFocus !== false) {
    positions.push(
      `SELECT scheduled_start AS s, scheduled_end AS e FROM ft WHERE scheduled_start IS NOT NULL`,
    );
  }
  if (hasTarget) {
    positions.push(`SELECT (r->>'scheduledStart')::timestamptz AS s, (r->>'scheduledEnd')::timestamptz AS e FROM srows
      WHERE entity = 'Task' AND r->>'scheduledStart' IS NOT NULL`);
  }
  if (conflictIdSources.length) {
    positions.push(`SELECT (a->>'start')::timestamptz AS s, (a->>'end')::timestamptz AS e FROM cf, jsonb_array_elements(cf.alternatives) a
      WHERE a->>'start' IS NOT NULL AND a->>'end' IS NOT NULL`);
  }
  const explicit = (req.ranges ?? []).map((r) => `[${r.start.toISOString()},${r.end.toISOString()})`);
  const windowParts: string[] = [];
  if (positions.length) {
    const n = p(now);
    const h = p(horizonDays);
    windowParts.push(`SELECT tstzrange(
        least(s - interval '3 days', greatest(${n}::timestamptz, s - make_interval(days => ${h}::int + 1)) - interval '2 days'),
        greatest(e + interval '3 days', greatest(s, ${n}::timestamptz) + make_interval(days => ${h}::int + 2)), '[)') AS r
      FROM (${positions.join(' UNION ALL ')}) pos`);
  }
  if (explicit.length) windowParts.push(`SELECT unnest(${p(explicit)}::tstzrange[]) AS r`);
  const hasWindows = windowParts.length > 0;
  if (hasWindows) {
    ctes.push(`wr AS (${windowParts.join(' UNION ALL ')})`);
    ctes.push(`rt AS (${rangesSql('ARRAY(SELECT r FROM wr)')})`);
    cols.push(`(SELECT COALESCE(json_agg(json_build_array((extract(epoch FROM lower(r)) * 1000)::float8,
      (extract(epoch FROM upper(r)) * 1000)::float8)), '[]') FROM wr) AS windows`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM rt) AS range_task_ids`);
  }

  // Dependencies and dependents of the focus and of the window tasks (as plan rows).
  const nbOf: string[] = [];
  if (hasFocus) nbOf.push('SELECT id FROM focus');
  if (hasWindows) nbOf.push('SELECT id FROM rt');
  if (nbOf.length) {
    ctes.push(`nbf AS (${nbOf.join(' UNION ')})`);
    ctes.push(`nb AS (SELECT depends_on_id AS id FROM task_dependencies WHERE user_id = $1 AND task_id IN (SELECT id FROM nbf)
      UNION SELECT task_id FROM task_dependencies WHERE user_id = $1 AND depends_on_id IN (SELECT id FROM nbf))`);
  }
  // Active conflicts: of the focus and the window tasks, then one step further (the tasks of those
  // conflicts); by key; the capacity conflicts of the windows' days; or all of them.
  const coverIds: string[] = [];
  if (hasFocus) coverIds.push('SELECT id FROM focus');
  if (hasWindows) coverIds.push('SELECT id FROM rt');
  const preds: string[] = [];
  if (coverIds.length) {
    ctes.push(`c1 AS (SELECT id, task_ids FROM conflicts WHERE user_id = $1 AND ${ACTIVE}
      AND task_ids && ARRAY(${coverIds.join(' UNION ')}))`);
    ctes.push(`c1t AS (SELECT DISTINCT unnest(task_ids) AS id FROM c1)`);
    preds.push(`id IN (SELECT id FROM c1)`, `task_ids && ARRAY(SELECT id FROM c1t)`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM c1t) AS cover_task_ids`);
  }
  if (hasWindows) {
    preds.push(`(kind = 'OVER_CAPACITY' AND EXISTS (SELECT 1 FROM wr WHERE key BETWEEN
      'OVER_CAPACITY:' || to_char((lower(wr.r) - interval '1 day') AT TIME ZONE ${TZ}, 'YYYY-MM-DD') AND
      'OVER_CAPACITY:' || to_char((upper(wr.r) + interval '1 day') AT TIME ZONE ${TZ}, 'YYYY-MM-DD')))`);
  }
  if (req.conflictKeys?.length) preds.push(`key = ANY(${p(req.conflictKeys)}::text[])`);
  if (req.allActiveConflicts) preds.push('true');
  const conflictParts: string[] = [];
  if (preds.length) {
    conflictParts.push(
      `SELECT ${CONFLICT_LITE}, NULL::jsonb AS alternatives FROM conflicts WHERE user_id = $1 AND ${ACTIVE} AND (${preds.join(' OR ')})`,
    );
  }
  if (conflictIdSources.length) conflictParts.push(`SELECT * FROM cf`);
  if (conflictParts.length) {
    cols.push(`${agg('c', conflictParts.map((x) => `(${x})`).join(' UNION ALL '))} AS conflicts`);
  }
  // Plan rows: the window tasks, the neighbours, and the tasks of the loaded conflicts.
  const planIds: string[] = [];
  if (nbOf.length) planIds.push('SELECT id FROM nb');
  if (hasWindows) planIds.push('SELECT id FROM rt');
  if (coverIds.length) planIds.push('SELECT id FROM c1t');
  if (planIds.length) {
    cols.push(
      `${agg('t', `SELECT ${PLAN_COLS} FROM ${PLAN_FROM} WHERE t.user_id = $1 AND t.id IN (${planIds.join(' UNION ')})`)} AS plan`,
    );
  }
  const goalSources: string[] = [];
  if (req.goalIds?.length) goalSources.push(`SELECT unnest(${p(uuids(req.goalIds))}::uuid[]) AS id`);
  if (hasTarget) {
    goalSources.push(
      `SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Goal') x`,
    );
    goalSources.push(
      `SELECT (r->>'goalId')::uuid AS id FROM srows WHERE entity = 'Task' AND r->>'goalId' IS NOT NULL`,
    );
  }
  if (goalSources.length) {
    ctes.push(`gids AS (${goalSources.join(' UNION ')})`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM gids) AS goal_ids`);
    cols.push(
      `${agg('g', `SELECT id, title, status, priority, target_date, version, created_at, updated_at FROM goals WHERE user_id = $1 AND id IN (SELECT id FROM gids)`)} AS goals`,
    );
  }
  const refSources: string[] = [];
  if (req.goalRefs?.length) refSources.push(`SELECT unnest(${p(uuids(req.goalRefs))}::uuid[]) AS id`);
  if (hasTarget)
    refSources.push(
      `SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Goal') x`,
    );
  if (refSources.length) {
    ctes.push(`grefs AS (${refSources.join(' UNION ')})`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM grefs) AS goal_ref_ids`);
    cols.push(
      `${agg('r', `SELECT id, goal_id FROM tasks WHERE user_id = $1 AND goal_id IN (SELECT id FROM grefs)`)} AS goal_refs`,
    );
  }
  if (req.reachFrom?.length) {
    cols.push(`(WITH RECURSIVE reach(id) AS (
        SELECT unnest(${p(uuids(req.reachFrom))}::uuid[])
        UNION
        SELECT x.depends_on_id FROM task_dependencies x JOIN reach r ON x.task_id = r.id WHERE x.user_id = $1
      ) SELECT COALESCE(array_agg(id), '{}') FROM reach) AS reach`);
  }
  if (req.blockers) {
    cols.push(
      `${agg(
        'b',
        `SELECT id, seq, kind, entities FROM operations WHERE user_id = $1 AND seq > ${p(req.blockers.afterSeq)}
        AND entities && ${p(req.blockers.entities)}::text[] AND state = 'APPLIED'`,
      )} AS blockers`,
    );
  }
  const sql = `${ctes.length ? `WITH ${ctes.join(',\n')}\n` : ''}SELECT ${cols.join(',\n')}`;
  return { sql, params };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isUuidLike(v: string): boolean {
  return UUID.test(v);
}
