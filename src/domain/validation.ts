/**
 * Field rules for tasks, goals and settings. Pure: returns problems, never throws.
 * A problem names the field (path) and says what was expected.
 */
import {
  PRIORITIES,
  TASK_STATUSES,
  GOAL_STATUSES,
  type Priority,
  type TaskStatus,
  type GoalStatus,
} from './types';

export interface Problem {
  path: string[];
  message: string;
}

export const LIMITS = {
  titleMax: 200,
  notesMax: 10_000,
  estimateMin: 1,
  estimateMax: 1440,
  maxSpanMs: 7 * 24 * 60 * 60 * 1000,
  tagsMax: 20,
  tagMax: 40,
  dependsOnMax: 50,
} as const;

/**
 * The instants a planner deals in: from 1900-01-01 up to (not including) 2200-01-01 UTC. Outside
 * it a value is refused, so that no derived instant (an end computed from an estimate, an
 * alternative days ahead) leaves the range Postgres and the time-zone arithmetic handle (Postgres
 * has no year 0; ISO years past 9999 need a sign).
 */
export const INSTANT_RANGE = { min: Date.UTC(1900, 0, 1), max: Date.UTC(2200, 0, 1) } as const;

/** Why `d` is not a usable instant (invalid, or outside INSTANT_RANGE), or null when it is. */
export function instantProblem(d: Date, name: string): string | null {
  const t = d.getTime();
  if (Number.isNaN(t)) return `${name} is not a valid instant`;
  if (t < INSTANT_RANGE.min || t >= INSTANT_RANGE.max)
    return `${name} must lie from 1900-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z`;
  return null;
}

/** Task fields as they arrive (undefined = not given, null = clear). */
export interface TaskFieldsInput {
  title?: string | null;
  notes?: string | null;
  priority?: Priority | null;
  status?: TaskStatus | null;
  estimateMinutes?: number | null;
  dueAt?: Date | null;
  scheduledStart?: Date | null;
  scheduledEnd?: Date | null;
  tags?: string[] | null;
  goalId?: string | null;
  dependsOn?: string[] | null;
}

/** Trims the title; checks each given field. `creating` requires a title. */
export function validateTaskFields(
  input: TaskFieldsInput,
  creating: boolean,
  base: string[] = ['input'],
): Problem[] {
  const p: Problem[] = [];
  const at = (f: string) => [...base, f];
  if (input.title !== undefined || creating) {
    const t = typeof input.title === 'string' ? input.title.trim() : '';
    if (t.length < 1 || t.length > LIMITS.titleMax) {
      p.push({
        path: at('title'),
        message: `title must be 1–${LIMITS.titleMax} characters after trimming, got ${t.length}`,
      });
    }
  }
  if (input.notes != null && input.notes.length > LIMITS.notesMax) {
    p.push({
      path: at('notes'),
      message: `notes must be at most ${LIMITS.notesMax} characters, got ${input.notes.length}`,
    });
  }
  if (input.priority != null && !PRIORITIES.includes(input.priority)) {
    p.push({ path: at('priority'), message: `priority must be one of ${PRIORITIES.join(', ')}` });
  }
  if (input.status != null && !TASK_STATUSES.includes(input.status)) {
    p.push({ path: at('status'), message: `status must be one of ${TASK_STATUSES.join(', ')}` });
  }
  if (input.estimateMinutes != null) {
    const e = input.estimateMinutes;
    if (!Number.isInteger(e) || e < LIMITS.estimateMin || e > LIMITS.estimateMax) {
      p.push({
        path: at('estimateMinutes'),
        message: `estimateMinutes must be an integer from 1 to 1440, got ${e}`,
      });
    }
  }
  for (const f of ['dueAt', 'scheduledStart', 'scheduledEnd'] as const) {
    const d = input[f];
    const problem = d != null ? instantProblem(d, f) : null;
    if (problem) p.push({ path: at(f), message: problem });
  }
  if (input.tags != null) {
    if (input.tags.length > LIMITS.tagsMax) {
      p.push({ path: at('tags'), message: `at most ${LIMITS.tagsMax} tags, got ${input.tags.length}` });
    }
    input.tags.forEach((tag, i) => {
      const t = tag.trim();
      if (t.length < 1 || t.length > LIMITS.tagMax) {
        p.push({
          path: [...at('tags'), String(i)],
          message: `a tag must be 1–${LIMITS.tagMax} characters, got ${t.length}`,
        });
      }
    });
  }
  if (input.dependsOn != null && input.dependsOn.length > LIMITS.dependsOnMax) {
    p.push({ path: at('dependsOn'), message: `at most ${LIMITS.dependsOnMax} dependencies` });
  }
  return p;
}

/** Checks a schedule pair as it will be after the change (both or neither, end after start, ≤ 7 days). */
export function validateSchedule(
  start: Date | null,
  end: Date | null,
  paths: { start: string[]; end: string[] },
): Problem[] {
  if (start === null && end === null) return [];
  if (start === null || end === null) {
    const missing = start === null ? paths.start : paths.end;
    return [
      { path: missing, message: 'scheduledStart and scheduledEnd must be given together (both or neither)' },
    ];
  }
  const outside = instantProblem(start, 'start') ?? instantProblem(end, 'end');
  if (outside) return [{ path: outside.startsWith('start') ? paths.start : paths.end, message: outside }];
  if (end.getTime() <= start.getTime()) {
    return [{ path: paths.end, message: 'scheduledEnd must be after scheduledStart' }];
  }
  if (end.getTime() - start.getTime() > LIMITS.maxSpanMs) {
    return [{ path: paths.end, message: 'a scheduled span may be at most 7 days' }];
  }
  return [];
}

/** Normalises tags: trimmed, de-duplicated, order kept. */
export function normaliseTags(tags: string[]): string[] {
  return [...new Set(tags.map((t) => t.trim()))];
}

/** Goal fields as they arrive. */
export interface GoalFieldsInput {
  title?: string | null;
  priority?: Priority | null;
  status?: GoalStatus | null;
  targetDate?: Date | null;
}

export function validateGoalFields(
  input: GoalFieldsInput,
  creating: boolean,
  base: string[] = ['input'],
): Problem[] {
  const p: Problem[] = [];
  if (input.title !== undefined || creating) {
    const t = typeof input.title === 'string' ? input.title.trim() : '';
    if (t.length < 1 || t.length > LIMITS.titleMax) {
      p.push({
        path: [...base, 'title'],
        message: `title must be 1–${LIMITS.titleMax} characters after trimming, got ${t.length}`,
      });
    }
  }
  if (input.status != null && !GOAL_STATUSES.includes(input.status)) {
    p.push({ path: [...base, 'status'], message: `status must be one of ${GOAL_STATUSES.join(', ')}` });
  }
  const targetProblem = input.targetDate != null ? instantProblem(input.targetDate, 'targetDate') : null;
  if (targetProblem) p.push({ path: [...base, 'targetDate'], message: targetProblem });
  return p;
}

/**
 * Would adding edges task → deps create a cycle? `edges` maps a task id to the ids it depends on
 * (the current graph, without task's own edges). Returns the cycle path or null.
 */
export function findDependencyCycle(
  taskId: string,
  deps: string[],
  edges: ReadonlyMap<string, readonly string[]>,
): string[] | null {
  // A cycle exists iff some dep reaches taskId.
  const prev = new Map<string, string>();
  const stack = [...deps];
  for (const d of deps) prev.set(d, taskId);
  const seen = new Set<string>();
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n === taskId) {
      const path = [taskId];
      let c = prev.get(taskId);
      while (c !== undefined && c !== taskId && path.length <= edges.size + 2) {
        path.push(c);
        c = prev.get(c);
      }
      return path.reverse();
    }
    if (seen.has(n)) continue;
    seen.add(n);
    for (const m of edges.get(n) ?? []) {
      if (!prev.has(m)) prev.set(m, n);
      stack.push(m);
    }
  }
  return null;
}
