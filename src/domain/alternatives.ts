/**
 * Concrete ways out of a detected conflict: move one of its tasks to a free slot, or unschedule it.
 * Every proposal is verified with the conflict engine before it is offered.
 */
import { createHash } from 'node:crypto';
import { detectConflicts, IntervalIndex, isScheduled, scheduledItems, type Sched } from './conflicts';
import {
  addDaysToKey,
  dayKeyDiff,
  DayCalendar,
  formatLocalInstant,
  formatLocalSlot,
  freeGaps,
  overlapMs,
} from './time';
import {
  PRIORITIES,
  type AlternativeProposal,
  type DetectedConflict,
  type PlanTask,
  type UserSettings,
} from './types';

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;
/** Start times chosen relative to `now` are rounded up to this grid. */
const NOW_GRID_MS = 5 * MINUTE_MS;
/** Upper bound on engine checks per call (each is O(plan size)); candidates beyond it are not offered. */
const MAX_VERIFICATIONS = 250;
/** At most this many proposals per task and local day are taken before other days/tasks get a turn. */
const PER_TASK_DAY = 2;

/** Options of {@link proposeAlternatives}. */
export interface AlternativeOptions {
  /** Maximum number of proposals (default 5). */
  max?: number;
  /** How many local days around the task's current day are searched (default 14). */
  horizonDays?: number;
  /**
   * Slots the user prefers for a task (semantic memory): MOVE proposals in them are verified and
   * ranked before every other proposal. Default none.
   */
  preferred?: (task: PlanTask, start: number, end: number) => boolean;
  /**
   * The duration (ms) to propose for a moved task whose current slot lasts `currentMs` (semantic
   * memory's duration patterns). Default: the current slot's. The task's estimate is never changed.
   */
  durationMs?: (task: PlanTask, currentMs: number) => number;
}

interface Candidate {
  action: 'MOVE' | 'BACKLOG';
  task: PlanTask;
  start: number | null;
  end: number | null;
  day: string | null;
  score: number;
  reasons: string[];
  /** In a slot the user prefers (semantic memory). */
  preferred: boolean;
}

/** Deterministic proposal id from the conflict key, the action, the task and the start. */
export function alternativeId(
  conflictKey: string,
  action: string,
  taskId: string,
  start: Date | null,
): string {
  const text = [conflictKey, action, taskId, start ? start.toISOString() : ''].join('|');
  return 'alt_' + createHash('sha1').update(text).digest('hex').slice(0, 16);
}

/** Renders a duration of minutes as "45 min", "2 h", "1 h 30 min". */
export function formatDuration(minutes: number): string {
  const m = Math.round(minutes);
  const h = Math.floor(m / 60);
  const rest = m % 60;
  if (h === 0) return `${rest} min`;
  return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
}

/** Returns `tasks` with the task `taskId` replaced by `patch` applied to it. */
function withPatched(tasks: PlanTask[], taskId: string, patch: Partial<PlanTask>): PlanTask[] {
  return tasks.map((t) => (t.id === taskId ? { ...t, ...patch } : t));
}

/**
 * Proposes ranked, verified alternatives that resolve `conflict`.
 *
 * For each task of the conflict (subject first) it looks for MOVE slots: inside one working window, not
 * before `now`, after the end of its scheduled dependencies, before the start of scheduled tasks depending
 * on it and before its due time, overlapping nothing and keeping its local day within capacity; the current
 * local day first, then the days around it up to `horizonDays`. It also offers BACKLOG (unschedule) for each
 * task, always scored at most 0.2. A proposal is kept only when, once applied, `detectConflicts` reports no
 * conflict involving the changed task and the conflict's key is gone, except for OVER_CAPACITY where a
 * proposal that only lowers the day's total is kept at a reduced score and says "still over capacity".
 *
 * Ranked by score (0..1) descending, then start ascending; at most `max` (default 5).
 */
export function proposeAlternatives(
  conflict: DetectedConflict,
  tasks: PlanTask[],
  settings: UserSettings,
  now: Date,
  opts: AlternativeOptions = {},
): AlternativeProposal[] {
  const max = opts.max ?? 5;
  const horizonDays = opts.horizonDays ?? 14;
  if (max <= 0) return [];
  const cal = new DayCalendar(settings);
  const byId = new Map<string, PlanTask>();
  for (const t of tasks) if (!byId.has(t.id)) byId.set(t.id, t);
  const sched = scheduledItems(tasks);
  const index = new IntervalIndex(sched);
  const nowMs = Math.ceil(now.getTime() / NOW_GRID_MS) * NOW_GRID_MS;
  const capacityDay = conflict.kind === 'OVER_CAPACITY' ? conflict.key.slice('OVER_CAPACITY:'.length) : null;

  const ids = [...new Set(conflict.taskIds)].filter((id) => byId.has(id));
  const candidates: Candidate[] = [];
  ids.forEach((id, rank) => {
    const task = byId.get(id)!;
    if (isScheduled(task)) {
      candidates.push(...moveCandidates(task, rank === 0, tasks, index, cal, nowMs, horizonDays, opts));
    }
    const priorityPenalty = PRIORITIES.indexOf(task.priority) * 0.02;
    candidates.push({
      action: 'BACKLOG',
      task,
      start: null,
      end: null,
      day: null,
      score: round4((rank === 0 ? 0.2 : 0.15) - Math.max(0, priorityPenalty)),
      reasons: [
        rank === 0 ? 'frees its slot' : 'frees the slot for the other task',
        'the task keeps no time and must be planned again later',
      ],
      preferred: false,
    });
  });

  candidates.sort(compareCandidates);

  // Verify in rank order; take at most PER_TASK_DAY per (task, day) in a first pass for variety.
  const accepted: Candidate[] = [];
  const skipped: Candidate[] = [];
  const perTaskDay = new Map<string, number>();
  const verified = new Map<Candidate, boolean>();
  const verify = (c: Candidate): boolean => {
    let ok = verified.get(c);
    if (ok === undefined) {
      if (verified.size >= MAX_VERIFICATIONS) return false;
      ok = verifyCandidate(c, conflict, tasks, settings, capacityDay, cal);
      verified.set(c, ok);
    }
    return ok;
  };
  for (const c of candidates) {
    if (accepted.length >= max) break;
    const slotKey = `${c.task.id}|${c.day ?? ''}`;
    const count = perTaskDay.get(slotKey) ?? 0;
    if (c.action === 'MOVE' && count >= PER_TASK_DAY) {
      skipped.push(c);
      continue;
    }
    if (!verify(c)) continue;
    perTaskDay.set(slotKey, count + 1);
    accepted.push(c);
  }
  for (const c of skipped) {
    if (accepted.length >= max) break;
    if (verify(c)) accepted.push(c);
  }
  accepted.sort(compareCandidates);
  if (accepted.some((c) => c.preferred)) {
    // Preferred slots lead: the scores offered are handed out again in that order (still descending).
    const scores = accepted.map((c) => c.score).sort((x, y) => y - x);
    accepted.forEach((c, i) => (c.score = scores[i]!));
  }

  return accepted.map((c) => {
    const start = c.start === null ? null : new Date(c.start);
    const end = c.end === null ? null : new Date(c.end);
    const head =
      c.action === 'MOVE'
        ? `Move ${JSON.stringify(c.task.title)} to ${formatLocalSlot(c.start!, c.end!, settings.timeZone)} ` +
          `(${settings.timeZone})`
        : `Unschedule ${JSON.stringify(c.task.title)} (move it to the backlog)`;
    return {
      id: alternativeId(conflict.key, c.action, c.task.id, start),
      action: c.action,
      taskId: c.task.id,
      start,
      end,
      score: c.score,
      description: `${head}: ${c.reasons.join(', ')}`,
    };
  });
}

/** Preferred slots first (semantic memory), then score desc, then start asc (BACKLOG last), then task id. */
function compareCandidates(a: Candidate, b: Candidate): number {
  if (a.preferred !== b.preferred) return a.preferred ? -1 : 1;
  if (a.score !== b.score) return b.score - a.score;
  const as = a.start ?? Infinity;
  const bs = b.start ?? Infinity;
  if (as !== bs) return as - bs;
  return a.task.id < b.task.id ? -1 : a.task.id > b.task.id ? 1 : 0;
}

/** Applies a candidate and checks it with the conflict engine; annotates partial capacity relief. */
function verifyCandidate(
  c: Candidate,
  conflict: DetectedConflict,
  tasks: PlanTask[],
  settings: UserSettings,
  capacityDay: string | null,
  cal: DayCalendar,
): boolean {
  const patch: Partial<PlanTask> =
    c.action === 'MOVE'
      ? { start: new Date(c.start!), end: new Date(c.end!) }
      : { start: null, end: null, status: 'BACKLOG' };
  const next = withPatched(tasks, c.task.id, patch);
  if (detectConflicts(next, new Set([c.task.id]), settings).length > 0) return false;
  const remaining = detectConflicts(next, new Set(conflict.taskIds), settings, {
    extraDays: capacityDay ? [capacityDay] : [],
  }).find((d) => d.key === conflict.key);
  if (!remaining) return true;
  if (capacityDay === null) return false;
  // OVER_CAPACITY only: keep proposals that lower the day's total, at a reduced score.
  const b = cal.dayBounds(capacityDay);
  const total = (list: PlanTask[]): number =>
    scheduledItems(list)
      .filter((it) => it.e > b.start && it.s < b.end)
      .reduce((sum, it) => sum + overlapMs(it.s, it.e, b.start, b.end), 0) / MINUTE_MS;
  const before = total(tasks);
  const after = total(next);
  if (!(after < before)) return false;
  // Halve the part above the BACKLOG band for moves, halve backlogs: moves stay above 0.2, backlogs at or below.
  c.score = round4(c.action === 'MOVE' ? 0.2 + (c.score - 0.2) * 0.5 : c.score * 0.5);
  c.reasons.push(
    `lowers ${capacityDay} to ${formatDuration(after)} of ${formatDuration(settings.dailyCapacityMinutes)} ` +
      '(still over capacity)',
  );
  return true;
}

/** The bounds and local days searched for moving one scheduled task, or null when it cannot move. */
function searchRange(
  task: PlanTask & { start: Date; end: Date },
  tasks: readonly PlanTask[],
  cal: DayCalendar,
  nowMs: number,
  horizonDays: number,
  durationMs?: AlternativeOptions['durationMs'],
): {
  s0: number;
  dur: number;
  lower: number;
  upper: number;
  origDay: string;
  firstDay: string;
  lastDay: string;
  hasDeps: boolean;
  hasDependents: boolean;
} | null {
  const s0 = task.start.getTime();
  const current = task.end.getTime() - s0;
  if (!(current > 0)) return null;
  const dur = durationMs ? durationMs(task, current) : current;
  if (!(dur > 0)) return null;
  // Dependency bounds (only scheduled, open tasks constrain, exactly like the conflict engine).
  let lower = nowMs;
  let hasDeps = false;
  const deps = new Set(task.dependsOn);
  deps.delete(task.id);
  let upper = task.dueAt ? task.dueAt.getTime() : Infinity;
  let hasDependents = false;
  for (const t of tasks) {
    if (t.id === task.id || !isScheduled(t)) continue;
    if (deps.has(t.id)) {
      lower = Math.max(lower, t.end.getTime());
      hasDeps = true;
    }
    if (t.dependsOn.includes(task.id)) {
      upper = Math.min(upper, t.start.getTime());
      hasDependents = true;
    }
  }
  if (upper - lower < dur) return null;

  const origDay = cal.dayKey(s0);
  const lowDay = cal.dayKey(lower);
  const highDay = upper === Infinity ? null : cal.dayKey(upper - 1);
  let firstDay = maxKey(lowDay, addDaysToKey(origDay, -horizonDays));
  let lastDay = addDaysToKey(maxKey(origDay, lowDay), horizonDays);
  if (highDay !== null) lastDay = minKey(lastDay, highDay);
  if (firstDay > lastDay && highDay !== null) {
    firstDay = lowDay;
    lastDay = minKey(highDay, addDaysToKey(lowDay, horizonDays));
  }
  if (firstDay > lastDay) return null;
  return { s0, dur, lower, upper, origDay, firstDay, lastDay, hasDeps, hasDependents };
}

/**
 * The time range in which {@link proposeAlternatives} may place moved tasks, from the start of the first
 * searched local day to the end of the last one (null when no task of the conflict can move). Load every
 * scheduled task meeting this range (plus the conflict's tasks and their dependencies and dependents) and
 * pass them all to proposeAlternatives with the same `now` and options: slots are then checked against
 * the complete relevant plan. `tasks` must already hold the conflict's tasks and their dependencies and
 * dependents, since they bound the search.
 */
export function alternativesSearchWindow(
  conflict: DetectedConflict,
  tasks: PlanTask[],
  settings: UserSettings,
  now: Date,
  opts: AlternativeOptions = {},
): { from: Date; to: Date } | null {
  const cal = new DayCalendar(settings);
  const nowMs = Math.ceil(now.getTime() / NOW_GRID_MS) * NOW_GRID_MS;
  let from = Infinity;
  let to = -Infinity;
  for (const id of new Set(conflict.taskIds)) {
    const task = tasks.find((t) => t.id === id);
    if (!task || !isScheduled(task)) continue;
    const range = searchRange(task, tasks, cal, nowMs, opts.horizonDays ?? 14, opts.durationMs);
    if (!range) continue;
    from = Math.min(from, cal.dayBounds(range.firstDay).start);
    to = Math.max(to, cal.dayBounds(range.lastDay).end);
  }
  return from < to ? { from: new Date(from), to: new Date(to) } : null;
}

/** MOVE candidates for one scheduled task. */
function moveCandidates(
  task: PlanTask & { start: Date; end: Date },
  isSubject: boolean,
  tasks: PlanTask[],
  index: IntervalIndex,
  cal: DayCalendar,
  nowMs: number,
  horizonDays: number,
  opts: AlternativeOptions = {},
): Candidate[] {
  const range = searchRange(task, tasks, cal, nowMs, horizonDays, opts.durationMs);
  if (!range) return [];
  const { s0, dur, lower, upper, origDay, firstDay, lastDay, hasDeps, hasDependents } = range;
  const settings = cal.settings;
  const tz = settings.timeZone;

  const out: Candidate[] = [];
  for (let day = firstDay; day <= lastDay; day = addDaysToKey(day, 1)) {
    const windows = cal.workingWindows(day);
    if (windows.length === 0) continue;
    const b = cal.dayBounds(day);
    const others: Sched[] = index.meeting(b.start, b.end).filter((it) => it.task.id !== task.id);
    const used = others.reduce((sum, it) => sum + overlapMs(it.s, it.e, b.start, b.end), 0);
    if ((used + dur) / MINUTE_MS > settings.dailyCapacityMinutes) continue;
    const gaps = freeGaps(
      windows,
      others.map((it) => [it.s, it.e] as const),
      lower,
      upper,
    );
    const starts = new Set<number>();
    for (const [gs, ge] of gaps) {
      if (ge - gs < dur) continue;
      starts.add(gs);
      starts.add(ge - dur);
      starts.add(Math.min(Math.max(s0, gs), ge - dur));
    }
    starts.delete(s0);
    for (const start of starts) {
      const dispMin = Math.abs(start - s0) / MINUTE_MS;
      const dayDist = Math.abs(dayKeyDiff(origDay, day));
      const proximity = 1 / (1 + dispMin / 120);
      const dayFactor = 1 / (1 + dayDist);
      const soon = 1 - Math.min(1, Math.max(0, start - nowMs) / ((horizonDays + 1) * DAY_MS));
      const role = isSubject ? 1 : 0.8;
      const score = 0.3 + 0.7 * role * (0.55 * proximity + 0.35 * dayFactor + 0.1 * soon);
      const direction = start > s0 ? 'later' : 'earlier';
      const reasons: string[] = [];
      if (!isSubject) reasons.push('moves the other task instead');
      if (dayDist === 0) reasons.push(`same day, ${formatDuration(dispMin)} ${direction}`);
      else {
        const days = dayKeyDiff(origDay, day);
        reasons.push(
          `${Math.abs(days)} day${Math.abs(days) === 1 ? '' : 's'} ${days > 0 ? 'later' : 'earlier'}`,
        );
      }
      const preferred = opts.preferred ? opts.preferred(task, start, start + dur) : false;
      if (preferred) reasons.push('in your preferred time');
      if (dur !== task.end.getTime() - s0)
        reasons.push(`planned for ${formatDuration(dur / MINUTE_MS)}, what such tasks usually take you`);
      reasons.push('inside working hours');
      if (task.dueAt) reasons.push(`before its due time ${formatLocalInstant(task.dueAt.getTime(), tz)}`);
      if (hasDeps) reasons.push('after its dependencies end');
      if (hasDependents) reasons.push('before the tasks that depend on it');
      reasons.push(
        `day total ${formatDuration((used + dur) / MINUTE_MS)} of ${formatDuration(settings.dailyCapacityMinutes)}`,
      );
      out.push({
        action: 'MOVE',
        task,
        start,
        end: start + dur,
        day,
        score: round4(score),
        reasons,
        preferred,
      });
    }
  }
  return out;
}

/** Rounds a score to 4 decimals (ranking uses the rounded value, so ties break by start). */
function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** The later of two day keys. */
function maxKey(a: string, b: string): string {
  return a > b ? a : b;
}

/** The earlier of two day keys. */
function minKey(a: string, b: string): string {
  return a < b ? a : b;
}
