/**
 * Live-event fan-out: one user, many graphql-ws subscribers of `planEvents`, on the real app
 * (startApp: HTTP + WebSocket server, event hub, LISTEN/NOTIFY) over loopback.
 *
 * - latency: 1,000 and then 5,000 subscribers; events are made one at a time with the real
 *   WorldUpdater (createTask) and each is awaited at every subscriber before the next. Latency =
 *   receipt at a subscriber − the moment createTask returned (just after COMMIT), over every
 *   (event, subscriber) pair: p50/p99/max.
 * - sustained, 1,000 subscribers: (a) createTask back to back for a fixed time without waiting for
 *   delivery (the writer is the limit: one user's operations are serialised by the user lock and
 *   each commit waits for the disk); (b) a burst of outbox events, 10 per transaction, written with
 *   the writers' protocol (user row lock, next seq, pg_notify), payloads copied from a real
 *   CREATE_TASK event, to find what the fan-out itself sustains. events/s = events / (last receipt
 *   at the last subscriber − first commit started).
 *
 * The subscribers run in a worker thread (graphql-ws clients on `ws`) so that their JSON parsing
 * does not share the server's event loop; on a 2-core machine Postgres, the server and the clients
 * still share the cores. Subscriptions are spread 500 per socket (PLANNER_MAX_SUBSCRIPTIONS_PER_CONNECTION
 * raised for the bench) and the per-connection send budget is raised to its maximum, since 500
 * subscriptions on one socket multiply every event by 500.
 *
 * Database: BENCH_DATABASE_URL when set (migrations are applied; a fresh user is created), otherwise
 * an embedded Postgres in a temporary directory, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { loadConfig } from '../src/config/config';
import { mintToken } from '../src/server/auth';
import { silentLogger } from '../src/server/logger';
import { startApp, type RunningApp } from '../src/server/app';
import type { Actor } from '../src/world/views';

const PER_SOCKET = 500;
const LATENCY_EVENTS_1K = Number(process.env['BENCH_FANOUT_EVENTS'] ?? 30);
const LATENCY_EVENTS_5K = Math.max(5, Math.floor(LATENCY_EVENTS_1K / 2));
const SUSTAIN_MS = Number(process.env['BENCH_FANOUT_SUSTAIN_MS'] ?? 8_000);
const SUSTAIN_MAX_EVENTS = 1_000;
const BURST_EVENTS = 500;
const BURST_PER_TX = 10;
/** Gives up on a phase (and fails the bench) rather than hanging. */
const WAIT_LIMIT_MS = 60_000;

function log(msg: string): void {
  process.stderr.write(`[bench:fanout] ${msg}\n`);
}

/** Absolute high-resolution time, comparable between threads. */
const now = () => performance.timeOrigin + performance.now();

const round = (x: number) => Math.round(x * 100) / 100;

function percentiles(samples: Float64Array | number[]): {
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  samples: number;
} {
  const s = Float64Array.from(samples).sort();
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return {
    p50_ms: round(at(0.5)),
    p99_ms: round(at(0.99)),
    max_ms: round(s[s.length - 1]!),
    samples: s.length,
  };
}

/** The subscribers' side, run in a worker thread (plain JavaScript: no TypeScript loader needed). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { performance } = require('node:perf_hooks');
const { createClient } = require(workerData.graphqlWs);
const WebSocket = require(workerData.ws);
const now = () => performance.timeOrigin + performance.now();
const total = workerData.subscribers;
const pending = new Map();
const clients = [];
let failed = false;
const fail = (what, err) => {
  if (failed) return;
  failed = true;
  parentPort.postMessage({ type: 'error', message: what + ': ' + (err && err.message ? err.message : JSON.stringify(err)) });
};
function received(cursor) {
  const t = now();
  let p = pending.get(cursor);
  if (!p) { p = { n: 0, times: new Float64Array(total) }; pending.set(cursor, p); }
  p.times[p.n++] = t;
  if (p.n === total) {
    pending.delete(cursor);
    parentPort.postMessage({ type: 'all', cursor, times: p.times }, [p.times.buffer]);
  }
}
const query = 'subscription($since: String) { planEvents(since: $since) { cursor type at payload } }';
for (let c = 0; c * workerData.perSocket < total; c++) {
  const client = createClient({
    url: workerData.wsUrl,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    connectionParams: { authorization: 'Bearer ' + workerData.token },
    onNonLazyError: (e) => fail('socket', e),
    on: { closed: (e) => { if (!workerData.closing) fail('closed ' + (e && e.code), e); } },
  });
  clients.push(client);
  const n = Math.min(workerData.perSocket, total - c * workerData.perSocket);
  for (let i = 0; i < n; i++) {
    client.subscribe({ query, variables: { since: workerData.since } }, {
      next: (r) => (r.errors ? fail('next', r.errors) : received(r.data.planEvents.cursor)),
      error: (e) => fail('subscription', e),
      complete: () => undefined,
    });
  }
}
parentPort.on('message', async (m) => {
  if (m.type === 'close') {
    workerData.closing = true;
    await Promise.all(clients.map((c) => c.dispose()));
    parentPort.postMessage({ type: 'closed' });
  }
});
`;

interface Subscribers {
  /** Resolves with every subscriber's receipt time once all have the event with this cursor. */
  all(cursor: number): Promise<Float64Array>;
  /** Drops stored receipts of cursors up to this one (those nobody waits for). */
  forget(upTo: number): void;
  close(): Promise<void>;
}

function startSubscribers(wsUrl: string, token: string, subscribers: number, since: number): Subscribers {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      wsUrl,
      token,
      subscribers,
      perSocket: PER_SOCKET,
      since: String(since),
      graphqlWs: require.resolve('graphql-ws'),
      ws: require.resolve('ws'),
      closing: false,
    },
  });
  const done = new Map<number, Float64Array>();
  const waiting = new Map<number, { resolve: (t: Float64Array) => void; reject: (e: Error) => void }>();
  let failure: Error | null = null;
  let closed: (() => void) | null = null;
  worker.on('message', (m: { type: string; cursor?: string; times?: Float64Array; message?: string }) => {
    if (m.type === 'all') {
      const c = Number(m.cursor);
      const w = waiting.get(c);
      if (w) {
        waiting.delete(c);
        w.resolve(m.times!);
      } else done.set(c, m.times!);
    } else if (m.type === 'error') {
      failure = new Error(`subscriber failure: ${m.message}`);
      for (const w of waiting.values()) w.reject(failure);
      waiting.clear();
    } else if (m.type === 'closed') closed?.();
  });
  worker.on('error', (err) => {
    failure = err;
    for (const w of waiting.values()) w.reject(err);
  });
  return {
    all(cursor) {
      if (failure) return Promise.reject(failure);
      const have = done.get(cursor);
      if (have) {
        done.delete(cursor);
        return Promise.resolve(have);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(cursor);
          reject(
            new Error(`event ${cursor} did not reach all ${subscribers} subscribers in ${WAIT_LIMIT_MS} ms`),
          );
        }, WAIT_LIMIT_MS);
        waiting.set(cursor, {
          resolve: (t) => {
            clearTimeout(timer);
            resolve(t);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
    forget(upTo) {
      for (const c of [...done.keys()]) if (c <= upTo) done.delete(c);
    },
    async close() {
      await new Promise<void>((resolve) => {
        closed = resolve;
        worker.postMessage({ type: 'close' });
      });
      await worker.terminate();
    },
  };
}

async function head(app: RunningApp, userId: string): Promise<number> {
  const rows = (await app.world.dataSource.query('SELECT event_seq FROM users WHERE id = $1', [
    userId,
  ])) as Array<{
    event_seq: string;
  }>;
  return Number(rows[0]!.event_seq);
}

/** Creates a task (one plan event, no conflict) and returns the moment it committed (≈ returned). */
async function commitOne(app: RunningApp, actor: Actor, title: string): Promise<number> {
  const r = await app.world.updater.createTask(actor, { title });
  const t = now();
  if (!r.ok) throw new Error(`createTask failed: ${JSON.stringify(r.errors)}`);
  return t;
}

/** Subscribers connect and go live (a warm-up event reaches all of them); returns the setup time. */
async function connect(
  app: RunningApp,
  actor: Actor,
  token: string,
  n: number,
): Promise<{ subs: Subscribers; setupMs: number }> {
  const wsUrl = app.url.replace(/^http/, 'ws');
  const started = performance.now();
  const since = await head(app, actor.userId);
  const subs = startSubscribers(wsUrl, token, n, since);
  // since = the head: the warm-up reaches every subscriber even if its subscription registers after it.
  await commitOne(app, actor, 'warm-up');
  await subs.all(since + 1);
  return { subs, setupMs: Math.round(performance.now() - started) };
}

async function latency(
  app: RunningApp,
  actor: Actor,
  subs: Subscribers,
  events: number,
): Promise<Float64Array> {
  const samples: number[] = [];
  let cursor = await head(app, actor.userId);
  for (let i = 0; i < events; i++) {
    const committed = await commitOne(app, actor, `latency ${i}`);
    cursor += 1;
    const times = await subs.all(cursor);
    for (const t of times) samples.push(t - committed);
  }
  return Float64Array.from(samples);
}

async function sustainedWriter(app: RunningApp, actor: Actor, subs: Subscribers, subscribers: number) {
  const first = await head(app, actor.userId);
  const commits: number[] = [];
  const started = now();
  const waits: Array<Promise<Float64Array>> = [];
  while (now() - started < SUSTAIN_MS && commits.length < SUSTAIN_MAX_EVENTS) {
    commits.push(await commitOne(app, actor, `sustained ${commits.length}`));
    const wait = subs.all(first + commits.length);
    wait.catch(() => undefined); // awaited below; a failure must not crash the run before that
    waits.push(wait);
  }
  const writerDone = now();
  const all = await Promise.all(waits);
  const lastReceipt = Math.max(...all.map((t) => Math.max(...t)));
  const lat: number[] = [];
  all.forEach((times, i) => {
    for (const t of times) lat.push(t - commits[i]!);
  });
  const seconds = (lastReceipt - started) / 1000;
  return {
    events: commits.length,
    writer_events_per_s: round(commits.length / ((writerDone - started) / 1000)),
    delivered_events_per_s: round(commits.length / seconds),
    deliveries_per_s: Math.round((commits.length * subscribers) / seconds),
    drain_after_last_commit_ms: round(lastReceipt - writerDone),
    latency: percentiles(lat),
  };
}

async function burst(app: RunningApp, actor: Actor, subs: Subscribers, subscribers: number) {
  const ds = app.world.dataSource;
  const sample = (await ds.query(
    `SELECT payload::text AS payload FROM events WHERE user_id = $1 AND topic = 'plan' AND type = 'CREATE_TASK' ORDER BY seq DESC LIMIT 1`,
    [actor.userId],
  )) as Array<{ payload: string }>;
  const payload = sample[0]!.payload;
  const first = await head(app, actor.userId);
  const last = first + BURST_EVENTS;
  // Each subscriber receives in seq order: the last event at every subscriber means all of them.
  const waitLast = subs.all(last);
  waitLast.catch(() => undefined); // awaited below
  const started = now();
  for (let written = 0; written < BURST_EVENTS; written += BURST_PER_TX) {
    const n = Math.min(BURST_PER_TX, BURST_EVENTS - written);
    const qr = ds.createQueryRunner();
    await qr.connect();
    try {
      await qr.startTransaction();
      const rows = (await qr.query('SELECT event_seq FROM users WHERE id = $1 FOR UPDATE', [
        actor.userId,
      ])) as Array<{
        event_seq: string;
      }>;
      const seq = Number(rows[0]!.event_seq);
      await qr.query(
        `INSERT INTO events (user_id, seq, topic, type, payload, created_at)
         SELECT $1, $2::bigint + g, 'plan', 'CREATE_TASK', $3::jsonb, now() FROM generate_series(1, $4::int) AS g`,
        [actor.userId, seq, payload, n],
      );
      await qr.query('UPDATE users SET event_seq = $2 WHERE id = $1', [actor.userId, seq + n]);
      await qr.query('SELECT pg_notify($1, $2)', ['planner_events', `${actor.userId}:${seq + n}`]);
      await qr.commitTransaction();
    } finally {
      await qr.release();
    }
  }
  const writerDone = now();
  const lastTimes = await waitLast;
  subs.forget(last);
  const lastReceipt = Math.max(...lastTimes);
  const seconds = (lastReceipt - started) / 1000;
  return {
    events: BURST_EVENTS,
    events_per_transaction: BURST_PER_TX,
    payload_bytes: payload.length,
    writer_events_per_s: round(BURST_EVENTS / ((writerDone - started) / 1000)),
    delivered_events_per_s: round(BURST_EVENTS / seconds),
    deliveries_per_s: Math.round((BURST_EVENTS * subscribers) / seconds),
    drain_after_last_commit_ms: round(lastReceipt - writerDone),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const external = process.env['BENCH_DATABASE_URL']?.trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-bench-fanout-'));
  fs.chmodSync(dir, 0o755); // as root, initdb runs as `postgres`, who must enter the dir
  const config = loadConfig({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    ...(external ? { DATABASE_URL: external } : { PLANNER_DATA_DIR: dir, PLANNER_EMBEDDED_PG_PORT: '0' }),
    PLANNER_JWT_SECRET: randomBytes(32).toString('base64url'),
    LOG_LEVEL: 'silent',
    PLANNER_MAX_SUBSCRIPTIONS_PER_CONNECTION: String(PER_SOCKET),
    PLANNER_WS_MAX_BUFFERED_BYTES: String(1_073_741_824),
  });
  log(external ? 'using BENCH_DATABASE_URL' : `starting the app with an embedded Postgres in ${dir}`);
  const app = await startApp(config, { log: silentLogger });
  try {
    const user = await app.world.users.findOrCreateByEmail(
      `bench-fanout-${randomBytes(4).toString('hex')}@example.com`,
    );
    const actor: Actor = { userId: user.id, actor: `user:${user.id}` };
    const token = mintToken(
      app.jwtSecret,
      config.jwtIssuer,
      { userId: user.id, email: user.email, role: 'USER' },
      3600,
      new Date(),
    );

    log(`1,000 subscribers: connecting`);
    const k1 = await connect(app, actor, token, 1_000);
    log(`1,000 subscribers: ${LATENCY_EVENTS_1K} events one at a time`);
    const lat1k = percentiles(await latency(app, actor, k1.subs, LATENCY_EVENTS_1K));
    log(`1,000 subscribers: createTask back to back for ${SUSTAIN_MS} ms`);
    const sustained = await sustainedWriter(app, actor, k1.subs, 1_000);
    log(`1,000 subscribers: burst of ${BURST_EVENTS} outbox events`);
    const burst1k = await burst(app, actor, k1.subs, 1_000);
    await k1.subs.close();

    log(`5,000 subscribers: connecting`);
    const k5 = await connect(app, actor, token, 5_000);
    log(`5,000 subscribers: ${LATENCY_EVENTS_5K} events one at a time`);
    const lat5k = percentiles(await latency(app, actor, k5.subs, LATENCY_EVENTS_5K));
    await k5.subs.close();

    return {
      fanout: {
        cores: os.cpus().length,
        database: external ? 'BENCH_DATABASE_URL' : 'embedded PostgreSQL (temp dir)',
        subscriptions_per_socket: PER_SOCKET,
        latency_commit_to_receipt: {
          subscribers_1000: { ...lat1k, events: LATENCY_EVENTS_1K, setup_ms: k1.setupMs },
          subscribers_5000: { ...lat5k, events: LATENCY_EVENTS_5K, setup_ms: k5.setupMs },
        },
        sustained_1000_subscribers: { createTask_back_to_back: sustained, outbox_burst: burst1k },
      },
    };
  } finally {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
