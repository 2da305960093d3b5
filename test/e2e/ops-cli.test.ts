/**
 * The operations commands through their real entry point (bin/planner.js, spawned) on real
 * databases: migrate (status, up --dry-run, the data-loss guard of down), backup → restore into a
 * fresh database (identical; sequences, per-user counters, event cursors and undo still work),
 * verify catching a dropped index, check against a stopped and a running server, and
 * PLANNER_MIGRATE_ON_START=false keeping /readyz at 503.
 */
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { createDataSource, migrateDown, migrateUp } from '../../src/db/data-source';
import { MIGRATIONS } from '../../src/migrations';
import { createScratchDatabase, testDatabaseUrl, type ScratchDatabase } from '../support/db';
import { collect, gql, wsClient } from '../support/graphql';
import { planOf, seedPlan, tableChecksums } from '../support/ops';
import { childEnv, run } from '../support/process';
import { startTestServer, TEST_JWT_SECRET } from '../support/server';

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

function planner(url: string, ...args: string[]) {
  return run(
    process.execPath,
    ['bin/planner.js', ...args],
    childEnv({ DATABASE_URL: url, PLANNER_JWT_SECRET: TEST_JWT_SECRET }),
  );
}

async function sql(
  url: string,
  text: string,
  params: unknown[] = [],
): Promise<Array<Record<string, unknown>>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

function tempFile(name: string): { file: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-ops-'));
  return { file: path.join(dir, name), remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

const names = MIGRATIONS.map((M) => new M().name);

describe('operations commands (e2e)', function () {
  this.timeout(600_000);
  const scratches: ScratchDatabase[] = [];
  const scratch = async (): Promise<ScratchDatabase> => {
    const s = await createScratchDatabase();
    scratches.push(s);
    return s;
  };
  after(async () => {
    for (const s of scratches) await s.drop();
  });

  describe('migrate', () => {
    it('up --dry-run prints the SQL of every pending migration and applies nothing', async () => {
      const db = await scratch();
      const r = await planner(db.url, 'migrate', 'up', '--dry-run');
      expect(r.code, r.stderr).to.equal(0);
      const heads = lines(r.stdout).filter((l) => l.startsWith('-- '));
      expect(heads).to.deep.equal(names.map((n) => `-- ${n}`));
      expect(r.stdout).to.match(/CREATE TABLE users \(/);
      const status = await planner(db.url, 'migrate', 'status');
      for (const l of lines(status.stdout)) expect(l).to.match(/^\[ \] /);
      const applied = await planner(db.url, 'migrate', 'up');
      expect(applied.code, applied.stderr).to.equal(0);
      const again = await planner(db.url, 'migrate', 'up', '--dry-run');
      expect(again.stdout.trim()).to.equal('-- nothing to apply: every migration is applied');
    });

    it('down refuses when it would drop rows or values, saying what, and --force reverts anyway', async () => {
      const db = await scratch();
      // The database as ProviderIdentity left it (whatever migrations come later), with values in
      // what its down drops: a table's rows and a column's values.
      const upTo = names.indexOf('ProviderIdentity1796070000000');
      expect(upTo).to.be.above(-1);
      const ds = createDataSource(db.url, { poolSize: 3, migrations: MIGRATIONS.slice(0, upTo + 1) });
      await ds.initialize();
      try {
        await migrateUp(ds);
      } finally {
        await ds.destroy();
      }
      const [user] = await sql(
        db.url,
        `INSERT INTO users (email, display_name, working_hours, valid_after) VALUES ('g@x.y', 'G', '{}', now()) RETURNING id`,
      );
      await sql(
        db.url,
        `INSERT INTO user_auth_audit (user_id, actor, action, after) VALUES ($1, 'test', 'ROLE', 'ADMIN')`,
        [user!['id']],
      );

      const refused = await planner(db.url, 'migrate', 'down');
      expect(refused.code, refused.stderr).to.equal(1);
      expect(refused.stderr).to.contain('refusing to revert ProviderIdentity1796070000000');
      expect(refused.stderr).to.contain('table user_auth_audit: 1 row');
      expect(refused.stderr).to.contain('column users.valid_after: 1 non-null value');
      expect(refused.stderr).not.to.contain('auth_version'); // bookkeeping its up re-creates
      expect(refused.stderr).to.contain('--force');
      const status = await planner(db.url, 'migrate', 'status');
      expect(lines(status.stdout).at(upTo)).to.equal('[x] ProviderIdentity1796070000000');
      expect(await sql(db.url, 'SELECT count(*)::int AS n FROM user_auth_audit')).to.deep.equal([{ n: 1 }]);

      const forced = await planner(db.url, 'migrate', 'down', '--force');
      expect(forced.code, forced.stderr).to.equal(0);
      expect(forced.stdout.trim()).to.equal('reverted ProviderIdentity1796070000000');
      expect(forced.stderr).to.contain('table user_auth_audit: 1 row');

      // Nothing to lose in the one before (no rows in rollout_metrics): reverts without --force.
      const clean = await planner(db.url, 'migrate', 'down');
      expect(clean.code, clean.stderr).to.equal(0);
      expect(clean.stdout.trim()).to.equal(`reverted ${names[upTo - 1]}`);
    });

    it('usage errors exit 2', async () => {
      for (const args of [
        ['migrate', 'up', '--force'],
        ['migrate', 'down', '--dry-run'],
        ['migrate', 'status', 'x'],
      ]) {
        const r = await planner(testDatabaseUrl(), ...args);
        expect(r.code, args.join(' ')).to.equal(2);
        expect(r.stderr).to.contain('usage:');
      }
    });
  });

  describe('backup and restore', () => {
    it('round trip into a fresh database: identical tables; sequences, counters, cursors and undo work after', async () => {
      const source = await scratch();
      const target = await scratch();
      const tmp = tempFile('plan.gz');
      try {
        const server = await startTestServer({ env: { DATABASE_URL: source.url } });
        let emails: string[];
        let plans: unknown[];
        try {
          emails = await seedPlan(server, 2, 'backup');
          plans = await Promise.all(emails.map((e) => planOf(server, e)));
        } finally {
          await server.close();
        }
        const backup = await planner(source.url, 'backup', tmp.file);
        expect(backup.code, backup.stderr).to.equal(0);
        expect(backup.stdout.trim()).to.equal(tmp.file);
        expect(backup.stderr).to.match(/backup of \d+ tables, \d+ rows, schema /);
        expect(backup.stderr).not.to.contain('\r'); // progress only on a TTY
        const again = await planner(source.url, 'backup', tmp.file);
        expect(again.code).to.equal(1);
        expect(again.stderr).to.contain('refusing to overwrite');

        const restore = await planner(target.url, 'restore', tmp.file);
        expect(restore.code, restore.stderr).to.equal(0);
        expect(restore.stdout).to.match(/^restored \d+ rows into \d+ tables .*counts and checksums match/);
        const want = await tableChecksums(source.url);
        expect(Object.values(want).some((t) => t.rows > 0)).to.equal(true);
        expect(await tableChecksums(target.url)).to.deep.equal(want);
        const seqs = `SELECT c.relname AS name, (pg_sequence_last_value(c.oid))::text AS v FROM pg_class c
                       WHERE c.relkind = 'S' AND c.relname <> 'migrations_id_seq' ORDER BY 1`;
        expect(await sql(target.url, seqs)).to.deep.equal(await sql(source.url, seqs));

        // Not empty any more: refused, unchanged; --force replaces.
        const refused = await planner(target.url, 'restore', tmp.file);
        expect(refused.code).to.equal(1);
        expect(refused.stderr).to.match(/the database is not empty \(.*users: 2 rows/);
        const forced = await planner(target.url, 'restore', tmp.file, '--force');
        expect(forced.code, forced.stderr).to.equal(0);
        expect(await tableChecksums(target.url)).to.deep.equal(want);

        // A server on the restored database serves the same plans and keeps working.
        const restored = await startTestServer({ env: { DATABASE_URL: target.url } });
        try {
          expect(await Promise.all(emails.map((e) => planOf(restored, e)))).to.deep.equal(plans);
          const token = await restored.token(emails[0]!);
          // planEvents carries the events of topic 'plan' (conflict and undo topics have their own).
          const [{ p, head }] = (await sql(
            target.url,
            `SELECT max(seq) FILTER (WHERE topic = 'plan')::int AS p, max(seq)::int AS head FROM events
              WHERE user_id = (SELECT id FROM users WHERE email = $1)`,
            [emails[0]],
          )) as [{ p: number; head: number }];
          // Event cursor from before the backup: replays what follows it, then live events.
          const ws = wsClient(restored.wsUrl, token);
          try {
            await ws.connected;
            const events = collect<{ planEvents: { cursor: string; type: string } }>(ws.client, {
              query: `subscription ($since: String) { planEvents(since: $since) { cursor type } }`,
              variables: { since: String(p - 1) },
            });
            const created = await gql<{ createTask: { ok: boolean; operation: { seq: number } } }>(
              restored.url,
              token,
              `mutation { createTask(input: { title: "after restore" }) { ok operation { seq } } }`,
            );
            expect(created.errors).to.equal(undefined);
            expect(created.data!.createTask.ok).to.equal(true);
            const undone = await gql<{ undo: { ok: boolean } }>(
              restored.url,
              token,
              `mutation { undo { ok } }`,
            );
            expect(undone.data!.undo.ok).to.equal(true);
            const got = (
              await Promise.race([
                events.take(3),
                new Promise<never>((_, reject) =>
                  setTimeout(
                    () => reject(new Error(`events after restore: ${JSON.stringify(events.results)}`)),
                    30_000,
                  ),
                ),
              ])
            ).slice(0, 3);
            const cursors = got.map((e) => Number(e.data!.planEvents.cursor));
            expect(cursors[0], 'replayed from before the backup').to.equal(p);
            expect(cursors[1], 'new events continue the restored counter').to.be.above(head);
            expect(cursors[2]).to.be.above(cursors[1]!);
          } finally {
            await ws.dispose();
          }
          // The events table's id sequence continued from the backup (no duplicate key on insert).
          const [{ n }] = (await sql(target.url, 'SELECT count(*)::int AS n FROM events')) as [{ n: number }];
          expect(n).to.be.at.least(want['events']!.rows + 2);
        } finally {
          await restored.close();
        }
      } finally {
        tmp.remove();
      }
    });

    it('restore refuses a file that is not a backup and a truncated backup, leaving the database empty', async () => {
      const target = await scratch();
      const tmp = tempFile('bad.gz');
      try {
        fs.writeFileSync(tmp.file, 'not gzip');
        const bad = await planner(target.url, 'restore', tmp.file);
        expect(bad.code).to.equal(1);
        expect(bad.stderr).to.contain('is not a planner backup');
        const full = tempFile('full.gz');
        try {
          expect((await planner(testDatabaseUrl(), 'backup', full.file)).code).to.equal(0);
          const bytes = fs.readFileSync(full.file);
          const zlib = await import('node:zlib');
          const text = zlib.gunzipSync(bytes).toString('utf8');
          fs.writeFileSync(tmp.file, zlib.gzipSync(text.slice(0, text.lastIndexOf('{"end":"backup"}'))));
        } finally {
          full.remove();
        }
        const cut = await planner(target.url, 'restore', tmp.file);
        expect(cut.code).to.equal(1);
        expect(cut.stderr).to.match(/ends early|incomplete/);
        expect(await sql(target.url, 'SELECT count(*)::int AS n FROM users')).to.deep.equal([{ n: 0 }]);
      } finally {
        tmp.remove();
      }
    });
  });

  describe('verify', () => {
    it('passes on a migrated database and lists a dropped index (exit 1), in text and JSON', async () => {
      const db = await scratch();
      expect((await planner(db.url, 'migrate', 'up')).code).to.equal(0);
      const clean = await planner(db.url, 'verify');
      expect(clean.code, clean.stdout + clean.stderr).to.equal(0);
      expect(clean.stdout).to.match(/^ok: every migration is applied/);

      await sql(db.url, 'DROP INDEX tasks_user_status_idx');
      const text = await planner(db.url, 'verify');
      expect(text.code).to.equal(1);
      expect(lines(text.stdout)).to.deep.equal([
        '1 difference from the declared schema:',
        '  index tasks_user_status_idx: missing (CREATE INDEX tasks_user_status_idx ON tasks USING btree (user_id, status))',
      ]);
      const json = await planner(db.url, 'verify', '--json');
      expect(json.code).to.equal(1);
      const body = JSON.parse(json.stdout) as {
        ok: boolean;
        problems: Array<{ kind: string; name: string; problem: string }>;
      };
      expect(body.ok).to.equal(false);
      expect(body.problems.map((p) => [p.kind, p.name, p.problem])).to.deep.equal([
        ['index', 'tasks_user_status_idx', 'missing'],
      ]);

      await migrateDownLatest(db.url);
      const pending = await planner(db.url, 'verify', '--json');
      expect(pending.code).to.equal(1);
      const p = JSON.parse(pending.stdout) as {
        problems: Array<{ kind: string; name: string; problem: string }>;
      };
      expect(p.problems).to.deep.include({ kind: 'migration', name: names.at(-1), problem: 'not applied' });
    });
  });

  describe('check', () => {
    it('fails against a stopped server, naming the step', async () => {
      const server = await startTestServer();
      const base = server.origin;
      await server.close();
      const r = await planner(testDatabaseUrl(), 'check', '--url', base, '--json');
      expect(r.code).to.equal(1);
      const body = JSON.parse(r.stdout) as {
        ok: boolean;
        failure: string;
        steps: Array<{ name: string; ok: boolean }>;
      };
      expect(body.ok).to.equal(false);
      expect(body.steps).to.deep.equal([{ ...body.steps[0], name: 'healthz', ok: false }]);
      expect(body.failure).to.match(/^healthz: GET .*\/healthz failed: ECONNREFUSED/);
      expect(r.stderr).to.contain('check failed: healthz');
    });

    it('passes against a running server, with a minted or a given token, and leaves nothing behind', async () => {
      const server = await startTestServer();
      try {
        const first = await planner(testDatabaseUrl(), 'check', '--url', server.origin);
        expect(first.code, first.stdout + first.stderr).to.equal(0);
        expect(lines(first.stdout).map((l) => /^(?:ok|FAIL) +(\S+)/.exec(l)?.[1] ?? l)).to.deep.equal([
          'healthz',
          'readyz',
          'websocket',
          'authenticated',
          'clean',
          'create',
          'conflict',
          'undo',
          'event',
          `ok: ${server.origin} passed every check`,
        ]);
        const token = await server.token('planner-check@localhost');
        const second = await planner(
          testDatabaseUrl(),
          'check',
          '--url',
          `${server.origin}/`,
          '--token',
          token,
          '--json',
        );
        expect(second.code, second.stdout + second.stderr).to.equal(0);
        const body = JSON.parse(second.stdout) as { ok: boolean; steps: Array<{ ok: boolean }> };
        expect(body.ok).to.equal(true);
        expect(body.steps.every((s) => s.ok)).to.equal(true);
        const left = await sql(
          testDatabaseUrl(),
          `SELECT (SELECT count(*)::int FROM tasks t WHERE t.user_id = u.id) AS tasks,
                  (SELECT count(*)::int FROM conflicts c WHERE c.user_id = u.id AND c.status = 'OPEN') AS open
             FROM users u WHERE email = 'planner-check@localhost'`,
        );
        expect(left).to.deep.equal([{ tasks: 0, open: 0 }]);
      } finally {
        await server.close();
      }
    });
  });

  describe('PLANNER_MIGRATE_ON_START=false', () => {
    it('with a pending migration the server serves only probes, /readyz 503 naming it, until migrate up', async () => {
      const db = await scratch();
      expect((await planner(db.url, 'migrate', 'up')).code).to.equal(0);
      await migrateDownLatest(db.url);
      const port = await freePort();
      const starting = startTestServer({
        env: { DATABASE_URL: db.url, PLANNER_MIGRATE_ON_START: 'false', PORT: String(port) },
      });
      starting.catch(() => undefined);
      const origin = `http://127.0.0.1:${port}`;
      let res: Response | null = null;
      for (let i = 0; i < 300 && res === null; i++) {
        res = await fetch(`${origin}/readyz`).catch(() => null);
        if (res === null) await new Promise((r) => setTimeout(r, 100)); // poll: the port opens once the database is checked
      }
      expect(res, 'the waiting server never answered').to.not.equal(null);
      expect(res!.status).to.equal(503);
      expect(((await res!.json()) as { reason: string }).reason).to.equal(
        `migrations not applied: ${names.at(-1)} (PLANNER_MIGRATE_ON_START=false: run \`planner migrate up\`)`,
      );
      expect((await fetch(`${origin}/healthz`)).status).to.equal(200);
      expect((await fetch(`${origin}/graphql`, { method: 'POST' })).status).to.equal(503);

      expect((await planner(db.url, 'migrate', 'up')).code).to.equal(0);
      const server = await starting;
      try {
        expect(server.port).to.equal(port);
        expect((await fetch(`${server.origin}/readyz`)).status).to.equal(200);
      } finally {
        await server.close();
      }
    });
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function migrateDownLatest(url: string): Promise<void> {
  const ds = createDataSource(url, { poolSize: 3 });
  await ds.initialize();
  try {
    await migrateDown(ds);
  } finally {
    await ds.destroy();
  }
}
