/**
 * Issue 13: identity-provider tokens, stored roles, revocation. A local JWKS server started here
 * serves keys generated here; the planner is started with PLANNER_JWKS_URL pointing at it and is
 * driven through its public API (HTTP and WebSocket). The clock is a ManualClock: expiry, clock
 * skew and the JWKS refresh cooldown are all measured on it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { mintToken } from '../../src/server/auth';
import { ManualClock } from '../../src/world/clock';
import { collect, gql, SubscriptionError, wsClient, type GqlResponse } from '../support/graphql';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

const ISSUER = 'https://idp.test/realms/planner';
const AUDIENCE = 'planner-api';
const ME = '{ me { id email } }';
const ADMIN_ONLY = '{ rolloutReport }';
const PLAN = `subscription Plan($since: String) { planEvents(since: $since) { cursor type } }`;

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256' | 'EdDSA';
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(alg: SigningKey['alg'], kid = randomUUID()): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, jwk };
}

/** A JWKS endpoint: serves `keys` (mutable), counts fetches. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  private server = http.createServer((_req, res) => {
    this.fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: this.keys }));
  });
  url = '';
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const codes = (r: GqlResponse<unknown>) => (r.errors ?? []).map((e) => e.extensions?.['code']);

describe('identity provider sign-in (issue 13)', function () {
  this.timeout(60_000);
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  const jwks = new JwksServer();
  let server: TestServer;
  let rsa: SigningKey;
  let ec: SigningKey;
  let ed: SigningKey;

  const sign = async (
    key: SigningKey,
    claims: JWTPayload,
    opts: { iss?: string; aud?: string; ttl?: number; iatOffset?: number; kid?: string | null } = {},
  ): Promise<string> => {
    const now = Math.floor(clock.now().getTime() / 1000) + (opts.iatOffset ?? 0);
    return new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, ...(opts.kid === null ? {} : { kid: opts.kid ?? key.kid }) })
      .setIssuer(opts.iss ?? ISSUER)
      .setAudience(opts.aud ?? AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + (opts.ttl ?? 3600))
      .sign(key.privateKey);
  };
  const person = (tag: string) => ({
    sub: `${tag}|${randomUUID()}`,
    email: `${tag}-${randomUUID()}@example.com`,
  });
  const usersWithSubject = async (sub: string) =>
    (await server.world.dataSource.query('SELECT id, email FROM users WHERE provider_subject = $1', [
      sub,
    ])) as Array<{ id: string; email: string }>;

  before(async () => {
    [rsa, ec, ed] = await Promise.all([signingKey('RS256'), signingKey('ES256'), signingKey('EdDSA')]);
    jwks.keys = [rsa.jwk, ec.jwk, ed.jwk];
    await jwks.start();
    server = await startTestServer({
      clock,
      env: {
        PLANNER_JWKS_URL: jwks.url,
        PLANNER_OIDC_ISSUER: ISSUER,
        PLANNER_OIDC_AUDIENCE: AUDIENCE,
        PLANNER_OIDC_ROLE_CLAIM: 'realm_access.roles',
        PLANNER_OIDC_ADMIN_VALUE: 'planner-admin',
      },
    });
  });
  after(async () => {
    await server?.close();
    await jwks.close();
  });

  it('accepts RS256, ES256 and EdDSA tokens and creates the user once, matched by subject', async () => {
    for (const key of [rsa, ec, ed]) {
      const p = person(key.alg);
      const first = await gql<{ me: { id: string; email: string } }>(server.url, await sign(key, p), ME);
      expect(first.errors, key.alg).to.equal(undefined);
      expect(first.data!.me.email).to.equal(p.email);
      const again = await gql<{ me: { id: string } }>(server.url, await sign(key, p), ME);
      expect(again.data!.me.id).to.equal(first.data!.me.id);
      const rows = await usersWithSubject(p.sub);
      expect(rows.map((r) => r.id)).to.deep.equal([first.data!.me.id]);
    }
  });

  it('keeps the same user when the provider changes the email, and refuses an email owned by another account', async () => {
    const p = person('mover');
    const before = await gql<{ me: { id: string } }>(server.url, await sign(rsa, p), ME);
    const moved = `moved-${randomUUID()}@example.com`;
    const after = await gql<{ me: { id: string; email: string } }>(
      server.url,
      await sign(rsa, { ...p, email: moved }),
      ME,
    );
    expect(after.data!.me).to.deep.equal({ id: before.data!.me.id, email: moved });
    expect(await usersWithSubject(p.sub)).to.have.length(1);

    // Someone else's address: another account exists with it (signed up with a server token).
    const victim = `victim-${randomUUID()}@example.com`;
    const victimToken = await server.token(victim);
    const victimId = (await gql<{ me: { id: string } }>(server.url, victimToken, ME)).data!.me.id;
    const stranger = { sub: `stranger|${randomUUID()}`, email: victim };
    const refused = await gql(server.url, await sign(rsa, stranger), ME);
    expect(codes(refused)).to.deep.equal(['UNAUTHENTICATED']);
    expect(await usersWithSubject(stranger.sub)).to.deep.equal([]);
    // Nor can an existing provider user take it over by changing its email claim.
    const takeover = await gql(server.url, await sign(rsa, { ...p, email: victim }), ME);
    expect(codes(takeover)).to.deep.equal(['UNAUTHENTICATED']);
    const victimNow = await gql<{ me: { id: string; email: string } }>(server.url, victimToken, ME);
    expect(victimNow.data!.me).to.deep.equal({ id: victimId, email: victim });
  });

  it('refuses wrong audience, wrong issuer, expired, alg none, HS256 with the public key, unknown kid, unverified email (UNAUTHENTICATED)', async () => {
    const p = person('bad');
    const now = Math.floor(clock.now().getTime() / 1000);
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = { ...p, iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 3600 };
    const hsWithPublic = await new SignJWT(p)
      .setProtectedHeader({ alg: 'HS256', kid: rsa.kid })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(new TextEncoder().encode(JSON.stringify(rsa.jwk)));
    const cases: Array<[string, string]> = [
      ['wrong audience', await sign(rsa, p, { aud: 'someone-else' })],
      ['wrong issuer', await sign(rsa, p, { iss: 'https://evil.test/' })],
      // Past the 60 s skew tolerance (a token 30 s past exp is still accepted: next test).
      ['expired', await sign(rsa, p, { iatOffset: -7200, ttl: 3600 })],
      ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`],
      ['alg none (with a signature part)', `${b64({ alg: 'none' })}.${b64(payload)}.${b64('x')}`],
      ['HS256 signed with the public key', hsWithPublic],
      ['unknown kid', await sign(await signingKey('RS256'), p)],
      ['ES256 key presented as RS256', await sign(ec, p, { kid: rsa.kid })],
      ['email_verified: false', await sign(rsa, { ...p, email_verified: false })],
    ];
    for (const [name, token] of cases) {
      const r = await gql(server.url, token, ME, undefined, { authorization: `Bearer ${token}` });
      // alg none has an empty signature segment: the Bearer format itself refuses it (no auth → null me).
      const refused = codes(r).includes('UNAUTHENTICATED');
      expect(refused, `${name}: ${JSON.stringify(r)}`).to.equal(true);
    }
    expect(await usersWithSubject(p.sub), 'no user was created').to.deep.equal([]);
  });

  it('tolerates clock skew within PLANNER_OIDC_CLOCK_SKEW (60 s), also for a token verified before', async () => {
    const p = person('skew');
    const token = await sign(rsa, p, { ttl: 60 });
    const checks = server.auth.signatureChecks;
    for (let i = 0; i < 3; i++) expect((await gql(server.url, token, ME)).errors).to.equal(undefined);
    expect(server.auth.signatureChecks, 'a token seen before is not verified again').to.equal(checks + 1);
    clock.advance(90_000); // 30 s past exp: accepted (from the verified-token cache: expiry still applies)
    expect((await gql(server.url, token, ME)).errors).to.equal(undefined);
    clock.advance(40_000); // 70 s past exp
    expect(codes(await gql(server.url, token, ME))).to.deep.equal(['UNAUTHENTICATED']);
  });

  it('server (HS256) tokens: the signature is checked once per token, expiry on every request', async () => {
    const email = `hs-once-${randomUUID()}@example.com`;
    const user = await server.world.users.findOrCreateByEmail(email);
    const token = mintToken(
      TEST_JWT_SECRET,
      server.config.jwtIssuer,
      { userId: user.id, email, role: 'USER' },
      60,
      clock.now(),
    );
    const checks = server.auth.hsSignatureChecks;
    for (let i = 0; i < 3; i++) {
      const r = await gql<{ me: { id: string } }>(server.url, token, ME);
      expect(r.data?.me.id).to.equal(user.id);
    }
    expect(server.auth.hsSignatureChecks, 'a token seen before is not verified again').to.equal(checks + 1);
    // The same signature on other claims is another token text: verified (and refused) in full.
    const [head, body, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${head}.${Buffer.from(JSON.stringify({ ...claims, exp: Number(claims['exp']) + 3600 })).toString('base64url')}.${sig}`;
    expect(codes(await gql(server.url, tampered, ME))).to.deep.equal(['UNAUTHENTICATED']);
    clock.advance(60_000); // exactly at exp: no skew for server tokens
    expect(codes(await gql(server.url, token, ME))).to.deep.equal(['UNAUTHENTICATED']);
  });

  it('picks up a rotated key through its kid, and a flood of unknown kids fetches the JWKS at most once per cooldown', async () => {
    const rotated = await signingKey('RS256');
    const p = person('rotated');
    clock.advance(31_000); // past the 30 s cooldown since the last fetch
    jwks.keys = [rotated.jwk, ec.jwk, ed.jwk];
    const fetchesBefore = jwks.fetches;
    const ok = await gql(server.url, await sign(rotated, p), ME);
    expect(ok.errors).to.equal(undefined);
    expect(jwks.fetches).to.equal(fetchesBefore + 1);
    // Made-up kids: refused, and within the cooldown the provider is not asked again.
    const bogus = await signingKey('RS256');
    for (let i = 0; i < 20; i++) {
      const t = await sign(bogus, p, { kid: `bogus-${i}` });
      expect(codes(await gql(server.url, t, ME))).to.deep.equal(['UNAUTHENTICATED']);
    }
    expect(jwks.fetches).to.equal(fetchesBefore + 1);
    // The old key is gone from the set: its tokens are refused once the set has been refreshed.
    expect(codes(await gql(server.url, await sign(rsa, person('old')), ME))).to.deep.equal([
      'UNAUTHENTICATED',
    ]);
    jwks.keys = [rsa.jwk, rotated.jwk, ec.jwk, ed.jwk];
    clock.advance(31_000);
  });

  it('a revoked user: tokens issued before are refused, a new one works (HTTP and server tokens)', async () => {
    const p = person('revoked');
    const old = await sign(ed, p);
    const id = (await gql<{ me: { id: string } }>(server.url, old, ME)).data!.me.id;
    const oldServerToken = await server.token(p.email);
    expect((await gql(server.url, oldServerToken, ME)).errors).to.equal(undefined);
    clock.advance(1000);
    await server.world.users.revoke(id, 'test');
    clock.advance(1000);
    expect(codes(await gql(server.url, old, ME))).to.deep.equal(['UNAUTHENTICATED']);
    expect(codes(await gql(server.url, oldServerToken, ME))).to.deep.equal(['UNAUTHENTICATED']);
    const fresh = await gql<{ me: { id: string } }>(server.url, await sign(ed, p), ME);
    expect(fresh.data!.me.id).to.equal(id);
    expect((await gql(server.url, await server.token(p.email), ME)).errors).to.equal(undefined);
    const audit = await server.world.users.authAudit(id);
    expect(audit.map((a) => [a.action, a.actor])).to.deep.include(['REVOKE', 'test']);
  });

  it('admin-only fields answer FORBIDDEN to a USER; a role claim or an operator makes an ADMIN; a demotion hits old tokens', async () => {
    const p = person('admin');
    const asUser = await sign(rsa, p);
    expect(codes(await gql(server.url, asUser, ADMIN_ONLY))).to.deep.equal(['FORBIDDEN']);
    // Mapped from the provider's claim at sign-in.
    const claimed = await sign(rsa, { ...p, realm_access: { roles: ['planner-admin'] } });
    expect((await gql(server.url, claimed, ADMIN_ONLY)).errors).to.equal(undefined);
    // An operator demotes: the token minted before (still carrying the claim) loses the role.
    const id = (await gql<{ me: { id: string } }>(server.url, claimed, ME)).data!.me.id;
    await server.world.users.setRole(id, 'USER', 'os:operator');
    expect(codes(await gql(server.url, claimed, ADMIN_ONLY))).to.deep.equal(['FORBIDDEN']);

    // Server tokens: the role claim inside the token is not trusted, the stored role is.
    const email = `hs-${randomUUID()}@example.com`;
    const user = await server.world.users.findOrCreateByEmail(email);
    const forged = mintToken(
      TEST_JWT_SECRET,
      server.config.jwtIssuer,
      { userId: user.id, email, role: 'ADMIN' },
      3600,
      clock.now(),
    );
    expect(codes(await gql(server.url, forged, ADMIN_ONLY))).to.deep.equal(['FORBIDDEN']);
    await server.world.users.setRole(user.id, 'ADMIN', 'os:operator');
    expect((await gql(server.url, forged, ADMIN_ONLY)).errors).to.equal(undefined);
    const audit = await server.world.users.authAudit(user.id);
    expect(audit.map((a) => [a.action, a.before, a.after, a.actor])).to.deep.equal([
      ['ROLE', 'USER', 'ADMIN', 'os:operator'],
    ]);
  });

  it('a WebSocket connection with a provider token: refused when bad (4401), ended when the token expires', async () => {
    const bad = wsClient(server.wsUrl, await sign(rsa, person('ws'), { aud: 'other' }));
    expect((await bad.closed).code).to.equal(4401);

    const p = person('ws');
    const token = await sign(ec, p, { ttl: 120 });
    const id = (await gql<{ me: { id: string } }>(server.url, token, ME)).data!.me.id;
    const h = wsClient(server.wsUrl, token);
    try {
      await h.connected;
      const plan = collect(h.client, { query: PLAN, variables: { since: '0' } });
      const actor = { userId: id, actor: `user:${id}` };
      await server.world.updater.createTask(actor, { title: 'before expiry' });
      await plan.take(1);
      clock.advance(121_000 + 60_000); // past exp (the hub ends streams at exp; skew is for verification)
      await server.world.updater.createTask(actor, { title: 'after expiry' });
      const err = await plan.done.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(SubscriptionError);
      expect(JSON.stringify((err as SubscriptionError).errors)).to.contain('UNAUTHENTICATED');
      expect(plan.results).to.have.length(1);
    } finally {
      await h.dispose();
    }
  });
});

describe('role changes reach other instances (issue 13)', function () {
  this.timeout(60_000);
  it('a demotion made through one instance is enforced by another within its poll period', async () => {
    // Polls every 5 s: the test triggers b's poll itself, so that nothing else moves its cache.
    const a = await startTestServer({ env: { PLANNER_AUTH_POLL_MS: '5000' } });
    const b = await startTestServer({ env: { PLANNER_AUTH_POLL_MS: '5000' } });
    try {
      const email = `multi-${randomUUID()}@example.com`;
      const token = await a.token(email, { role: 'ADMIN' });
      expect((await gql(b.url, token, ADMIN_ONLY)).errors).to.equal(undefined);
      await b.authCache.poll(); // b takes in the role change made before it ever saw the user
      expect((await gql(b.url, token, ADMIN_ONLY)).errors).to.equal(undefined); // now cached by b
      const loadsBefore = b.authCache.loads;
      expect((await gql(b.url, token, ADMIN_ONLY)).errors).to.equal(undefined);
      expect(b.authCache.loads, 'a cached user costs no query').to.equal(loadsBefore);
      const user = (await a.world.users.findByEmail(email))!;
      await a.world.users.setRole(user.id, 'USER', 'os:operator');
      // b learns of it through auth_version: wait for its poll (bounded), not for a fixed time.
      await b.authCache.poll();
      expect(codes(await gql(b.url, token, ADMIN_ONLY))).to.deep.equal(['FORBIDDEN']);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
