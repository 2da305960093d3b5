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
import type { ShapingItem } from '../memory/rules';
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
  /**
   * With latestUndoable: only operations of this agent actor, or of the user when the user lets
   * agents undo their operations (users.agents_may_undo_mine, read in the same statement).
   */
  latestUndoableBy?: string;
  /** The full row of the operation a redo would re-apply. */
  redoTarget?: boolean;
  /** Task ids reachable through dependencies from these (cycle checks). */
  reachFrom?: string[];
  /** Applied operations after `afterSeq` that touched any of `entities` (names the operation in the way). */
  blockers?: { afterSeq: number; entities: string[] };
  /**
   * The APPLIED ordinary operations later than this one (by id) that touched any entity it touched:
   * an undo by id is blocked by them even when they left the content as it was (A → B → A), or
   * their own undo could no longer be clean.
   */
  laterOrdinaryOf?: string;
  /** Ids of up to this many unscheduled BACKLOG/TODO tasks (auto-scheduling the whole backlog). */
  backlog?: number;
}

/** Thrown by the decide step when it needs data the loads did not cover. */
export class NeedMore extends Error {
  readonly request: LoadRequest;

  constructor(request: LoadRequest) {
    // Control flow, not a fault: no stack trace is captured at all (capturing one, and V8 formatting
    // it through the source maps when anything reads .stack, cost ~2% of a conflicting createTask).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super('the operation needs more of the plan loaded');
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.request = request;
    this.name = 'NeedMore';
    this.stack = `NeedMore: ${this.message}`;
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

/** The undo window in a few numbers and its two newest applied operations. */
export interface UndoSummary {
  /** Operations in the window (at most the undo depth). */
  n: number;
  /** How many of them are APPLIED. */
  applied: number;
  /** The oldest seq in the window (null when empty): an ordinary operation is undoable iff seq ≥ it. */
  minSeq: number | null;
  /** Whether the oldest operation of the window is APPLIED (a new operation pushes it out). */
  oldestApplied: boolean;
  /** The two newest APPLIED operations, newest first. */
  heads: OpLite[];
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
function parsePlan(rows: unknown[][]): PlanTask[] {
  const at = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));
  const byId = new Map<string, PlanTask>();
  // [id, title, status, priority, estimate_minutes, due_ms, start_ms, end_ms, depends_on_id]
  for (const [id, title, status, priority, estimate, due, start, end, dep] of rows) {
    let t = byId.get(id as string);
    if (!t) {
      t = {
        id: id as string,
        title: title as string,
        status: status as PlanTask['status'],
        priority: priority as PlanTask['priority'],
        estimateMinutes: (estimate as number | null) ?? null,
        dueAt: at(due),
        start: at(start),
        end: at(end),
        dependsOn: [],
      };
      byId.set(t.id, t);
    }
    if (dep !== null && dep !== undefined && !t.dependsOn.includes(dep as string))
      t.dependsOn.push(dep as string);
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
  /** The undo window (the newest `undoDepth` ordinary operations), summarised. */
  undoSummary: UndoSummary = { n: 0, applied: 0, minSeq: null, oldestApplied: false, heads: [] };
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
  laterOrdinaryOf: string | null = null;
  laterOrdinary: Array<{ id: string; seq: number; kind: string; entities: string[] }> = [];
  backlog: string[] | null = null;
  /** The user's active learned memory items (read by the first load with the lock). */
  memory: ShapingItem[] = [];
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
    if (req.laterOrdinaryOf && this.laterOrdinaryOf !== req.laterOrdinaryOf) {
      out.laterOrdinaryOf = req.laterOrdinaryOf;
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
    if (row.undo_summary) {
      const u = row.undo_summary as Json;
      this.undoSummary = {
        n: Number(u.n),
        applied: Number(u.applied),
        minSeq: u.min_seq === null ? null : Number(u.min_seq),
        oldestApplied: Boolean(u.oldest_applied),
        heads: ((u.heads as Json[] | null) ?? []).map(parseOpLite),
      };
    }
    if (row.memory !== undefined) this.memory = ((row.memory as Json[] | null) ?? []).map(parseMemory);
    if (row.redo_top !== undefined) this.redoTop = ((row.redo_top as Json[] | null) ?? []).map(parseOpLite);
    const focus = [...(req.taskIds ?? []), ...((row.focus_ids as string[] | null) ?? [])];
    for (const id of focus) this.fullTasks.set(id, null);
    for (const r of (row.tasks as Json[] | null) ?? []) {
      const t = parseTask(r);
      this.fullTasks.set(t.id, t);
      this.planTasks.set(t.id, planOfRow(t));
    }
    for (const t of parsePlan((row.plan as unknown[][] | null) ?? [])) {
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
    // The window tasks come with their dependencies and dependents (not with their conflicts).
    for (const id of (row.range_task_ids as string[] | null) ?? []) this.dependentsKnown.add(id);
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
    if (req.laterOrdinaryOf) {
      this.laterOrdinaryOf = req.laterOrdinaryOf;
      this.laterOrdinary = ((row.later_ordinary as Json[] | null) ?? []).map((b) => ({
        id: b.id as string,
        seq: Number(b.seq),
        kind: b.kind as string,
        entities: b.entities as string[],
      }));
    }
    if (req.backlog !== undefined) this.backlog = (row.backlog as string[] | null) ?? [];
  }
}

function parseMemory(r: Json): ShapingItem {
  return {
    id: r.id as string,
    kind: r.kind as ShapingItem['kind'],
    text: r.text as string,
    confidence: Number(r.confidence),
    rule: r.rule as ShapingItem['rule'],
    expiresAt: d(r.expires_at),
  };
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
    latestUndoableBy: b.latestUndoableBy ?? a.latestUndoableBy,
    redoTarget: a.redoTarget || b.redoTarget || undefined,
    reachFrom: u(a.reachFrom, b.reachFrom),
    blockers: b.blockers ?? a.blockers,
    laterOrdinaryOf: b.laterOrdinaryOf ?? a.laterOrdinaryOf,
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
