/**
 * The memory learner: a consumer of the outbox, off the request path. It reads each user's plan
 * events after its cursor and learns from the user's own choices:
 * - a task moved (scheduleTask, updateTask, resolveConflict changing a scheduled start) counts for
 *   the time of day and the weekday it was moved to, per term of the task's title (`tod:`/`wd:`);
 * - a task completed counts its actual time (completion minus scheduled start) against its
 *   estimate, per term (`dur:`).
 * Items become active (and shape plans) once the evidence is consistent (see rules.ts).
 *
 * One consumer per database: a pass runs only while it holds a session advisory lock, so with N
 * instances one learns and the others skip. Each user is learned in one transaction that also
 * moves the user's cursor (memory_learner_cursors): a crash rolls both back and the next pass
 * resumes from the cursor, so no evidence is counted twice (each item also keeps the ids of the
 * operations it counted, and an operation already counted is skipped). The transaction takes the
 * user's row lock (SKIP LOCKED: a busy user waits for the next pass), so it never interleaves with
 * the user's own operations, `forgetMemories` included. The semantic_memory flag off: the cursor
 * moves on and nothing is learned.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import type { Embedder } from './embedder';
import {
  assess,
  keyOf,
  MAX_EVIDENCE,
  observe,
  termsOf,
  timeOfDayOf,
  weekdayIndexOf,
  type LearnedRule,
} from './rules';
import { capUser, memoryTotals, sweepExpired } from './store';

/** The advisory lock key that elects the one learner of a database. */
export const LEARNER_LOCK_SQL = `hashtext('planner.memory_learner')`;
/** Operations whose scheduled-start changes are the user's own moves. */
const MOVE_KINDS = new Set(['SCHEDULE_TASK', 'UPDATE_TASK', 'RESOLVE_CONFLICT']);
/** Completions further than this from the scheduled start say nothing about the estimate. */
const MAX_ACTUAL_MS = 12 * 3600_000;

export interface LearnerUser {
  id: string;
  role: 'USER' | 'ADMIN';
  created_at: Date;
  time_zone: string;
}

export interface LearnerOptions {
  /** How often a pass runs, ms (PLANNER_MEMORY_LEARN_MS). 0: never on its own (runOnce / drain only). */
  intervalMs: number;
  embedder: Embedder;
  /** PLANNER_MEMORY_TTL_DAYS: learned items expire this long after their last evidence. */
  ttlDays: number;
  /** PLANNER_MEMORY_MAX_ITEMS: items kept per user. */
  maxItems: number;
  /** Whether semantic memory is on for the user (the semantic_memory flag). Default: on for everyone. */
  enabledFor?: (user: LearnerUser) => boolean;
  /** Users learned per pass. Default 200. */
  usersPerPass?: number;
  /** Events read per user and pass. Default 500. */
  eventsPerUser?: number;
  now?: () => Date;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** What one pass did. */
export interface LearnPass {
  /** False when another instance holds the learner's lock (nothing was done). */
  ran: boolean;
  users: number;
  events: number;
  /** Observations counted (evidence added to items). */
  observations: number;
  /** Users still behind after this pass (more events than one pass reads, or busy). */
  behind: number;
  /** Expired items deleted by the sweep. */
  swept: number;
}

interface Change {
  entity: string;
  id: string;
  field: string;
  before: unknown;
  after: unknown;
}

type Observation =
  | { opId: string; type: 'tod'; term: string; part: ReturnType<typeof timeOfDayOf> }
  | { opId: string; type: 'wd'; term: string; weekday: number }
  | { opId: string; type: 'dur'; term: string; ratio: number };

export class MemoryLearner {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<LearnPass> | null = null;
  private stopped = false;
  /** Age in ms of the newest event the last pass read (planner.consumer.lag, consumer=memory_learner). */
  lagMs: number | null = null;
  /** The last figures of planner.memory.items / .bytes (refreshed after each pass that ran). */
  totals: { items: number; bytes: number } | null = null;

  constructor(
    private readonly ds: DataSource,
    private readonly opts: LearnerOptions,
  ) {}

  private get pool(): Pool {
    return (this.ds.driver as unknown as { master: Pool }).master;
  }

  private now(): Date {
    return this.opts.now ? this.opts.now() : new Date();
  }

  /** Starts the periodic passes (unref'd timer). Idempotent. */
  start(): void {
    if (this.timer || this.opts.intervalMs <= 0) return;
    this.stopped = false;
    this.timer = setInterval(() => {
      this.runOnce().catch((err) => this.opts.log?.('memory learner pass failed', { err: String(err) }));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress (shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  /** Runs passes until no user is behind (tests, operations). Returns the summed figures. */
  async drain(maxPasses = 100): Promise<LearnPass> {
    const sum: LearnPass = { ran: false, users: 0, events: 0, observations: 0, behind: 0, swept: 0 };
    for (let i = 0; i < maxPasses; i++) {
      const p = await this.runOnce();
      sum.ran ||= p.ran;
      sum.users += p.users;
      sum.events += p.events;
      sum.observations += p.observations;
      sum.swept += p.swept;
      sum.behind = p.behind;
      if (!p.ran || p.behind === 0) break;
    }
    return sum;
  }

  /** One pass: elect (advisory lock), learn each user behind, sweep expired items. */
  runOnce(): Promise<LearnPass> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(): Promise<LearnPass> {
    const out: LearnPass = { ran: false, users: 0, events: 0, observations: 0, behind: 0, swept: 0 };
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (e: Error): void => {
      broken ??= e;
    };
    client.on('error', onError);
    try {
      const lock = await client.query(`SELECT pg_try_advisory_lock(${LEARNER_LOCK_SQL}) AS ok`);
      if (!lock.rows[0].ok) return out;
      out.ran = true;
      try {
        const limit = this.opts.usersPerPass ?? 200;
        const behind = await client.query(
          `/* background:learner */ SELECT u.id FROM users u LEFT JOIN memory_learner_cursors c ON c.user_id = u.id
           WHERE u.event_seq > COALESCE(c.event_seq, 0) ORDER BY u.id LIMIT $1`,
          [limit],
        );
        let newest: number | null = null;
        for (const { id } of behind.rows as Array<{ id: string }>) {
          if (this.stopped) break;
          const r = await this.learnUser(client, id);
          if (r === null) {
            out.behind += 1; // busy: next pass
            continue;
          }
          out.users += 1;
          out.events += r.events;
          out.observations += r.observations;
          if (r.more) out.behind += 1;
          if (r.newestAt !== null) newest = Math.max(newest ?? 0, r.newestAt);
        }
        if (behind.rows.length === limit) out.behind += 1;
        if (newest !== null) this.lagMs = Math.max(0, this.now().getTime() - newest);
        else if (behind.rows.length === 0) this.lagMs = 0;
        out.swept = await sweepExpired((sql, p) => client.query(sql, p), this.now());
        this.totals = await memoryTotals(this.ds);
      } finally {
        await client.query(`SELECT pg_advisory_unlock(${LEARNER_LOCK_SQL})`);
      }
      return out;
    } catch (err) {
      broken ??= err as Error;
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** Learns one user's events after the cursor, in one transaction; null when the user is busy. */
  private async learnUser(
    client: PoolClient,
    userId: string,
  ): Promise<{ events: number; observations: number; more: boolean; newestAt: number | null } | null> {
    await client.query('BEGIN');
    try {
      const u = await client.query(
        `SELECT id, role, created_at, time_zone, event_seq FROM users WHERE id = $1 FOR UPDATE SKIP LOCKED`,
        [userId],
      );
      const user = u.rows[0] as (LearnerUser & { event_seq: string }) | undefined;
      if (!user) {
        await client.query('ROLLBACK');
        return null;
      }
      const cur = await client.query(`SELECT event_seq FROM memory_learner_cursors WHERE user_id = $1`, [
        userId,
      ]);
      const from = Number(cur.rows[0]?.event_seq ?? 0);
      const upTo = Number(user.event_seq);
      const limit = this.opts.eventsPerUser ?? 500;
      const ev = await client.query(
        `SELECT seq, topic, (extract(epoch FROM created_at) * 1000)::float8 AS at,
           CASE WHEN topic = 'plan' THEN payload END AS payload
         FROM events WHERE user_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
        [userId, from, upTo, limit],
      );
      const events = ev.rows as Array<{ seq: string; topic: string; at: number; payload: unknown }>;
      const more = events.length === limit && Number(events[events.length - 1]!.seq) < upTo;
      // Cleaned-up events (outbox retention) are skipped: the cursor never waits for them.
      const to = more ? Number(events[events.length - 1]!.seq) : upTo;
      let observations = 0;
      const enabled = this.opts.enabledFor ? this.opts.enabledFor(user) : true;
      if (enabled && events.length > 0) observations = await this.learn(client, user, events);
      await client.query(
        `INSERT INTO memory_learner_cursors (user_id, event_seq, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET event_seq = GREATEST(memory_learner_cursors.event_seq, EXCLUDED.event_seq),
           updated_at = EXCLUDED.updated_at`,
        [userId, to, this.now()],
      );
      await client.query('COMMIT');
      return {
        events: events.length,
        observations,
        more,
        newestAt: events.length ? Number(events[events.length - 1]!.at) : null,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** Folds the events' observations into the user's learned items; returns how many were counted. */
  private async learn(
    client: PoolClient,
    user: LearnerUser & { event_seq: string },
    events: Array<{ at: number; payload: unknown }>,
  ): Promise<number> {
    const moves: Array<{ opId: string; taskId: string; start: number }> = [];
    const completions: Array<{ opId: string; taskId: string; at: number }> = [];
    for (const e of events) {
      const p = e.payload as { operation?: { id: string; kind: string }; changes?: Change[] } | null;
      if (!p?.operation || !Array.isArray(p.changes)) continue;
      for (const c of p.changes) {
        if (c.entity !== 'Task') continue;
        if (MOVE_KINDS.has(p.operation.kind) && c.field === 'scheduledStart' && c.before && c.after)
          moves.push({ opId: p.operation.id, taskId: c.id, start: new Date(c.after as string).getTime() });
        if (c.field === 'status' && c.after === 'DONE' && c.before !== 'DONE')
          completions.push({ opId: p.operation.id, taskId: c.id, at: e.at });
      }
    }
    if (moves.length === 0 && completions.length === 0) return 0;
    const ids = [...new Set([...moves, ...completions].map((m) => m.taskId))];
    const tasks = await client.query(
      `SELECT id, title, estimate_minutes, (extract(epoch FROM scheduled_start) * 1000)::float8 AS start_ms
       FROM tasks WHERE user_id = $1 AND id = ANY($2::uuid[])`,
      [user.id, ids],
    );
    const byId = new Map(
      (
        tasks.rows as Array<{
          id: string;
          title: string;
          estimate_minutes: number | null;
          start_ms: number | null;
        }>
      ).map((t) => [t.id, t]),
    );
    const obs: Observation[] = [];
    const tz = user.time_zone;
    for (const m of moves) {
      const t = byId.get(m.taskId);
      if (!t) continue; // deleted since: its title is gone, so is what it could teach
      for (const term of termsOf(t.title)) {
        obs.push({ opId: m.opId, type: 'tod', term, part: timeOfDayOf(m.start, tz) });
        obs.push({ opId: m.opId, type: 'wd', term, weekday: weekdayIndexOf(m.start, tz) });
      }
    }
    for (const c of completions) {
      const t = byId.get(c.taskId);
      if (!t || !t.estimate_minutes || t.start_ms === null) continue;
      const actual = c.at - Number(t.start_ms);
      if (actual <= 0 || actual > MAX_ACTUAL_MS) continue;
      const ratio = actual / 60_000 / t.estimate_minutes;
      for (const term of termsOf(t.title)) obs.push({ opId: c.opId, type: 'dur', term, ratio });
    }
    if (obs.length === 0) return 0;

    const keys = [...new Set(obs.map((o) => keyOf(o)))];
    const existing = await client.query(
      `SELECT id, key, rule, evidence FROM memory_items WHERE user_id = $1 AND key = ANY($2::text[]) FOR UPDATE`,
      [user.id, keys],
    );
    const items = new Map<
      string,
      { id: string; rule: LearnedRule | null; evidence: string[]; changed: boolean }
    >();
    for (const r of existing.rows as Array<{
      id: string;
      key: string;
      rule: LearnedRule;
      evidence: string[];
    }>)
      items.set(r.key, { id: r.id, rule: r.rule, evidence: r.evidence, changed: false });
    let counted = 0;
    for (const o of obs) {
      const key = keyOf(o);
      let it = items.get(key);
      if (!it) {
        it = { id: randomUUID(), rule: null, evidence: [], changed: false };
        items.set(key, it);
      }
      // An operation counts once per item, whatever replays or repeats bring it back.
      if (it.evidence.includes(o.opId)) continue;
      it.rule = observe(it.rule, o);
      it.evidence = [...it.evidence, o.opId].slice(-MAX_EVIDENCE);
      it.changed = true;
      counted += 1;
    }
    const changed = [...items.entries()].filter(([, it]) => it.changed);
    if (changed.length === 0) return 0;
    const assessed = changed.map(([key, it]) => ({ key, it, a: assess(it.rule!) }));
    const vectors = await this.opts.embedder.embed(assessed.map((x) => x.a.text));
    const now = this.now();
    const expires = new Date(now.getTime() + this.opts.ttlDays * 86_400_000);
    await client.query(
      `INSERT INTO memory_items (user_id, id, kind, key, text, rule, embedding, confidence, evidence, active, uses,
         created_at, updated_at, expires_at)
       SELECT $1, r.id, r.kind, r.key, r.text, r.rule, r.embedding, r.confidence, r.evidence, r.active, 0, $2, $2, $3
       FROM jsonb_to_recordset($4::jsonb) AS r(id uuid, kind text, key text, text text, rule jsonb, embedding real[],
         confidence real, evidence uuid[], active boolean)
       ON CONFLICT (user_id, key) WHERE key IS NOT NULL DO UPDATE SET kind = EXCLUDED.kind, text = EXCLUDED.text,
         rule = EXCLUDED.rule, embedding = EXCLUDED.embedding, confidence = EXCLUDED.confidence,
         evidence = EXCLUDED.evidence, active = EXCLUDED.active, updated_at = EXCLUDED.updated_at,
         expires_at = EXCLUDED.expires_at`,
      [
        user.id,
        now,
        expires,
        JSON.stringify(
          assessed.map(({ key, it, a }, i) => ({
            id: it.id,
            kind: a.kind,
            key,
            text: a.text,
            rule: it.rule,
            embedding: `{${vectors[i]!.join(',')}}`,
            confidence: a.confidence,
            evidence: `{${it.evidence.join(',')}}`,
            active: a.active,
          })),
        ),
      ],
    );
    await capUser((sql, p) => client.query(sql, p), user.id, this.opts.maxItems);
    return counted;
  }
}
