/**
 * `npm run bench flags`: what enforcing the feature flags costs the write path — createTask with
 * every flag on vs every flag off, in one run, on one database (issue 11: the rollout plan allows
 * +100 ms, the aim is under +5 ms at p95).
 *
 * Two worlds share one DataSource and differ only by their flags runtime: "on" evaluates the
 * repository's default payload (every capability on, alternative_ranking 50/50, exposures and usage
 * queued by a real ExposureRecorder, flushed after the measurement), "off" a payload with every
 * flag off. Calls are interleaved (alternating which arm goes first) so machine noise hits both.
 *
 * - createTaskPlain: a backlog task (title only): the same work in both arms, so the difference is
 *   the flags' own cost (evaluation per operation, the gates, the evaluations stored on the
 *   operation row by the one write statement).
 * - createTaskOverlap: each task lands on the previous one's slot: "on" also computes, ranks and
 *   stores alternatives, "off" reports the conflict without them (what the capability costs).
 * - evaluationMicros: forUser + the gates + evaluations() alone, in microseconds per operation.
 *
 * Database: BENCH_DATABASE_URL when set (migrations are applied; fresh users are created), otherwise an
 * embedded Postgres in a temporary directory on a free port, removed afterwards.
 */
import { withBenchDatabase } from './support/env';
import { performance } from 'node:perf_hooks';
import { createDataSource, migrateUp } from '../src/db/data-source';
import { disable } from '../src/flags/admin';
import { FLAG_KEYS } from '../src/flags/keys';
import { defaultPayload } from '../src/flags/payload';
import { ExposureRecorder } from '../src/flags/recorder';
import { FlagService } from '../src/flags/service';
import { ManualClock } from '../src/world/clock';
import { openGates, type FlagRuntime } from '../src/world/flag-gates';
import type { Actor } from '../src/world/views';
import { createWorld, type World } from '../src/world/world';

const NOW = '2026-11-30T08:00:00Z';
const SLOT_BASE = Date.parse('2026-12-01T10:00:00Z');
const DAY_MS = 86_400_000;
const WARMUP = 30;
const N = Number(process.env['BENCH_FLAGS_N'] ?? 400);
const N_OVERLAP = Math.max(20, Math.round(N / 2));
const EVAL_N = 20_000;

function log(msg: string): void {
  process.stderr.write(`[bench:flags] ${msg}\n`);
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function summary(samples: number[]): {
  n: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  meanMs: number;
} {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50Ms: round(pct(s, 50)),
    p95Ms: round(pct(s, 95)),
    p99Ms: round(pct(s, 99)),
    meanMs: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

const withDatabase = <T>(fn: (url: string) => Promise<T>): Promise<T> => withBenchDatabase(log, fn);

type Arm = 'on' | 'off';

export async function run(): Promise<Record<string, unknown>> {
  return withDatabase(async (url) => {
    const ds = createDataSource(url, { poolSize: 4, applicationName: 'planner-bench-flags' });
    await ds.initialize();
    const recorder = new ExposureRecorder(ds, { flushIntervalMs: 0 });
    try {
      await migrateUp(ds);
      const clock = new ManualClock(NOW);
      const allOff = FLAG_KEYS.reduce((p, key) => disable(p, key), defaultPayload());
      const runtimes: Record<Arm, FlagRuntime> = {
        on: {
          service: new FlagService(
            defaultPayload(),
            { origin: 'static', version: 1 },
            { exposures: recorder },
          ),
          recorder,
        },
        off: { service: new FlagService(allOff, { origin: 'static', version: 2 }), recorder },
      };
      const worlds: Record<Arm, World> = {
        on: createWorld(ds, clock, { flags: runtimes.on }),
        off: createWorld(ds, clock, { flags: runtimes.off }),
      };
      const actorOf = async (name: string): Promise<Actor> => {
        const u = await worlds.on.users.findOrCreateByEmail(`bench-flags-${name}-${Date.now()}@example.com`);
        return { userId: u.id, actor: `user:${u.id}` };
      };

      const measure = async (
        label: string,
        n: number,
        call: (arm: Arm, actor: Actor, i: number) => Promise<void>,
      ): Promise<Record<Arm, number[]>> => {
        const actors: Record<Arm, Actor> = {
          on: await actorOf(`${label}-on`),
          off: await actorOf(`${label}-off`),
        };
        const samples: Record<Arm, number[]> = { on: [], off: [] };
        log(`${label}: warm-up ${WARMUP}, then ${n} interleaved calls per arm`);
        for (let i = 0; i < WARMUP + n; i++) {
          for (const arm of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
            const t0 = performance.now();
            await call(arm, actors[arm], i);
            if (i >= WARMUP) samples[arm].push(performance.now() - t0);
          }
        }
        return samples;
      };

      const plain = await measure('createTaskPlain', N, async (arm, actor, i) => {
        const r = await worlds[arm].updater.createTask(actor, { title: `plain ${i}` });
        if (!r.ok) throw new Error(`createTask (${arm}) failed: ${JSON.stringify(r.errors)}`);
        if (r.flags.length === 0) throw new Error('no flags in the UpdateResult');
      });
      const overlap = await measure('createTaskOverlap', N_OVERLAP, async (arm, actor, i) => {
        // Two tasks per slot: every odd call lands on the slot of the call before it.
        const start = new Date(SLOT_BASE + Math.floor(i / 2) * DAY_MS);
        const r = await worlds[arm].updater.createTask(actor, {
          title: `overlap ${i}`,
          scheduledStart: start,
          scheduledEnd: new Date(start.getTime() + 3_600_000),
        });
        if (!r.ok) throw new Error(`createTask (${arm}) failed: ${JSON.stringify(r.errors)}`);
        const alternatives = r.conflicts.reduce((n, c) => n + c.alternatives.length, 0);
        if (arm === 'off' && alternatives > 0)
          throw new Error('alternatives offered with conflict_resolution off');
      });

      // The in-memory part alone: what every operation adds between load and write.
      const [userRow] = (await ds.query(`SELECT * FROM users LIMIT 1`)) as [never];
      const evalMicros: Record<Arm, number> = { on: 0, off: 0 };
      for (const arm of ['on', 'off'] as const) {
        const spec = { kind: 'CREATE_TASK', args: { input: { title: 'x' } } };
        for (let i = 0; i < 2000; i++) openGates(runtimes[arm], userRow, spec, 'ALLOW').evaluations();
        const t0 = performance.now();
        for (let i = 0; i < EVAL_N; i++) openGates(runtimes[arm], userRow, spec, 'ALLOW').evaluations();
        evalMicros[arm] = round(((performance.now() - t0) * 1000) / EVAL_N, 2);
      }
      await recorder.flush();

      const s = {
        plain: { on: summary(plain.on), off: summary(plain.off) },
        overlap: { on: summary(overlap.on), off: summary(overlap.off) },
      };
      return {
        flags: {
          database: process.env['BENCH_DATABASE_URL']
            ? 'BENCH_DATABASE_URL'
            : 'embedded PostgreSQL (temp dir)',
          note: 'sequential calls through the WorldUpdater (the write path: load, decide, write), interleaved on/off',
          createTaskPlain: { ...s.plain, p95DiffMs: round(s.plain.on.p95Ms - s.plain.off.p95Ms) },
          createTaskOverlap: { ...s.overlap, p95DiffMs: round(s.overlap.on.p95Ms - s.overlap.off.p95Ms) },
          evaluationMicrosPerOperation: evalMicros,
          budgetMs: { allowed: 100, aim: 5 },
        },
      };
    } finally {
      await recorder.close().catch(() => undefined);
      if (ds.isInitialized) await ds.destroy();
    }
  });
}
