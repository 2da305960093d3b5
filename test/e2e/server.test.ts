/**
 * The server through its public surface: probes, authentication (HTTP and WebSocket), query
 * limits, error masking, body limits and graceful shutdown (safe defaults: safe-defaults.test.ts).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { GraphQLError, Lexer, Source, TokenKind } from 'graphql';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { createDataSource, migrateDown } from '../../src/db/data-source';
import { mintToken, parseBearer, tokenKey, verifyToken } from '../../src/server/auth';
import { createFormatError, UNEXPECTED_MESSAGE } from '../../src/server/errors';
import { createLogger } from '../../src/server/logger';
import { ManualClock } from '../../src/world/clock';
import { createScratchDatabase } from '../support/db';
import { gql, wsClient, wsRequest, type GqlResponse } from '../support/graphql';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

const ME = '{ me { id email } }';

function codes(r: GqlResponse<unknown>): string[] {
  return (r.errors ?? []).map((e) => String(e.extensions?.code));
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** `{ tasks { edges { node { goal { tasks { … } } } } } }` nested `levels` times around `id`. */
function deepTasks(levels: number, first?: number): string {
  const args = first === undefined ? '' : `(first: ${first})`;
  let inner = 'id';
  for (let i = 0; i < levels; i++)
    inner = `tasks${args} { edges { node { ${i === 0 ? inner : `goal { ${inner} }`} } } }`;
  return `{ ${inner} }`;
}

function tokenCount(query: string): number {
  const lexer = new Lexer(new Source(query));
  let n = 0;
  while (lexer.advance().kind !== TokenKind.EOF) n++;
  return n;
}

function depthOf(query: string): number {
  let depth = 0;
  let max = 0;
  for (const ch of query) {
    if (ch === '{') max = Math.max(max, ++depth);
    if (ch === '}') depth--;
  }
  return max; // brace levels minus the operation's own, plus the leaf field
}

describe('server (e2e)', function () {
  let server: TestServer;
  let email: string;
  let token: string;

  before(async () => {
    server = await startTestServer();
    email = `e2e-${randomUUID()}@example.com`;
    token = await server.token(email);
  });
  after(async () => server?.close());

  describe('probes and routing', () => {
    it('GET /healthz answers 200 {"status":"ok"}', async () => {
      const r = await getJson(`${server.origin}/healthz`);
      expect(r.status).to.equal(200);
      expect(r.body).to.deep.equal({ status: 'ok' });
    });

    it('GET /readyz answers 200 when the database is migrated', async () => {
      const r = await getJson(`${server.origin}/readyz`);
      expect(r.status).to.equal(200);
      expect(r.body['status']).to.equal('ready');
    });

    it('answers 404 JSON on other paths', async () => {
      const r = await getJson(`${server.origin}/nope`);
      expect(r.status).to.equal(404);
    });

    it('serves queries over GET and keeps CSRF prevention on', async () => {
      const q = encodeURIComponent('{ __typename }');
      const blocked = await fetch(`${server.url}?query=${q}`);
      expect(blocked.status).to.equal(400); // no preflight-forcing header: CSRF prevention
      const ok = await fetch(`${server.url}?query=${q}`, { headers: { 'apollo-require-preflight': 'true' } });
      expect(ok.status).to.equal(200);
      expect(await ok.json()).to.deep.equal({ data: { __typename: 'Query' } });
    });

    it('rejects invalid JSON with 400', async () => {
      const res = await fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":',
      });
      expect(res.status).to.equal(400);
    });
  });

  describe('readiness against a broken database', () => {
    it('/readyz turns 503 when a migration is missing, and when the database is gone; faults are masked', async function () {
      this.timeout(60_000);
      const scratch = await createScratchDatabase();
      const s = await startTestServer({ env: { DATABASE_URL: scratch.url } });
      try {
        const t = await s.token(`ready-${randomUUID()}@example.com`);
        expect((await getJson(`${s.origin}/readyz`)).status).to.equal(200);

        const ds = createDataSource(scratch.url, { poolSize: 4 });
        await ds.initialize();
        try {
          // Every migration reverted (the last one alone may only touch indexes): the tables are gone.
          expect(await migrateDown(ds)).to.be.a('string');
          while ((await migrateDown(ds)) !== null); // down to nothing, whatever the latest migration is
        } finally {
          await ds.destroy();
        }
        const missing = await getJson(`${s.origin}/readyz`);
        expect(missing.status).to.equal(503);
        expect(String(missing.body['reason'])).to.match(/migrations not applied/);

        // A genuine fault (tables gone) reaches the client only as the masked INTERNAL error.
        const masked = await gql(s.url, t, ME);
        expect(masked.errors?.[0]?.message).to.equal(UNEXPECTED_MESSAGE);
        expect(masked.errors?.[0]?.extensions?.code).to.equal('INTERNAL');
        expect(Object.keys(masked.errors?.[0]?.extensions ?? {}).sort()).to.deep.equal(['code', 'logId']);

        await scratch.drop();
        const gone = await getJson(`${s.origin}/readyz`);
        expect(gone.status).to.equal(503);
        expect(gone.body['reason']).to.equal('database unreachable');
        expect((await getJson(`${s.origin}/healthz`)).status).to.equal(200);
      } finally {
        await s.close();
        await scratch.drop();
      }
    });
  });

  describe('authentication over HTTP', () => {
    it('accepts a good token', async () => {
      const r = await gql<{ me: { email: string } }>(server.url, token, ME);
      expect(r.errors).to.equal(undefined);
      expect(r.data?.me.email).to.equal(email);
    });

    it('missing token → UNAUTHENTICATED', async () => {
      const r = await gql(server.url, null, ME);
      expect(codes(r)).to.deep.equal(['UNAUTHENTICATED']);
      expect(r.data).to.equal(undefined);
    });

    const bad: Array<[string, () => string]> = [
      ['garbage', () => 'Bearer abc.def.ghi'],
      ['not a Bearer value', () => `Token ${token}`],
      ['lower-case scheme and two spaces', () => `bearer  ${token}`],
      [
        'another secret',
        () =>
          `Bearer ${jwt.sign({ sub: randomUUID(), role: 'USER' }, 'x'.repeat(40), { issuer: server.config.jwtIssuer, expiresIn: 600 })}`,
      ],
      [
        'another issuer',
        () =>
          `Bearer ${jwt.sign({ sub: randomUUID() }, TEST_JWT_SECRET, { issuer: 'someone-else', expiresIn: 600 })}`,
      ],
      [
        'alg none',
        () =>
          `Bearer ${jwt.sign({ sub: randomUUID(), iss: server.config.jwtIssuer, exp: 4102444800 }, '', { algorithm: 'none' })}x`,
      ],
      [
        'HS512',
        () =>
          `Bearer ${jwt.sign({ sub: randomUUID() }, TEST_JWT_SECRET, { algorithm: 'HS512', issuer: server.config.jwtIssuer, expiresIn: 600 })}`,
      ],
      [
        'no exp',
        () =>
          `Bearer ${jwt.sign({ sub: randomUUID() }, TEST_JWT_SECRET, { issuer: server.config.jwtIssuer })}`,
      ],
    ];
    for (const [name, value] of bad) {
      it(`bad token (${name}) → UNAUTHENTICATED`, async () => {
        const r = await gql(server.url, null, ME, undefined, { authorization: value() });
        expect(codes(r)).to.deep.equal(['UNAUTHENTICATED']);
      });
    }

    it('expired token → UNAUTHENTICATED (expiry follows the injected clock)', async function () {
      this.timeout(30_000);
      const clock = new ManualClock('2030-01-01T00:00:00Z');
      const s = await startTestServer({ clock });
      try {
        const t = await s.token(`exp-${randomUUID()}@example.com`, { ttlSeconds: 3600 });
        expect((await gql(s.url, t, ME)).errors).to.equal(undefined);
        clock.advance(3599_000);
        expect((await gql(s.url, t, ME)).errors).to.equal(undefined);
        clock.advance(1_000);
        expect(codes(await gql(s.url, t, ME))).to.deep.equal(['UNAUTHENTICATED']);
      } finally {
        await s.close();
      }
    });
  });

  describe('authentication over WebSocket', () => {
    it('closes with 4401 without a token', async () => {
      const c = wsClient(server.wsUrl, null);
      expect((await c.closed).code).to.equal(4401);
      await c.dispose();
    });

    it('closes with 4401 with a bad token', async () => {
      const c = wsClient(server.wsUrl, 'abc.def.ghi');
      expect((await c.closed).code).to.equal(4401);
      await c.dispose();
    });

    it('closes with 4401 with a value that is not "Bearer <jwt>"', async () => {
      const c = wsClient(server.wsUrl, null, { authorization: token });
      expect((await c.closed).code).to.equal(4401);
      await c.dispose();
    });

    it('acknowledges a good token and serves operations on it', async () => {
      const c = wsClient(server.wsUrl, token);
      try {
        await c.connected;
        const r = await wsRequest<{ me: { email: string } }>(c.client, ME);
        expect(r.data?.me.email).to.equal(email);
      } finally {
        await c.dispose();
      }
    });

    it('gives request errors over WebSocket the same codes as HTTP', async () => {
      const c = wsClient(server.wsUrl, token);
      try {
        await c.connected;
        const invalid = await wsRequest(c.client, '{ nope }').then(
          () => null,
          (e: unknown) => e as { errors?: Array<{ extensions?: { code?: string } }> },
        );
        expect(invalid?.errors?.map((e) => e.extensions?.code)).to.deep.equal(['GRAPHQL_VALIDATION_FAILED']);
        const syntax = await wsRequest(c.client, '{ me { ').then(
          () => null,
          (e: unknown) => e as { errors?: Array<{ extensions?: { code?: string } }> },
        );
        expect(syntax?.errors?.map((e) => e.extensions?.code)).to.deep.equal(['GRAPHQL_PARSE_FAILED']);
        const missingVariable = await wsRequest(c.client, 'query($id: ID!) { task(id: $id) { id } }');
        expect(missingVariable.errors?.map((e) => e.extensions?.['code'])).to.deep.equal(['BAD_USER_INPUT']);
      } finally {
        await c.dispose();
      }
    });

    it('refuses upgrades on other paths', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/elsewhere`, 'graphql-transport-ws');
      const status = await new Promise<number>((resolve) => {
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        ws.on('error', () => resolve(-1));
      });
      expect(status).to.equal(404);
    });
  });

  describe('query limits', () => {
    it('depth: the limit passes, one more level is QUERY_TOO_COMPLEX', async () => {
      const max = server.config.maxQueryDepth;
      // deepTasks(n) has depth 4n (tasks/edges/node/goal per level; tasks/edges/node/id innermost).
      const levels = Math.floor(max / 4);
      const within = deepTasks(levels);
      expect(depthOf(within)).to.be.at.most(max);
      expect(codes(await gql(server.url, token, within))).to.deep.equal([]);
      const beyond = deepTasks(levels + 1);
      expect(depthOf(beyond)).to.be.above(max);
      const r = await gql(server.url, token, beyond);
      expect(codes(r)).to.include('QUERY_TOO_COMPLEX');
      expect(r.errors?.some((e) => /depth/i.test(e.message))).to.equal(true);
      expect(r.data).to.equal(undefined);
    });

    it('cost: rows multiply through pages and lists; over the limit is QUERY_TOO_COMPLEX at any depth', async () => {
      const cheap = deepTasks(2, 3);
      expect(codes(await gql(server.url, token, cheap))).to.deep.equal([]);
      // 100 × (1 + 50 × (1 + 50)) = 255,100 rows at depth 6 (test/e2e/limits.test.ts has the rest).
      const costly = '{ tasks(first: 100) { edges { node { dependsOn { dependsOn { id } } } } } }';
      expect(depthOf(costly)).to.be.at.most(server.config.maxQueryDepth);
      const r = await gql(server.url, token, costly);
      expect(codes(r)).to.deep.equal(['QUERY_TOO_COMPLEX']);
      expect(r.errors?.[0]?.message).to.match(/cost/i);
    });

    it('aliases: 15 pass, 16 are QUERY_TOO_COMPLEX (__typename counts)', async () => {
      const aliases = (n: number) =>
        `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`;
      expect(codes(await gql(server.url, token, aliases(15)))).to.deep.equal([]);
      const r = await gql(server.url, token, aliases(16));
      expect(codes(r)).to.deep.equal(['QUERY_TOO_COMPLEX']);
      expect(r.errors?.[0]?.message).to.match(/alias/i);
    });

    it('directives: 50 pass, 51 are QUERY_TOO_COMPLEX', async () => {
      const directives = (n: number) =>
        `{ ${Array.from({ length: n }, () => '__typename @include(if: true)').join(' ')} }`;
      expect(codes(await gql(server.url, token, directives(50)))).to.deep.equal([]);
      expect(codes(await gql(server.url, token, directives(51)))).to.deep.equal(['QUERY_TOO_COMPLEX']);
    });

    it('tokens: 2000 pass the parser, 2001 are QUERY_TOO_COMPLEX', async () => {
      // A long enum list keeps field count (and so validation work) small while tokens grow.
      const query = (n: number) =>
        `{ tasks(filter: { status: [${Array.from({ length: n - 19 }, () => 'TODO').join(' ')}] }) { edges { cursor } } }`;
      expect(tokenCount(query(2000))).to.equal(2000);
      expect(codes(await gql(server.url, token, query(2000)))).not.to.include('QUERY_TOO_COMPLEX');
      const r = await gql(server.url, token, query(2001));
      expect(codes(r)).to.deep.equal(['QUERY_TOO_COMPLEX']);
      expect(r.errors?.[0]?.message).to.match(/tokens/);
    });

    it('applies the same limits on the WebSocket path', async () => {
      const c = wsClient(server.wsUrl, token);
      try {
        await c.connected;
        const aliases = `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
        const err = await wsRequest(c.client, aliases).then(
          () => null,
          (e: unknown) => e as { errors?: Array<{ extensions?: { code?: string } }> },
        );
        expect(err?.errors?.map((e) => e.extensions?.code)).to.deep.equal(['QUERY_TOO_COMPLEX']);
        const deep = await wsRequest(c.client, deepTasks(3)).then(
          () => null,
          (e: unknown) => e as { errors?: Array<{ extensions?: { code?: string } }> },
        );
        expect(deep?.errors?.map((e) => e.extensions?.code)).to.include('QUERY_TOO_COMPLEX');
      } finally {
        await c.dispose();
      }
    });
  });

  describe('request body limit', () => {
    it('answers 413 above PLANNER_MAX_BODY_BYTES', async function () {
      this.timeout(30_000);
      const s = await startTestServer({ env: { PLANNER_MAX_BODY_BYTES: '1024' } });
      try {
        const small = await gql(s.url, null, '{ __typename }');
        expect(small.status).to.equal(200);
        const big = await fetch(s.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: `{ __typename } # ${'x'.repeat(4096)}` }),
        });
        expect(big.status).to.equal(413);
      } finally {
        await s.close();
      }
    });
  });

  describe('graceful shutdown', () => {
    it('closes open WebSockets with 1001 and stops answering', async function () {
      this.timeout(30_000);
      const s = await startTestServer();
      const t = await s.token(`bye-${randomUUID()}@example.com`);
      const c = wsClient(s.wsUrl, t);
      await c.connected;
      await s.close();
      expect((await c.closed).code).to.equal(1001);
      await c.dispose();
      await s.close(); // idempotent
      let refused = false;
      await fetch(`${s.origin}/healthz`).catch(() => (refused = true));
      expect(refused).to.equal(true);
    });
  });
});

describe('auth helpers (unit)', () => {
  const secret = 's'.repeat(40);
  const now = new Date('2030-01-01T00:00:00Z');

  it('round-trips a token and builds the auth context', () => {
    const id = randomUUID();
    const t = mintToken(secret, 'iss', { userId: id, email: 'a@b.c', role: 'ADMIN' }, 60, now);
    expect(verifyToken(secret, 'iss', t, now)).to.deep.equal({
      userId: id,
      actor: `user:${id}`,
      role: 'ADMIN',
      expiresAt: Math.floor(now.getTime() / 1000) + 60,
      issuedAt: Math.floor(now.getTime() / 1000),
    });
    expect(() => verifyToken(secret, 'iss', t, new Date(now.getTime() + 60_000))).to.throw(/expired/);
    expect(() => verifyToken(secret, 'other', t, now)).to.throw(/issuer/);
    // The key made once verifies the same tokens under the same rules.
    const key = tokenKey(secret);
    expect(verifyToken(key, 'iss', t, now).userId).to.equal(id);
    expect(() => verifyToken(key, 'iss', t, new Date(now.getTime() + 60_000))).to.throw(/expired/);
    expect(() => verifyToken(tokenKey('t'.repeat(40)), 'iss', t, now)).to.throw(/signature/);
  });

  it('refuses a subject that is not a user id (UUID)', () => {
    for (const sub of ['u1', "1' OR '1'='1", `${randomUUID()}x`, ' ']) {
      const t = mintToken(secret, 'iss', { userId: sub, email: 'a@b.c', role: 'USER' }, 60, now);
      expect(() => verifyToken(secret, 'iss', t, now), sub).to.throw(/subject/);
    }
  });

  it('parses only "Bearer <jwt>"', () => {
    expect(parseBearer('Bearer a.b.c')).to.equal('a.b.c');
    for (const v of [
      'bearer a.b.c',
      'Bearer  a.b.c',
      'Bearer a.b',
      'Bearer a.b.c ',
      'Basic a.b.c',
      '',
      undefined,
      42,
    ]) {
      expect(parseBearer(v), String(v)).to.equal(null);
    }
  });
});

describe('error masking (unit)', () => {
  function capture() {
    const lines: string[] = [];
    return { lines, log: createLogger('error', (l) => lines.push(l)) };
  }

  it('masks a non-GraphQL error as INTERNAL "Unexpected error." and logs the original', () => {
    const { lines, log } = capture();
    const format = createFormatError({ devMode: false, log, newLogId: () => 'log-1' });
    const original = new Error('connection to 10.0.0.5 refused: password authentication failed');
    const wrapped = new GraphQLError(original.message, { originalError: original, path: ['me'] });
    const out = format({ ...wrapped.toJSON(), extensions: { code: 'INTERNAL_SERVER_ERROR' } }, wrapped);
    expect(out.message).to.equal(UNEXPECTED_MESSAGE);
    expect(out.extensions).to.deep.equal({ code: 'INTERNAL', logId: 'log-1' });
    expect(out.path).to.deep.equal(['me']);
    expect(JSON.stringify(out)).not.to.contain('10.0.0.5');
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain('password authentication failed');
    expect(JSON.parse(lines[0]!)).to.include({ logId: 'log-1' });
  });

  it('keeps the original message under extensions in dev mode only', () => {
    const err = new GraphQLError('boom');
    const newLogId = () => 'id';
    const dev = createFormatError({ devMode: true, log: capture().log, newLogId })(err.toJSON(), err);
    expect(dev.extensions).to.deep.equal({ code: 'INTERNAL', logId: 'id', originalMessage: 'boom' });
    const safe = createFormatError({ devMode: false, log: capture().log, newLogId })(err.toJSON(), err);
    expect(safe.extensions).to.deep.equal({ code: 'INTERNAL', logId: 'id' });
  });

  it('gives every masked error its own log id', () => {
    const format = createFormatError({ devMode: false, log: capture().log });
    const err = new GraphQLError('boom');
    const a = format(err.toJSON(), err).extensions?.['logId'];
    const b = format(err.toJSON(), err).extensions?.['logId'];
    expect(a).to.be.a('string').and.not.equal(b);
  });

  it('lets a domain code under a generic validation error through (scalar VALIDATION)', () => {
    const format = createFormatError({ devMode: false, log: capture().log });
    const scalar = new GraphQLError('DateTime needs an offset', { extensions: { code: 'VALIDATION' } });
    const wrapped = new GraphQLError('Expected value of type "DateTime"; DateTime needs an offset', {
      originalError: scalar,
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    expect(format(wrapped.toJSON(), wrapped).extensions).to.deep.equal({ code: 'VALIDATION' });
    const plain = new GraphQLError('Cannot query field "x"', {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    expect(format(plain.toJSON(), plain).extensions).to.deep.equal({ code: 'GRAPHQL_VALIDATION_FAILED' });
  });

  it('keeps errors raised on purpose, and finds a code behind a wrapper', () => {
    const format = createFormatError({ devMode: false, log: capture().log });
    for (const code of ['UNAUTHENTICATED', 'FORBIDDEN', 'RATE_LIMITED', 'NOT_FOUND', 'BAD_USER_INPUT']) {
      const err = new GraphQLError(`x ${code}`, { extensions: { code } });
      expect(format(err.toJSON(), err)).to.deep.include({ message: `x ${code}`, extensions: { code } });
    }
    const inner = new GraphQLError('go away', { extensions: { code: 'FORBIDDEN' } });
    const outer = new GraphQLError('go away', { originalError: inner });
    expect(format(outer.toJSON(), outer).extensions).to.deep.equal({ code: 'FORBIDDEN' });
  });
});
