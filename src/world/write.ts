/**
 * The write step of the write path: everything one operation decided, written in ONE statement of
 * writable CTEs (multi-row writes through jsonb_to_recordset). Foreign keys are checked at the end of
 * the statement, so the order of the CTEs does not matter; the decide step guarantees that no two
 * parts touch the same row (a task is upserted or deleted, dependencies are written as a diff, a
 * conflict key never gets two OPEN rows).
 */
import type { LoadedWorld } from './loaded';
import type { GoalRow, TaskRow } from './rows';
import type { PendingEvent, StoredConflict, WorldTx } from './tx';

/** Ends the redo stack (ordinary operations): served by the partial index operations_user_redoable_idx. */
export const CLEAR_REDO_SQL = 'UPDATE operations SET redoable = false WHERE user_id = $1 AND redoable';

export interface OperationRecord {
  id: string;
  seq: number;
  actor: string;
  kind: string;
  input: unknown;
  forward: unknown;
  inverse: unknown;
  entities: string[];
  targetOperationId: string | null;
  /** Ordinary operations end the redo stack. */
  clearsRedo: boolean;
  /** The flag evaluations in force for the operation (operations.flags). Default []. */
  flags?: unknown[];
}

export interface WritePlan {
  operation: OperationRecord;
  events: PendingEvent[];
  eventSeqFrom: number;
  idempotency: { key: string; hash: string; result: unknown; expiredBefore: Date } | null;
  /**
   * More writes that ride in the same statement (flag exposures, memory items, spans later): each
   * returns one `name AS (...)` CTE, binding its values through `param` ($1 is the user id).
   */
  extra?: Array<(param: (value: unknown) => string) => string>;
}

const iso = (v: Date | string | null | undefined): string | null =>
  v === null || v === undefined ? null : new Date(v).toISOString();

function taskJson(r: TaskRow) {
  return {
    id: r.id,
    title: r.title,
    notes: r.notes,
    status: r.status,
    priority: r.priority,
    estimate_minutes: r.estimate_minutes,
    due_at: iso(r.due_at),
    scheduled_start: iso(r.scheduled_start),
    scheduled_end: iso(r.scheduled_end),
    tags: r.tags,
    goal_id: r.goal_id,
    version: r.version,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

function goalJson(r: GoalRow) {
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    priority: r.priority,
    target_date: iso(r.target_date),
    version: r.version,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

function conflictJson(c: StoredConflict, withAlternatives: boolean) {
  return {
    id: c.id,
    kind: c.kind,
    key: c.key,
    status: c.status,
    message: c.message,
    task_ids: c.task_ids,
    alternatives: withAlternatives && c.alternatives !== undefined ? c.alternatives : null,
    chosen_alternative_id: c.chosen_alternative_id,
    detected_at: iso(c.detected_at),
    closed_at: iso(c.closed_at),
    active: c.active,
    version: c.version,
  };
}

/** Builds the one write statement of an operation. */
export function buildWrite(
  tx: WorldTx,
  base: LoadedWorld,
  plan: WritePlan,
): { sql: string; params: unknown[] } {
  const params: unknown[] = [tx.userId];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const ctes: string[] = [];

  // Tasks: deletions, upserts, and dependency diffs.
  const deleted: string[] = [];
  const upserts: TaskRow[] = [];
  const depsOut: Array<{ task_id: string; depends_on_id: string }> = [];
  const depsIn: Array<{ task_id: string; depends_on_id: string }> = [];
  for (const [id, row] of tx.stagedTasks) {
    const before = base.fullTasks.get(id) ?? null;
    if (row === null) {
      if (before) deleted.push(id); // dependency rows go by ON DELETE CASCADE
      continue;
    }
    upserts.push(row);
    const was = new Set(before?.depends_on ?? []);
    const now = new Set(row.depends_on ?? []);
    for (const d of now) if (!was.has(d)) depsIn.push({ task_id: id, depends_on_id: d });
    for (const d of was) if (!now.has(d)) depsOut.push({ task_id: id, depends_on_id: d });
  }
  if (deleted.length)
    ctes.push(`t_del AS (DELETE FROM tasks WHERE user_id = $1 AND id = ANY(${p(deleted)}::uuid[]))`);
  if (upserts.length) {
    ctes.push(`t_up AS (INSERT INTO tasks (id, user_id, title, notes, status, priority, estimate_minutes, due_at,
        scheduled_start, scheduled_end, tags, goal_id, version, created_at, updated_at)
      SELECT r.id, $1, r.title, r.notes, r.status, r.priority, r.estimate_minutes, r.due_at, r.scheduled_start,
        r.scheduled_end, r.tags, r.goal_id, r.version, r.created_at, r.updated_at
      FROM jsonb_to_recordset(${p(JSON.stringify(upserts.map(taskJson)))}::jsonb) AS r(id uuid, title text, notes text,
        status task_status, priority task_priority, estimate_minutes int, due_at timestamptz, scheduled_start timestamptz,
        scheduled_end timestamptz, tags text[], goal_id uuid, version int, created_at timestamptz, updated_at timestamptz)
      ON CONFLICT (user_id, id) DO UPDATE SET title = EXCLUDED.title, notes = EXCLUDED.notes, status = EXCLUDED.status,
        priority = EXCLUDED.priority, estimate_minutes = EXCLUDED.estimate_minutes, due_at = EXCLUDED.due_at,
        scheduled_start = EXCLUDED.scheduled_start, scheduled_end = EXCLUDED.scheduled_end, tags = EXCLUDED.tags,
        goal_id = EXCLUDED.goal_id, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
      WHERE tasks.user_id = $1)`);
  }
  const uniq = (list: Array<{ task_id: string; depends_on_id: string }>) => {
    const seen = new Set<string>();
    return list.filter((x) => {
      const k = `${x.task_id}:${x.depends_on_id}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  };
  if (depsOut.length) {
    ctes.push(`d_del AS (DELETE FROM task_dependencies x USING jsonb_to_recordset(${p(JSON.stringify(uniq(depsOut)))}::jsonb)
        AS r(task_id uuid, depends_on_id uuid)
      WHERE x.user_id = $1 AND x.task_id = r.task_id AND x.depends_on_id = r.depends_on_id)`);
  }
  if (depsIn.length) {
    ctes.push(`d_ins AS (INSERT INTO task_dependencies (user_id, task_id, depends_on_id)
      SELECT $1, r.task_id, r.depends_on_id FROM jsonb_to_recordset(${p(JSON.stringify(uniq(depsIn)))}::jsonb)
        AS r(task_id uuid, depends_on_id uuid))`);
  }

  // Goals.
  const goalDeletes: string[] = [];
  const goalUpserts: GoalRow[] = [];
  for (const [id, row] of tx.stagedGoals) {
    if (row === null) {
      if (base.goals.get(id)) goalDeletes.push(id);
    } else goalUpserts.push(row);
  }
  if (goalDeletes.length)
    ctes.push(`g_del AS (DELETE FROM goals WHERE user_id = $1 AND id = ANY(${p(goalDeletes)}::uuid[]))`);
  if (goalUpserts.length) {
    ctes.push(`g_up AS (INSERT INTO goals (id, user_id, title, status, priority, target_date, version, created_at, updated_at)
      SELECT r.id, $1, r.title, r.status, r.priority, r.target_date, r.version, r.created_at, r.updated_at
      FROM jsonb_to_recordset(${p(JSON.stringify(goalUpserts.map(goalJson)))}::jsonb) AS r(id uuid, title text,
        status goal_status, priority task_priority, target_date timestamptz, version int, created_at timestamptz,
        updated_at timestamptz)
      ON CONFLICT (user_id, id) DO UPDATE SET title = EXCLUDED.title, status = EXCLUDED.status, priority = EXCLUDED.priority,
        target_date = EXCLUDED.target_date, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
      WHERE goals.user_id = $1)`);
  }

  // Conflicts: new rows inserted, known rows updated (alternatives kept when not recomputed).
  const inserts: StoredConflict[] = [];
  const updates: StoredConflict[] = [];
  for (const c of tx.stagedConflicts.values()) {
    if (base.conflicts.has(c.id)) updates.push(c);
    else inserts.push(c);
  }
  const conflictCols = `AS r(id uuid, kind conflict_kind, key text, status conflict_status, message text, task_ids uuid[],
        alternatives jsonb, chosen_alternative_id text, detected_at timestamptz, closed_at timestamptz, active boolean,
        version int)`;
  if (updates.length) {
    // Closing rows first (a key's OPEN row is never swapped within one statement, but keep the order safe).
    updates.sort((a, b) => Number(a.status === 'OPEN') - Number(b.status === 'OPEN'));
    ctes.push(`c_up AS (UPDATE conflicts c SET status = r.status, message = r.message, task_ids = r.task_ids,
        alternatives = COALESCE(r.alternatives, c.alternatives), chosen_alternative_id = r.chosen_alternative_id,
        closed_at = r.closed_at, active = r.active, version = r.version
      FROM jsonb_to_recordset(${p(JSON.stringify(updates.map((c) => conflictJson(c, true))))}::jsonb) ${conflictCols}
      WHERE c.user_id = $1 AND c.id = r.id)`);
  }
  if (inserts.length) {
    ctes.push(`c_ins AS (INSERT INTO conflicts (id, user_id, kind, key, status, message, task_ids, alternatives,
        chosen_alternative_id, detected_at, closed_at, active, version)
      SELECT r.id, $1, r.kind, r.key, r.status, r.message, r.task_ids, COALESCE(r.alternatives, '[]'::jsonb),
        r.chosen_alternative_id, r.detected_at, r.closed_at, r.active, r.version
      FROM jsonb_to_recordset(${p(JSON.stringify(inserts.map((c) => conflictJson(c, true))))}::jsonb) ${conflictCols})`);
  }

  // The operation log.
  const op = plan.operation;
  if (op.clearsRedo)
    ctes.push(`o_redo AS (UPDATE operations SET redoable = false WHERE user_id = $1 AND redoable)`);
  for (const [i, s] of tx.operationStates.entries()) {
    ctes.push(`o_state${i} AS (UPDATE operations SET state = ${p(s.state)}::operation_state, state_changed_at = ${p(tx.now)},
        redoable = ${p(s.redoable)}${s.state === 'UNDONE' ? `, undone_by_seq = ${p(op.seq)}` : ''}
      WHERE user_id = $1 AND id = ${p(s.id)})`);
  }
  ctes.push(`o_ins AS (INSERT INTO operations (id, user_id, seq, actor, kind, input, forward, inverse, entities,
      target_operation_id, created_at, flags)
    VALUES (${p(op.id)}, $1, ${p(op.seq)}, ${p(op.actor)}, ${p(op.kind)}, ${p(JSON.stringify(op.input))},
      ${p(JSON.stringify(op.forward))}, ${p(JSON.stringify(op.inverse))}, ${p(op.entities)}::text[], ${p(op.targetOperationId)}::uuid,
      ${p(tx.now)}, ${p(JSON.stringify(op.flags ?? []))}))`);

  // The outbox, numbered under the user lock.
  const events = plan.events.map((e, i) => ({
    seq: plan.eventSeqFrom + i,
    topic: e.topic,
    type: e.type,
    payload: e.payload,
  }));
  ctes.push(`e_ins AS (INSERT INTO events (user_id, seq, topic, type, payload, created_at)
    SELECT $1, r.seq, r.topic, r.type, r.payload, ${p(tx.now)}
    FROM jsonb_to_recordset(${p(JSON.stringify(events))}::jsonb) AS r(seq bigint, topic text, type text, payload jsonb))`);

  // The user's counters (and settings, when they changed).
  const lastEvent = plan.eventSeqFrom + events.length - 1;
  const settings = tx.settingsChanged
    ? `, time_zone = ${p(tx.user.time_zone)}, working_hours = ${p(JSON.stringify(tx.user.working_hours))}::jsonb,
       daily_capacity_minutes = ${p(tx.user.daily_capacity_minutes)}, display_name = ${p(tx.user.display_name)},
       allowed_agents = ${p(tx.user.allowed_agents ?? ['*'])}::text[], agents_may_undo_mine = ${p(tx.user.agents_may_undo_mine ?? false)},
       version = ${p(tx.user.version)}, updated_at = ${p(tx.now)}`
    : '';
  ctes.push(
    `u_up AS (UPDATE users SET op_seq = ${p(op.seq)}, event_seq = ${p(lastEvent)}${settings} WHERE id = $1)`,
  );

  if (plan.idempotency) {
    const k = plan.idempotency;
    const key = p(k.key);
    ctes.push(`i_ins AS (INSERT INTO idempotency_keys (user_id, key, request_hash, operation_id, result, created_at)
      VALUES ($1, ${key}, ${p(k.hash)}, ${p(op.id)}::uuid, ${p(JSON.stringify(k.result))}, ${p(tx.now)})
      ON CONFLICT (user_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, operation_id = EXCLUDED.operation_id,
        result = EXCLUDED.result, created_at = EXCLUDED.created_at)`);
    // Expired keys of this user are forgotten (the one reused above is overwritten instead).
    ctes.push(
      `i_gc AS (DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at <= ${p(k.expiredBefore)} AND key <> ${key})`,
    );
  }
  for (const more of plan.extra ?? []) ctes.push(more(p));
  return { sql: `WITH ${ctes.join(',\n')}\nSELECT 1 AS ok`, params };
}
