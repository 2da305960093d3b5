/**
 * Keeps the stored conflicts in step with the plan, inside the operation's transaction:
 * detects conflicts involving the tasks an operation touched (not a rescan of the whole plan),
 * opens new ones with ranked alternatives, and resolves stored ones whose cause is gone.
 */
import { randomUUID } from 'node:crypto';
import { proposeAlternatives } from '../domain/alternatives';
import { detectConflicts } from '../domain/conflicts';
import { localDayBounds, localDaysTouched } from '../domain/time';
import type { AlternativeProposal, DetectedConflict, PlanTask, UserSettings } from '../domain/types';
import { mapConflict, mapTask, TASK_COLUMNS, type ConflictRow, type TaskRow } from './rows';
import type { WorldTx } from './tx';
import type { AlternativeView, ConflictView, EntityChangeView, TaskView } from './views';

const DAY_MS = 86_400_000;
/** How far ahead alternatives look for free slots. */
export const ALTERNATIVE_HORIZON_DAYS = 14;

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
): Promise<Map<string, TaskView>> {
  const tz = tx.user.time_zone;
  const byId = new Map<string, TaskView>();
  for (const t of await tx.tasks(focus)) byId.set(t.id, t);
  const ranges: Array<{ start: Date; end: Date }> = [...extraRanges];
  for (const t of byId.values()) {
    if (t.scheduledStart && t.scheduledEnd) {
      ranges.push({ start: new Date(t.scheduledStart), end: new Date(t.scheduledEnd) });
    }
  }
  const bounds: string[] = [];
  for (const r of ranges) {
    // Whole local days, with a day's margin either side: capacity is per local day.
    const days = localDaysTouched(new Date(r.start.getTime() - DAY_MS), new Date(r.end.getTime() + DAY_MS), tz);
    const first = dayRange(days[0]!, tz);
    const last = dayRange(days[days.length - 1]!, tz);
    bounds.push(`[${first.start.toISOString()},${last.end.toISOString()})`);
  }
  for (const d of extraDays) {
    const b = dayRange(d, tz);
    bounds.push(`[${b.start.toISOString()},${b.end.toISOString()})`);
  }
  if (bounds.length > 0) {
    const rows = await tx.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t
       WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
         AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && ANY($2::tstzrange[])`,
      [tx.userId, bounds],
    );
    for (const r of rows) byId.set(r.id, mapTask(r));
  }
  if (focus.length > 0) {
    const rows = await tx.query<TaskRow>(
      `SELECT ${TASK_COLUMNS} FROM tasks t
       WHERE t.user_id = $1 AND (
         t.id IN (SELECT depends_on_id FROM task_dependencies WHERE user_id = $1 AND task_id = ANY($2::uuid[]))
         OR t.id IN (SELECT task_id FROM task_dependencies WHERE user_id = $1 AND depends_on_id = ANY($2::uuid[])))`,
      [tx.userId, focus],
    );
    for (const r of rows) byId.set(r.id, mapTask(r));
  }
  return byId;
}

/** Scheduled tasks in [from, to): the free-slot search space for alternatives. */
export async function loadWindow(tx: WorldTx, from: Date, to: Date): Promise<TaskView[]> {
  const rows = await tx.query<TaskRow>(
    `SELECT ${TASK_COLUMNS} FROM tasks t
     WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
       AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && tstzrange($2, $3, '[)')`,
    [tx.userId, from, to],
  );
  return rows.map(mapTask);
}

/** Computes up to 5 ranked alternatives for a detected conflict against the current plan. */
export async function alternativesFor(
  tx: WorldTx,
  conflict: DetectedConflict,
  near: Map<string, TaskView>,
  settings: UserSettings,
): Promise<AlternativeView[]> {
  const times = conflict.taskIds
    .map((id) => near.get(id))
    .filter((t): t is TaskView => !!t && t.scheduledStart !== null)
    .map((t) => new Date(t.scheduledStart!).getTime());
  const anchor = Math.max(tx.now.getTime(), times.length > 0 ? Math.min(...times) : tx.now.getTime());
  const from = new Date(Math.min(anchor, tx.now.getTime()) - DAY_MS);
  const to = new Date(anchor + (ALTERNATIVE_HORIZON_DAYS + 2) * DAY_MS);
  const windowTasks = await loadWindow(tx, from, to);
  const all = new Map(near);
  for (const t of windowTasks) all.set(t.id, t);
  const plan = [...all.values()].map(toPlanTask);
  return proposeAlternatives(conflict, plan, settings, tx.now, { max: 5, horizonDays: ALTERNATIVE_HORIZON_DAYS }).map(
    toAlternativeView,
  );
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
  const detected = detectConflicts([...near.values()].map(toPlanTask), focus, settings, { extraDays });
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

/**
 * Conflicts that `touched` would have, computed without storing anything (REJECT policy and
 * stale-alternative checks).
 */
export async function previewConflicts(tx: WorldTx, touched: string[]): Promise<DetectedConflict[]> {
  const settings = tx.settings();
  const near = await loadRelevantWorld(tx, touched, [], []);
  return detectConflicts([...near.values()].map(toPlanTask), new Set(touched), settings);
}
