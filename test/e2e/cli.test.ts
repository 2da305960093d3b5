/**
 * Entry points as an operator uses them: `npm start`'s main.ts (configuration errors), the
 * `planner` CLI (token, migrate) and restart persistence on an embedded Postgres data directory.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run as runCli } from '../../src/cli/main';
import { createScratchDatabase } from '../support/db';
import { gql } from '../support/graphql';
import { bin, childEnv, PROJECT_ROOT, run } from '../support/process';
import { startTestServer } from '../support/server';

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** A fresh data directory (the embedded Postgres runs as `postgres` when we are root: 0755). */
function tempDataDir(): { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-e2e-data-'));
  fs.chmodSync(dir, 0o755);
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Env for a server/CLI on an embedded Postgres in `dir` (DATABASE_URL and the secret unset). */
function embeddedEnv(dir: string): Record<string, string | undefined> {
  return {
    DATABASE_URL: undefined,
    PLANNER_JWT_SECRET: undefined,
    PLANNER_DATA_DIR: dir,
    PLANNER_EMBEDDED_PG_PORT: '0',
  };
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

describe('entry points (e2e)', function () {
  this.timeout(90_000);

  describe('npm start (src/server/main.ts)', () => {
    for (const [variable, value] of [
      ['PORT', 'abc'],
      ['PLANNER_JWT_SECRET', 'short'],
    ]) {
      it(`exits 1 with one stderr line naming ${variable} when ${variable}=${value}`, async () => {
        const r = await run(bin('tsx'), ['src/server/main.ts'], childEnv({ [variable!]: value }));
        expect(r.code, r.stderr).to.equal(1);
        const err = lines(r.stderr);
        expect(err, r.stderr).to.have.length(1);
        expect(err[0]).to.match(new RegExp(`^planner: configuration error: ${variable}\\b`));
        expect(r.stdout).to.equal('');
      });
    }
  });

  describe('npm start shutdown', () => {
    it('one SIGTERM delivered twice (process group + relay) still shuts down cleanly and stops Postgres', async () => {
      const data = tempDataDir();
      try {
        // node itself (tsx as a loader), so that both signals reach main.ts and not tsx's relay.
        const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
          cwd: PROJECT_ROOT,
          env: childEnv({ ...embeddedEnv(data.dir), PORT: '0', LOG_LEVEL: 'info' }),
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
        await new Promise<void>((resolve, reject) => {
          let out = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => {
            out += d;
            if (out.includes('planner listening on')) resolve();
          });
          void exited.then(() => reject(new Error(`exited before listening: ${stderr}`)));
        });
        child.kill('SIGTERM');
        child.kill('SIGTERM');
        expect(await exited, stderr).to.equal(0);
        expect(stderr).not.to.contain('forcing exit');
        expect(stderr).to.contain('"msg":"embedded postgres stopped"');
        expect(fs.existsSync(path.join(data.dir, 'pg', 'postmaster.pid'))).to.equal(false);
      } finally {
        data.remove();
      }
    });
  });

  describe('planner CLI', () => {
    it('bad usage prints the usage on stderr and exits 2', async () => {
      const r = await run(process.execPath, ['bin/planner.js', 'frobnicate'], childEnv());
      expect(r.code, r.stderr).to.equal(2);
      expect(r.stderr).to.contain('usage:');
      expect(r.stdout).to.equal('');
      // The other shapes of bad usage, in-process (same code path, no process start-up).
      for (const args of [
        [],
        ['token'],
        ['token', '--email'],
        ['token', '--mail', 'a@b.c'],
        ['token', 'a@b.c'],
        ['migrate'],
        ['migrate', 'sideways'],
        ['migrate', 'up', 'down'],
      ]) {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCli(args, {}, { out: (l) => out.push(l), err: (l) => err.push(l) });
        expect(code, args.join(' ')).to.equal(2);
        expect(err.join('\n')).to.contain('usage:');
        expect(out).to.deep.equal([]);
      }
    });

    it('migrate status|up|down reports and changes the state of a database', async () => {
      const scratch = await createScratchDatabase();
      try {
        const cli = (...args: string[]) =>
          run(
            process.execPath,
            ['bin/planner.js', 'migrate', ...args],
            childEnv({ DATABASE_URL: scratch.url, PLANNER_JWT_SECRET: 'x'.repeat(32) }),
          );
        const before = await cli('status');
        expect(before.code, before.stderr).to.equal(0);
        expect(lines(before.stdout)).to.have.length.above(0);
        for (const l of lines(before.stdout)) expect(l).to.match(/^\[ \] \S+/);

        const up = await cli('up');
        expect(up.code, up.stderr).to.equal(0);
        expect(lines(up.stdout)).to.have.length(lines(before.stdout).length);
        for (const l of lines(up.stdout)) expect(l).to.match(/^applied \S+/);
        const again = await cli('up');
        expect(again.stdout).to.match(/nothing to apply/);

        const applied = await cli('status');
        for (const l of lines(applied.stdout)) expect(l).to.match(/^\[x\] \S+/);

        const down = await cli('down');
        expect(down.code, down.stderr).to.equal(0);
        const last = lines(applied.stdout).at(-1)!.slice(4);
        expect(down.stdout.trim()).to.equal(`reverted ${last}`);
        const after = await cli('status');
        expect(lines(after.stdout).at(-1)).to.equal(`[ ] ${last}`);
      } finally {
        await scratch.drop();
      }
    });

    it('`npx planner token` on a fresh data dir prints a JWT the server on that dir accepts', async () => {
      const data = tempDataDir();
      try {
        const r = await run(
          'npx',
          ['--no-install', 'planner', 'token', '--email', 'a@b.c', '--name', 'Ada B'],
          childEnv(embeddedEnv(data.dir)),
        );
        expect(r.code, r.stderr).to.equal(0);
        const out = lines(r.stdout);
        const token = out.at(-1)!;
        expect(token).to.match(JWT);
        expect(fs.existsSync(path.join(data.dir, 'secrets.json'))).to.equal(true);
        // The CLI started the embedded Postgres itself and stopped it again.
        expect(fs.existsSync(path.join(data.dir, 'pg', 'postmaster.pid'))).to.equal(false);

        const server = await startTestServer({ env: embeddedEnv(data.dir) });
        try {
          const me = await gql<{ me: { email: string; displayName: string } }>(
            server.url,
            token,
            '{ me { email displayName } }',
          );
          expect(me.errors).to.equal(undefined);
          expect(me.data?.me).to.deep.equal({ email: 'a@b.c', displayName: 'Ada B' });

          // While the server runs, the CLI reuses its Postgres (and leaves it running).
          const second = await run(
            process.execPath,
            ['bin/planner.js', 'token', '--email', 'a@b.c'],
            childEnv(embeddedEnv(data.dir)),
          );
          expect(second.code, second.stderr).to.equal(0);
          const token2 = lines(second.stdout).at(-1)!;
          const me2 = await gql<{ me: { email: string } }>(server.url, token2, '{ me { email } }');
          expect(me2.data?.me.email).to.equal('a@b.c');
        } finally {
          await server.close();
        }
      } finally {
        data.remove();
      }
    });

    it('an invalid email is a usage error (exit 2)', async () => {
      const scratch = await createScratchDatabase();
      try {
        const r = await run(
          process.execPath,
          ['bin/planner.js', 'token', '--email', 'not-an-email'],
          childEnv({ DATABASE_URL: scratch.url, PLANNER_JWT_SECRET: 'x'.repeat(32) }),
        );
        expect(r.code, r.stderr).to.equal(2);
        expect(r.stderr).to.match(/not an email/);
      } finally {
        await scratch.drop();
      }
    });
  });

  describe('restart persistence (embedded Postgres)', () => {
    it('what was created before a restart is there after it', async () => {
      const data = tempDataDir();
      try {
        const first = await startTestServer({ env: embeddedEnv(data.dir) });
        let token: string;
        let id: string;
        try {
          token = await first.token('keeper@example.com');
          const created = await gql<{ createTask: { ok: boolean; task: { id: string } } }>(
            first.url,
            token,
            'mutation { createTask(input: { title: "x" }) { ok task { id } } }',
          );
          expect(created.errors).to.equal(undefined);
          expect(created.data?.createTask.ok).to.equal(true);
          id = created.data!.createTask.task.id;
        } finally {
          await first.close();
        }
        expect(fs.existsSync(path.join(data.dir, 'pg', 'postmaster.pid'))).to.equal(false);

        const second = await startTestServer({ env: embeddedEnv(data.dir) });
        try {
          // Same data dir → same generated secret: the old token is still good.
          const read = await gql<{ task: { id: string; title: string } | null }>(
            second.url,
            token,
            'query($id: ID!) { task(id: $id) { id title } }',
            { id },
          );
          expect(read.errors).to.equal(undefined);
          expect(read.data?.task).to.deep.equal({ id, title: 'x' });
        } finally {
          await second.close();
        }
      } finally {
        data.remove();
      }
    });
  });

  it('the bin is wired in package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(pkg.bin['planner']).to.equal('bin/planner.js');
  });
});
