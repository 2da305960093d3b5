/**
 * The dashboard's provider sign-in in a real browser: authorization code + PKCE (S256) against a
 * small identity provider started here (discovery document, authorize endpoint that redirects
 * back at once, token endpoint that checks the verifier against the challenge, JWKS). The planner
 * verifies the access token the page obtained like any provider token. Needs Chromium like
 * dashboard.test.ts; without it, it says so (dashboard.test.ts explains and .ci/run enforces).
 */
import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { chromium, type Browser } from 'playwright-core';
import { ManualClock } from '../../src/world/clock';
import { startTestServer, type TestServer } from '../support/server';

const CHROMIUM = process.env['PLANNER_CHROMIUM'] ?? '/usr/bin/chromium';
const CLIENT_ID = 'planner-dashboard';
const AUDIENCE = 'planner-api';

/** A minimal OIDC provider for one public client. */
class FakeProvider {
  issuer = '';
  /** What the authorize endpoint was asked (the last request). */
  authorizeParams: URLSearchParams | null = null;
  /** Outcome of each token request: 'issued' or why not. */
  tokenRequests: string[] = [];
  private kid = randomUUID();
  private key!: CryptoKey;
  private jwk!: JWK;
  private codes = new Map<string, { challenge: string; redirectUri: string }>();
  private server = http.createServer((req, res) => void this.handle(req, res));

  constructor(
    private clock: ManualClock,
    private email: string,
  ) {}

  async start(): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    this.key = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: this.kid, alg: 'RS256', use: 'sig' };
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.issuer = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private json(res: http.ServerResponse, status: number, body: unknown): void {
    // a provider lets its registered web origins call discovery and the token endpoint (CORS)
    res.writeHead(status, { 'content-type': 'application/json', 'access-control-allow-origin': '*' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      return this.json(res, 200, {
        issuer: this.issuer,
        authorization_endpoint: `${this.issuer}/authorize`,
        token_endpoint: `${this.issuer}/token`,
        jwks_uri: `${this.issuer}/jwks.json`,
        code_challenge_methods_supported: ['S256'],
      });
    }
    if (url.pathname === '/jwks.json') return this.json(res, 200, { keys: [this.jwk] });
    if (url.pathname === '/authorize') {
      const p = url.searchParams;
      this.authorizeParams = p;
      if (
        p.get('client_id') !== CLIENT_ID ||
        p.get('response_type') !== 'code' ||
        p.get('code_challenge_method') !== 'S256'
      )
        return this.json(res, 400, { error: 'invalid_request' });
      const code = randomUUID();
      this.codes.set(code, { challenge: p.get('code_challenge')!, redirectUri: p.get('redirect_uri')! });
      const back = new URL(p.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state')!);
      res.writeHead(302, { location: back.toString() });
      res.end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      const form = new URLSearchParams(body);
      const pending = this.codes.get(form.get('code') ?? '');
      this.codes.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      const challenge = createHash('sha256').update(verifier).digest('base64url');
      const why = !pending
        ? 'unknown or reused code'
        : form.get('grant_type') !== 'authorization_code'
          ? 'wrong grant_type'
          : form.get('client_id') !== CLIENT_ID
            ? 'wrong client_id'
            : form.get('redirect_uri') !== pending.redirectUri
              ? 'redirect_uri differs'
              : challenge !== pending.challenge
                ? 'code_verifier does not match the challenge'
                : null;
      this.tokenRequests.push(why ?? 'issued');
      if (why) return this.json(res, 400, { error: 'invalid_grant', error_description: why });
      const now = Math.floor(this.clock.now().getTime() / 1000);
      const accessToken = await new SignJWT({ email: this.email, email_verified: true, name: 'Pat' })
        .setProtectedHeader({ alg: 'RS256', kid: this.kid })
        .setIssuer(this.issuer)
        .setAudience(AUDIENCE)
        .setSubject(`pat-${randomUUID()}`)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(this.key);
      return this.json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: 3600 });
    }
    this.json(res, 404, { error: 'not found' });
  }
}

describe('dashboard sign-in with an identity provider (e2e, Chromium, PKCE)', function () {
  this.timeout(120_000);
  if (!fs.existsSync(CHROMIUM)) {
    it(`DID NOT RUN: no Chromium at ${CHROMIUM} (see the dashboard browser test)`, () => {
      expect(fs.existsSync(CHROMIUM)).to.equal(false);
    });
    return;
  }
  const clock = new ManualClock('2026-12-01T08:00:00Z');
  const email = `pat-${randomUUID().slice(0, 8)}@example.com`;
  const provider = new FakeProvider(clock, email);
  let server: TestServer;
  let browser: Browser;

  before(async () => {
    await provider.start();
    server = await startTestServer({
      clock,
      env: {
        PLANNER_JWKS_URL: `${provider.issuer}/jwks.json`,
        PLANNER_OIDC_ISSUER: provider.issuer,
        PLANNER_OIDC_AUDIENCE: AUDIENCE,
        PLANNER_OIDC_CLIENT_ID: CLIENT_ID,
      },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await provider.close();
  });

  it('runs the authorization code flow with PKCE and signs in with the access token', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 800 } });
    await page.goto(`${server.origin}/dashboard/`);
    await page.getByRole('button', { name: 'Sign in with identity provider' }).click();
    await page.locator('#live-status[data-state="live"]').waitFor({ timeout: 30_000 });
    expect(await page.locator('#who').textContent()).to.equal(email);

    const asked = provider.authorizeParams!;
    expect(asked.get('redirect_uri')).to.equal(`${server.origin}/dashboard/`);
    expect(asked.get('scope')).to.equal('openid email profile');
    expect(asked.get('audience')).to.equal(AUDIENCE);
    expect(asked.get('code_challenge')).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(asked.get('state')).to.match(/^[A-Za-z0-9_-]{22}$/);
    expect(provider.tokenRequests).to.deep.equal(['issued']);
    // the code and state are gone from the address bar
    expect(new URL(page.url()).search).to.equal('');
    await page.close();
  });

  it('refuses an answer whose state was not issued by this tab', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.origin}/dashboard/?code=forged&state=forged`);
    const error = page.locator('#signin-error');
    await error.waitFor({ state: 'visible', timeout: 30_000 });
    expect(await error.textContent()).to.match(/does not match a sign-in started here/);
    expect(await page.locator('#app').isVisible()).to.equal(false);
    expect(provider.tokenRequests).to.deep.equal(['issued']); // no code exchange was attempted
    await page.close();
  });
});
