/**
 * The dashboard's HTTP side on a real server: the page and its assets (no inline code, no other
 * origin, size, caching headers, Content-Security-Policy), config.json, the development sign-in
 * (dev mode only), and User.eventCursor as the live streams' starting point.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { collect, gql, wsClient } from '../support/graphql';
import { startTestServer, type TestServer } from '../support/server';

const MAX_TOTAL_BYTES = 300 * 1024;

interface Fetched {
  status: number;
  headers: Headers;
  text: string;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<Fetched> {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function expectStrictCsp(headers: Headers): void {
  const csp = headers.get('content-security-policy') ?? '';
  expect(csp).to.contain("default-src 'none'");
  expect(csp).to.contain("script-src 'self'");
  expect(csp).to.contain("style-src 'self'");
  expect(csp).to.contain("frame-ancestors 'none'");
  expect(csp).not.to.contain('unsafe-inline');
  expect(csp).not.to.contain('unsafe-eval');
  expect(headers.get('x-content-type-options')).to.equal('nosniff');
}

describe('dashboard over HTTP (e2e)', () => {
  describe('without dev mode or provider', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer();
    });
    after(() => server.close());

    it('serves the page with a strict CSP, revalidation and no inline code', async () => {
      const page = await get(`${server.origin}/dashboard/`);
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      expect(page.headers.get('cache-control')).to.equal('no-cache');
      expectStrictCsp(page.headers);
      expect(page.text).to.contain('<label for="token">Token</label>');
      // every script has a src on this origin; no inline script, handler or style attribute
      const scripts = [...page.text.matchAll(/<script([^>]*)>/g)].map((m) => m[1]!);
      expect(scripts.length).to.be.at.least(2);
      for (const attrs of scripts) expect(attrs).to.match(/ src="\/dashboard\/assets\/[\w.-]+\.js"/);
      expect(page.text).not.to.match(/\son[a-z]+=|\sstyle=|https?:\/\//);
      const etag = page.headers.get('etag')!;
      expect(etag).to.match(/^".+"$/);
      const again = await get(`${server.origin}/dashboard`, { 'if-none-match': etag });
      expect(again.status).to.equal(304);
      expect(again.text).to.equal('');
    });

    it('serves every asset under a content hash, immutable, a few hundred KB in all, graphql-ws included', async () => {
      const page = await get(`${server.origin}/dashboard/`);
      const urls = [...page.text.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
      expect(urls.some((u) => /\/graphql-ws\.[0-9a-f]{10}\.js$/.test(u))).to.equal(true);
      expect(urls.some((u) => u.endsWith('.css'))).to.equal(true);
      let total = page.text.length;
      for (const url of urls) {
        expect(url).to.match(/\.[0-9a-f]{10}\.(js|css)$/);
        const asset = await get(`${server.origin}${url}`);
        expect(asset.status, url).to.equal(200);
        expect(asset.headers.get('cache-control')).to.equal('public, max-age=31536000, immutable');
        expect(asset.headers.get('content-type')).to.match(/^(text\/javascript|text\/css); charset=utf-8$/);
        expectStrictCsp(asset.headers);
        total += asset.text.length;
      }
      expect(total).to.be.below(MAX_TOTAL_BYTES);
      const missing = await get(`${server.origin}/dashboard/assets/dash-main.0000000000.js`);
      expect(missing.status).to.equal(404);
      const post = await fetch(`${server.origin}/dashboard/`, { method: 'POST' });
      expect(post.status).to.equal(405);
    });

    it('config.json offers neither dev sign-in nor a provider; POST /dashboard/dev-token is 404', async () => {
      const config = await get(`${server.origin}/dashboard/config.json`);
      expect(config.status).to.equal(200);
      expect(JSON.parse(config.text)).to.deep.equal({
        graphqlPath: '/graphql',
        devSignIn: false,
        oidc: null,
      });
      const dev = await fetch(`${server.origin}/dashboard/dev-token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'nobody@example.com' }),
      });
      expect(dev.status).to.equal(404);
      expect(await server.world.users.findByEmail('nobody@example.com')).to.equal(null);
    });

    it('me.eventCursor is where a subscription starts: nothing before it is replayed, everything after it arrives', async () => {
      const token = await server.token(`cursor-${randomUUID().slice(0, 8)}@example.com`);
      const create = (title: string) =>
        gql(server.url, token, `mutation { createTask(input: { title: "${title}" }) { ok } }`);
      await create('Made earlier');
      const me = await gql<{ me: { eventCursor: string } }>(server.url, token, '{ me { eventCursor } }');
      const cursor = me.data!.me.eventCursor;
      expect(cursor).to.match(/^\d+$/);
      expect(Number(cursor)).to.be.greaterThan(0);
      await create('Made later');
      const ws = wsClient(server.wsUrl, token);
      try {
        const sub = collect<{ planEvents: { cursor: string; payload: unknown } }>(ws.client, {
          query: 'subscription($s: String) { planEvents(since: $s) { cursor payload } }',
          variables: { s: cursor },
        });
        // the first event delivered is the one after the cursor: the earlier one is not replayed
        const [first] = await sub.take(1);
        expect(Number(first!.data!.planEvents.cursor)).to.be.greaterThan(Number(cursor));
        const text = JSON.stringify(first!.data!.planEvents.payload);
        expect(text).to.contain('Made later');
        expect(text).not.to.contain('Made earlier');
        sub.stop();
      } finally {
        await ws.dispose();
      }
    });
  });

  describe('with PLANNER_DEV_MODE and a provider', () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer({
        env: {
          PLANNER_DEV_MODE: 'true',
          PLANNER_JWKS_URL: 'https://idp.example.com/realms/planner/certs',
          PLANNER_OIDC_ISSUER: 'https://idp.example.com/realms/planner',
          PLANNER_OIDC_AUDIENCE: 'planner-api',
          PLANNER_OIDC_CLIENT_ID: 'planner-dashboard',
        },
      });
    });
    after(() => server.close());

    it('config.json names the provider for PKCE and the CSP lets the page reach its issuer only', async () => {
      const config = await get(`${server.origin}/dashboard/config.json`);
      expect(JSON.parse(config.text)).to.deep.equal({
        graphqlPath: '/graphql',
        devSignIn: true,
        oidc: {
          issuer: 'https://idp.example.com/realms/planner',
          clientId: 'planner-dashboard',
          audience: 'planner-api',
          scope: 'openid email profile',
        },
      });
      const csp = config.headers.get('content-security-policy')!;
      expect(csp).to.contain("connect-src 'self' https://idp.example.com;");
    });

    it('the dev sign-in mints a working token for an email, and refuses bad requests', async () => {
      const email = `dev-${randomUUID().slice(0, 8)}@example.com`;
      const post = (body: string, type = 'application/json') =>
        fetch(`${server.origin}/dashboard/dev-token`, {
          method: 'POST',
          headers: { 'content-type': type },
          body,
        });
      const res = await post(JSON.stringify({ email }));
      expect(res.status).to.equal(200);
      expect(res.headers.get('cache-control')).to.equal('no-store');
      const { token } = (await res.json()) as { token: string };
      const me = await gql<{ me: { email: string } }>(server.url, token, '{ me { email } }');
      expect(me.data!.me.email).to.equal(email);

      expect((await post(JSON.stringify({ email: 'not an email' }))).status).to.equal(400);
      expect((await post(JSON.stringify({}))).status).to.equal(400);
      expect((await post('{')).status).to.equal(400);
      expect((await post(`email=${email}`, 'application/x-www-form-urlencoded')).status).to.equal(415);
      expect((await post(JSON.stringify({ email: 'x'.repeat(5000) }))).status).to.equal(413);
      expect((await fetch(`${server.origin}/dashboard/dev-token`)).status).to.equal(405);
    });
  });
});
