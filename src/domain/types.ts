/**
 * Pure domain types shared by the WorldUpdater, the conflict engine and the resolvers.
 * No I/O and no imports from outside src/domain.
 */

export const TASK_STATUSES = ['BACKLOG', 'TODO', 'SCHEDULED', 'IN_PROGRESS', 'DONE', 'CANCELLED'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

export const PRIORITIES = ['LOW', 'MEDIUM', 'HIGH', 'URGENT'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const GOAL_STATUSES = ['ACTIVE', 'PAUSED', 'ACHIEVED', 'ABANDONED'] as const;
export type GoalStatus = (typeof GOAL_STATUSES)[number];

export const CONFLICT_KINDS = [
  'OVERLAP',
  'OVER_CAPACITY',
  'PAST_DUE',
  'DEPENDENCY_ORDER',
  'OUTSIDE_WORKING_HOURS',
] as const;
export type ConflictKind = (typeof CONFLICT_KINDS)[number];

export const CONFLICT_STATUSES = ['OPEN', 'RESOLVED', 'DISMISSED'] as const;
export type ConflictStatus = (typeof CONFLICT_STATUSES)[number];

export const CONFLICT_POLICIES = ['ALLOW', 'REJECT', 'AUTO_RESOLVE'] as const;
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];

/** Weekdays in ISO order (Monday = index 0). */
export const WEEKDAYS = [
  'MONDAY',
  'TUESDAY',
  'WEDNESDAY',
  'THURSDAY',
  'FRIDAY',
  'SATURDAY',
  'SUNDAY',
] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** A local wall-clock interval, "HH:MM" 24-hour strings, start < end, same day ("24:00" allowed as end). */
export interface LocalInterval {
  start: string;
  end: string;
}

/** Working hours: for each weekday, zero or more non-overlapping local intervals, sorted. */
export type WorkingHours = Record<Weekday, LocalInterval[]>;

export interface UserSettings {
  /** IANA time zone, e.g. "Europe/Berlin". */
  timeZone: string;
  workingHours: WorkingHours;
  /** Maximum scheduled minutes per local day. */
  dailyCapacityMinutes: number;
}

export const DEFAULT_WORKING_HOURS: WorkingHours = {
  MONDAY: [{ start: '09:00', end: '17:00' }],
  TUESDAY: [{ start: '09:00', end: '17:00' }],
  WEDNESDAY: [{ start: '09:00', end: '17:00' }],
  THURSDAY: [{ start: '09:00', end: '17:00' }],
  FRIDAY: [{ start: '09:00', end: '17:00' }],
  SATURDAY: [],
  SUNDAY: [],
};

export const DEFAULT_SETTINGS: UserSettings = {
  timeZone: 'UTC',
  workingHours: DEFAULT_WORKING_HOURS,
  dailyCapacityMinutes: 480,
};

/** The view of a task that the conflict engine and the planner need. */
export interface PlanTask {
  id: string;
  title: string;
  status: TaskStatus;
  priority: Priority;
  estimateMinutes: number | null;
  dueAt: Date | null;
  /** Scheduled start and end: both set or both null. */
  start: Date | null;
  end: Date | null;
  /** Ids of tasks this task depends on (they must end before it starts). */
  dependsOn: string[];
}

/** A conflict as detected by the pure engine (before it is stored). */
export interface DetectedConflict {
  kind: ConflictKind;
  /**
   * Stable identity of the conflict, used to match a detection with a stored OPEN conflict:
   * OVERLAP:<idA>:<idB> (ids sorted), OVER_CAPACITY:<yyyy-mm-dd local>, PAST_DUE:<id>,
   * DEPENDENCY_ORDER:<taskId>:<dependsOnId>, OUTSIDE_WORKING_HOURS:<id>.
   */
  key: string;
  /** Tasks involved; the first one is the "subject" (the task most naturally moved). */
  taskIds: string[];
  message: string;
}

/** A concrete way out of a conflict. */
export interface AlternativeProposal {
  /** Deterministic id: same conflict + same proposal → same id. */
  id: string;
  /** MOVE: move taskId to [start, end). BACKLOG: unschedule taskId. */
  action: 'MOVE' | 'BACKLOG';
  taskId: string;
  start: Date | null;
  end: Date | null;
  /** Higher is better, 0..1. */
  score: number;
  /** Human readable, includes the reasons for the score. */
  description: string;
}
