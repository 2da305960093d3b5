/**
 * Reads of personal data: semantic memory's recall, and the export of everything held about a
 * user (`exportMyData`, `planner export`). Every statement carries `user_id = $1`.
 */
import { toFlagUser } from '../flags';
import type { Embedder } from '../memory/embedder';
import { DomainError } from './errors';
import type { FlagRuntime } from './flag-gates';
import { MAX_MEMORY_TEXT } from './ops/memory';
import {
  mapConflict,
  mapGoal,
  mapOperation,
  mapTask,
  TASK_COLUMNS,
  type ConflictRow,
  type GoalRow,
  type OperationRow,
  type TaskRow,
} from './rows';
import type { MemoryItemView, UserView } from './views';

type Query = <T>(sql: string, params: unknown[]) => Promise<T[]>;

function iso(v: Date | string): string {
  return typeof v === 'string' ? v : v.toISOString();
}

interface MemoryRow {
  id: string;
  kind: MemoryItemView['kind'];
  text: string;
  confidence: number;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  score: number | null;
}

function mapMemory(r: MemoryRow): MemoryItemView {
  return {
    id: r.id,
    kind: r.kind,
    text: r.text,
    confidence: Number(r.confidence),
    score: r.score === null ? null : Math.round(Number(r.score) * 10_000) / 10_000,
    createdAt: iso(r.created_at),
    lastUsedAt: r.last_used_at ? iso(r.last_used_at) : null,
    expiresAt: r.expires_at ? iso(r.expires_at) : null,
  };
}

/**
 * Recall: the user's memory items (stated facts, and learned items once confirmed), the most
 * similar to `query` first (cosine similarity of the embeddings, an exact search over the user's
 * items only: the per-user cap keeps it cheap), or the most confident first without a query.
 * Expired items are never returned. Listing works whatever the semantic_memory flag says: people
 * can always see what is held about them.
 */
export async function recallMemories(
  q: Query,
  now: Date,
  embedder: Embedder,
  userId: string,
  args: { query: string | null; limit: number },
): Promise<MemoryItemView[]> {
  const query = args.query?.trim() ?? '';
  if ([...query].length > MAX_MEMORY_TEXT)
    throw new DomainError('VALIDATION', `query must be at most ${MAX_MEMORY_TEXT} characters`, ['query']);
  const vector = query ? (await embedder.embed([query]))[0]! : null;
  const rows = await q<MemoryRow>(
    `SELECT id, kind, text, confidence, created_at, last_used_at, expires_at,
         ${vector ? `(SELECT sum(a * b) FROM unnest(embedding, $3::real[]) AS v(a, b))` : 'NULL::float8'} AS score
       FROM memory_items WHERE user_id = $1 AND active AND (expires_at IS NULL OR expires_at > $2)
       ORDER BY ${vector ? 'score DESC NULLS LAST,' : ''} confidence DESC, created_at DESC, id LIMIT ${args.limit}`,
    vector ? [userId, now, vector] : [userId, now],
  );
  return rows.map(mapMemory);
}

/** Everything held about the user, as one JSON document. */
export async function exportUserData(
  q: Query,
  deps: { me: UserView | null; now: Date; flags: FlagRuntime | null },
  userId: string,
): Promise<Record<string, unknown>> {
  const tasks = (
    await q<TaskRow>(`SELECT ${TASK_COLUMNS} FROM tasks t WHERE t.user_id = $1 ORDER BY t.created_at, t.id`, [
      userId,
    ])
  ).map(mapTask);
  const goals = (
    await q<GoalRow>('SELECT * FROM goals WHERE user_id = $1 ORDER BY created_at, id', [userId])
  ).map(mapGoal);
  const operations = await q<OperationRow>(
    'SELECT id, seq, actor, kind, input, state, created_at, target_operation_id FROM operations WHERE user_id = $1 ORDER BY seq',
    [userId],
  );
  const conflicts = (
    await q<ConflictRow>('SELECT * FROM conflicts WHERE user_id = $1 ORDER BY detected_at, id', [userId])
  ).map(mapConflict);
  const memories = await q<
    MemoryRow & {
      key: string | null;
      rule: unknown;
      evidence: string[];
      active: boolean;
      uses: number;
      updated_at: Date;
      embedding: number[];
    }
  >(
    `SELECT id, kind, key, text, rule, confidence, evidence, active, uses, created_at, updated_at, last_used_at,
         expires_at, embedding FROM memory_items WHERE user_id = $1 ORDER BY created_at, id`,
    [userId],
  );
  const exposures = await q<Record<string, unknown>>(
    `SELECT experiment, variant, variation_id, first_seen_at FROM experiment_exposures WHERE user_id = $1 ORDER BY experiment`,
    [userId],
  );
  const usage = await q<Record<string, unknown>>(
    `SELECT day::text AS day, metric, experiment, variant, count::int AS count FROM feature_usage
       WHERE user_id = $1 ORDER BY day, metric, experiment, variant`,
    [userId],
  );
  const authAudit = await q<Record<string, unknown>>(
    `SELECT at, actor, action, before, after FROM user_auth_audit WHERE user_id = $1 ORDER BY at, id`,
    [userId],
  );
  const flags =
    deps.me && deps.flags
      ? deps.flags.service
          .forUser(
            toFlagUser({
              id: deps.me.id,
              role: deps.me.role,
              createdAt: new Date(deps.me.createdAt),
              timeZone: deps.me.timeZone,
            }),
          )
          .evaluations()
      : [];
  return {
    exportedAt: deps.now.toISOString(),
    user: deps.me,
    settings: deps.me
      ? {
          timeZone: deps.me.timeZone,
          workingHours: deps.me.workingHours,
          dailyCapacityMinutes: deps.me.dailyCapacityMinutes,
          displayName: deps.me.displayName,
        }
      : null,
    tasks,
    goals,
    conflicts,
    operations: operations.map((o) => ({ ...mapOperation(o), input: o.input })),
    memories: memories.map((m) => ({
      ...mapMemory({ ...m, score: null }),
      key: m.key,
      rule: m.rule,
      active: m.active,
      uses: m.uses,
      evidence: m.evidence,
      updatedAt: iso(m.updated_at),
      embedding: m.embedding,
    })),
    flags,
    exposures,
    featureUsage: usage,
    authAudit,
  };
}
