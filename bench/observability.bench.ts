/**
 * `npm run bench observability`: tracing and rollout metrics ON vs OFF, in one run, on one database.
 *
 * - ON: the server exactly as `npm start` runs it (package.json's start script, default
 *   configuration): the OpenTelemetry SDK preloaded with http/pg/graphql instrumentation, an
 *   operation span per mutation with its flag events, the rollout SpanProcessor and the batched
 *   Postgres flush. No exporter (the default start), so this is the in-process cost.
 * - OFF: the same command with OTEL_SDK_DISABLED=true (no SDK: spans are non-recording, no rollout
 *   figures), on the same Postgres (the ON server's embedded one, or DATABASE_URL).
 * - Load: closed-loop createTask over keep-alive HTTP, 10 clients over 100 users, in alternating
 *   rounds (on, off, on, off, …) so drift on a shared machine hits both; p50/p95/p99 per mode over
 *   its rounds and the p95 difference (target: under +5 ms).
 *
 * BENCH_OBS_MS (default 3000) per round, 4 rounds per mode, at most 20,000 requests per round.
 */
import { freePort } from './support/env';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config/config';
import { createDataSource } from '../src/db/data-source';
import { loadOrCreateSecrets } from '../src/db/secrets';
import { mintToken } from '../src/server/auth';
import { systemClock } from '../src/world/clock';
import { UserService } from '../src/world/user-service';
import { runLoad, type LoadResult } from './support/load';

const ROOT = path.resolve(__dirname, '..');
const ROUND_MS = Number(process.env['BENCH_OBS_MS'] ?? 3000);
const ROUNDS = 4;
const CLIENTS = 10;
const USERS = 100;

const log = (msg: string) => void process.stderr.write(`[bench:observability] ${msg}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

async function start(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; url: string }> {
  const script = (
    JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts['start']!;
  const [command, ...args] = script.split(/\s+/);
  const child = spawn(path.join(ROOT, 'node_modules', '.bin', command!), args, {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (tail = (tail + d).slice(-2000)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server not ready after 120 s')), 120_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /planner listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${tail}`));
    });
  });
  child.stdout!.resume();
  return { child, url };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const CREATE = 'mutation($input: CreateTaskInput!) { createTask(input: $input) { ok errors { code } } }';

export async function run(): Promise<Record<string, unknown>> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-bench-obs-'));
  const children: ChildProcess[] = [];
  try {
    const [portOn, portOff, pgPort] = [await freePort(), await freePort(), await freePort()];
    const base: NodeJS.ProcessEnv = { ...process.env, HOST: '127.0.0.1', PLANNER_DATA_DIR: dataDir };
    delete base['OTEL_SDK_DISABLED'];
    const envOn = { ...base, PORT: String(portOn), PLANNER_EMBEDDED_PG_PORT: String(pgPort) };
    log('starting the ON server as npm start does');
    const on = await start(envOn);
    children.push(on.child);
    const config = loadConfig(envOn);
    const secrets = loadOrCreateSecrets(dataDir);
    const pgUrl =
      config.databaseUrl ??
      `postgres://postgres:${encodeURIComponent(secrets.pgPassword)}@127.0.0.1:${pgPort}/planner`;
    const jwtSecret = config.jwtSecret ?? secrets.jwtSecret;
    log('starting the OFF server (OTEL_SDK_DISABLED=true) on the same database');
    const off = await start({
      ...base,
      PORT: String(portOff),
      DATABASE_URL: pgUrl,
      PLANNER_JWT_SECRET: jwtSecret,
      OTEL_SDK_DISABLED: 'true',
    });
    children.push(off.child);

    const ds = createDataSource(pgUrl, { poolSize: 4, applicationName: 'planner-bench' });
    await ds.initialize();
    const users = new UserService(ds, systemClock);
    const tag = randomBytes(3).toString('hex');
    const tokens: string[] = [];
    for (let i = 0; i < USERS; i++) {
      const u = await users.findOrCreateByEmail(`bench-obs-${tag}-${i}@example.com`);
      tokens.push(
        mintToken(
          jwtSecret,
          config.jwtIssuer,
          { userId: u.id, email: u.email, role: u.role },
          3600,
          new Date(),
        ),
      );
    }
    await ds.destroy();

    const load = (url: string) =>
      runLoad({
        url,
        clients: CLIENTS,
        durationMs: ROUND_MS,
        maxRequests: 20_000,
        next: (client, n) => ({
          body: JSON.stringify({ query: CREATE, variables: { input: { title: `bench ${n}` } } }),
          token: tokens[(client * 7 + n) % USERS]!,
        }),
      });
    const results: Record<'on' | 'off', LoadResult[]> = { on: [], off: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const res = await load(mode === 'on' ? on.url : off.url);
        log(`round ${r + 1} ${mode}: ${res.rps} req/s p95 ${res.p95_ms} ms`);
        results[mode].push(res);
      }
    }
    const summary = (list: LoadResult[]) => ({
      rounds: list.length,
      rps: round(list.reduce((s, x) => s + x.rps, 0) / list.length, 1),
      p50_ms: round(list.reduce((s, x) => s + x.p50_ms, 0) / list.length),
      p95_ms: round(list.reduce((s, x) => s + (x.p95_ms ?? NaN), 0) / list.length),
      p99_ms: round(list.reduce((s, x) => s + x.p99_ms, 0) / list.length),
      errors: list.reduce((s, x) => s + x.errors, 0),
    });
    const sOn = summary(results.on);
    const sOff = summary(results.off);
    return {
      observability: {
        what: `createTask, ${CLIENTS} clients over ${USERS} users, ${ROUNDS} alternating rounds of ${ROUND_MS} ms per mode`,
        tracing_on: sOn,
        tracing_off: sOff,
        p95_difference_ms: round(sOn.p95_ms - sOff.p95_ms),
        rps_ratio_on_to_off: round(sOn.rps / sOff.rps, 3),
        target: 'p95 difference under +5 ms',
      },
    };
  } finally {
    for (const c of children.reverse()) await stop(c);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
