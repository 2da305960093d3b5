/**
 * Plain, JSON-serialisable views the world layer returns. Resolvers map these to GraphQL;
 * nothing here knows about GraphQL or HTTP. Instants are Date objects, or ISO strings when a
 * stored result is replayed (idempotency): consumers accept both.
 */
import type {
  AlternativeProposal,
  ConflictKind,
  ConflictStatus,
  GoalStatus,
  Priority,
  TaskStatus,
  WorkingHours,
} from '../domain/types';

export type Instant = Date | string;

/** Who performs an operation. `actor` is `user:<id>`, `agent:<name>` or `system`. */
export interface Actor {
  userId: string;
  actor: string;
}

export interface UserView {
  id: string;
  email: string;
  displayName: string;
  timeZone: string;
  workingHours: WorkingHours;
  dailyCapacityMinutes: number;
  role: 'USER' | 'ADMIN';
  /** Agent names allowed to act for the user: exact names or prefixes ending in `*`. */
  allowedAgents: string[];
  /** Whether an agent may undo the user's own operations (otherwise only its own). */
  agentsMayUndoMine: boolean;
  createdAt: Instant;
  /** Cursor of the user's latest live event as read with this row (absent when not read). */
  eventCursor?: string;
}

export interface TaskView {
  id: string;
  title: string;
  notes: string | null;
  status: TaskStatus;
  priority: Priority;
  estimateMinutes: number | null;
  dueAt: Instant | null;
  scheduledStart: Instant | null;
  scheduledEnd: Instant | null;
  tags: string[];
  goalId: string | null;
  dependsOn: string[];
  version: number;
  createdAt: Instant;
  updatedAt: Instant;
}

export interface GoalView {
  id: string;
  title: string;
  status: GoalStatus;
  priority: Priority;
  targetDate: Instant | null;
  version: number;
  createdAt: Instant;
  updatedAt: Instant;
}

export interface OperationView {
  id: string;
  seq: number;
  kind: string;
  actor: string;
  state: 'APPLIED' | 'UNDONE';
  createdAt: Instant;
  targetOperationId: string | null;
}

export interface AlternativeView {
  id: string;
  action: AlternativeProposal['action'];
  description: string;
  taskId: string | null;
  start: Instant | null;
  end: Instant | null;
  score: number;
}

export interface ConflictView {
  id: string;
  kind: ConflictKind;
  status: ConflictStatus;
  message: string;
  taskIds: string[];
  alternatives: AlternativeView[];
  chosenAlternativeId: string | null;
  detectedAt: Instant;
  closedAt: Instant | null;
}

export interface UserErrorView {
  code: string;
  message: string;
  path: string[] | null;
}

export interface EntityChangeView {
  entity: string;
  id: string;
  field: string;
  before: unknown;
  after: unknown;
}

export interface UndoStateView {
  canUndo: boolean;
  canRedo: boolean;
  depth: number;
  nextUndo: OperationView | null;
}

export interface PlacementView {
  taskId: string;
  start: Instant;
  end: Instant;
}

export interface UnplacedView {
  taskId: string;
  code: string;
  reason: string;
}

export interface MemoryNoteView {
  memoryId: string | null;
  text: string;
  effect: string;
}

/** A memory item as the user sees it (never its embedding). */
export interface MemoryItemView {
  id: string;
  kind: 'PREFERENCE' | 'PATTERN' | 'FACT';
  text: string;
  confidence: number;
  /** Cosine similarity to the recall query (null without one). */
  score: number | null;
  createdAt: Instant;
  lastUsedAt: Instant | null;
  expiresAt: Instant | null;
}

export interface FlagEvaluationView {
  key: string;
  on: boolean;
  value: unknown;
  variant: string | null;
  source: string;
}

/** What every mutation returns. */
export interface UpdateResultView {
  ok: boolean;
  operation: OperationView | null;
  task: TaskView | null;
  goal: GoalView | null;
  /** Every task changed by the operation, as it is afterwards (deleted ones excluded). */
  tasks: TaskView[];
  changes: EntityChangeView[];
  conflicts: ConflictView[];
  errors: UserErrorView[];
  warnings: string[];
  undo: UndoStateView;
  memory: MemoryNoteView[];
  flags: FlagEvaluationView[];
  placements: PlacementView[];
  unplaced: UnplacedView[];
  /** True when this result is the stored answer to an earlier request with the same idempotency key. */
  replayed: boolean;
  /** True when this is a dry run's answer: nothing was written, whatever `ok` says. */
  preview: boolean;
}

/** One page of a keyset-paginated list. */
export interface Page<T> {
  items: Array<{ cursor: string; node: T }>;
  hasNextPage: boolean;
  endCursor: string | null;
}
