/**
 * Greedy auto-scheduling: places tasks into the earliest free working-hours slots of a time window,
 * dependencies first, then by priority and due time. Every placement is verified with the conflict engine.
 */
import { DateTime } from 'luxon';
import { detectConflicts, IntervalIndex, isScheduled, scheduledItems } from './conflicts';
import { addDaysToKey, DayCalendar, freeGaps, overlapMs, parseHHMM } from './time';
import { PRIORITIES, WEEKDAYS, type PlanTask, type UserSettings } from './types';

const MINUTE_MS = 60_000;
/** Start times derived from `from`/`now` are rounded up to this grid. */
const GRID_MS = 5 * MINUTE_MS;
/** Duration used for a task without a (positive) estimate. */
export const DEFAULT_ESTIMATE_MINUTES = 30;

/** Why a task could not be placed. */
export type UnplacedCode =
  | 'NO_ESTIMATE_SLOT'
  | 'DEPENDENCY_UNPLACED'
  | 'DEPENDENCY_CYCLE'
  | 'NO_SLOT_BEFORE_DUE'
  | 'NO_SLOT_IN_WINDOW';

/** Semantic memory's say in auto-scheduling (all optional; pure functions of the task). */
export interface AutoScheduleOptions {
  /** The minutes to plan for a task (default {@link plannedDurationMinutes}); its estimate is never changed. */
  durationMinutes?: (task: PlanTask) => number;
  /**
   * The instants (epoch ms, [start, end) pairs) of a local day the user prefers for a task; null when
   * no preference applies to the task. A task with a preference goes to the earliest slot inside a
   * preferred window, and only when there is none to the earliest slot anywhere.
   */
  preferredWindows?: (task: PlanTask, dayKey: string) => Array<[number, number]> | null;
}

/** Result of {@link planAutoSchedule}. */
export interface AutoSchedulePlan {
  /** Placements, in the order they were made (dependencies before dependents); `preferred`: inside a preferred window. */
  placed: Array<{ taskId: string; start: Date; end: Date; preferred?: boolean }>;
  /** Tasks that got no slot, with a human-readable reason and a code. */
  unplaced: Array<{ taskId: string; reason: string; code: UnplacedCode }>;
}

/** The duration in minutes auto-scheduling uses for a task: its estimate, or 30 when missing or not positive. */
export function plannedDurationMinutes(task: PlanTask): number {
  return task.estimateMinutes !== null && task.estimateMinutes > 0
    ? task.estimateMinutes
    : DEFAULT_ESTIMATE_MINUTES;
}

/** Orders ready tasks: priority (URGENT first), earliest dueAt (none last), title, id. */
function compareReady(a: PlanTask, b: PlanTask): number {
  const pa = PRIORITIES.indexOf(a.priority);
  const pb = PRIORITIES.indexOf(b.priority);
  if (pa !== pb) return pb - pa;
  const da = a.dueAt ? a.dueAt.getTime() : Infinity;
  const db = b.dueAt ? b.dueAt.getTime() : Infinity;
  if (da !== db) return da - db;
  if (a.title !== b.title) return a.title < b.title ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Ids of tasks lying on a dependency cycle among `nodes` (Tarjan's strongly connected components). */
function cycleMembers(nodes: PlanTask[], placeIds: ReadonlySet<string>): Map<string, string[]> {
  const deps = (t: PlanTask): string[] =>
    [...new Set(t.dependsOn)].filter((d) => d !== t.id && placeIds.has(d));
  const byId = new Map(nodes.map((t) => [t.id, t]));
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const result = new Map<string, string[]>();
  let counter = 0;
  // Iterative Tarjan to stay safe on long chains.
  for (const root of nodes) {
    if (indexOf.has(root.id)) continue;
    const work: Array<{ id: string; next: number }> = [{ id: root.id, next: 0 }];
    indexOf.set(root.id, counter);
    low.set(root.id, counter++);
    stack.push(root.id);
    onStack.add(root.id);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const edges = deps(byId.get(frame.id)!);
      if (frame.next < edges.length) {
        const w = edges[frame.next++];
        if (!indexOf.has(w)) {
          indexOf.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ id: w, next: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.id, Math.min(low.get(frame.id)!, indexOf.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].id;
        low.set(parent, Math.min(low.get(parent)!, low.get(frame.id)!));
      }
      if (low.get(frame.id) === indexOf.get(frame.id)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          component.push(w);
        } while (w !== frame.id);
        if (component.length > 1) {
          component.sort();
          for (const id of component) result.set(id, component);
        }
      }
    }
  }
  return result;
}

/** The longest working interval of any weekday (touching intervals merged), in minutes, ignoring DST. */
function longestWorkingIntervalMinutes(settings: UserSettings): number {
  let longest = 0;
  for (const day of WEEKDAYS) {
    const spans: Array<[number, number]> = [];
    for (const interval of settings.workingHours[day] ?? []) {
      const s = parseHHMM(interval.start);
      const e = parseHHMM(interval.end);
      if (s !== null && e !== null && e > s) spans.push([s, e]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    let current: [number, number] | null = null;
    for (const span of spans) {
      if (current && span[0] <= current[1]) current[1] = Math.max(current[1], span[1]);
      else current = [span[0], span[1]];
      longest = Math.max(longest, current[1] - current[0]);
    }
  }
  return longest;
}

/** A task as it is once placed: scheduled at [start, end), status SCHEDULED unless IN_PROGRESS. */
function placedTask(task: PlanTask, start: number, end: number): PlanTask {
  const status = task.status === 'IN_PROGRESS' ? 'IN_PROGRESS' : 'SCHEDULED';
  return { ...task, status, start: new Date(start), end: new Date(end) };
}

/** "Tue 1 Dec 2026 09:00" in the user's zone. */
function fmt(ms: number, tz: string): string {
  return DateTime.fromMillis(ms, { zone: tz, locale: 'en-GB' }).toFormat('ccc d LLL yyyy HH:mm');
}

/**
 * Plans slots for `toPlace` inside `window` (never before `now`).
 *
 * `world` is every relevant task of the user at its current state (it may include the tasks to place).
 * Tasks being placed are treated as unscheduled, so their old slots are free for each other. Duration is
 * the estimate (30 min when missing). Order: dependencies first, then priority, earliest due, title, id.
 * Each task goes to the earliest slot that fits in one working window, keeps its local day within
 * capacity, starts after its dependencies (placed now or already scheduled) end, ends before its due time
 * and before any scheduled task that depends on it starts, and overlaps nothing. Each placement is
 * verified with {@link detectConflicts}.
 *
 * Guarantee: the placements are conflict-free among themselves and against the world in which every task
 * of `toPlace` that ends up unplaced keeps its current slot (if one of those old slots would collide, the
 * plan is redone with that slot fixed). Unscheduling those tasks instead is equally safe. The caller should
 * give placed tasks the status SCHEDULED (IN_PROGRESS ones may keep theirs).
 */
export function planAutoSchedule(
  toPlace: PlanTask[],
  world: PlanTask[],
  settings: UserSettings,
  window: { from: Date; to: Date },
  now: Date,
  opts: AutoScheduleOptions = {},
): AutoSchedulePlan {
  const placeList: PlanTask[] = [];
  const seen = new Set<string>();
  for (const t of toPlace) {
    if (seen.has(t.id)) continue;
    seen.add(t.id);
    placeList.push(t);
  }
  const fullWorld = [...world.filter((t) => !seen.has(t.id)), ...placeList];
  // Tasks that keep their old slot because they could not be placed, with the reason found for them.
  const fixed = new Map<string, AutoSchedulePlan['unplaced'][number]>();
  for (;;) {
    const plan = planOnce(
      placeList.filter((t) => !fixed.has(t.id)),
      fullWorld,
      settings,
      window,
      now,
      opts,
    );
    const unplaced = [...fixed.values(), ...plan.unplaced];
    const keepSlot = plan.unplaced.filter((u) => isScheduled(placeList.find((t) => t.id === u.taskId)!));
    if (keepSlot.length === 0 || plan.placed.length === 0) return { placed: plan.placed, unplaced };
    const placedAt = new Map(plan.placed.map((p) => [p.taskId, p]));
    const after = fullWorld.map((t) => {
      const p = placedAt.get(t.id);
      return p ? placedTask(t, p.start.getTime(), p.end.getTime()) : t;
    });
    if (detectConflicts(after, new Set(placedAt.keys()), settings).length === 0) {
      return { placed: plan.placed, unplaced };
    }
    for (const u of keepSlot) fixed.set(u.taskId, u);
  }
}

/** One greedy pass: `toPlace` (unique ids) are unscheduled in `world`, everything else stays. */
function planOnce(
  toPlace: PlanTask[],
  world: PlanTask[],
  settings: UserSettings,
  window: { from: Date; to: Date },
  now: Date,
  opts: AutoScheduleOptions = {},
): AutoSchedulePlan {
  const cal = new DayCalendar(settings);
  const tz = settings.timeZone;
  const placeList = toPlace; // unique ids: planAutoSchedule de-duplicates once
  const placeIds = new Set(placeList.map((t) => t.id));

  // The simulated plan: world with every task to place unscheduled.
  const state: PlanTask[] = [];
  const stateIndex = new Map<string, number>();
  const pushState = (t: PlanTask): void => {
    stateIndex.set(t.id, state.length);
    state.push(t);
  };
  for (const t of world) if (!stateIndex.has(t.id) && !placeIds.has(t.id)) pushState(t);
  for (const t of placeList) pushState({ ...t, start: null, end: null });

  const existing = new IntervalIndex(scheduledItems(state));
  const placedByDay = new Map<string, Array<[number, number]>>();
  const placedAt = new Map<string, { start: number; end: number }>();
  const plan: AutoSchedulePlan = { placed: [], unplaced: [] };

  const lo = Math.ceil(Math.max(window.from.getTime(), now.getTime()) / GRID_MS) * GRID_MS;
  const hi = window.to.getTime();
  const longest = Math.min(longestWorkingIntervalMinutes(settings), settings.dailyCapacityMinutes);

  // Dependents outside the set that are scheduled constrain the end of what they depend on.
  const dependentsStart = new Map<string, number>();
  for (const t of state) {
    if (placeIds.has(t.id) || !isScheduled(t)) continue;
    for (const d of t.dependsOn) {
      if (d === t.id || !placeIds.has(d)) continue;
      dependentsStart.set(d, Math.min(dependentsStart.get(d) ?? Infinity, t.start.getTime()));
    }
  }

  /** Busy intervals and used minutes of one local day in the current simulated plan. */
  const dayLoad = (day: string): { busy: Array<[number, number]>; used: number } => {
    const b = cal.dayBounds(day);
    const busy: Array<[number, number]> = existing.meeting(b.start, b.end).map((it) => [it.s, it.e]);
    busy.push(...(placedByDay.get(day) ?? []));
    const used = busy.reduce((sum, [s, e]) => sum + overlapMs(s, e, b.start, b.end), 0) / MINUTE_MS;
    return { busy, used };
  };

  const preferredPlaced = new Set<string>();
  /** Earliest verified slot for `task` in [lower, upper): inside a preferred window when there is one. */
  const findSlot = (task: PlanTask, durMs: number, lower: number, upper: number): number | null => {
    if (upper - lower < durMs) return null;
    const prefer = opts.preferredWindows;
    if (prefer && prefer(task, cal.dayKey(lower)) !== null) {
      const s = scanSlot(task, durMs, lower, upper, (day) => prefer(task, day) ?? []);
      if (s !== null) {
        preferredPlaced.add(task.id);
        return s;
      }
    }
    preferredPlaced.delete(task.id);
    return scanSlot(task, durMs, lower, upper, null);
  };
  /** Earliest verified slot in [lower, upper), its gaps cut to `within(day)` when given. */
  const scanSlot = (
    task: PlanTask,
    durMs: number,
    lower: number,
    upper: number,
    within: ((day: string) => Array<[number, number]>) | null,
  ): number | null => {
    const lastDay = cal.dayKey(upper - 1);
    for (let day = cal.dayKey(lower); day <= lastDay; day = addDaysToKey(day, 1)) {
      const windows = cal.workingWindows(day);
      if (windows.length === 0) continue;
      const { busy, used } = dayLoad(day);
      if (used + durMs / MINUTE_MS > settings.dailyCapacityMinutes) continue;
      const gaps = freeGaps(windows, busy, lower, upper);
      const cut = within
        ? gaps.flatMap(([gs, ge]) =>
            within(day)
              .map(([ws, we]) => [Math.max(gs, ws), Math.min(ge, we)] as [number, number])
              .filter(([a, b]) => b > a),
          )
        : gaps;
      for (const [gs0, ge] of cut) {
        // Cut gaps may start off the grid: round up to it.
        const gs = within ? Math.ceil(gs0 / GRID_MS) * GRID_MS : gs0;
        if (ge - gs < durMs) continue;
        const candidate = placedTask(task, gs, gs + durMs);
        const i = stateIndex.get(task.id)!;
        const previous = state[i];
        state[i] = candidate;
        const ok = detectConflicts(state, new Set([task.id]), settings).length === 0;
        state[i] = previous;
        if (ok) return gs;
      }
    }
    return null;
  };

  // Topological order with a priority-ordered ready list.
  const cycles = cycleMembers(placeList, placeIds);
  const unplacedIds = new Set<string>();
  const remainingDeps = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const t of placeList) {
    const deps = [...new Set(t.dependsOn)].filter((d) => d !== t.id && placeIds.has(d));
    remainingDeps.set(t.id, deps.length);
    for (const d of deps) dependents.set(d, [...(dependents.get(d) ?? []), t.id]);
  }
  const byId = new Map(placeList.map((t) => [t.id, t]));
  const ready: PlanTask[] = [];
  const release = (id: string): void => {
    for (const dep of dependents.get(id) ?? []) {
      const left = remainingDeps.get(dep)! - 1;
      remainingDeps.set(dep, left);
      if (left === 0 && !cycles.has(dep)) ready.push(byId.get(dep)!);
    }
  };
  for (const t of placeList) {
    if (cycles.has(t.id)) {
      const names = cycles.get(t.id)!.map((id) => JSON.stringify(byId.get(id)!.title));
      plan.unplaced.push({
        taskId: t.id,
        code: 'DEPENDENCY_CYCLE',
        reason: `${JSON.stringify(t.title)} is part of a dependency cycle among ${names.join(', ')}`,
      });
      unplacedIds.add(t.id);
    }
  }
  for (const t of placeList) if (!cycles.has(t.id) && remainingDeps.get(t.id) === 0) ready.push(t);
  for (const id of unplacedIds) release(id);

  while (ready.length > 0) {
    ready.sort(compareReady);
    const task = ready.shift()!;
    const title = JSON.stringify(task.title);
    const durMin = opts.durationMinutes ? opts.durationMinutes(task) : plannedDurationMinutes(task);
    const durMs = durMin * MINUTE_MS;
    const fail = (code: UnplacedCode, reason: string): void => {
      plan.unplaced.push({ taskId: task.id, code, reason });
      unplacedIds.add(task.id);
    };

    let lower = lo;
    const blocked: string[] = [];
    for (const d of new Set(task.dependsOn)) {
      if (d === task.id) continue;
      if (placeIds.has(d)) {
        const p = placedAt.get(d);
        if (p) lower = Math.max(lower, p.end);
        else blocked.push(JSON.stringify(byId.get(d)!.title));
      } else {
        const i = stateIndex.get(d);
        const dep = i === undefined ? undefined : state[i];
        if (dep && isScheduled(dep)) lower = Math.max(lower, dep.end.getTime());
      }
    }
    if (blocked.length > 0) {
      fail('DEPENDENCY_UNPLACED', `${title} depends on ${blocked.join(', ')}, which could not be placed`);
    } else {
      const due = task.dueAt ? task.dueAt.getTime() : Infinity;
      const depLimit = dependentsStart.get(task.id) ?? Infinity;
      const upperNoDue = Math.min(hi, depLimit);
      const upper = Math.min(upperNoDue, due);
      const start = findSlot(task, durMs, lower, upper);
      if (start !== null) {
        const end = start + durMs;
        placedAt.set(task.id, { start, end });
        plan.placed.push({
          taskId: task.id,
          start: new Date(start),
          end: new Date(end),
          ...(preferredPlaced.has(task.id) ? { preferred: true } : {}),
        });
        state[stateIndex.get(task.id)!] = placedTask(task, start, end);
        for (const day of cal.daysTouched(start, end)) {
          placedByDay.set(day, [...(placedByDay.get(day) ?? []), [start, end]]);
        }
      } else if (durMin > longest) {
        fail(
          'NO_ESTIMATE_SLOT',
          `${title} needs ${durMin} min, more than the longest working interval or the daily capacity ` +
            `(${longest} min)`,
        );
      } else if (
        due < upperNoDue &&
        (due - lower < durMs || findSlot(task, durMs, lower, upperNoDue) !== null)
      ) {
        fail(
          'NO_SLOT_BEFORE_DUE',
          `No free ${durMin} min slot for ${title} inside working hours before its due time ` +
            `${fmt(due, tz)} (${tz})`,
        );
      } else {
        const limit = depLimit < hi ? ` (a scheduled task depending on it starts ${fmt(depLimit, tz)})` : '';
        fail(
          'NO_SLOT_IN_WINDOW',
          `No free ${durMin} min slot for ${title} inside working hours and daily capacity between ` +
            `${fmt(lower, tz)} and ${fmt(Math.max(lower, upperNoDue), tz)} (${tz})${limit}`,
        );
      }
    }
    release(task.id);
  }
  return plan;
}
