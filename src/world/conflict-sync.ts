/**
 * Keeps the stored conflicts in step with the plan, in the decide step (pure: it reads the loaded
 * world through WorldTx and stages conflict rows): detects conflicts involving the tasks an
 * operation touched (not a rescan of the whole plan), opens new ones with ranked alternatives, and
 * resolves stored ones whose cause is gone. A key never gets a second OPEN row: detection matches a
 * stored row by key and reuses it.
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
import { activeOperation } from '../telemetry/operation';
import { alternativesAllowed, rankForUser } from './flag-gates';
import { alternativeMemory } from './memory-shaping';
import { mergeRequests, NeedMore, windowAround, type LoadRequest } from './loaded';
import { mapConflict } from './rows';
import type { StoredConflict, WorldTx } from './tx';
import type { AlternativeView, ConflictView, EntityChangeView, TaskView } from './views';

const DAY_MS = 86_400_000;
/** How far ahead alternatives look for free slots. */
export const ALTERNATIVE_HORIZON_DAYS = 14;
/** The options every alternatives computation uses (search window and proposals must agree). */
const ALTERNATIVE_OPTIONS: AlternativeOptions = { max: 5, horizonDays: ALTERNATIVE_HORIZON_DAYS };

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

/** The ranges a load should cover for these scheduled ranges: detection's days and the alternatives' horizon. */
export function windowsFor(
  tx: { now: Date },
  ranges: Array<{ start: Date; end: Date }>,
): Array<{ start: Date; end: Date }> {
  return ranges.map((r) => windowAround(r.start, r.end, tx.now, ALTERNATIVE_HORIZON_DAYS));
}

/**
 * The ranges detection reads around these scheduled ranges (whole local days with margins), without
 * the alternatives' horizon: most changes raise no conflict, and when one does, its alternatives
 * load their search window on demand (one more statement, see {@link alternativesFor}).
 */
export function detectionWindowsFor(
  tx: { now: Date },
  ranges: Array<{ start: Date; end: Date }>,
): Array<{ start: Date; end: Date }> {
  return ranges.map((r) => windowAround(r.start, r.end, tx.now, 0));
}

/**
 * The part of the plan that can interact with `focus`: the focus tasks, every scheduled task
 * meeting a local day touched by them (or by `extraRanges`, or one of `extraDays`), and their
 * dependencies and dependents.
 */
export function loadRelevantWorld(
  tx: WorldTx,
  focus: string[],
  extraRanges: Array<{ start: Date; end: Date }>,
  extraDays: string[],
): Map<string, PlanTask> {
  const tz = tx.user.time_zone;
  const byId = new Map<string, PlanTask>();
  for (const t of tx.planTasks(focus)) byId.set(t.id, t);
  const ranges: Array<{ start: Date; end: Date }> = [...extraRanges];
  for (const t of byId.values()) if (t.start && t.end) ranges.push({ start: t.start, end: t.end });
  const bounds: Array<{ start: Date; end: Date }> = [];
  for (const r of ranges) {
    // Whole local days, with a day's margin either side: capacity is per local day.
    const days = localDaysTouched(
      new Date(r.start.getTime() - DAY_MS),
      new Date(r.end.getTime() + DAY_MS),
      tz,
    );
    bounds.push({
      start: localDayBounds(days[0]!, tz).start,
      end: localDayBounds(days[days.length - 1]!, tz).end,
    });
  }
  for (const d of extraDays) bounds.push(localDayBounds(d, tz));
  if (bounds.length > 0) {
    const missing = bounds.filter((b) => !tx.base.covers(b.start.getTime(), b.end.getTime()));
    // Ask generously: the alternatives' horizon around what is missing, so one more load settles it.
    if (missing.length > 0) tx.need({ ranges: windowsFor(tx, missing) });
    for (const t of tx.planTasksMeeting(bounds)) byId.set(t.id, t);
  }
  for (const t of tx.dependencyNeighbours(focus)) byId.set(t.id, t);
  return byId;
}

/**
 * Up to 5 ranked alternatives for a detected conflict against the current plan: `near` plus the
 * conflict's tasks with their dependencies and dependents, plus every scheduled task meeting the
 * domain's own search window (alternativesSearchWindow).
 */
export function alternativesFor(
  tx: WorldTx,
  conflict: DetectedConflict,
  near: Map<string, PlanTask>,
  settings: UserSettings,
): AlternativeView[] {
  if (!alternativesAllowed(tx)) return []; // conflict_resolution off: detected and reported, none offered
  const all = new Map(near);
  const ids = [...new Set(conflict.taskIds)];
  for (const t of tx.planTasks(ids.filter((id) => !all.has(id)))) all.set(t.id, t);
  for (const t of tx.dependencyNeighbours(ids)) if (!all.has(t.id)) all.set(t.id, t);
  // Semantic memory (both arms of alternative_ranking): preferred slots searched and ranked first,
  // durations from learned patterns; nothing when the flag is off or nothing was learned.
  const memory = alternativeMemory(tx, all);
  const options = memory ? { ...ALTERNATIVE_OPTIONS, ...memory.options } : ALTERNATIVE_OPTIONS;
  const window = alternativesSearchWindow(conflict, [...all.values()], settings, tx.now, options);
  if (window) {
    if (!tx.base.covers(window.from.getTime(), window.to.getTime())) {
      tx.need({ ranges: [{ start: window.from, end: window.to }] });
    }
    for (const t of tx.planTasksMeeting([{ start: window.from, end: window.to }]))
      if (!all.has(t.id)) all.set(t.id, t);
  }
  const proposals = proposeAlternatives(conflict, [...all.values()], settings, tx.now, options);
  // The alternative_ranking experiment orders them (the same at most 5, each with its score); then
  // memory puts the alternatives in a preferred window first, whichever arm ranked them.
  const ranked = rankForUser(tx, proposals, (id) => all.get(id)?.start ?? null);
  return (memory ? memory.apply(ranked) : ranked).map(toAlternativeView);
}

/**
 * Alternatives for several conflicts. A conflict whose search needs more of the plan does not stop
 * the others: their needs are merged into one NeedMore, so one more load settles them all.
 */
export function alternativesForAll(
  tx: WorldTx,
  conflicts: DetectedConflict[],
  near: Map<string, PlanTask>,
  settings: UserSettings,
): Map<string, AlternativeView[]> {
  if (conflicts.length === 0) return new Map();
  const op = activeOperation();
  return op
    ? op.phase('rank_alternatives', () => rankAll(tx, conflicts, near, settings))
    : rankAll(tx, conflicts, near, settings);
}

function rankAll(
  tx: WorldTx,
  conflicts: DetectedConflict[],
  near: Map<string, PlanTask>,
  settings: UserSettings,
): Map<string, AlternativeView[]> {
  const out = new Map<string, AlternativeView[]>();
  let need: LoadRequest | null = null;
  for (const d of conflicts) {
    try {
      out.set(d.key, alternativesFor(tx, d, near, settings));
    } catch (err) {
      if (!(err instanceof NeedMore)) throw err;
      need = need ? mergeRequests(need, err.request) : err.request;
    }
  }
  if (need) throw new NeedMore(need);
  return out;
}

/** Whether a stored alternative can still be applied, judged against the plan as it is now. */
export type AlternativeFit = 'FITS' | 'PARTIAL' | 'STALE';

/**
 * Re-checks a previously offered alternative against the current plan, with the rule the domain used
 * when it offered it: once applied, no conflict may involve the changed task, the MOVE may not start
 * before now, and the conflict's key must be gone — except that an OVER_CAPACITY alternative which only
 * lowers the day's total is PARTIAL.
 */
export function checkAlternative(
  tx: WorldTx,
  conflict: { kind: string; key: string; taskIds: string[] },
  alt: AlternativeView,
): AlternativeFit {
  if (!alt.taskId) return 'STALE';
  const settings = tx.settings();
  const capacityDay = conflict.kind === 'OVER_CAPACITY' ? conflict.key.slice('OVER_CAPACITY:'.length) : null;
  const move =
    alt.action === 'MOVE' && alt.start !== null && alt.end !== null
      ? { start: new Date(alt.start), end: new Date(alt.end) }
      : null;
  if (alt.action === 'MOVE' && (!move || move.start.getTime() < tx.now.getTime())) return 'STALE';
  const focus = [...new Set([...conflict.taskIds, alt.taskId])];
  const near = loadRelevantWorld(tx, focus, move ? [move] : [], capacityDay ? [capacityDay] : []);
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
 * them, plus the conflicts in `reconsider`), opening, refreshing and resolving stored conflicts.
 * Stages conflict rows and pushes conflict events to tx.events.
 */
export function syncConflicts(
  tx: WorldTx,
  touched: string[],
  reconsider: StoredConflict[] = [],
): SyncOutcome {
  const out: SyncOutcome = { opened: [], resolved: [], open: [], changes: [] };
  if (touched.length === 0 && reconsider.length === 0) return out;
  const settings = tx.settings();
  const storedById = new Map<string, StoredConflict>();
  for (const c of tx.activeConflictsTouching(touched)) storedById.set(c.id, c);
  for (const c of reconsider) storedById.set(c.id, c);
  const stored = [...storedById.values()];
  const focus = new Set(touched);
  const extraDays: string[] = [];
  for (const c of stored) {
    for (const id of c.task_ids) focus.add(id);
    if (c.kind === 'OVER_CAPACITY') extraDays.push(c.key.slice('OVER_CAPACITY:'.length));
  }
  const near = loadRelevantWorld(tx, [...focus], tx.oldRanges, extraDays);
  // Tasks named by stored conflicts may be gone: they are simply absent from `near`.
  const detected = detectConflicts([...near.values()], focus, settings, { extraDays });
  const detectedKeys = new Set(detected.map((d) => d.key));
  // Stored rows by key: the one OPEN row wins, else a dismissed one (at most one of each per key).
  const storedByKey = new Map<string, StoredConflict>();
  const remember = (c: StoredConflict) => {
    const had = storedByKey.get(c.key);
    if (!had || (had.status !== 'OPEN' && c.status === 'OPEN')) storedByKey.set(c.key, c);
  };
  for (const c of stored) remember(c);
  const unmatched = detected.map((d) => d.key).filter((k) => !storedByKey.has(k));
  // e.g. a day already over capacity (stored with other tasks) that a touched task now joins.
  if (unmatched.length > 0) for (const c of tx.activeConflictsByKeys(unmatched)) remember(c);

  for (const c of stored) {
    const keep = detectedKeys.has(c.key) && storedByKey.get(c.key)?.id === c.id;
    if (keep) continue;
    if (c.status === 'OPEN') {
      const row: StoredConflict = {
        ...c,
        status: 'RESOLVED',
        active: false,
        closed_at: tx.now,
        version: c.version + 1,
      };
      tx.putConflict(row);
      const view = mapConflict(row);
      out.resolved.push(view);
      out.changes.push({ entity: 'Conflict', id: c.id, field: 'status', before: 'OPEN', after: 'RESOLVED' });
      tx.events.push({ topic: 'conflict', type: 'RESOLVED', payload: { conflict: view } });
    } else if (c.active) {
      tx.putConflict({ ...c, active: false });
    }
  }

  // Every conflict's alternatives first: what they need beyond the load is asked for at once.
  const offered = alternativesForAll(
    tx,
    detected.filter((d) => storedByKey.get(d.key)?.status !== 'DISMISSED'),
    near,
    settings,
  );
  for (const d of detected) {
    const existing = storedByKey.get(d.key);
    if (existing?.status === 'DISMISSED') continue; // the user chose to live with it while it lasts
    const alternatives = offered.get(d.key)!;
    if (existing) {
      const row: StoredConflict = { ...existing, message: d.message, task_ids: d.taskIds, alternatives };
      tx.putConflict(row);
      out.open.push(mapConflict(row));
      continue;
    }
    const row: StoredConflict = {
      id: randomUUID(),
      user_id: tx.userId,
      kind: d.kind,
      key: d.key,
      status: 'OPEN',
      message: d.message,
      task_ids: d.taskIds,
      alternatives,
      chosen_alternative_id: null,
      detected_at: tx.now,
      closed_at: null,
      active: true,
      version: 1,
    };
    tx.putConflict(row);
    const view = mapConflict(row);
    out.opened.push(view);
    out.open.push(view);
    out.changes.push({ entity: 'Conflict', id: view.id, field: 'status', before: null, after: 'OPEN' });
    tx.events.push({ topic: 'conflict', type: 'DETECTED', payload: { conflict: view } });
  }
  return out;
}
