/**
 * `planner users list|role|revoke` and `planner token --role` (issue 13), run in-process against
 * the test database while a server on the same database serves: an operator's change reaches the
 * server through auth_version (its poll is triggered here instead of waited for).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { run as runCli } from '../../src/cli/main';
import { mintToken } from '../../src/server/auth';
import { testDatabaseUrl } from '../support/db';
import { gql } from '../support/graphql';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

const ADMIN_ONLY = '{ rolloutReport }';
const env = () => ({
  NODE_ENV: 'test',
  DATABASE_URL: testDatabaseUrl(),
  PLANNER_JWT_SECRET: TEST_JWT_SECRET,
  LOG_LEVEL: 'silent',
});

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, env(), { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('planner users (issue 13)', function () {
  this.timeout(60_000);
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server?.close();
  });

  it('role <email> ADMIN makes an admin, USER demotes an existing token, both audited with who', async () => {
    const email = `op-${randomUUID()}@example.com`;
    const token = await server.token(email);
    expect((await gql(server.url, token, ADMIN_ONLY)).errors?.[0]?.extensions?.['code']).to.equal(
      'FORBIDDEN',
    );

    const up = await cli('users', 'role', email, 'ADMIN', '--actor', 'alice');
    expect(up.code, up.err.join('\n')).to.equal(0);
    expect(up.out.join('\n')).to.contain('USER → ADMIN by alice');
    await server.authCache.poll();
    expect((await gql(server.url, token, ADMIN_ONLY)).errors).to.equal(undefined);

    const down = await cli('users', 'role', email, 'USER', '--actor', 'bob');
    expect(down.code).to.equal(0);
    await server.authCache.poll();
    expect((await gql(server.url, token, ADMIN_ONLY)).errors?.[0]?.extensions?.['code']).to.equal(
      'FORBIDDEN',
    );

    const list = await cli('users', 'list', '--json');
    const mine = (JSON.parse(list.out[0]!) as Array<{ email: string; role: string }>).find(
      (u) => u.email === email,
    );
    expect(mine?.role).to.equal('USER');
    const user = (await server.world.users.findByEmail(email))!;
    const audit = await server.world.users.authAudit(user.id);
    expect(audit.map((a) => [a.action, a.before, a.after, a.actor])).to.deep.equal([
      ['ROLE', 'USER', 'ADMIN', 'alice'],
      ['ROLE', 'ADMIN', 'USER', 'bob'],
    ]);
  });

  it('revoke <email> refuses tokens issued before it; token --role ADMIN mints a working admin token', async () => {
    const email = `rev-${randomUUID()}@example.com`;
    const user = await server.world.users.findOrCreateByEmail(email);
    // Issued two seconds ago (iat is whole seconds): certainly before the revocation below.
    const old = mintToken(
      TEST_JWT_SECRET,
      server.config.jwtIssuer,
      { userId: user.id, email, role: 'USER' },
      3600,
      new Date(Date.now() - 2000),
    );
    expect((await gql(server.url, old, '{ me { id } }')).errors).to.equal(undefined);
    const r = await cli('users', 'revoke', email, '--actor', 'carol');
    expect(r.code, r.err.join('\n')).to.equal(0);
    await server.authCache.poll();
    expect((await gql(server.url, old, '{ me { id } }')).errors?.[0]?.extensions?.['code']).to.equal(
      'UNAUTHENTICATED',
    );
    expect((await server.world.users.authAudit(user.id)).map((a) => [a.action, a.actor])).to.deep.equal([
      ['REVOKE', 'carol'],
    ]);

    const adminEmail = `dev-admin-${randomUUID()}@example.com`;
    const t = await cli('token', '--email', adminEmail, '--role', 'ADMIN');
    expect(t.code, t.err.join('\n')).to.equal(0);
    expect((await gql(server.url, t.out.at(-1)!, ADMIN_ONLY)).errors).to.equal(undefined);
  });

  it('bad usage exits 2; an unknown email exits 1', async () => {
    for (const args of [
      ['users'],
      ['users', 'role', 'a@b.c'],
      ['users', 'role', 'a@b.c', 'ROOT'],
      ['users', 'revoke'],
    ]) {
      expect((await cli(...args)).code, args.join(' ')).to.equal(2);
    }
    expect((await cli('token', '--email', 'a@b.c', '--role', 'ROOT')).code).to.equal(2);
    expect((await cli('users', 'revoke', `nobody-${randomUUID()}@example.com`)).code).to.equal(1);
  });
});
