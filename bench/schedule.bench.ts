/**
 * scheduleTask latency, conflict detection included, for a user holding 10 scheduled tasks and one
 * holding 10,000 (spread over a year, bulk-inserted with SQL, then ANALYZE).
 *
 * Each call moves the user's bench task to 09:00–09:30 UTC on a pseudo-random weekday of the year — the
 * same day sequence for both users — so every call re-checks two local days (the old and the new one)
 * against the plan and finds no conflict: the work measured is the transaction, the user lock, the GiST
 * range loads of the relevant days, detection, the operation log and the outbox. The two users' calls
 * are interleaved (alternating which goes first) so that machine noise hits both alike.
 *
 * A second, smaller scenario (scheduleTaskCausingOverlap) moves the task onto another one, so that each
 * measured call also computes, verifies and stores ranked alternatives.
 *
 * Database: BENCH_DATABASE_URL when set (migrations are applied; fresh users are created), otherwise an
 * embedded Postgres in a temporary directory on a free port, removed afterwards.
 */
import { withBenchDatabase } from './support/env';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createDataSource, migrateUp } from '../src/db/data-source';
import { ManualClock } from '../src/world/clock';
import type { Actor } from '../src/world/views';
import { createWorld, type World } from '../src/world/world';

const NOW = '2026-11-30T08:00:00Z';
const YEAR_START = Date.parse('2026-12-01T00:00:00Z');
const DAY_MS = 86_400_000;
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 30);
const N = Number(process.env['BENCH_N'] ?? 300);

function log(msg: string): void {
  process.stderr.write(`[bench:schedule] ${msg}\n`);
}

/** Deterministic PRNG (mulberry32), so both users get the same days. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 09:00Z on a pseudo-random weekday within the year of bulk data. */
function nextStart(rand: () => number): Date {
  for (;;) {
    const day = YEAR_START + Math.floor(rand() * 350) * DAY_MS;
    const weekday = new Date(day).getUTCDay();
    if (weekday !== 0 && weekday !== 6) return new Date(day + 9 * 3_600_000);
  }
}

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

function stats(samples: number[]): { median_ms: number; p99_ms: number } {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length / 2;
  const median = s.length % 2 === 0 ? (s[mid - 1]! + s[mid]!) / 2 : s[Math.floor(mid)]!;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { median_ms: round(median), p99_ms: round(percentile(s, 0.99)) };
}

/** Creates a user with `count` scheduled tasks (10-minute slots from 12:00Z, ~28 a day over the year). */
interface Seeded {
  actor: Actor;
  /** The task every measured call moves. */
  taskId: string;
  /** A second task, used to provoke an overlap. */
  partnerId: string;
}

async function seedUser(world: World, label: string, count: number): Promise<Seeded> {
  const user = await world.users.findOrCreateByEmail(
    `bench-${label}-${randomBytes(4).toString('hex')}@example.com`,
  );
  const perDay = Math.max(1, Math.ceil(count / 357));
  const spacing = count <= 357 ? Math.floor(357 / count) : 1; // days between tasks when fewer than one a day
  await world.dataSource.query(
    `INSERT INTO tasks (id, user_id, title, status, priority, estimate_minutes, scheduled_start, scheduled_end, created_at, updated_at)
     SELECT gen_random_uuid(), $1, 'bulk ' || g, 'SCHEDULED', 'MEDIUM', 10, s, s + interval '10 minutes', $5, $5
     FROM (
       SELECT g, to_timestamp($2 / 1000.0) + ((g / $3) * $4) * interval '1 day' + interval '12 hours'
                 + (g % $3) * interval '10 minutes' AS s
       FROM generate_series(0, $6::int - 1) AS g
     ) x`,
    [user.id, YEAR_START, perDay, spacing, new Date(NOW), count],
  );
  const actor: Actor = { userId: user.id, actor: `user:${user.id}` };
  const created = await world.updater.createTask(actor, { title: 'bench task', estimateMinutes: 30 });
  const partner = await world.updater.createTask(actor, { title: 'bench partner', estimateMinutes: 30 });
  if (!created.ok || !created.task || !partner.ok || !partner.task)
    throw new Error('could not create the bench tasks');
  return { actor, taskId: created.task.id, partnerId: partner.task.id };
}

const withDatabase = <T>(fn: (url: string) => Promise<T>): Promise<T> => withBenchDatabase(log, fn);

export async function run(): Promise<Record<string, unknown>> {
  return withDatabase(async (url) => {
    const ds = createDataSource(url, { poolSize: 4, applicationName: 'planner-bench' });
    await ds.initialize();
    try {
      await migrateUp(ds);
      const world = createWorld(ds, new ManualClock(NOW));
      log('seeding 10 and 10,000 scheduled tasks');
      const small = await seedUser(world, 'tasks10', 10);
      const big = await seedUser(world, 'tasks10000', 10_000);
      await ds.query('ANALYZE');
      const counts = (await ds.query(
        `SELECT user_id, count(*)::int AS n FROM tasks WHERE scheduled_start IS NOT NULL AND user_id = ANY($1::uuid[]) GROUP BY user_id`,
        [[small.actor.userId, big.actor.userId]],
      )) as Array<{ user_id: string; n: number }>;
      const held = Object.fromEntries(
        counts.map((c) => [c.user_id === big.actor.userId ? 'tasks10000' : 'tasks10', c.n]),
      );

      const call = async (u: Seeded, taskId: string, start: Date, expect: string[] = []): Promise<number> => {
        const t0 = performance.now();
        const r = await world.updater.scheduleTask(u.actor, taskId, start, null);
        const elapsed = performance.now() - t0;
        if (!r.ok) throw new Error(`scheduleTask failed: ${JSON.stringify(r.errors)}`);
        const kinds = r.conflicts.map((c) => c.kind);
        if (JSON.stringify(kinds) !== JSON.stringify(expect)) {
          throw new Error(
            `expected conflicts ${JSON.stringify(expect)}, got: ${r.conflicts.map((c) => c.message).join('; ')}`,
          );
        }
        if (expect.length > 0 && r.conflicts.some((c) => c.alternatives.length === 0))
          throw new Error('no alternatives offered');
        return elapsed;
      };

      const samples = { tasks10: [] as number[], tasks10000: [] as number[] };
      const rand = prng(20261130);
      log(`warm-up ${WARMUP}, then ${N} interleaved calls per user`);
      for (let i = 0; i < WARMUP + N; i++) {
        const start = nextStart(rand);
        const order =
          i % 2 === 0 ? (['tasks10', 'tasks10000'] as const) : (['tasks10000', 'tasks10'] as const);
        for (const key of order) {
          const u = key === 'tasks10' ? small : big;
          const ms = await call(u, u.taskId, start);
          if (i >= WARMUP) samples[key].push(ms);
        }
      }

      // Second scenario: the move creates an OVERLAP, so detection also computes and stores ranked
      // alternatives (a 2-week search window loaded through the GiST index). Per iteration the partner
      // task is first put at 09:00 on the day (not measured; it leaves the previous overlap), then the
      // bench task is moved to 09:15 that day (measured).
      const overlap = { tasks10: [] as number[], tasks10000: [] as number[] };
      const rand2 = prng(20261201);
      const overlapN = Math.max(1, Math.floor(N / 2));
      log(`overlap scenario: warm-up ${Math.min(WARMUP, 10)}, then ${overlapN} interleaved calls per user`);
      for (let i = 0; i < Math.min(WARMUP, 10) + overlapN; i++) {
        const start = nextStart(rand2);
        const order =
          i % 2 === 0 ? (['tasks10', 'tasks10000'] as const) : (['tasks10000', 'tasks10'] as const);
        for (const key of order) {
          const u = key === 'tasks10' ? small : big;
          await call(u, u.partnerId, start);
          const ms = await call(u, u.taskId, new Date(start.getTime() + 15 * 60_000), ['OVERLAP']);
          if (i >= Math.min(WARMUP, 10)) overlap[key].push(ms);
        }
      }

      const ratio = (a: { median_ms: number; p99_ms: number }, b: { median_ms: number; p99_ms: number }) => ({
        ratio_median: Math.round((a.median_ms / b.median_ms) * 100) / 100,
        ratio_p99: Math.round((a.p99_ms / b.p99_ms) * 100) / 100,
      });
      const tasks10 = stats(samples.tasks10);
      const tasks10000 = stats(samples.tasks10000);
      const o10 = stats(overlap.tasks10);
      const o10000 = stats(overlap.tasks10000);
      return {
        scheduleTask: {
          tasks10,
          tasks10000,
          ...ratio(tasks10000, tasks10),
          samples_per_user: N,
          scheduled_tasks_held: held,
        },
        scheduleTaskCausingOverlap: {
          tasks10: o10,
          tasks10000: o10000,
          ...ratio(o10000, o10),
          samples_per_user: overlapN,
        },
      };
    } finally {
      await ds.destroy();
    }
  });
}
