/** Database row shapes (snake_case, as pg returns them) and their mapping to views. */
import type { GoalStatus, Priority, TaskStatus, WorkingHours } from '../domain/types';
import type { ConflictView, GoalView, OperationView, TaskView, UserView, AlternativeView } from './views';

export interface UserRow {
  id: string;
  email: string;
  display_name: string;
  time_zone: string;
  working_hours: WorkingHours;
  daily_capacity_minutes: number;
  role: 'USER' | 'ADMIN';
  /** Agent name patterns allowed to act (exact, or a prefix ending in `*`); `{*}` by default. */
  allowed_agents: string[];
  /** Whether an agent may undo the user's own operations. */
  agents_may_undo_mine: boolean;
  op_seq: string;
  event_seq: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface TaskRow {
  id: string;
  user_id: string;
  title: string;
  notes: string | null;
  status: TaskStatus;
  priority: Priority;
  estimate_minutes: number | null;
  due_at: Date | null;
  scheduled_start: Date | null;
  scheduled_end: Date | null;
  tags: string[];
  goal_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  /** Aggregated by the task queries (sorted). */
  depends_on?: string[] | null;
}

export interface GoalRow {
  id: string;
  user_id: string;
  title: string;
  status: GoalStatus;
  priority: Priority;
  target_date: Date | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

export interface OperationRow {
  id: string;
  user_id: string;
  seq: string;
  actor: string;
  kind: string;
  input: unknown;
  forward: unknown;
  inverse: unknown;
  entities: string[];
  target_operation_id: string | null;
  created_at: Date;
  state: 'APPLIED' | 'UNDONE';
  redoable: boolean;
}

export interface ConflictRow {
  id: string;
  user_id: string;
  kind: ConflictView['kind'];
  key: string;
  status: ConflictView['status'];
  message: string;
  task_ids: string[];
  alternatives: AlternativeView[];
  chosen_alternative_id: string | null;
  detected_at: Date;
  closed_at: Date | null;
  active: boolean;
}

/** SELECT list for tasks with their dependency ids aggregated (alias the tasks table as t). */
export const TASK_COLUMNS = `t.*, COALESCE((SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id)
  FROM task_dependencies d WHERE d.task_id = t.id), '{}') AS depends_on`;

export function mapUser(r: UserRow): UserView {
  return {
    id: r.id,
    email: r.email,
    displayName: r.display_name,
    timeZone: r.time_zone,
    workingHours: r.working_hours,
    dailyCapacityMinutes: r.daily_capacity_minutes,
    role: r.role,
    allowedAgents: r.allowed_agents ?? ['*'],
    agentsMayUndoMine: r.agents_may_undo_mine ?? false,
    createdAt: r.created_at,
  };
}

export function mapTask(r: TaskRow): TaskView {
  return {
    id: r.id,
    title: r.title,
    notes: r.notes,
    status: r.status,
    priority: r.priority,
    estimateMinutes: r.estimate_minutes,
    dueAt: r.due_at,
    scheduledStart: r.scheduled_start,
    scheduledEnd: r.scheduled_end,
    tags: r.tags ?? [],
    goalId: r.goal_id,
    dependsOn: [...(r.depends_on ?? [])].sort(),
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function mapGoal(r: GoalRow): GoalView {
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    priority: r.priority,
    targetDate: r.target_date,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function mapOperation(r: OperationRow): OperationView {
  return {
    id: r.id,
    seq: Number(r.seq),
    kind: r.kind,
    actor: r.actor,
    state: r.state,
    createdAt: r.created_at,
    targetOperationId: r.target_operation_id,
  };
}

export function mapConflict(r: ConflictRow): ConflictView {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status,
    message: r.message,
    taskIds: r.task_ids,
    alternatives: r.alternatives ?? [],
    chosenAlternativeId: r.chosen_alternative_id,
    detectedAt: r.detected_at,
    closedAt: r.closed_at,
  };
}
