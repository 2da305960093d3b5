/**
 * `npm run bench write`: the write path and the hot reads against their ceilings, at 10 and 50
 * concurrent clients, in one run on one machine and database.
 *
 * - The server under test runs in its own process exactly as `npm start` runs it (the command of
 *   package.json's `start` script, default configuration): embedded Postgres when DATABASE_URL is
 *   unset, DATABASE_URL when set; on a free port, with a fresh temporary data directory.
 * - Ceilings: a bare Apollo Server 5 answering a constant query over node:http (its own process),
 *   and a bare `pg` BEGIN / INSERT / COMMIT loop with one connection per client, on the same
 *   database as the server.
 * - Measured over keep-alive HTTP (closed loop: each client sends its next request when the last
 *   one answered): createTask and scheduleTask with conflicts arising (every second createTask of a
 *   user lands on the slot of its previous one; every scheduleTask moves a task onto another's
 *   slot), spread over 250 users and on one user; `{ me { id } }` over the 250 users; a
 *   `tasks(first: 20)` page for 10 users holding 25 tasks each.
 * - Each figure: req/s, p50/p99 latency, errors, RATE_LIMITED answers (apart), its ratio to its
 *   ceiling at the same concurrency (writes to the pg loop, reads to bare Apollo), and on Linux the
 *   CPU milliseconds per answered request of the serving process, of the embedded Postgres (all
 *   its processes; not with DATABASE_URL, a server shared with others) and of this load generator:
 *   on a shared machine throughput swings with the neighbours, the CPU a request costs much less.
 *
 * Every run stops by itself: BENCH_WRITE_MS (default 4000) after a 500 ms warm-up, or at 20,000
 * requests; every request times out after 10 s. Loopback only. About 2 minutes in all.
 */
import { treeCpuMs, parentPid } from './support/cpu';
import { freePort } from './support/env';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { loadConfig } from '../src/config/config';
import { createDataSource } from '../src/db/data-source';
import { loadOrCreateSecrets } from '../src/db/secrets';
import { mintToken } from '../src/server/auth';
import { systemClock } from '../src/world/clock';
import { UserService } from '../src/world/user-service';
import { judgeGraphQL, percentile, runLoad, type Call, type LoadResult, type Verdict } from './support/load';

const ROOT = path.resolve(__dirname, '..');
const DURATION_MS = Number(process.env['BENCH_WRITE_MS'] ?? 4000);
const MAX_REQUESTS = 20_000;
const CONCURRENCY = [10, 50] as const;
const SPREAD_USERS = 250;
const READERS = 10;
const READER_TASKS = 25;
const START_TIMEOUT_MS = 120_000;
const SLOT_BASE = Date.parse('2027-01-04T10:00:00Z');
const DAY_MS = 86_400_000;

function log(msg: string): void {
  process.stderr.write(`[bench:write] ${msg}\n`);
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Spawns a process in the project root and waits for a stdout line matching `ready`. */
async function spawnUntil(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (d: string) => {
    tail.push(d);
    if (tail.length > 40) tail.shift();
  };
  child.stderr!.setEncoding('utf8').on('data', keep);
  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`${args.join(' ')}: not ready after ${START_TIMEOUT_MS} ms`)),
      START_TIMEOUT_MS,
    );
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      keep(d);
      const m = out.match(ready);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}: ${tail.join('').slice(-2000)}`));
    });
  });
  child.stdout!.resume();
  return { child, match };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
function stop(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** The bare pg loop: `clients` connections, each BEGIN; INSERT; COMMIT back to back. */
async function pgLoop(url: string, table: string, clients: number): Promise<LoadResult> {
  const conns = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      return c;
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  let answered = 0;
  let measuring = false;
  let stopNow = false;
  let from = 0;
  let to = 0;
  const loop = async (c: Client, id: number) => {
    const user = `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`;
    while (!stopNow) {
      if (measuring && sent >= MAX_REQUESTS) break;
      const counted = measuring;
      if (counted) sent++;
      const t0 = performance.now();
      try {
        await c.query('BEGIN');
        await c.query(`INSERT INTO ${table} (user_id, title) VALUES ($1, $2)`, [user, 'bench']);
        await c.query('COMMIT');
        const t1 = performance.now();
        answered++;
        if (counted) {
          latencies.push(t1 - t0);
          to = Math.max(to, t1);
        }
      } catch {
        if (counted) errors++;
        await c.query('ROLLBACK').catch(() => undefined);
      }
    }
  };
  const warm = setTimeout(() => {
    measuring = true;
    from = performance.now();
  }, 500);
  const end = setTimeout(() => (stopNow = true), 500 + DURATION_MS);
  try {
    await Promise.all(conns.map((c, i) => loop(c, i)));
  } finally {
    clearTimeout(warm);
    clearTimeout(end);
    await Promise.all(conns.map((c) => c.end().catch(() => undefined)));
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    clients,
    requests: sent,
    rps: Math.round((latencies.length / Math.max(1e-3, (to - from) / 1000)) * 10) / 10,
    p50_ms: Math.round(percentile(sorted, 0.5) * 100) / 100,
    p99_ms: Math.round(percentile(sorted, 0.99) * 100) / 100,
    errors,
    rate_limited: 0,
    answered,
  };
}

/** The processes whose CPU a figure reports (pids; null: not measurable here). */
interface CpuProbes {
  /** The process serving the requests (the server, or the bare Apollo ceiling). */
  server: number | null;
  /** The embedded Postgres's postmaster (its backends and helpers, exited ones included). */
  postgres: number | null;
}

/**
 * Runs one figure and adds its CPU per answered request: the serving process tree (its embedded
 * Postgres left out), the embedded Postgres (not measurable on a shared DATABASE_URL server) and
 * this process (the load generator; the pg loop's client too).
 */
async function withCpu(probes: CpuProbes, run: () => Promise<LoadResult>): Promise<LoadResult> {
  const server = () => (probes.server === null ? null : treeCpuMs(probes.server, { exclude: 'postgres' }));
  const pg = () => (probes.postgres === null ? null : treeCpuMs(probes.postgres, { reaped: true }));
  const self = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const before = { server: server(), pg: pg(), self: self() };
  const r = await run();
  const after = { server: server(), pg: pg(), self: self() };
  const n = Math.max(1, r.answered ?? r.requests);
  const per = (a: number | null, b: number | null) =>
    a === null || b === null ? null : round((b - a) / n, 2);
  const cpu: Record<string, number> = {};
  const s = per(before.server, after.server);
  if (s !== null) cpu['server'] = s;
  const p = per(before.pg, after.pg);
  if (p !== null) cpu['postgres'] = p;
  cpu['load_generator'] = round((after.self - before.self) / n, 2);
  return { ...r, cpu_ms_per_request: cpu };
}

interface BenchUser {
  id: string;
  token: string;
  /** Slots handed out so far (createTask k lands on day floor(k / 2)). */
  k: number;
  /** Tasks created, with their current start (scheduleTask moves them). */
  tasks: Array<{ id: string; start: number }>;
  moves: number;
}

const CREATE = `mutation($input: CreateTaskInput!) { createTask(input: $input) {
  ok errors { code message } task { id scheduledStart } conflicts { id } } }`;
const SCHEDULE = `mutation($id: ID!, $start: DateTime!, $end: DateTime!) { scheduleTask(id: $id, start: $start, end: $end) {
  ok errors { code message } task { id } conflicts { id } } }`;
const ME = JSON.stringify({ query: '{ me { id } }' });
const PAGE = JSON.stringify({
  query:
    '{ tasks(first: 20) { edges { cursor node { id title status priority scheduledStart scheduledEnd } } pageInfo { hasNextPage endCursor } } }',
});

/**
 * The next createTask of `u`: task k lands on day ceil(k / 2) at 10:00–11:00, so tasks 2j-1 and 2j
 * share a slot: every even task (the first measured one of each user included) is an OVERLAP.
 */
function createCall(u: BenchUser): Call & { start: number } {
  const start = SLOT_BASE + (Math.ceil(u.k / 2) % 365) * DAY_MS;
  u.k++;
  const iso = (t: number) => new Date(t).toISOString();
  return {
    token: u.token,
    start,
    body: JSON.stringify({
      query: CREATE,
      variables: {
        input: { title: `bench ${u.k}`, scheduledStart: iso(start), scheduledEnd: iso(start + 3_600_000) },
      },
    }),
  };
}

/** The next scheduleTask of `u`: one task moved onto the slot of the next one (an OVERLAP). */
function scheduleCall(u: BenchUser): Call {
  const m = u.tasks.length;
  const task = u.tasks[u.moves % m]!;
  const onto = u.tasks[(u.moves + 1) % m]!;
  u.moves++;
  task.start = onto.start;
  return {
    token: u.token,
    body: JSON.stringify({
      query: SCHEDULE,
      variables: {
        id: task.id,
        start: new Date(onto.start).toISOString(),
        end: new Date(onto.start + 3_600_000).toISOString(),
      },
    }),
  };
}

interface ConflictStats {
  answers: number;
  withConflicts: number;
}

const share = (s: ConflictStats) => round(s.withConflicts / Math.max(1, s.answers), 2);

/** Mutation answers: ok: true, else the first error code; counts the ok answers carrying conflicts. */
function mutationJudge(field: string, stats: ConflictStats) {
  return (status: number, body: unknown): Verdict => {
    const base = judgeGraphQL(status, body);
    if (base.kind !== 'ok') return base;
    stats.answers++;
    const r = (
      body as {
        data?: Record<string, { ok: boolean; errors: Array<{ code: string }>; conflicts: unknown[] }>;
      }
    ).data?.[field];
    if (!r?.ok) return { kind: 'error', reason: `not ok: ${r?.errors?.[0]?.code ?? 'no result'}` };
    if (r.conflicts.length > 0) stats.withConflicts++;
    return { kind: 'ok' };
  };
}

/** createTask for every user in `users` `times` times, `parallel` users at once (not measured). */
async function seed(url: string, users: BenchUser[], times: number, parallel: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < users.length; i = next++) {
      const u = users[i]!;
      for (let t = 0; t < times; t++) {
        const call = createCall(u);
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${call.token}` },
          body: call.body,
          signal: AbortSignal.timeout(30_000),
        });
        const body = (await res.json()) as {
          data?: { createTask?: { ok: boolean; task: { id: string } | null } };
        };
        const task = body.data?.createTask?.task;
        if (!body.data?.createTask?.ok || !task)
          throw new Error(`seeding failed: ${JSON.stringify(body).slice(0, 300)}`);
        u.tasks.push({ id: task.id, start: call.start });
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

export async function run(): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-bench-write-'));
  fs.chmodSync(dataDir, 0o755); // as root, embedded Postgres runs as `postgres`, who must enter it
  const children: ChildProcess[] = [];
  let pgUrl: string | null = null;
  const table = `bench_write_ceiling_${randomBytes(4).toString('hex')}`;
  try {
    const [port, pgPort] = [await freePort(), await freePort()];
    // The server's environment: the caller's (DATABASE_URL included, as npm start would see it)
    // with a free port and the temporary data directory. Nothing else is tuned.
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      PLANNER_DATA_DIR: dataDir,
      PLANNER_EMBEDDED_PG_PORT: String(pgPort),
    };
    const startScript = (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts['start']!;
    const [command, ...args] = startScript.split(/\s+/);
    log(`starting the server as npm start does (${startScript}) on port ${port}`);
    const server = await spawnUntil(
      path.join(ROOT, 'node_modules', '.bin', command!),
      args,
      env,
      /planner listening on (\S+)/,
    );
    children.push(server.child);
    const url = server.match[1]!;
    const bare = await spawnUntil(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['bench/support/bare-apollo.ts'],
      { ...process.env },
      /listening (\d+)/,
    );
    children.push(bare.child);
    const bareUrl = `http://127.0.0.1:${bare.match[1]}/graphql`;

    const config = loadConfig(env);
    const secrets = loadOrCreateSecrets(dataDir); // written by the server on first start
    pgUrl =
      config.databaseUrl ??
      `postgres://postgres:${encodeURIComponent(secrets.pgPassword)}@127.0.0.1:${pgPort}/planner`;
    const jwtSecret = config.jwtSecret ?? secrets.jwtSecret;

    // Accounts and tokens, made the way `planner token` makes them.
    const ds = createDataSource(pgUrl, { poolSize: 4, applicationName: 'planner-bench' });
    await ds.initialize();
    const users = new UserService(ds, systemClock);
    const run = randomBytes(3).toString('hex');
    const account = async (name: string): Promise<BenchUser> => {
      const u = await users.findOrCreateByEmail(`bench-${run}-${name}@example.com`);
      const token = mintToken(
        jwtSecret,
        config.jwtIssuer,
        { userId: u.id, email: u.email, role: u.role },
        3600,
        new Date(),
      );
      return { id: u.id, token, k: 0, tasks: [], moves: 0 };
    };
    const spread: BenchUser[] = [];
    for (let i = 0; i < SPREAD_USERS; i++) spread.push(await account(`u${i}`));
    const solo = await account('solo');
    const readers: BenchUser[] = [];
    for (let i = 0; i < READERS; i++) readers.push(await account(`r${i}`));
    await ds.destroy();

    const admin = new Client({ connectionString: pgUrl });
    await admin.connect();
    // The embedded Postgres's postmaster (the parent of any backend), for its CPU per request.
    const pgRoot = config.databaseUrl
      ? null
      : parentPid(
          Number((await admin.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid),
        );
    const serverProbes: CpuProbes = { server: server.child.pid ?? null, postgres: pgRoot };
    const bareProbes: CpuProbes = { server: bare.child.pid ?? null, postgres: null };
    await admin.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, user_id uuid NOT NULL, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    );
    await admin.end();

    log(`seeding: 2 tasks for each of ${SPREAD_USERS} users, ${READER_TASKS} for each of ${READERS} readers`);
    await seed(url, spread, 2, 10);
    await seed(url, [solo], 2, 1);
    await seed(url, readers, READER_TASKS, READERS);

    const out: Record<string, unknown> = {};
    const ceilings: Record<string, unknown> = {};
    for (const c of CONCURRENCY) {
      log(`c=${c}: ceilings`);
      const apollo = await withCpu(bareProbes, () =>
        runLoad({
          url: bareUrl,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => ({ token: null, body: '{"query":"{ hello }"}' }),
        }),
      );
      const loop = await withCpu({ server: null, postgres: pgRoot }, () => pgLoop(pgUrl!, table, c));
      ceilings[`c${c}`] = { bare_apollo: apollo, pg_loop: loop };
      const vsPg = (r: LoadResult) => ({ ...r, ratio_to_pg_loop: round(r.rps / loop.rps) });
      const vsApollo = (r: LoadResult) => ({ ...r, ratio_to_bare_apollo: round(r.rps / apollo.rps) });

      let g = 0;
      const stats = (): ConflictStats => ({ answers: 0, withConflicts: 0 });
      const [createSpreadStats, createSoloStats, scheduleSpreadStats, scheduleSoloStats] = [
        stats(),
        stats(),
        stats(),
        stats(),
      ];
      log(`c=${c}: createTask over ${SPREAD_USERS} users`);
      const createSpread = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => createCall(spread[g++ % spread.length]!),
          judge: mutationJudge('createTask', createSpreadStats),
        }),
      );
      log(`c=${c}: createTask on one user`);
      const createSolo = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => createCall(solo),
          judge: mutationJudge('createTask', createSoloStats),
        }),
      );
      log(`c=${c}: scheduleTask over ${SPREAD_USERS} users`);
      const scheduleSpread = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => scheduleCall(spread[g++ % spread.length]!),
          judge: mutationJudge('scheduleTask', scheduleSpreadStats),
        }),
      );
      log(`c=${c}: scheduleTask on one user`);
      const scheduleSolo = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => scheduleCall(solo),
          judge: mutationJudge('scheduleTask', scheduleSoloStats),
        }),
      );
      log(`c=${c}: reads`);
      const me = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => ({ token: spread[g++ % spread.length]!.token, body: ME }),
        }),
      );
      const page = await withCpu(serverProbes, () =>
        runLoad({
          url,
          clients: c,
          durationMs: DURATION_MS,
          maxRequests: MAX_REQUESTS,
          next: () => ({ token: readers[g++ % readers.length]!.token, body: PAGE }),
        }),
      );
      out[`c${c}`] = {
        createTask_spread: {
          ...vsPg(createSpread),
          users: SPREAD_USERS,
          share_with_conflicts: share(createSpreadStats),
        },
        createTask_one_user: {
          ...vsPg(createSolo),
          users: 1,
          share_with_conflicts: share(createSoloStats),
        },
        scheduleTask_spread: {
          ...vsPg(scheduleSpread),
          users: SPREAD_USERS,
          share_with_conflicts: share(scheduleSpreadStats),
        },
        scheduleTask_one_user: {
          ...vsPg(scheduleSolo),
          users: 1,
          share_with_conflicts: share(scheduleSoloStats),
        },
        me: { ...vsApollo(me), users: SPREAD_USERS },
        tasks_page_20: { ...vsApollo(page), users: READERS },
      };
    }
    return {
      write: {
        database: config.databaseUrl ? 'DATABASE_URL' : 'embedded (npm start default)',
        measured_ms_per_run: DURATION_MS,
        ceilings,
        ...out,
        wall_s: Math.round((performance.now() - t0) / 1000),
      },
    };
  } finally {
    if (pgUrl && process.env['DATABASE_URL']) {
      const c = new Client({ connectionString: pgUrl });
      await c
        .connect()
        .then(() => c.query(`DROP TABLE IF EXISTS ${table}`))
        .catch(() => undefined)
        .finally(() => c.end().catch(() => undefined));
    }
    // The server stops its embedded Postgres on SIGTERM (graceful shutdown).
    for (const child of children.reverse()) await stop(child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
