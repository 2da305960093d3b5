/**
 * Compact JSON a model can read: the world's views with nulls, bookkeeping and internal ids left
 * out, instants as ISO strings. Everything an agent needs to act next (ids, conflicts with their
 * alternatives, what was placed, the undo state) stays.
 */
import type { MemoryItemView } from '../world/query-service';
import type {
  ConflictView,
  Instant,
  OperationView,
  TaskView,
  UpdateResultView,
  UserErrorView,
} from '../world/views';

type Json = Record<string, unknown>;

const iso = (v: Instant | null | undefined): string | undefined =>
  v === null || v === undefined ? undefined : new Date(v).toISOString();

/** Drops undefined, null and empty-array fields. */
function compact(o: Json): Json {
  return Object.fromEntries(
    Object.entries(o).filter(
      ([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0),
    ),
  );
}

export function taskJson(t: TaskView): Json {
  return compact({
    id: t.id,
    title: t.title,
    status: t.status,
    priority: t.priority,
    estimateMinutes: t.estimateMinutes,
    dueAt: iso(t.dueAt),
    start: iso(t.scheduledStart),
    end: iso(t.scheduledEnd),
    tags: t.tags,
    goalId: t.goalId,
    dependsOn: t.dependsOn,
    notes: t.notes,
  });
}

export function conflictJson(c: ConflictView): Json {
  return compact({
    id: c.id,
    kind: c.kind,
    status: c.status,
    message: c.message,
    taskIds: c.taskIds,
    alternatives: c.alternatives.map((a) =>
      compact({
        id: a.id,
        action: a.action,
        description: a.description,
        taskId: a.taskId,
        start: iso(a.start),
        end: iso(a.end),
        score: Math.round(a.score * 100) / 100,
      }),
    ),
  });
}

export function operationJson(o: OperationView): Json {
  return compact({
    id: o.id,
    seq: o.seq,
    kind: o.kind,
    actor: o.actor,
    state: o.state,
    at: iso(o.createdAt),
  });
}

export function memoryJson(m: MemoryItemView): Json {
  return compact({
    id: m.id,
    kind: m.kind,
    text: m.text,
    confidence: m.confidence,
    lastUsedAt: iso(m.lastUsedAt),
  });
}

/** A failed call: nothing was changed. */
export function errorJson(errors: UserErrorView[]): { ok: false; errors: Json[] } {
  return { ok: false, errors: errors.map((e) => compact({ ...e })) };
}

/** What a writing tool answers: the UpdateResult, compact. */
export function updateResultJson(r: UpdateResultView): Json {
  if (!r.ok) {
    return compact({
      ok: false,
      preview: r.preview || undefined,
      errors: r.errors.map((e) => compact({ ...e })),
      conflicts: r.conflicts.map(conflictJson),
    });
  }
  const main = r.task?.id;
  return compact({
    ok: true,
    preview: r.preview,
    note: r.preview ? 'dry run: nothing was written' : undefined,
    replayed: r.replayed || undefined,
    operation: r.operation && !r.preview ? operationJson(r.operation) : undefined,
    task: r.task ? taskJson(r.task) : undefined,
    otherTasks: r.tasks.filter((t) => t.id !== main).map(taskJson),
    placements: r.placements.map((p) => ({ taskId: p.taskId, start: iso(p.start), end: iso(p.end) })),
    unplaced: r.unplaced.map((u) => ({ taskId: u.taskId, code: u.code, reason: u.reason })),
    conflicts: r.conflicts.map(conflictJson),
    warnings: r.warnings,
    undo: { canUndo: r.undo.canUndo, depth: r.undo.depth },
  });
}
