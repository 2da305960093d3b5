/**
 * `npm run bench memory`: what semantic memory costs (issue 14), for 1,000 users × 200 memory items
 * each (BENCH_MEMORY_USERS, BENCH_MEMORY_ITEMS), in one run on one database:
 *
 * - alternativeRanking: createTask of a "Gym session" on a meeting's slot (a conflict: alternatives
 *   computed and ranked) through the WorldUpdater, semantic_memory on vs off. Every user holds 200
 *   items: 10 active learned preferences (one for "gym": evenings) and 190 stated facts; the write
 *   path loads the active learned ones with its lock (no extra statement), so "on" pays for shaping,
 *   "off" for nothing but the (same) load. Each user is used once; the arms are interleaved.
 * - processRss: the bench process's RSS, sampled while each arm runs alone (off first, then on;
 *   the max of each), and the increase of "on" over "off" against the rollout plan's 5 % budget. Memory is not
 *   held in the process (items are read per operation, a few KiB), so the figure says whether
 *   shaping allocates anything that stays.
 * - recall: memories(query) over one user's 200 items (exact cosine in SQL), p50/p95.
 * - storage: items and bytes as stored (planner.memory.items / .bytes).
 *
 * Database: BENCH_DATABASE_URL when set (migrations are applied; fresh users are created), otherwise an
 * embedded Postgres in a temporary directory on a free port, removed afterwards.
 */
import { performance } from 'node:perf_hooks';
import { createDataSource, migrateUp } from '../src/db/data-source';
import { disable } from '../src/flags/admin';
import { FLAGS } from '../src/flags/keys';
import { defaultPayload } from '../src/flags/payload';
import { FlagService } from '../src/flags/service';
import { HashedNgramEmbedder } from '../src/memory/embedder';
import { assess, observe, type LearnedRule } from '../src/memory/rules';
import { memoryTotals } from '../src/memory/store';
import { ManualClock } from '../src/world/clock';
import type { Actor } from '../src/world/views';
import { createWorld, type World } from '../src/world/world';
import { withBenchDatabase } from './support/env';

const NOW = '2026-11-30T06:00:00Z';
const DAY = Date.parse('2026-12-02T00:00:00Z');
const H = 3_600_000;
const USERS = Number(process.env['BENCH_MEMORY_USERS'] ?? 1000);
const ITEMS = Number(process.env['BENCH_MEMORY_ITEMS'] ?? 200);
const LEARNED = 10;
/** Users per arm (half for the RSS blocks, half interleaved for latency); each user is used once. */
const N = Math.min(Math.floor(USERS / 2) - 20, Number(process.env['BENCH_MEMORY_N'] ?? 400));
const WARMUP = 20;
const RECALL_N = 200;

function log(msg: string): void {
  process.stderr.write(`[bench:memory] ${msg}\n`);
}
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
function summary(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return {
    n: s.length,
    p50Ms: round(pct(s, 50)),
    p95Ms: round(pct(s, 95)),
    p99Ms: round(pct(s, 99)),
    meanMs: round(s.reduce((a, b) => a + b, 0) / s.length),
  };
}
const mib = (b: number) => round(b / 1_048_576, 1);

type Arm = 'on' | 'off';

export async function run(): Promise<Record<string, unknown>> {
  return withBenchDatabase(log, async (url) => {
    const ds = createDataSource(url, { poolSize: 4, applicationName: 'planner-bench-memory' });
    await ds.initialize();
    try {
      await migrateUp(ds);
      const clock = new ManualClock(NOW);
      const worlds: Record<Arm, World> = {
        on: createWorld(ds, clock, {
          flags: {
            service: new FlagService(defaultPayload(), { origin: 'static', version: 1 }),
            recorder: null,
          },
        }),
        off: createWorld(ds, clock, {
          flags: {
            service: new FlagService(disable(defaultPayload(), FLAGS.SEMANTIC_MEMORY), {
              origin: 'static',
              version: 2,
            }),
            recorder: null,
          },
        }),
      };

      log(`seeding ${USERS} users × ${ITEMS} items`);
      const t0 = performance.now();
      const tag = Date.now().toString(36);
      const hours = JSON.stringify(
        Object.fromEntries(
          ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'].map((d) => [
            d,
            [{ start: '07:00', end: '22:00' }],
          ]),
        ),
      );
      const users = (await ds.query(
        `INSERT INTO users (email, display_name, working_hours, daily_capacity_minutes)
         SELECT 'bench-mem-' || $1 || '-' || g || '@example.com', 'u' || g, $2::jsonb, 900 FROM generate_series(1, $3) g
         RETURNING id`,
        [tag, hours, USERS],
      )) as Array<{ id: string }>;
      const embedder = new HashedNgramEmbedder();
      const learned: Array<{
        key: string;
        text: string;
        rule: LearnedRule;
        confidence: number;
        embedding: number[];
      }> = [];
      for (const term of ['gym', 'run', 'yoga', 'swim', 'read', 'call', 'mail', 'plan', 'cook', 'walk'].slice(
        0,
        LEARNED,
      )) {
        let rule: LearnedRule | null = null;
        for (let i = 0; i < 6; i++) rule = observe(rule, { type: 'tod', term, part: 'EVENING' });
        const a = assess(rule!);
        learned.push({
          key: `tod:${term}`,
          text: a.text,
          rule: rule!,
          confidence: a.confidence,
          embedding: embedder.embedOne(a.text),
        });
      }
      const factVector = `{${embedder.embedOne('a fact the user stated about their week').join(',')}}`;
      const ids = users.map((u) => u.id);
      const chunk = 100;
      for (let i = 0; i < ids.length; i += chunk) {
        const part = ids.slice(i, i + chunk);
        await ds.query(
          `INSERT INTO memory_items (user_id, id, kind, key, text, rule, embedding, confidence, evidence, active, uses, created_at, updated_at, expires_at)
           SELECT u, gen_random_uuid(), 'PREFERENCE', l.key, l.text, l.rule, l.embedding, l.confidence, '{}', true, 0, $3, $3, $3::timestamptz + interval '180 days'
           FROM unnest($1::uuid[]) u, jsonb_to_recordset($2::jsonb) AS l(key text, text text, rule jsonb, embedding real[], confidence real)`,
          [
            part,
            JSON.stringify(learned.map((l) => ({ ...l, embedding: `{${l.embedding.join(',')}}` }))),
            new Date(NOW),
          ],
        );
        await ds.query(
          `INSERT INTO memory_items (user_id, id, kind, key, text, rule, embedding, confidence, evidence, active, uses, created_at, updated_at, expires_at)
           SELECT u, gen_random_uuid(), 'FACT', NULL, 'stated fact number ' || g || ' about the week ahead', NULL, $2::real[], 1, '{}', true, 0, $3, $3, $3::timestamptz + interval '180 days'
           FROM unnest($1::uuid[]) u, generate_series(1, $4) g`,
          [part, factVector, new Date(NOW), ITEMS - LEARNED],
        );
      }
      await ds.query('ANALYZE memory_items');
      const seedMs = performance.now() - t0;
      const storage = await memoryTotals(ds);
      log(`seeded in ${Math.round(seedMs)} ms: ${storage.items} items, ${mib(storage.bytes)} MiB`);

      const actor = (id: string): Actor => ({ userId: id, actor: `user:${id}` });
      const meeting = { start: new Date(DAY + 8 * H), end: new Date(DAY + 9 * H) };
      let eveningFirst = 0;
      let shaped = 0;
      /** One conflict for a fresh user: a meeting, then a gym session on its slot (the timed call). */
      const conflictFor = async (arm: Arm, id: string, measured: boolean): Promise<number> => {
        const a = actor(id);
        const m = await worlds[arm].updater.createTask(a, {
          title: 'Team meeting',
          scheduledStart: meeting.start,
          scheduledEnd: meeting.end,
        });
        if (!m.ok) throw new Error(JSON.stringify(m.errors));
        const t = performance.now();
        const r = await worlds[arm].updater.createTask(a, {
          title: 'Gym session',
          scheduledStart: meeting.start,
          scheduledEnd: meeting.end,
        });
        const ms = performance.now() - t;
        if (!r.ok || r.conflicts.length === 0) throw new Error('expected a conflict with alternatives');
        if (measured && arm === 'on') {
          if (r.memory.length > 0) shaped += 1;
          const first = r.conflicts[0]!.alternatives[0];
          if (first?.start && new Date(first.start).getUTCHours() >= 17) eveningFirst += 1;
        }
        return ms;
      };
      // RSS: one arm at a time (off, then on), sampled every 10 operations.
      const block = Math.floor(N / 2);
      const rss: Record<Arm, number[]> = { on: [], off: [] };
      let next = 0;
      for (const arm of ['off', 'on'] as const) {
        log(`rss, ${arm} arm alone: ${block} users`);
        for (let i = 0; i < block; i++) {
          await conflictFor(arm, ids[next++]!, false);
          if (i % 10 === 0) rss[arm].push(process.memoryUsage.rss());
        }
        rss[arm].push(process.memoryUsage.rss());
      }
      // Latency: the arms interleaved (alternating which goes first) so machine noise hits both.
      const samples: Record<Arm, number[]> = { on: [], off: [] };
      log(`latency: ${WARMUP} warm-up, then ${block} interleaved users per arm`);
      for (let i = 0; i < WARMUP + block; i++) {
        for (const arm of i % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
          const ms = await conflictFor(arm, ids[next++]!, i >= WARMUP);
          if (i >= WARMUP) samples[arm].push(ms);
        }
      }

      const recallSamples: number[] = [];
      for (let i = 0; i < RECALL_N; i++) {
        const t = performance.now();
        const found = await worlds.on.queries.memories(ids[i % ids.length]!, {
          query: 'when do I go to the gym',
          first: 5,
        });
        recallSamples.push(performance.now() - t);
        if (found.length === 0) throw new Error('recall found nothing');
      }

      const maxOff = Math.max(...rss.off);
      const maxOn = Math.max(...rss.on);
      const ranking = { on: summary(samples.on), off: summary(samples.off) };
      return {
        memory: {
          database: process.env['BENCH_DATABASE_URL']
            ? 'BENCH_DATABASE_URL'
            : 'embedded PostgreSQL (temp dir)',
          users: USERS,
          itemsPerUser: ITEMS,
          seedMs: Math.round(seedMs),
          storage: {
            items: storage.items,
            mib: mib(storage.bytes),
            bytesPerItem: Math.round(storage.bytes / storage.items),
          },
          alternativeRanking: {
            note: 'createTask on a meeting slot (conflict, alternatives ranked), one call per user, arms interleaved',
            ...ranking,
            p95DiffMs: round(ranking.on.p95Ms - ranking.off.p95Ms),
            onShapedByMemory: shaped,
            onEveningFirst: eveningFirst,
          },
          processRss: {
            offMaxMiB: mib(maxOff),
            onMaxMiB: mib(maxOn),
            increasePct: round(((maxOn - maxOff) / maxOff) * 100, 2),
            budgetPct: 5,
          },
          recall: {
            note: 'memories(query, first: 5) over 200 items, exact cosine in SQL',
            ...summary(recallSamples),
          },
        },
      };
    } finally {
      if (ds.isInitialized) await ds.destroy();
    }
  });
}
