/**
 * Faults (issue 10, item 4), against started servers with real HTTP and WebSocket clients:
 *
 * - the database restarted (embedded Postgres: stopped and started; system Postgres: every backend
 *   of the test's own database terminated) during a burst of 200 concurrent mutations: answers are
 *   `ok` or a thrown UNAVAILABLE with a retry hint, never INTERNAL; every `ok` is stored, nothing is
 *   half-written, retries with the same keys store each change exactly once, /readyz recovers;
 * - the event listener's connection killed, or silently cut (half-open, through a TCP proxy that
 *   stops forwarding): subscribers still receive every event, in order;
 * - one user's burst of 50 concurrent mutations does not starve another user (per-user in-flight
 *   cap, RATE_LIMITED with a retry hint), and a row lock held too long answers UNAVAILABLE;
 * - clients that disconnect mid-request or mid-subscription leave no pooled connection, subscriber
 *   or in-flight slot behind;
 * - expired idempotency keys are swept for every user, not only on that user's next keyed request.
 */
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { migrateUp, createDataSource } from '../../src/db/data-source';
import { startEmbeddedPostgres, type EmbeddedHandle } from '../../src/db/embedded';
import { admissionOf } from '../../src/world/admission';
import { ManualClock } from '../../src/world/clock';
import { testDatabaseUrl } from '../support/db';
import { collect, deferred, gql, wsClient, type GqlResponse } from '../support/graphql';
import { storedInvariantViolations, withClient } from '../support/invariants';
import { startTestServer, type TestServer } from '../support/server';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

const CREATE = `mutation Create($input: CreateTaskInput!, $key: String) {
  createTask(input: $input, idempotencyKey: $key) { ok errors { code } task { id title } operation { id } }
}`;
const PLAN = `subscription Plan($since: String) { planEvents(since: $since) { cursor type payload } }`;

interface CreateData {
  createTask: {
    ok: boolean;
    errors: Array<{ code: string }>;
    task: { id: string; title: string } | null;
    operation: { id: string } | null;
  };
}

/** The pg pool under a TypeORM DataSource (for leak checks). */
function poolOf(ds: DataSource): Pool {
  return (ds.driver as unknown as { master: Pool }).master;
}

/** Resolves once the pool has no checked-out client and nobody waiting (on its release events). */
function poolIdle(pool: Pool): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (pool.idleCount === pool.totalCount && pool.waitingCount === 0) {
        pool.off('release', onRelease);
        pool.off('remove', onRelease);
        resolve();
      }
    };
    const onRelease = () => setImmediate(check);
    pool.on('release', onRelease);
    pool.on('remove', onRelease);
    check();
  });
}

/** The single thrown code of a response, or 'ok' / 'not ok'. */
function outcome(res: GqlResponse<CreateData>): string {
  if (res.errors && res.errors.length > 0) return res.errors.map((e) => e.extensions?.code ?? '?').join(',');
  return res.data?.createTask.ok
    ? 'ok'
    : `not ok: ${res.data?.createTask.errors.map((e) => e.code).join(',')}`;
}

async function userIdOf(server: TestServer, email: string): Promise<string> {
  return (await server.world.users.findOrCreateByEmail(email)).id;
}

/** Holds `userId`'s row lock in an open transaction until `release()` (the write path queues behind it). */
async function holdUserLock(url: string, userId: string): Promise<{ release(): Promise<void> }> {
  const c = new Client({ connectionString: url, application_name: 'planner-test-lock-holder' });
  await c.connect();
  await c.query('BEGIN');
  await c.query('SELECT id FROM users WHERE id = $1 FOR UPDATE', [userId]);
  return {
    release: async () => {
      await c.query('ROLLBACK');
      await c.end();
    },
  };
}

describe('faults', function () {
  this.timeout(120_000);

  describe('Postgres restarted during a burst of 200 concurrent mutations', () => {
    const external = Boolean(process.env['TEST_DATABASE_URL']?.trim());
    let dir: string | null = null;
    let pg: EmbeddedHandle | null = null;
    let url: string;
    let password: string;
    let server: TestServer;

    before(async function () {
      this.timeout(180_000);
      if (external) {
        url = testDatabaseUrl(); // only this run's database is disturbed
      } else {
        // A dedicated embedded Postgres: the run's own one is shared by every other test.
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-restart-pg-'));
        fs.chmodSync(dir, 0o755);
        password = randomBytes(18).toString('base64url');
        pg = await startEmbeddedPostgres({ dataDir: dir, password, port: 0 });
        url = pg.url;
        const ds = createDataSource(url, { poolSize: 2, applicationName: 'planner-test-setup' });
        await ds.initialize();
        try {
          await migrateUp(ds);
        } finally {
          await ds.destroy();
        }
      }
      server = await startTestServer({ env: { DATABASE_URL: url } });
    });

    after(async function () {
      this.timeout(60_000);
      await server?.close();
      await pg?.stop();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Stops and starts the database (embedded), or terminates every backend of its database (system). */
    async function restartDatabase(): Promise<void> {
      if (pg) {
        const port = pg.port;
        await pg.stop();
        pg = await startEmbeddedPostgres({ dataDir: dir!, password, port });
      } else {
        await withClient(url, async (c) => {
          await c.query(
            `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()`,
          );
        });
      }
    }

    it('answers ok or UNAVAILABLE (retry hint), stores every ok, writes nothing by halves, and /readyz recovers', async () => {
      const users = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const email = `restart-${i}-${randomUUID()}@example.com`;
          return { token: await server.token(email), id: await userIdOf(server, email) };
        }),
      );
      const requests = Array.from({ length: 200 }, (_, i) => ({
        user: users[i % users.length]!,
        title: `burst ${i}`,
        key: `restart-${i}-${randomUUID()}`,
      }));
      const send = (r: (typeof requests)[number]) =>
        gql<CreateData>(server.url, r.user.token, CREATE, { input: { title: r.title }, key: r.key });

      // The restart begins once 20 answers are in: the rest meet it in flight or waiting for the pool.
      let answered = 0;
      let restarted: Promise<void> = Promise.resolve();
      const results = await Promise.all(
        requests.map(async (r) => {
          const res = await send(r);
          if (++answered === 20) restarted = restartDatabase();
          return res;
        }),
      );
      await restarted;

      const codes = results.map(outcome);
      const unexpected = codes.filter((c) => c !== 'ok' && c !== 'UNAVAILABLE');
      expect(unexpected, 'answers other than ok / UNAVAILABLE').to.deep.equal([]);
      const unavailable = results.filter((r) => outcome(r) === 'UNAVAILABLE');
      expect(unavailable.length, 'requests that met the outage').to.be.greaterThan(0);
      for (const r of unavailable) {
        expect(r.errors![0]!.extensions!['retryAfterMs']).to.be.a('number').and.greaterThan(0);
        expect(r.errors![0]!.message).to.not.match(/ECONN|terminat|57P0/i); // no database detail leaks
      }

      // /readyz recovers without restarting the server.
      let ready = 0;
      for (let attempt = 0; attempt < 5 && ready !== 200; attempt++)
        ready = (await fetch(`${server.origin}/readyz`)).status;
      expect(ready).to.equal(200);

      // Every ok is stored.
      const okTasks = results.filter((r) => outcome(r) === 'ok').map((r) => r.data!.createTask.task!.id);
      const stored = await withClient(url, async (c) =>
        (
          await c.query<{ id: string }>('SELECT id FROM tasks WHERE id = ANY($1::uuid[])', [okTasks])
        ).rows.map((r) => r.id),
      );
      expect(new Set(stored)).to.deep.equal(new Set(okTasks));

      // Retrying the refused ones with the same keys stores each change exactly once.
      const retried = await Promise.all(
        requests.filter((_, i) => outcome(results[i]!) !== 'ok').map((r) => send(r)),
      );
      expect(retried.map(outcome).filter((c) => c !== 'ok')).to.deep.equal([]);
      const titles = await withClient(url, async (c) =>
        (
          await c.query<{ title: string }>('SELECT title FROM tasks WHERE user_id = ANY($1::uuid[])', [
            users.map((u) => u.id),
          ])
        ).rows.map((r) => r.title),
      );
      expect(titles.length).to.equal(200);
      expect(new Set(titles).size).to.equal(200);

      // Nothing half-written: every operation has its changes and event, every task its operation.
      expect(
        await storedInvariantViolations(
          url,
          users.map((u) => u.id),
        ),
      ).to.deep.equal([]);
    });
  });

  describe('the event listener connection', () => {
    let writer: TestServer;
    let reader: TestServer;
    let proxy: TcpProxy;

    before(async () => {
      writer = await startTestServer();
      // The reader reaches Postgres through a proxy that can cut its LISTEN connection silently.
      const target = new URL(testDatabaseUrl());
      proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
      reader = await startTestServer({
        env: { DATABASE_URL: proxy.urlFor(testDatabaseUrl()), PLANNER_EVENTS_HEARTBEAT_MS: '200' },
      });
    });

    after(async () => {
      await reader?.close();
      await writer?.close();
      await proxy?.close();
    });

    async function scenario(cut: () => Promise<void>): Promise<void> {
      const email = `listener-${randomUUID()}@example.com`;
      const writerToken = await writer.token(email);
      const h = wsClient(reader.wsUrl, await reader.token(email));
      try {
        await h.connected;
        const plan = collect<{ planEvents: { cursor: string; payload: { changes: unknown[] } } }>(h.client, {
          query: PLAN,
          variables: { since: '0' },
        });
        const create = async (title: string) => {
          const res = await gql<CreateData>(writer.url, writerToken, CREATE, { input: { title } });
          expect(outcome(res)).to.equal('ok');
        };
        await create('before');
        await plan.take(1);
        const opens = reader.events.listenerConnections;
        await cut();
        for (const title of ['during 1', 'during 2', 'during 3']) await create(title);
        const events = await plan.take(4); // arrives only once the reader noticed the cut and re-read
        const titles = events.map(
          (e) =>
            (e.data!.planEvents.payload.changes as Array<{ field: string; after: unknown }>).find(
              (c) => c.field === 'title',
            )?.after,
        );
        expect(titles).to.deep.equal(['before', 'during 1', 'during 2', 'during 3']);
        expect(events.map((e) => Number(e.data!.planEvents.cursor))).to.deep.equal([1, 2, 3, 4]);
        expect(reader.events.listenerConnections).to.be.greaterThan(opens);
        await create('after');
        const all = await plan.take(5);
        expect(all.map((e) => Number(e.data!.planEvents.cursor))).to.deep.equal([1, 2, 3, 4, 5]);
      } finally {
        await h.dispose();
      }
    }

    it('silently cut (half-open): the heartbeat notices, reconnects and re-reads; every event arrives in order', async () => {
      await scenario(async () => {
        expect(proxy.freeze('planner-events')).to.equal(1);
      });
    });

    it('killed (pg_terminate_backend): every event arrives in order', async () => {
      await scenario(async () => {
        const killed = await withClient(
          testDatabaseUrl(),
          async (c) =>
            (
              await c.query(
                `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = 'planner-events' AND datname = current_database()`,
              )
            ).rowCount,
        );
        expect(killed).to.be.at.least(2); // the reader's (through the proxy) and the writer's
      });
    });
  });

  describe("one user's burst", () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer({
        env: {
          PLANNER_MAX_INFLIGHT_PER_USER: '4',
          PLANNER_MAX_QUEUED_PER_USER: '0',
          PLANNER_LOCK_TIMEOUT_MS: '60000',
        },
      });
    });
    after(async () => server?.close());

    it('of 50 concurrent mutations does not starve other users: over the cap it is RATE_LIMITED', async () => {
      const aEmail = `burst-a-${randomUUID()}@example.com`;
      const a = { token: await server.token(aEmail), id: await userIdOf(server, aEmail) };
      const bToken = await server.token(`burst-b-${randomUUID()}@example.com`);
      // A's admitted operations all wait on A's row lock, held here until B is done.
      const lock = await holdUserLock(testDatabaseUrl(), a.id);
      const log: string[] = [];
      const cap = server.config.maxInFlightPerUser;
      const refusalsIn = deferred<void>();
      let refusals = 0;
      const burst = Array.from({ length: 50 }, (_, i) =>
        gql<CreateData>(server.url, a.token, CREATE, { input: { title: `a ${i}` } }).then((r) => {
          const o = outcome(r);
          log.push(`A ${o}`);
          if (o === 'RATE_LIMITED') {
            expect(r.errors![0]!.extensions!['retryAfterMs']).to.be.a('number').greaterThan(0);
            if (++refusals === 50 - cap) refusalsIn.resolve();
          }
          return o;
        }),
      );
      try {
        await refusalsIn.promise; // without the cap A's 50 would hold every pooled connection instead
        expect(admissionOf(server.world).count(a.id)).to.equal(cap);
        for (let i = 0; i < 10; i++) {
          const r = await gql<CreateData>(server.url, bToken, CREATE, { input: { title: `b ${i}` } });
          log.push(`B ${outcome(r)}`);
        }
      } finally {
        await lock.release();
      }
      const aOutcomes = await Promise.all(burst);
      expect(aOutcomes.filter((o) => o === 'ok').length).to.equal(cap);
      expect(aOutcomes.filter((o) => o === 'RATE_LIMITED').length).to.equal(50 - cap);
      // By order, not time: all of B completed while A's admitted operations were still running.
      expect(log.filter((l) => l.startsWith('B'))).to.deep.equal(Array(10).fill('B ok'));
      expect(log.slice(0, 50 - cap + 10).filter((l) => l === 'A ok')).to.deep.equal([]);
      expect(log.slice(50 - cap + 10)).to.deep.equal(Array(cap).fill('A ok'));
      expect(admissionOf(server.world).total).to.equal(0);
    });

    it('of 50 concurrent mutations with a queue: they wait in memory, not in the pool, and others are served', async () => {
      const queued = await startTestServer({
        env: { PLANNER_MAX_INFLIGHT_PER_USER: '4', PLANNER_LOCK_TIMEOUT_MS: '60000' },
      });
      try {
        const aEmail = `queue-a-${randomUUID()}@example.com`;
        const a = { token: await queued.token(aEmail), id: await userIdOf(queued, aEmail) };
        const bToken = await queued.token(`queue-b-${randomUUID()}@example.com`);
        const lock = await holdUserLock(testDatabaseUrl(), a.id);
        const log: string[] = [];
        const admission = admissionOf(queued.world);
        const burst = Array.from({ length: 50 }, (_, i) =>
          gql<CreateData>(queued.url, a.token, CREATE, { input: { title: `a ${i}` } }).then((r) => {
            log.push(`A ${outcome(r)}`);
          }),
        );
        try {
          await admission.waitFor(a.id, 4, 46); // 4 hold a connection (blocked on the lock), 46 wait in memory
          for (let i = 0; i < 10; i++) {
            const r = await gql<CreateData>(queued.url, bToken, CREATE, { input: { title: `b ${i}` } });
            log.push(`B ${outcome(r)}`);
          }
        } finally {
          await lock.release();
        }
        await Promise.all(burst);
        expect(log.slice(0, 10)).to.deep.equal(Array(10).fill('B ok'));
        expect(log.slice(10)).to.deep.equal(Array(50).fill('A ok'));
        expect(admission.total).to.equal(0);
      } finally {
        await queued.close();
      }
    });

    it('waiting longer than the lock timeout for its row lock answers UNAVAILABLE and writes nothing', async () => {
      const quick = await startTestServer({ env: { PLANNER_LOCK_TIMEOUT_MS: '100' } });
      try {
        const email = `locked-${randomUUID()}@example.com`;
        const token = await quick.token(email);
        const id = await userIdOf(quick, email);
        const lock = await holdUserLock(testDatabaseUrl(), id);
        let res: GqlResponse<CreateData>;
        try {
          res = await gql<CreateData>(quick.url, token, CREATE, { input: { title: 'blocked' } });
        } finally {
          await lock.release();
        }
        expect(outcome(res)).to.equal('UNAVAILABLE');
        expect(res.errors![0]!.extensions!['retryAfterMs']).to.be.a('number');
        const count = await withClient(testDatabaseUrl(), async (c) =>
          Number((await c.query('SELECT count(*) AS n FROM tasks WHERE user_id = $1', [id])).rows[0].n),
        );
        expect(count).to.equal(0);
        expect(
          outcome(await gql<CreateData>(quick.url, token, CREATE, { input: { title: 'later' } })),
        ).to.equal('ok');
      } finally {
        await quick.close();
      }
    });
  });

  describe('clients that disconnect', () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer();
    });
    after(async () => server?.close());

    it('mid-request leave no pooled connection or in-flight slot behind', async () => {
      const email = `abort-${randomUUID()}@example.com`;
      const token = await server.token(email);
      const id = await userIdOf(server, email);
      const lock = await holdUserLock(testDatabaseUrl(), id);
      const pool = poolOf(server.world.dataSource);
      const aborts = Array.from({ length: 3 }, () => new AbortController());
      const requests = aborts.map((ac, i) =>
        fetch(server.url, {
          method: 'POST',
          signal: ac.signal,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: CREATE, variables: { input: { title: `aborted ${i}` } } }),
        }).then(
          () => 'answered',
          () => 'aborted',
        ),
      );
      // Wait until all three are inside the server, queued on the row lock, then hang up.
      await admissionOf(server.world).waitFor(id, 3);
      for (const ac of aborts) ac.abort();
      expect(await Promise.all(requests)).to.deep.equal(['aborted', 'aborted', 'aborted']);
      await lock.release();
      await poolIdle(pool);
      expect(pool.waitingCount).to.equal(0);
      expect(pool.idleCount).to.equal(pool.totalCount);
      await admissionOf(server.world).waitFor(id, 0);
      expect(admissionOf(server.world).total).to.equal(0);
    });

    it('mid-subscription leave no subscriber or pooled connection behind', async () => {
      const email = `drop-${randomUUID()}@example.com`;
      const token = await server.token(email);
      const pool = poolOf(server.world.dataSource);
      const base = server.events.subscriptionCount;
      const handles = Array.from({ length: 10 }, () => wsClient(server.wsUrl, token));
      await Promise.all(handles.map((h) => h.connected));
      for (const h of handles) {
        collect(h.client, { query: PLAN, variables: { since: '0' } });
        collect(h.client, { query: PLAN, variables: {} });
      }
      await server.events.waitForSubscriptionCount(base + 20);
      // Abrupt: the sockets are destroyed without a close handshake.
      for (const h of handles) await h.dispose();
      await server.events.waitForSubscriptionCount(base);
      await poolIdle(pool);
      expect(pool.idleCount).to.equal(pool.totalCount);
    });
  });

  describe('expired idempotency keys', () => {
    it('are swept for every user by the periodic job (injected clock)', async () => {
      const clock = new ManualClock('2026-11-30T08:00:00Z');
      const server = await startTestServer({ clock, env: { PLANNER_IDEMPOTENCY_SWEEP_MS: '50' } });
      try {
        const ids: string[] = [];
        for (const who of ['x', 'y', 'z']) {
          const email = `sweep-${who}-${randomUUID()}@example.com`;
          const token = await server.token(email);
          ids.push(await userIdOf(server, email));
          const r = await gql<CreateData>(server.url, token, CREATE, {
            input: { title: who },
            key: `k-${who}`,
          });
          expect(outcome(r)).to.equal('ok');
        }
        const keys = () =>
          withClient(testDatabaseUrl(), async (c) =>
            Number(
              (
                await c.query('SELECT count(*) AS n FROM idempotency_keys WHERE user_id = ANY($1::uuid[])', [
                  ids,
                ])
              ).rows[0].n,
            ),
          );
        expect(await keys()).to.equal(3);
        clock.advance(23 * 3600_000);
        await server.sweeper.nextSweep(); // (one may have started before the clock moved)
        await server.sweeper.nextSweep(); // a sweep before expiry keeps them
        expect(await keys()).to.equal(3);
        clock.advance(2 * 3600_000);
        await server.sweeper.nextSweep();
        await server.sweeper.nextSweep(); // none of these users made another request
        expect(await keys()).to.equal(0);
      } finally {
        await server.close();
      }
    });
  });
});
