/**
 * Safe by default, whatever NODE_ENV says: faults reach clients only as a code, a safe message and
 * a log id (details only with PLANNER_DEV_MODE on); introspection for authenticated callers only;
 * no landing page and no field suggestions outside dev mode; a token whose subject is not a user id
 * is UNAUTHENTICATED.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createDataSource, migrateDown } from '../../src/db/data-source';
import { UNEXPECTED_MESSAGE } from '../../src/server/errors';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { gql, wsClient, wsRequest, type GqlResponse } from '../support/graphql';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

/** Text that would betray the driver, the SQL or the code behind a fault. */
const LEAK =
  /relation|does not exist|QueryFailedError|duplicate key|violates|constraint|\bSELECT\b|\bINSERT\b|\bFROM\b|typeorm|node_modules|\bat .+:\d+:\d+|\.ts:\d+|stack/i;

const ME = '{ me { id email } }';
const CREATE = 'mutation { createTask(input: { title: "x" }) { ok task { id } errors { code message } } }';
const INTROSPECT = '{ __schema { queryType { name } } }';

function codes(r: GqlResponse<unknown>): string[] {
  return (r.errors ?? []).map((e) => String(e.extensions?.code));
}

/** POSTs and returns the raw response text (everything a client could see). */
async function rawPost(url: string, token: string | null, query: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify({ query }),
  });
  return `${res.status} ${JSON.stringify([...res.headers])} ${await res.text()}`;
}

/** Runs `query` over WebSocket and returns the whole outcome as text (result or error). */
async function rawWs(wsUrl: string, token: string, query: string): Promise<string> {
  const c = wsClient(wsUrl, token);
  try {
    await c.connected;
    return JSON.stringify(await wsRequest(c.client, query).catch((e: unknown) => ({ rejected: e })));
  } finally {
    await c.dispose();
  }
}

describe('safe by default (e2e)', function () {
  this.timeout(90_000);

  describe('faults: no driver, SQL or stack text unless PLANNER_DEV_MODE is on', () => {
    let scratch: ScratchDatabase;
    const servers: Array<{ name: string; server: TestServer; token: string; dev: boolean }> = [];

    before(async () => {
      scratch = await createScratchDatabase();
      const variants: Array<[string, Record<string, string>, boolean]> = [
        ['NODE_ENV=development', { NODE_ENV: 'development' }, false],
        ['NODE_ENV=production', { NODE_ENV: 'production' }, false],
        ['NODE_ENV=test', { NODE_ENV: 'test' }, false],
        [
          'NODE_ENV=production, PLANNER_DEV_MODE=false',
          { NODE_ENV: 'production', PLANNER_DEV_MODE: 'false' },
          false,
        ],
        [
          'NODE_ENV=production, PLANNER_DEV_MODE=true',
          { NODE_ENV: 'production', PLANNER_DEV_MODE: 'true' },
          true,
        ],
      ];
      for (const [name, env, dev] of variants) {
        const server = await startTestServer({ env: { DATABASE_URL: scratch.url, ...env } });
        const token = await server.token(`fault-${randomUUID()}@example.com`);
        servers.push({ name, server, token, dev });
      }
      // A genuine fault for every later request: the tables are gone under the running servers.
      const ds = createDataSource(scratch.url, { poolSize: 2 });
      await ds.initialize();
      try {
        while ((await migrateDown(ds)) !== null);
      } finally {
        await ds.destroy();
      }
    });
    after(async () => {
      await Promise.allSettled(servers.map((s) => s.server.close()));
      await scratch?.drop();
    });

    it('HTTP query and mutation faults are INTERNAL "Unexpected error." with a log id, and nothing else', async () => {
      for (const { name, server, token, dev } of servers.filter((s) => !s.dev)) {
        expect(dev).to.equal(false);
        for (const query of [ME, CREATE]) {
          const r = await gql(server.url, token, query);
          expect(codes(r), `${name}: ${query}`).to.deep.equal(['INTERNAL']);
          expect(r.errors?.[0]?.message).to.equal(UNEXPECTED_MESSAGE);
          expect(Object.keys(r.errors?.[0]?.extensions ?? {}).sort()).to.deep.equal(['code', 'logId']);
          expect(r.errors?.[0]?.extensions?.['logId']).to.be.a('string').with.length.above(8);
          const text = await rawPost(server.url, token, query);
          expect(text, `${name}: ${text}`).not.to.match(LEAK);
        }
      }
    });

    it('WebSocket faults are masked the same way', async () => {
      for (const { name, server, token } of servers.filter((s) => !s.dev)) {
        for (const query of [ME, CREATE]) {
          const text = await rawWs(server.wsUrl, token, query);
          expect(text, `${name}: ${text}`).to.contain('INTERNAL');
          expect(text, `${name}: ${text}`).not.to.match(LEAK);
        }
      }
    });

    it('with PLANNER_DEV_MODE=true the original message is added (so the checks above can fail)', async () => {
      const dev = servers.find((s) => s.dev)!;
      const r = await gql(dev.server.url, dev.token, ME);
      expect(codes(r)).to.deep.equal(['INTERNAL']);
      expect(String(r.errors?.[0]?.extensions?.['originalMessage'])).to.match(LEAK);
      expect(await rawPost(dev.server.url, dev.token, CREATE)).to.match(LEAK);
      expect(await rawWs(dev.server.wsUrl, dev.token, ME)).to.match(LEAK);
    });
  });

  describe('introspection, landing page and suggestions', () => {
    const modes: Array<[string, Record<string, string>, boolean]> = [
      ['default (NODE_ENV=development)', { NODE_ENV: 'development' }, false],
      ['NODE_ENV=production', { NODE_ENV: 'production' }, false],
      ['PLANNER_DEV_MODE=true', { PLANNER_DEV_MODE: 'true' }, true],
    ];
    for (const [name, env, dev] of modes) {
      describe(name, () => {
        let s: TestServer;
        let token: string;
        before(async () => {
          s = await startTestServer({ env });
          token = await s.token(`intro-${randomUUID()}@example.com`);
        });
        after(async () => s?.close());

        it('refuses introspection to anonymous clients (UNAUTHENTICATED, 401), serves it to authenticated ones', async () => {
          const anon = await gql(s.url, null, INTROSPECT);
          expect(codes(anon)).to.deep.equal(['UNAUTHENTICATED']);
          expect(anon.status).to.equal(401);
          expect(anon.data).to.equal(undefined);
          const typeQuery = await gql(s.url, null, '{ __type(name: "Query") { name } }');
          expect(codes(typeQuery)).to.deep.equal(['UNAUTHENTICATED']);
          // __typename is not introspection.
          expect((await gql(s.url, null, '{ __typename }')).data).to.deep.equal({ __typename: 'Query' });

          const authed = await gql<{ __schema: { queryType: { name: string } } }>(s.url, token, INTROSPECT);
          expect(authed.errors).to.equal(undefined);
          expect(authed.data?.__schema.queryType.name).to.equal('Query');

          const c = wsClient(s.wsUrl, token);
          try {
            await c.connected;
            const ws = await wsRequest<{ __type: { name: string } }>(
              c.client,
              '{ __type(name: "Query") { name } }',
            );
            expect(ws.data?.__type.name).to.equal('Query');
          } finally {
            await c.dispose();
          }
        });

        it(`${dev ? 'serves' : 'serves no'} landing page and ${dev ? 'keeps' : 'hides'} field suggestions`, async () => {
          const page = await fetch(s.url, { headers: { accept: 'text/html' } });
          const html = /text\/html/.test(page.headers.get('content-type') ?? '');
          await page.text();
          expect(html).to.equal(dev);
          const r = await gql(s.url, token, '{ mee { id } }');
          expect(codes(r)).to.deep.equal(['GRAPHQL_VALIDATION_FAILED']);
          expect(/Did you mean/.test(r.errors?.[0]?.message ?? '')).to.equal(dev);
        });
      });
    }
  });

  describe('a token subject that is not a user id', () => {
    let s: TestServer;
    before(async () => {
      s = await startTestServer();
    });
    after(async () => s?.close());

    for (const sub of ['not-a-uuid', "1' OR '1'='1", '00000000-0000-0000-0000-00000000000g']) {
      it(`sub ${JSON.stringify(sub)} → UNAUTHENTICATED over HTTP and 4401 over WebSocket`, async () => {
        const t = jwt.sign({ sub, role: 'USER' }, TEST_JWT_SECRET, {
          issuer: s.config.jwtIssuer,
          expiresIn: 600,
        });
        const r = await gql(s.url, t, ME);
        expect(codes(r)).to.deep.equal(['UNAUTHENTICATED']);
        const c = wsClient(s.wsUrl, t);
        expect((await c.closed).code).to.equal(4401);
        await c.dispose();
      });
    }

    it('an upper-case UUID subject is the same user as its lower-case form', async () => {
      const real = await s.token(`case-${randomUUID()}@example.com`);
      const id = (jwt.decode(real) as { sub: string }).sub;
      const upper = jwt.sign({ sub: id.toUpperCase(), role: 'USER' }, TEST_JWT_SECRET, {
        issuer: s.config.jwtIssuer,
        expiresIn: 600,
      });
      const me = await gql<{ me: { id: string } }>(s.url, upper, '{ me { id } }');
      expect(me.errors).to.equal(undefined);
      expect(me.data?.me.id).to.equal(id);
    });
  });
});
