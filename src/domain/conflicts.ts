/**
 * The pure conflict engine: finds OVERLAP, OVER_CAPACITY, PAST_DUE, DEPENDENCY_ORDER and
 * OUTSIDE_WORKING_HOURS conflicts in a plan, optionally restricted to those involving a focus set.
 *
 * With a small focus the work is O(n) filtering plus O(m log m) on the few tasks that can interact with
 * the focus, so a plan of tens of thousands of tasks is checked in milliseconds.
 */
import { DayCalendar, overlapMs } from './time';
import type { DetectedConflict, PlanTask, UserSettings } from './types';

const MINUTE_MS = 60_000;

/** A scheduled task with its interval in epoch ms. */
export interface Sched {
  task: PlanTask;
  s: number;
  e: number;
}

/** Options of {@link detectConflicts}. */
export interface DetectOptions {
  /**
   * Local day keys whose capacity is checked in addition to the days touched by focus tasks, whatever
   * tasks contribute to them (useful to re-check a stored OVER_CAPACITY conflict after its tasks moved away).
   */
  extraDays?: Iterable<string>;
}

/** The scheduled tasks of a list as {@link Sched} items (first occurrence of an id wins). */
export function scheduledItems(tasks: readonly PlanTask[]): Sched[] {
  const seen = new Set<string>();
  const out: Sched[] = [];
  for (const t of tasks) {
    if (!isScheduled(t) || seen.has(t.id)) continue;
    seen.add(t.id);
    out.push({ task: t, s: t.start.getTime(), e: t.end.getTime() });
  }
  return out;
}

/** True when a task counts as scheduled for conflict purposes: open (not DONE/CANCELLED) with start and end. */
export function isScheduled(task: PlanTask): task is PlanTask & { start: Date; end: Date } {
  return task.status !== 'DONE' && task.status !== 'CANCELLED' && task.start !== null && task.end !== null;
}

/** ISO-8601 UTC rendering used in messages. */
function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Formats a minute count without spurious decimals. */
function fmtMinutes(min: number): string {
  return Number.isInteger(min) ? String(min) : min.toFixed(1);
}

/** Quoted task title for messages. */
function q(task: PlanTask): string {
  return JSON.stringify(task.title);
}

/** Index over scheduled intervals sorted by start, answering "which intervals meet [a, b)". */
export class IntervalIndex {
  readonly items: Sched[];
  private readonly prefixMaxEnd: number[];

  /** Builds the index (O(n log n)). */
  constructor(items: Sched[]) {
    this.items = [...items].sort((x, y) => x.s - y.s || x.e - y.e || (x.task.id < y.task.id ? -1 : 1));
    this.prefixMaxEnd = [];
    let max = -Infinity;
    for (const it of this.items) {
      max = Math.max(max, it.e);
      this.prefixMaxEnd.push(max);
    }
  }

  /** Items whose non-empty interval shares at least one instant with the non-empty [a, b). */
  meeting(a: number, b: number): Sched[] {
    const out: Sched[] = [];
    if (!(b > a)) return out;
    // First index with start >= b.
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid].s < b) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0; i--) {
      if (this.prefixMaxEnd[i] <= a) break;
      const it = this.items[i];
      if (it.e > it.s && it.e > a) out.push(it);
    }
    return out;
  }
}

/**
 * Restricts `tasks` to those that can take part in a conflict involving the focus: the focus tasks, every
 * scheduled task meeting a local day touched by a scheduled focus task (or one of `extraDays`), the
 * dependencies of focus tasks and the tasks depending on focus tasks. Detection with the same focus gives
 * the same result on this subset as on the whole list; it is also the rule for loading the "world" from
 * the database.
 */
export function relevantSubset(
  tasks: readonly PlanTask[],
  focusIds: ReadonlySet<string>,
  settings: UserSettings,
  extraDays: Iterable<string> = [],
): PlanTask[] {
  const cal = new DayCalendar(settings);
  const ranges: Array<[number, number]> = [];
  for (const day of extraDays) {
    const b = cal.dayBounds(day);
    ranges.push([b.start, b.end]);
  }
  const depIds = new Set<string>();
  for (const t of tasks) {
    if (!focusIds.has(t.id)) continue;
    for (const d of t.dependsOn) depIds.add(d);
    if (!isScheduled(t)) continue;
    for (const day of cal.daysTouched(t.start.getTime(), t.end.getTime())) {
      const b = cal.dayBounds(day);
      ranges.push([b.start, b.end]);
    }
  }
  ranges.sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  const meetsRanges = (s: number, e: number): boolean => {
    if (!(e > s) || merged.length === 0) return false;
    // Last merged range starting before e.
    let lo = 0;
    let hi = merged.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (merged[mid][0] < e) lo = mid + 1;
      else hi = mid;
    }
    return lo > 0 && merged[lo - 1][1] > s;
  };
  return tasks.filter(
    (t) =>
      focusIds.has(t.id) ||
      depIds.has(t.id) ||
      t.dependsOn.some((d) => focusIds.has(d)) ||
      (isScheduled(t) && meetsRanges(t.start.getTime(), t.end.getTime())),
  );
}

/**
 * Detects every conflict in `tasks` that involves at least one task of `focusIds` (null: all tasks).
 *
 * `tasks` is treated as the whole world; for a correct result with a focus it must contain at least
 * {@link relevantSubset} of the real plan. Only open tasks (not DONE/CANCELLED) with start and end count as
 * scheduled; an unscheduled dependency is never a conflict. The result is sorted by key, one entry per key.
 */
export function detectConflicts(
  tasks: PlanTask[],
  focusIds: ReadonlySet<string> | null,
  settings: UserSettings,
  opts: DetectOptions = {},
): DetectedConflict[] {
  const extraDays = [...(opts.extraDays ?? [])];
  const world = focusIds === null ? tasks : relevantSubset(tasks, focusIds, settings, extraDays);
  const inFocus = (id: string): boolean => focusIds === null || focusIds.has(id);
  const cal = new DayCalendar(settings);

  const sched = scheduledItems(world);
  const schedById = new Map(sched.map((it) => [it.task.id, it]));
  const focusSched = sched.filter((it) => inFocus(it.task.id));
  const index = new IntervalIndex(sched);
  const out = new Map<string, DetectedConflict>();

  // OVERLAP
  const addOverlap = (a: Sched, b: Sched): void => {
    const [x, y] = a.task.id < b.task.id ? [a, b] : [b, a];
    const key = `OVERLAP:${x.task.id}:${y.task.id}`;
    if (out.has(key)) return;
    const fx = inFocus(x.task.id);
    const fy = inFocus(y.task.id);
    const ordered = fy && !fx ? [y, x] : [x, y];
    const from = Math.max(a.s, b.s);
    const to = Math.min(a.e, b.e);
    out.set(key, {
      kind: 'OVERLAP',
      key,
      taskIds: ordered.map((it) => it.task.id),
      message: `${q(ordered[0].task)} overlaps ${q(ordered[1].task)} from ${iso(from)} to ${iso(to)}`,
    });
  };
  if (focusIds === null) {
    // Sweep over start-sorted items: output-sensitive.
    const items = index.items;
    for (let i = 0; i < items.length; i++) {
      const a = items[i];
      if (!(a.e > a.s)) continue;
      for (let j = i + 1; j < items.length && items[j].s < a.e; j++) {
        const b = items[j];
        if (b.e > b.s) addOverlap(a, b);
      }
    }
  } else {
    for (const f of focusSched) {
      for (const other of index.meeting(f.s, f.e)) {
        if (other.task.id !== f.task.id) addOverlap(f, other);
      }
    }
  }

  // OVER_CAPACITY
  const days = new Set<string>();
  for (const f of focusSched) for (const d of cal.daysTouched(f.s, f.e)) days.add(d);
  for (const d of extraDays) days.add(d);
  for (const day of days) {
    const b = cal.dayBounds(day);
    const contributors = index
      .meeting(b.start, b.end)
      .map((it) => ({ it, min: overlapMs(it.s, it.e, b.start, b.end) / MINUTE_MS }))
      .filter((c) => c.min > 0);
    const total = contributors.reduce((sum, c) => sum + c.min, 0);
    if (total <= settings.dailyCapacityMinutes) continue;
    contributors.sort(
      (x, y) =>
        Number(inFocus(y.it.task.id)) - Number(inFocus(x.it.task.id)) ||
        x.it.s - y.it.s ||
        (x.it.task.id < y.it.task.id ? -1 : 1),
    );
    const key = `OVER_CAPACITY:${day}`;
    out.set(key, {
      kind: 'OVER_CAPACITY',
      key,
      taskIds: contributors.map((c) => c.it.task.id),
      message:
        `Tasks scheduled on ${day} (${settings.timeZone}) total ${fmtMinutes(total)} min, over the daily ` +
        `capacity of ${settings.dailyCapacityMinutes} min: ${contributors.map((c) => q(c.it.task)).join(', ')}`,
    });
  }

  // PAST_DUE and OUTSIDE_WORKING_HOURS
  for (const f of focusSched) {
    const t = f.task;
    if (t.dueAt !== null && f.e > t.dueAt.getTime()) {
      const key = `PAST_DUE:${t.id}`;
      out.set(key, {
        kind: 'PAST_DUE',
        key,
        taskIds: [t.id],
        message: `${q(t)} is scheduled to end at ${iso(f.e)}, after its due time ${iso(t.dueAt.getTime())}`,
      });
    }
    const uncovered = uncoveredMs(f.s, f.e, cal);
    if (uncovered > 0) {
      const key = `OUTSIDE_WORKING_HOURS:${t.id}`;
      const whole = uncovered >= f.e - f.s;
      out.set(key, {
        kind: 'OUTSIDE_WORKING_HOURS',
        key,
        taskIds: [t.id],
        message:
          `${q(t)} from ${iso(f.s)} to ${iso(f.e)} lies ${whole ? 'entirely' : 'partly'} outside working ` +
          `hours (${fmtMinutes(uncovered / MINUTE_MS)} min outside, ${settings.timeZone})`,
      });
    }
  }

  // DEPENDENCY_ORDER
  for (const tItem of sched) {
    const t = tItem.task;
    for (const depId of t.dependsOn) {
      if (depId === t.id) continue;
      const dItem = schedById.get(depId);
      if (!dItem || !(inFocus(t.id) || inFocus(depId))) continue;
      if (tItem.s < dItem.e) {
        const key = `DEPENDENCY_ORDER:${t.id}:${depId}`;
        out.set(key, {
          kind: 'DEPENDENCY_ORDER',
          key,
          taskIds: [t.id, depId],
          message:
            `${q(t)} starts at ${iso(tItem.s)}, before its dependency ${q(dItem.task)} ends at ` +
            `${iso(dItem.e)}`,
        });
      }
    }
  }

  return [...out.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Milliseconds of [s, e) not covered by the working windows of the local days it touches.
 */
export function uncoveredMs(s: number, e: number, cal: DayCalendar): number {
  if (!(e > s)) return 0;
  let covered = 0;
  for (const day of cal.daysTouched(s, e)) {
    for (const [ws, we] of cal.workingWindows(day)) covered += overlapMs(s, e, ws, we);
  }
  return e - s - covered;
}
