/**
 * The load statement: one SELECT (with CTEs) per load, built from a LoadRequest. The first load of
 * an operation also locks the user's row. What it returns is folded into a LoadedWorld.
 */
import type { LoadRequest } from './loaded';
import { NOT_UNDOABLE_SQL } from './not-undoable';

const TASK_COLS = `t.id, t.title, t.notes, t.status, t.priority, t.estimate_minutes, t.due_at, t.scheduled_start,
  t.scheduled_end, t.tags, t.goal_id, t.version, t.created_at, t.updated_at,
  COALESCE((SELECT array_agg(x.depends_on_id ORDER BY x.depends_on_id) FROM task_dependencies x
    WHERE x.user_id = t.user_id AND x.task_id = t.id), '{}') AS depends_on`;
const PLAN_COLS = `t.id, t.title, t.status, t.priority, t.estimate_minutes,
  (extract(epoch FROM t.due_at) * 1000)::float8 AS due_ms,
  (extract(epoch FROM t.scheduled_start) * 1000)::float8 AS start_ms,
  (extract(epoch FROM t.scheduled_end) * 1000)::float8 AS end_ms, dep.depends_on_id`;
const PLAN_FROM = `tasks t LEFT JOIN task_dependencies dep ON dep.user_id = t.user_id AND dep.task_id = t.id`;
const CONFLICT_LITE = `id, kind, key, status, message, task_ids, chosen_alternative_id, detected_at, closed_at, active, version`;
const ACTIVE = `(status = 'OPEN' OR (status = 'DISMISSED' AND active))`;
const OP_LITE = `id, seq, kind, actor, state, created_at, target_operation_id`;
const OP_FULL = `id, user_id, seq, actor, kind, input, forward, inverse, entities, target_operation_id, created_at, state, redoable`;
const TZ = `(SELECT time_zone FROM users WHERE id = $1)`;
/** The most learned memory items one operation loads (the most confident). */
export const MEMORY_SHAPING_LIMIT = 50;

/**
 * Ids of the scheduled tasks meeting any of the ranges in the given array expression (tstzrange[]).
 * It matches the GiST index tasks_user_schedule_gist on (user_id, tstzrange(scheduled_start,
 * scheduled_end, '[)')) WHERE scheduled_start IS NOT NULL: the expression and the predicate are
 * repeated verbatim so the planner can use it (a bitmap index scan for the `&& ANY(array)` form).
 */
function rangesSql(ranges: string): string {
  return `SELECT t.id FROM tasks t WHERE t.user_id = $1 AND t.scheduled_start IS NOT NULL
      AND tstzrange(t.scheduled_start, t.scheduled_end, '[)') && ANY(${ranges})`;
}
/** The range lookup of the load statement, standalone ($1 user, $2 ranges): EXPLAINed by the tests. */
export const RANGES_SQL = rangesSql('$2::tstzrange[]');

const agg = (alias: string, sql: string, order = '') =>
  `(SELECT COALESCE(json_agg(${alias}${order}), '[]') FROM (${sql}) ${alias})`;

/**
 * Builds the one load statement for `req`. `first`: also lock the user's row and read the user, the
 * idempotency record and the undo window (the first load of an operation).
 *
 * What the operation names is widened in SQL, so that one statement brings everything: the tasks
 * of the named conflicts, the tasks, goals, conflicts and dependencies named by the undo/redo
 * target's snapshots join the focus; every scheduled position of the focus tasks, of the snapshots
 * and of the conflicts' alternatives gets a window (detection's days and the alternatives' search
 * horizon, see {@link windowAround}); the tasks meeting the windows come as plan rows, with the
 * active conflicts of all of them.
 */
export function buildLoad(
  userId: string,
  req: LoadRequest,
  first: { idempotencyKey: string | null; undoDepth: number } | null,
  now: Date,
  horizonDays: number,
): { sql: string; params: unknown[] } {
  const params: unknown[] = [userId];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  const ctes: string[] = [];
  const cols: string[] = [];
  if (first) {
    ctes.push(`lk AS (SELECT * FROM users WHERE id = $1 FOR UPDATE)`);
    cols.push(`(SELECT row_to_json(l) FROM lk l) AS user`);
    // The statement's snapshot predates the lock when it had to wait: compare to detect that.
    cols.push(`(SELECT event_seq FROM users WHERE id = $1) AS snap_event_seq`);
    cols.push(
      first.idempotencyKey === null
        ? `NULL::json AS idem`
        : `(SELECT row_to_json(i) FROM (SELECT request_hash, result, created_at FROM idempotency_keys
             WHERE user_id = $1 AND key = ${p(first.idempotencyKey)}) i) AS idem`,
    );
    // The undo window summarised (not its rows): its size, how many are applied, its oldest seq and
    // whether that one is applied, and its two newest applied operations (the undo state after any
    // one operation follows from these).
    ctes.push(`uw AS (SELECT ${OP_LITE} FROM operations WHERE user_id = $1 AND kind NOT IN ${NOT_UNDOABLE_SQL}
      ORDER BY seq DESC LIMIT ${p(first.undoDepth)})`);
    cols.push(`(SELECT json_build_object('n', count(*), 'applied', count(*) FILTER (WHERE state = 'APPLIED'),
        'min_seq', min(seq), 'oldest_applied', COALESCE(bool_or(state = 'APPLIED' AND seq = (SELECT min(seq) FROM uw)), false),
        'heads', (SELECT COALESCE(json_agg(h ORDER BY h.seq DESC), '[]') FROM
          (SELECT * FROM uw WHERE state = 'APPLIED' ORDER BY seq DESC LIMIT 2) h)) FROM uw) AS undo_summary`);
    cols.push(
      `${agg('o', `SELECT ${OP_LITE}, undone_by_seq FROM operations WHERE user_id = $1 AND redoable ORDER BY undone_by_seq DESC LIMIT 2`, ' ORDER BY o.undone_by_seq DESC')} AS redo_top`,
    );
    // Semantic memory: the user's active learned items (few, capped; usually none), for the decide
    // step to shape alternatives, placements and proposed durations. Served by memory_items_shaping_idx.
    cols.push(
      `${agg('m', `SELECT id, kind, text, rule, confidence, expires_at FROM memory_items WHERE user_id = $1 AND active AND kind <> 'FACT' ORDER BY confidence DESC, id LIMIT ${MEMORY_SHAPING_LIMIT}`)} AS memory`,
    );
  } else {
    cols.push(`(SELECT row_to_json(u) FROM users u WHERE id = $1) AS user`);
  }
  const uuids = (list: string[] | undefined) => (list ?? []).filter(isUuidLike);

  // The undo/redo target and its snapshots.
  const hasTarget = Boolean(req.latestUndoable || req.redoTarget || req.operationIds?.length);
  if (hasTarget) {
    const which: string[] = [];
    if (req.operationIds?.length)
      which.push(
        `SELECT id FROM operations WHERE user_id = $1 AND id = ANY(${p(uuids(req.operationIds))}::uuid[])`,
      );
    if (req.latestUndoable) {
      const by =
        req.latestUndoableBy === undefined
          ? ''
          : ` AND (w.actor = ${p(req.latestUndoableBy)} OR (w.actor = 'user:' || $1
              AND (SELECT agents_may_undo_mine FROM users WHERE id = $1)))`;
      which.push(`(SELECT w.id FROM (SELECT id, seq, state, actor FROM operations WHERE user_id = $1 AND kind NOT IN ${NOT_UNDOABLE_SQL}
        ORDER BY seq DESC LIMIT ${p(first?.undoDepth ?? 100)}) w WHERE w.state = 'APPLIED'${by} ORDER BY w.seq DESC LIMIT 1)`);
    }
    if (req.redoTarget)
      which.push(
        `(SELECT id FROM operations WHERE user_id = $1 AND redoable ORDER BY undone_by_seq DESC LIMIT 1)`,
      );
    ctes.push(
      `tgt AS (SELECT ${OP_FULL} FROM operations WHERE user_id = $1 AND id IN (${which.join(' UNION ')}))`,
    );
    ctes.push(`snaps AS (SELECT s FROM tgt, jsonb_array_elements(tgt.forward || tgt.inverse) s)`);
    ctes.push(
      `srows AS (SELECT s->>'entity' AS entity, s->>'id' AS id, s->'row' AS r FROM snaps WHERE jsonb_typeof(s->'row') = 'object')`,
    );
    cols.push(`${agg('o', 'SELECT * FROM tgt')} AS operations`);
  }
  const conflictIdSources: string[] = [];
  if (req.conflictIds?.length)
    conflictIdSources.push(`SELECT unnest(${p(uuids(req.conflictIds))}::uuid[]) AS id`);
  if (hasTarget)
    conflictIdSources.push(`SELECT (s->>'id')::uuid AS id FROM snaps WHERE s->>'entity' = 'Conflict'`);
  if (conflictIdSources.length) {
    ctes.push(
      `cf AS (SELECT ${CONFLICT_LITE}, alternatives FROM conflicts WHERE user_id = $1 AND id IN (${conflictIdSources.join(' UNION ')}))`,
    );
  }

  if (req.backlog !== undefined) {
    ctes.push(`bl AS (SELECT id, created_at FROM tasks WHERE user_id = $1 AND status IN ('BACKLOG','TODO')
      AND scheduled_start IS NULL ORDER BY created_at, id LIMIT ${p(req.backlog)})`);
    cols.push(`(SELECT COALESCE(array_agg(id ORDER BY created_at, id), '{}') FROM bl) AS backlog`);
  }
  // The focus: full rows, their dependents, their active conflicts, windows around their positions.
  const focus: string[] = [];
  if (req.backlog !== undefined) focus.push('SELECT id FROM bl');
  if (req.taskIds?.length) focus.push(`SELECT unnest(${p(uuids(req.taskIds))}::uuid[]) AS id`);
  if (conflictIdSources.length) focus.push(`SELECT unnest(task_ids) AS id FROM cf`);
  if (hasTarget) {
    focus.push(`SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Task') x`);
    focus.push(
      `SELECT jsonb_array_elements_text(r->'dependsOn')::uuid AS id FROM srows WHERE entity = 'Task'`,
    );
  }
  const hasFocus = focus.length > 0;
  if (hasFocus) {
    ctes.push(`focus AS (${focus.join(' UNION ')})`);
    ctes.push(
      `ft AS (SELECT ${TASK_COLS} FROM tasks t WHERE t.user_id = $1 AND t.id IN (SELECT id FROM focus))`,
    );
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM focus) AS focus_ids`);
    cols.push(`${agg('t', 'SELECT * FROM ft')} AS tasks`);
  }
  // Positions whose windows to load. In the first load the focus tasks' stored positions get
  // detection's days only: most changes raise no conflict, and when one does its alternatives load
  // their search window on demand. Loads on demand ask generously (the alternatives' search
  // horizon too, so one more load settles it), as do restored positions and offered alternatives.
  const nearPositions: string[] = [];
  const farPositions: string[] = [];
  if (hasFocus && req.windowsOfFocus !== false) {
    nearPositions.push(
      `SELECT scheduled_start AS s, scheduled_end AS e FROM ft WHERE scheduled_start IS NOT NULL`,
    );
  }
  if (hasTarget) {
    farPositions.push(`SELECT (r->>'scheduledStart')::timestamptz AS s, (r->>'scheduledEnd')::timestamptz AS e FROM srows
      WHERE entity = 'Task' AND r->>'scheduledStart' IS NOT NULL`);
  }
  if (conflictIdSources.length) {
    farPositions.push(`SELECT (a->>'start')::timestamptz AS s, (a->>'end')::timestamptz AS e FROM cf, jsonb_array_elements(cf.alternatives) a
      WHERE a->>'start' IS NOT NULL AND a->>'end' IS NOT NULL`);
  }
  const explicit = (req.ranges ?? []).map((r) => `[${r.start.toISOString()},${r.end.toISOString()})`);
  const windowParts: string[] = [];
  const n = nearPositions.length || farPositions.length ? p(now) : '';
  const around = (positions: string[], days: number): string => {
    const h = p(days);
    return `SELECT tstzrange(
        least(s - interval '3 days', greatest(${n}::timestamptz, s - make_interval(days => ${h}::int + 1)) - interval '2 days'),
        greatest(e + interval '3 days', greatest(s, ${n}::timestamptz) + make_interval(days => ${h}::int + 2)), '[)') AS r
      FROM (${positions.join(' UNION ALL ')}) pos`;
  };
  if (nearPositions.length) windowParts.push(around(nearPositions, first ? 0 : horizonDays));
  if (farPositions.length) windowParts.push(around(farPositions, horizonDays));
  if (explicit.length) windowParts.push(`SELECT unnest(${p(explicit)}::tstzrange[]) AS r`);
  const hasWindows = windowParts.length > 0;
  if (hasWindows) {
    ctes.push(`wr AS (${windowParts.join(' UNION ALL ')})`);
    ctes.push(`rt AS (${rangesSql('ARRAY(SELECT r FROM wr)')})`);
    cols.push(`(SELECT COALESCE(json_agg(json_build_array((extract(epoch FROM lower(r)) * 1000)::float8,
      (extract(epoch FROM upper(r)) * 1000)::float8)), '[]') FROM wr) AS windows`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM rt) AS range_task_ids`);
  }

  // Dependencies and dependents of the focus and of the window tasks (as plan rows).
  const nbOf: string[] = [];
  if (hasFocus) nbOf.push('SELECT id FROM focus');
  if (hasWindows) nbOf.push('SELECT id FROM rt');
  if (nbOf.length) {
    ctes.push(`nbf AS (${nbOf.join(' UNION ')})`);
    ctes.push(`nb AS (SELECT depends_on_id AS id FROM task_dependencies WHERE user_id = $1 AND task_id IN (SELECT id FROM nbf)
      UNION SELECT task_id FROM task_dependencies WHERE user_id = $1 AND depends_on_id IN (SELECT id FROM nbf))`);
  }
  // Active conflicts: of the focus, then one step further (the tasks of those conflicts join a
  // sync's focus); by key; the capacity conflicts of the windows' days; or all of them. Not those of
  // every window task: every key a sync looks up names a focus task or a capacity day.
  const coverIds: string[] = [];
  if (hasFocus) coverIds.push('SELECT id FROM focus');
  const preds: string[] = [];
  if (coverIds.length) {
    ctes.push(`c1 AS (SELECT id, task_ids FROM conflicts WHERE user_id = $1 AND ${ACTIVE}
      AND task_ids && ARRAY(${coverIds.join(' UNION ')}))`);
    ctes.push(`c1t AS (SELECT DISTINCT unnest(task_ids) AS id FROM c1)`);
    preds.push(`id IN (SELECT id FROM c1)`, `task_ids && ARRAY(SELECT id FROM c1t)`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM c1t) AS cover_task_ids`);
  }
  if (hasWindows) {
    preds.push(`(kind = 'OVER_CAPACITY' AND EXISTS (SELECT 1 FROM wr WHERE key BETWEEN
      'OVER_CAPACITY:' || to_char((lower(wr.r) - interval '1 day') AT TIME ZONE ${TZ}, 'YYYY-MM-DD') AND
      'OVER_CAPACITY:' || to_char((upper(wr.r) + interval '1 day') AT TIME ZONE ${TZ}, 'YYYY-MM-DD')))`);
  }
  if (req.conflictKeys?.length) preds.push(`key = ANY(${p(req.conflictKeys)}::text[])`);
  if (req.allActiveConflicts) preds.push('true');
  const conflictParts: string[] = [];
  if (preds.length) {
    conflictParts.push(
      // Alternatives only for the conflicts of the focus (what a sync may resolve and announce): the
      // window's other conflicts are read for their keys and tasks alone.
      `SELECT ${CONFLICT_LITE}, ${hasFocus ? 'CASE WHEN task_ids && ARRAY(SELECT id FROM focus) THEN alternatives END' : 'NULL::jsonb'} AS alternatives
        FROM conflicts WHERE user_id = $1 AND ${ACTIVE} AND (${preds.join(' OR ')})`,
    );
  }
  if (conflictIdSources.length) conflictParts.push(`SELECT * FROM cf`);
  if (conflictParts.length) {
    cols.push(`${agg('c', conflictParts.map((x) => `(${x})`).join(' UNION ALL '))} AS conflicts`);
  }
  // Plan rows: the window tasks, the neighbours, and the tasks of the loaded conflicts.
  const planIds: string[] = [];
  if (nbOf.length) planIds.push('SELECT id FROM nb');
  if (hasWindows) planIds.push('SELECT id FROM rt');
  if (coverIds.length) planIds.push('SELECT id FROM c1t');
  if (planIds.length) {
    cols.push(
      // As arrays, not objects: a busy window holds hundreds of rows, and the keys doubled their size.
      `(SELECT COALESCE(json_agg(json_build_array(t.id, t.title, t.status, t.priority, t.estimate_minutes, t.due_ms,
         t.start_ms, t.end_ms, t.depends_on_id)), '[]') FROM (SELECT ${PLAN_COLS} FROM ${PLAN_FROM}
         WHERE t.user_id = $1 AND t.id IN (${planIds.join(' UNION ')})) t) AS plan`,
    );
  }
  const goalSources: string[] = [];
  if (req.goalIds?.length) goalSources.push(`SELECT unnest(${p(uuids(req.goalIds))}::uuid[]) AS id`);
  if (hasTarget) {
    goalSources.push(
      `SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Goal') x`,
    );
    goalSources.push(
      `SELECT (r->>'goalId')::uuid AS id FROM srows WHERE entity = 'Task' AND r->>'goalId' IS NOT NULL`,
    );
  }
  if (goalSources.length) {
    ctes.push(`gids AS (${goalSources.join(' UNION ')})`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM gids) AS goal_ids`);
    cols.push(
      `${agg('g', `SELECT id, title, status, priority, target_date, version, created_at, updated_at FROM goals WHERE user_id = $1 AND id IN (SELECT id FROM gids)`)} AS goals`,
    );
  }
  const refSources: string[] = [];
  if (req.goalRefs?.length) refSources.push(`SELECT unnest(${p(uuids(req.goalRefs))}::uuid[]) AS id`);
  if (hasTarget)
    refSources.push(
      `SELECT id::uuid AS id FROM (SELECT s->>'id' AS id FROM snaps WHERE s->>'entity' = 'Goal') x`,
    );
  if (refSources.length) {
    ctes.push(`grefs AS (${refSources.join(' UNION ')})`);
    cols.push(`(SELECT COALESCE(array_agg(id), '{}') FROM grefs) AS goal_ref_ids`);
    cols.push(
      `${agg('r', `SELECT id, goal_id FROM tasks WHERE user_id = $1 AND goal_id IN (SELECT id FROM grefs)`)} AS goal_refs`,
    );
  }
  if (req.reachFrom?.length) {
    cols.push(`(WITH RECURSIVE reach(id) AS (
        SELECT unnest(${p(uuids(req.reachFrom))}::uuid[])
        UNION
        SELECT x.depends_on_id FROM task_dependencies x JOIN reach r ON x.task_id = r.id WHERE x.user_id = $1
      ) SELECT COALESCE(array_agg(id), '{}') FROM reach) AS reach`);
  }
  if (req.blockers) {
    cols.push(
      `${agg(
        'b',
        `SELECT id, seq, kind, entities FROM operations WHERE user_id = $1 AND seq > ${p(req.blockers.afterSeq)}
        AND entities && ${p(req.blockers.entities)}::text[] AND state = 'APPLIED'`,
      )} AS blockers`,
    );
  }
  if (req.laterOrdinaryOf && isUuidLike(req.laterOrdinaryOf)) {
    cols.push(
      `${agg(
        'l',
        `SELECT b.id, b.seq, b.kind, b.entities FROM operations t JOIN operations b
        ON b.user_id = t.user_id AND b.seq > t.seq AND b.entities && t.entities
        WHERE t.user_id = $1 AND t.id = ${p(req.laterOrdinaryOf)}::uuid
        AND b.state = 'APPLIED' AND b.kind NOT IN ${NOT_UNDOABLE_SQL}`,
      )} AS later_ordinary`,
    );
  }
  const sql = `${ctes.length ? `WITH ${ctes.join(',\n')}\n` : ''}SELECT ${cols.join(',\n')}`;
  return { sql, params };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function isUuidLike(v: string): boolean {
  return UUID.test(v);
}
