/**
 * The embedded Postgres default as a user meets it: a port per data directory (recorded, so any
 * number run at once), the reason from Postgres's own log when it cannot start, and supervision:
 * killed under a running server, it is restarted, /readyz says 503 meanwhile and 200 afterwards,
 * and every acknowledged change is still there. Waiting is polling with a bounded deadline.
 */
import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedStartError, failureReason, startEmbeddedPostgres } from '../../src/db/embedded';
import { gql } from '../support/graphql';
import { bin, childEnv, run } from '../support/process';
import { startTestServer } from '../support/server';

/** A fresh data directory (as root the embedded Postgres runs as `postgres`: 0755). */
function tempDataDir(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-embedded-'));
  fs.chmodSync(dir, 0o755);
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Env for a server on the embedded Postgres of `dir`, on its recorded (or a free) port. */
function embeddedEnv(dir: string): Record<string, string | undefined> {
  return { DATABASE_URL: undefined, PLANNER_JWT_SECRET: undefined, PLANNER_DATA_DIR: dir };
}

function postmasterPid(dir: string): number {
  return Number(fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
}

function recordedPort(dir: string): number {
  return Number(fs.readFileSync(path.join(dir, 'postgres.port'), 'utf8').trim());
}

/** Calls `probe` back to back until it returns true; fails after `ms`. Returns how many calls it took. */
async function until(what: string, ms: number, probe: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + ms;
  for (let calls = 1; ; calls++) {
    if (await probe()) return calls;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function readyStatus(origin: string): Promise<number> {
  const res = await fetch(`${origin}/readyz`);
  await res.text();
  return res.status;
}

/** Holds a TCP port on 127.0.0.1 until closed. */
function holdPort(port = 0): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address() as net.AddressInfo;
      resolve({ port: addr.port, close: () => new Promise((r) => srv.close(() => r())) });
    });
  });
}

const CREATE = 'mutation($t: String!) { createTask(input: { title: $t }) { ok task { id title } } }';

describe('embedded Postgres (e2e)', function () {
  this.timeout(120_000);

  it('is restarted after SIGKILL: /readyz 503 meanwhile, 200 after, no acknowledged change lost', async () => {
    const data = tempDataDir();
    try {
      const server = await startTestServer({ env: embeddedEnv(data.dir) });
      try {
        const token = await server.token(`phoenix-${randomUUID()}@example.com`);
        const acknowledged = new Map<string, string>(); // id → title
        const create = async (title: string) => {
          const r = await gql<{ createTask: { ok: boolean; task: { id: string; title: string } } }>(
            server.url,
            token,
            CREATE,
            { t: title },
          );
          if (r.data?.createTask.ok)
            acknowledged.set(r.data.createTask.task.id, r.data.createTask.task.title);
          return r;
        };
        for (let i = 0; i < 5; i++) expect((await create(`before ${i}`)).data?.createTask.ok).to.equal(true);
        expect(await readyStatus(server.origin)).to.equal(200);

        // Writers keep going across the kill; whatever they were told succeeded must survive.
        let writing = true;
        const writers = Array.from({ length: 3 }, async (_, w) => {
          for (let i = 0; writing; i++) await create(`during ${w}.${i}`);
        });

        const pid = postmasterPid(data.dir);
        process.kill(pid, 'SIGKILL');
        await until('/readyz 503', 30_000, async () => (await readyStatus(server.origin)) === 503);
        const body = (await (await fetch(`${server.origin}/readyz`)).json()) as Record<string, unknown>;
        expect(body['status']).to.equal('unavailable');
        await until('/readyz 200', 60_000, async () => (await readyStatus(server.origin)) === 200);
        writing = false;
        await Promise.all(writers);

        expect(postmasterPid(data.dir)).not.to.equal(pid);
        expect((await create('after')).data?.createTask.ok).to.equal(true);
        const all = new Map<string, string>();
        let after: string | null = null;
        for (;;) {
          const page: Awaited<ReturnType<typeof gql<{ tasks: TasksPage }>>> = await gql<{ tasks: TasksPage }>(
            server.url,
            token,
            'query($after: String) { tasks(first: 100, after: $after) { edges { node { id title } } pageInfo { hasNextPage endCursor } } }',
            { after },
          );
          expect(page.errors).to.equal(undefined);
          for (const e of page.data!.tasks.edges) all.set(e.node.id, e.node.title);
          if (!page.data!.tasks.pageInfo.hasNextPage) break;
          after = page.data!.tasks.pageInfo.endCursor;
        }
        expect(acknowledged.size).to.be.at.least(6);
        for (const [id, title] of acknowledged) expect(all.get(id), title).to.equal(title);
      } finally {
        await server.close();
      }
      // The server stopped the Postgres it restarted.
      expect(fs.existsSync(path.join(data.dir, 'pg', 'postmaster.pid'))).to.equal(false);
    } finally {
      data.remove();
    }
  });

  it('gives each data directory its own recorded port, so two run at once, and keeps it across restarts', async () => {
    const a = tempDataDir();
    const b = tempDataDir();
    try {
      const first = await startTestServer({ env: embeddedEnv(a.dir) });
      const second = await startTestServer({ env: embeddedEnv(b.dir) });
      const portA = recordedPort(a.dir);
      try {
        expect(portA).not.to.equal(recordedPort(b.dir));
        for (const s of [first, second]) {
          expect(await readyStatus(s.origin)).to.equal(200);
          const t = await s.token('twin@example.com');
          expect((await gql(s.url, t, CREATE, { t: 'x' })).errors).to.equal(undefined);
        }
      } finally {
        await first.close();
        await second.close();
      }
      const again = await startTestServer({ env: embeddedEnv(a.dir) });
      try {
        expect(recordedPort(a.dir)).to.equal(portA);
        expect(postmasterPortOf(a.dir)).to.equal(portA);
      } finally {
        await again.close();
      }
      // The recorded port taken by someone else: a new free one is chosen and recorded.
      const squatter = await holdPort(portA);
      try {
        const moved = await startTestServer({ env: embeddedEnv(a.dir) });
        try {
          expect(recordedPort(a.dir)).not.to.equal(portA);
          expect(await readyStatus(moved.origin)).to.equal(200);
        } finally {
          await moved.close();
        }
      } finally {
        await squatter.close();
      }
    } finally {
      a.remove();
      b.remove();
    }
  });

  it("names the reason from Postgres's own log when it cannot start (a fixed port in use)", async () => {
    const data = tempDataDir();
    const squatter = await holdPort();
    try {
      let error: unknown = null;
      await startEmbeddedPostgres({
        dataDir: data.dir,
        password: randomBytes(12).toString('hex'),
        port: squatter.port,
      }).then(
        (h) => h.stop(),
        (err: unknown) => (error = err),
      );
      expect(error).to.be.instanceOf(EmbeddedStartError);
      const e = error as EmbeddedStartError;
      expect(e.message).to.contain(`port ${squatter.port}`);
      expect(e.reason).to.match(/could not bind|Address already in use|could not create any TCP\/IP sockets/);
      expect(e.logFile).to.equal(path.join(data.dir, 'postgres.log'));
      expect(fs.readFileSync(e.logFile, 'utf8')).to.match(/Address already in use/);

      // npm start says the same on one line (and exits 1).
      const r = await run(
        bin('tsx'),
        ['src/server/main.ts'],
        childEnv({ ...embeddedEnv(data.dir), PLANNER_EMBEDDED_PG_PORT: String(squatter.port), PORT: '0' }),
      );
      expect(r.code, r.stderr).to.equal(1);
      expect(r.stderr).to.match(
        /^planner: failed to start: embedded Postgres did not start .*Address already in use/m,
      );
    } finally {
      await squatter.close();
      data.remove();
    }
  });

  it('failureReason keeps the lines that explain, else the last ones', () => {
    expect(
      failureReason([
        'LOG:  starting PostgreSQL 18.4',
        '[STDERR] FATAL:  data directory "/x" has invalid permissions',
        'DETAIL:  Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).',
      ]),
    ).to.equal(
      'FATAL:  data directory "/x" has invalid permissions | DETAIL:  Permissions should be u=rwx (0700) or u=rwx,g=rx (0750).',
    );
    expect(failureReason(['a', 'b'])).to.equal('a | b');
    expect(failureReason([])).to.match(/without saying why/);
  });
});

interface TasksPage {
  edges: Array<{ node: { id: string; title: string } }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

function postmasterPortOf(dir: string): number {
  return Number(fs.readFileSync(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
}
