/**
 * Keeps the stored conflicts in step with the plan, inside the operation's transaction:
 * detects conflicts involving the tasks an operation touched (not a rescan of the whole plan),
 * opens new ones with ranked alternatives, and resolves stored ones whose cause is gone.
 */
import { randomUUID } from 'node:crypto';
import {
  alternativesSearchWindow,
  proposeAlternatives,
  type AlternativeOptions,
} from '../domain/alternatives';
import { detectConflicts, isScheduled } from '../domain/conflicts';
import { localDayBounds, localDaysTouched, overlapMs } from '../domain/time';
import type { AlternativeProposal, DetectedConflict, PlanTask, UserSettings } from '../domain/types';
import { mapConflict, type ConflictRow } from './rows';
import type { WorldTx } from './tx';
import type { AlternativeView, ConflictView, EntityChangeView, TaskView } from './views';

const DAY_MS = 86_400_000;
/** How far ahead alternatives look for free slots. */
export const ALTERNATIVE_HORIZON_DAYS = 14;
/** The options every alternatives computation uses (search window and proposals must agree). */
const ALTERNATIVE_OPTIONS: AlternativeOptions = { max: 5, horizonDays: ALTERNATIVE_HORIZON_DAYS };

/**
 * The columns detection and planning need (a PlanTask), and nothing else: these loads can return a month of
 * a busy plan, and parsing full rows (notes, tags, five timestamps, a per-row dependency array sub-query)
 * dominated their cost. Instants come as epoch milliseconds (float8 is parsed to a number by pg); the
 * dependencies come from a plain join (one row per dependency, none for most tasks), grouped in
 * {@link mapPlanRows}.
 */
const PLAN_SELECT = `SELECT t.id, t.title, t.status, t.priority, t.estimate_minutes,
    (extract(epoch FROM t.due_at) * 1000)::float8 AS due_ms,
    (extract(epoch FROM t.scheduled_start) * 1000)::float8 AS start_ms,
    (extract(epoch FROM t.scheduled_end) * 1000)::float8 AS end_ms,
    d.depends_on_id
  FROM tasks t LEFT JOIN task_dependencies d ON d.user_id = t.user_id AND d.task_id = t.id`;

/**
 * The overlap lookups. Both match the GiST index tasks_user_schedule_gist on
 * (user_id, tstzrange(scheduled_start, scheduled_end, '[)')) WHERE scheduled_start IS NOT NULL: the
 * expression and the predicate are repeated verbatim so the planner can use it (a bitmap index scan for
 * the `&& ANY(array)` form). test/integration/overlap-index.test.ts EXPLAINs these very strings.
 */
export const WINDOW_SQL = `${PLAN_SELECT}
  WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
    AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && tstzrange($2, $3, '[)')`;
/** Scheduled tasks meeting any of the ranges in $2 (a tstzrange[]). */
export const RANGES_SQL = `${PLAN_SELECT}
  WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
    AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && ANY($2::tstzrange[])`;

interface PlanRow {
  id: string;
  title: string;
  status: PlanTask['status'];
  priority: PlanTask['priority'];
  estimate_minutes: number | null;
  due_ms: number | null;
  start_ms: number | null;
  end_ms: number | null;
  depends_on_id: string | null;
}

/** Groups PLAN_SELECT rows (one per task and dependency) into PlanTasks, dependencies sorted. */
function mapPlanRows(rows: PlanRow[]): PlanTask[] {
  const at = (v: number | null): Date | null => (v === null ? null : new Date(Math.round(Number(v))));
  const byId = new Map<string, PlanTask>();
  for (const r of rows) {
    let t = byId.get(r.id);
    if (!t) {
      t = {
        id: r.id,
        title: r.title,
        status: r.status,
        priority: r.priority,
        estimateMinutes: r.estimate_minutes,
        dueAt: at(r.due_ms),
        start: at(r.start_ms),
        end: at(r.end_ms),
        dependsOn: [],
      };
      byId.set(r.id, t);
    }
    if (r.depends_on_id !== null) t.dependsOn.push(r.depends_on_id);
  }
  const out = [...byId.values()];
  for (const t of out) if (t.dependsOn.length > 1) t.dependsOn.sort();
  return out;
}

/** Tasks of the user by id, as PlanTasks. */
async function planTasks(tx: WorldTx, ids: string[]): Promise<PlanTask[]> {
  if (ids.length === 0) return [];
  const rows = await tx.query<PlanRow>(`${PLAN_SELECT} WHERE t.user_id = $1 AND t.id = ANY($2::uuid[])`, [
    tx.userId,
    ids,
  ]);
  return mapPlanRows(rows);
}

export interface SyncOutcome {
  /** Conflicts opened by this sync. */
  opened: ConflictView[];
  /** Conflicts closed (RESOLVED) by this sync. */
  resolved: ConflictView[];
  /** OPEN conflicts involving the focus after the sync (opened ones included). */
  open: ConflictView[];
  /** Derived changes to conflict rows, for the UpdateResult's `changes`. */
  changes: EntityChangeView[];
}

export function toPlanTask(t: TaskView): PlanTask {
  return {
    id: t.id,
    title: t.title,
    status: t.status,
    priority: t.priority,
    estimateMinutes: t.estimateMinutes,
    dueAt: t.dueAt === null ? null : new Date(t.dueAt),
    start: t.scheduledStart === null ? null : new Date(t.scheduledStart),
    end: t.scheduledEnd === null ? null : new Date(t.scheduledEnd),
    dependsOn: t.dependsOn,
  };
}

export function toAlternativeView(a: AlternativeProposal): AlternativeView {
  return {
    id: a.id,
    action: a.action,
    description: a.description,
    taskId: a.taskId,
    start: a.start ? a.start.toISOString() : null,
    end: a.end ? a.end.toISOString() : null,
    score: a.score,
  };
}

function dayRange(day: string, tz: string): { start: Date; end: Date } {
  return localDayBounds(day, tz);
}

/**
 * Loads the part of the plan that can interact with `focus`: the focus tasks, every scheduled task
 * meeting a local day touched by them (or by `extraRanges`, or one of `extraDays`), and their
 * dependencies and dependents. One GiST-indexed range query plus one dependency query.
 */
export async function loadRelevantWorld(
  tx: WorldTx,
  focus: string[],
  extraRanges: Array<{ start: Date; end: Date }>,
  extraDays: string[],
): Promise<Map<string, PlanTask>> {
  const tz = tx.user.time_zone;
  const byId = new Map<string, PlanTask>();
  for (const t of await planTasks(tx, focus)) byId.set(t.id, t);
  const ranges: Array<{ start: Date; end: Date }> = [...extraRanges];
  for (const t of byId.values()) {
    if (t.start && t.end) ranges.push({ start: t.start, end: t.end });
  }
  const bounds: string[] = [];
  for (const r of ranges) {
    // Whole local days, with a day's margin either side: capacity is per local day.
    const days = localDaysTouched(
      new Date(r.start.getTime() - DAY_MS),
      new Date(r.end.getTime() + DAY_MS),
      tz,
    );
    const first = dayRange(days[0]!, tz);
    const last = dayRange(days[days.length - 1]!, tz);
    bounds.push(`[${first.start.toISOString()},${last.end.toISOString()})`);
  }
  for (const d of extraDays) {
    const b = dayRange(d, tz);
    bounds.push(`[${b.start.toISOString()},${b.end.toISOString()})`);
  }
  if (bounds.length > 0) {
    const rows = await tx.query<PlanRow>(RANGES_SQL, [tx.userId, bounds]);
    for (const t of mapPlanRows(rows)) byId.set(t.id, t);
  }
  for (const t of await loadDependencyNeighbours(tx, focus)) byId.set(t.id, t);
  return byId;
}

/** Scheduled tasks meeting [from, to): the free-slot search space for alternatives and planning. */
export async function loadWindow(tx: WorldTx, from: Date, to: Date): Promise<PlanTask[]> {
  return mapPlanRows(await tx.query<PlanRow>(WINDOW_SQL, [tx.userId, from, to]));
}

/** The tasks depending on, and the dependencies of, `ids` (one query). */
export async function loadDependencyNeighbours(tx: WorldTx, ids: string[]): Promise<PlanTask[]> {
  if (ids.length === 0) return [];
  const rows = await tx.query<PlanRow>(
    `${PLAN_SELECT}
     WHERE t.user_id = $1 AND (
       t.id IN (SELECT depends_on_id FROM task_dependencies WHERE user_id = $1 AND task_id = ANY($2::uuid[]))
       OR t.id IN (SELECT task_id FROM task_dependencies WHERE user_id = $1 AND depends_on_id = ANY($2::uuid[])))`,
    [tx.userId, ids],
  );
  return mapPlanRows(rows);
}

/**
 * Computes up to 5 ranked alternatives for a detected conflict against the current plan.
 *
 * `near` is what detection loaded. Added to it: every task of the conflict with its dependencies and
 * dependents (a capacity conflict names tasks outside the focus, and they bound where tasks may move),
 * then every scheduled task meeting the domain's own search window (alternativesSearchWindow), so each
 * slot is checked against the complete relevant plan. Both domain calls get the same now and options.
 */
export async function alternativesFor(
  tx: WorldTx,
  conflict: DetectedConflict,
  near: Map<string, PlanTask>,
  settings: UserSettings,
): Promise<AlternativeView[]> {
  const all = new Map(near);
  const ids = [...new Set(conflict.taskIds)];
  const absent = ids.filter((id) => !all.has(id));
  for (const t of await planTasks(tx, absent)) all.set(t.id, t);
  for (const t of await loadDependencyNeighbours(tx, ids)) if (!all.has(t.id)) all.set(t.id, t);
  const window = alternativesSearchWindow(conflict, [...all.values()], settings, tx.now, ALTERNATIVE_OPTIONS);
  if (window) {
    for (const t of await loadWindow(tx, window.from, window.to)) if (!all.has(t.id)) all.set(t.id, t);
  }
  return proposeAlternatives(conflict, [...all.values()], settings, tx.now, ALTERNATIVE_OPTIONS).map(
    toAlternativeView,
  );
}

/** Whether a stored alternative can still be applied, judged against the plan as it is now. */
export type AlternativeFit = 'FITS' | 'PARTIAL' | 'STALE';

/**
 * Re-checks a previously offered alternative against the current plan, with the rule the domain used
 * when it offered it: once applied, no conflict may involve the changed task, the MOVE may not start
 * before now, and the conflict's key must be gone — except that an OVER_CAPACITY alternative which only
 * lowers the day's total is PARTIAL.
 */
export async function checkAlternative(
  tx: WorldTx,
  conflict: { kind: string; key: string; taskIds: string[] },
  alt: AlternativeView,
): Promise<AlternativeFit> {
  if (!alt.taskId) return 'STALE';
  const settings = tx.settings();
  const capacityDay = conflict.kind === 'OVER_CAPACITY' ? conflict.key.slice('OVER_CAPACITY:'.length) : null;
  const move =
    alt.action === 'MOVE' && alt.start !== null && alt.end !== null
      ? { start: new Date(alt.start), end: new Date(alt.end) }
      : null;
  if (alt.action === 'MOVE' && (!move || move.start.getTime() < tx.now.getTime())) return 'STALE';
  const focus = [...new Set([...conflict.taskIds, alt.taskId])];
  const near = await loadRelevantWorld(tx, focus, move ? [move] : [], capacityDay ? [capacityDay] : []);
  const before = [...near.values()];
  const target = before.find((t) => t.id === alt.taskId);
  // The task must still be on the calendar and open: otherwise the alternative has nothing to act on.
  if (!target || !isScheduled(target)) return 'STALE';
  const after = before.map((t) =>
    t.id !== alt.taskId
      ? t
      : move
        ? { ...t, start: move.start, end: move.end }
        : { ...t, start: null, end: null, status: 'BACKLOG' as const },
  );
  if (detectConflicts(after, new Set([alt.taskId]), settings).length > 0) return 'STALE';
  const extraDays = capacityDay ? [capacityDay] : [];
  const still = detectConflicts(after, new Set(conflict.taskIds), settings, { extraDays }).some(
    (d) => d.key === conflict.key,
  );
  if (!still) return 'FITS';
  if (capacityDay === null) return 'STALE';
  const b = localDayBounds(capacityDay, settings.timeZone);
  const total = (list: PlanTask[]): number =>
    list
      .filter(isScheduled)
      .reduce(
        (sum, t) => sum + overlapMs(t.start.getTime(), t.end.getTime(), b.start.getTime(), b.end.getTime()),
        0,
      );
  return total(after) < total(before) ? 'PARTIAL' : 'STALE';
}

/**
 * Re-evaluates conflicts for the tasks in `touched` (plus the tasks of stored conflicts that involve
 * them), opening, refreshing and resolving stored conflicts. Writes conflict events to tx.events.
 */
export async function syncConflicts(tx: WorldTx, touched: string[]): Promise<SyncOutcome> {
  const out: SyncOutcome = { opened: [], resolved: [], open: [], changes: [] };
  if (touched.length === 0) return out;
  const settings = tx.settings();
  const stored = await tx.query<ConflictRow>(
    `SELECT * FROM conflicts WHERE user_id = $1 AND task_ids && $2::uuid[]
       AND (status = 'OPEN' OR (status = 'DISMISSED' AND active))`,
    [tx.userId, touched],
  );
  const focus = new Set(touched);
  const extraDays: string[] = [];
  for (const c of stored) {
    for (const id of c.task_ids) focus.add(id);
    if (c.kind === 'OVER_CAPACITY') extraDays.push(c.key.slice('OVER_CAPACITY:'.length));
  }
  const focusIds = [...focus];
  const near = await loadRelevantWorld(tx, focusIds, tx.oldRanges, extraDays);
  const detected = detectConflicts([...near.values()], focus, settings, { extraDays });
  const detectedKeys = new Set(detected.map((d) => d.key));
  const storedByKey = new Map(stored.map((c) => [c.key, c]));
  const unmatched = detected.map((d) => d.key).filter((k) => !storedByKey.has(k));
  if (unmatched.length > 0) {
    // e.g. a day already over capacity (stored with other tasks) that a touched task now joins.
    const more = await tx.query<ConflictRow>(
      `SELECT * FROM conflicts WHERE user_id = $1 AND key = ANY($2::text[])
         AND (status = 'OPEN' OR (status = 'DISMISSED' AND active))`,
      [tx.userId, unmatched],
    );
    for (const c of more) storedByKey.set(c.key, c);
  }

  for (const c of stored) {
    if (detectedKeys.has(c.key)) continue;
    if (c.status === 'OPEN') {
      const rows = await tx.query<ConflictRow>(
        `UPDATE conflicts SET status = 'RESOLVED', active = false, closed_at = $3, version = version + 1
         WHERE user_id = $1 AND id = $2 RETURNING *`,
        [tx.userId, c.id, tx.now],
      );
      const view = mapConflict(rows[0]!);
      out.resolved.push(view);
      out.changes.push({ entity: 'Conflict', id: c.id, field: 'status', before: 'OPEN', after: 'RESOLVED' });
      tx.events.push({ topic: 'conflict', type: 'RESOLVED', payload: { conflict: view } });
    } else {
      await tx.query('UPDATE conflicts SET active = false WHERE user_id = $1 AND id = $2', [tx.userId, c.id]);
    }
  }

  for (const d of detected) {
    const existing = storedByKey.get(d.key);
    if (existing?.status === 'DISMISSED') continue; // the user chose to live with it while it lasts
    const alternatives = await alternativesFor(tx, d, near, settings);
    if (existing) {
      const rows = await tx.query<ConflictRow>(
        `UPDATE conflicts SET message = $3, task_ids = $4, alternatives = $5
         WHERE user_id = $1 AND id = $2 RETURNING *`,
        [tx.userId, existing.id, d.message, d.taskIds, JSON.stringify(alternatives)],
      );
      out.open.push(mapConflict(rows[0]!));
      continue;
    }
    const rows = await tx.query<ConflictRow>(
      `INSERT INTO conflicts (id, user_id, kind, key, status, message, task_ids, alternatives, detected_at)
       VALUES ($1, $2, $3, $4, 'OPEN', $5, $6, $7, $8) RETURNING *`,
      [randomUUID(), tx.userId, d.kind, d.key, d.message, d.taskIds, JSON.stringify(alternatives), tx.now],
    );
    const view = mapConflict(rows[0]!);
    out.opened.push(view);
    out.open.push(view);
    out.changes.push({ entity: 'Conflict', id: view.id, field: 'status', before: null, after: 'OPEN' });
    tx.events.push({ topic: 'conflict', type: 'DETECTED', payload: { conflict: view } });
  }
  return out;
}
