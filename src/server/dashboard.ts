/**
 * The live dashboard at /dashboard: a static, framework-free browser client (src/dashboard/public)
 * plus graphql-ws's browser build from node_modules, served by this server, no CDN.
 *
 * - Assets are read once at start and served under content-hashed names
 *   (`/dashboard/assets/<name>.<hash>.<ext>`, `Cache-Control: immutable`); the page itself and
 *   config.json are revalidated (`no-cache` + ETag, 304 on a match).
 * - Every response carries a strict Content-Security-Policy: scripts and styles from this origin
 *   only (no inline code), connections to this origin and, when a provider is configured, to its
 *   issuer (discovery and token endpoints for the PKCE sign-in).
 * - `GET /dashboard/config.json` tells the page how it may sign in; `POST /dashboard/dev-token`
 *   mints a token for an email under PLANNER_DEV_MODE only (404 otherwise).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Config } from '../config/config';
import type { Logger } from './logger';

/** Where the page's own files live (src/dashboard/public, also when running from dist/). */
function publicDir(): string {
  const candidates = [
    path.resolve(__dirname, '../dashboard/public'),
    path.resolve(__dirname, '../../../src/dashboard/public'),
  ];
  const found = candidates.find((d) => existsSync(path.join(d, 'index.html')));
  if (!found) throw new Error(`dashboard assets not found (looked in ${candidates.join(', ')})`);
  return found;
}

/** graphql-ws's browser (UMD) build: exposes `window.graphqlWs`. */
function graphqlWsBrowserBuild(): string {
  const pkg = require.resolve('graphql-ws/package.json');
  return path.join(path.dirname(pkg), 'umd', 'graphql-ws.min.js');
}

/** The page's scripts, in load order (classic scripts with `defer` keep this order). */
const SCRIPTS = ['dash-api.js', 'dash-auth.js', 'dash-panels.js', 'dash-rollout.js', 'dash-main.js'];
const STYLES = ['dash.css'];

interface Asset {
  /** URL path, e.g. /dashboard/assets/dash-api.3f2a9c1e0b.js */
  url: string;
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
};

function etagOf(body: Buffer | string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}

function hashedAsset(file: string, name: string): Asset {
  const body = readFileSync(file);
  const ext = path.extname(name);
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 10);
  return {
    url: `/dashboard/assets/${path.basename(name, ext)}.${hash}${ext}`,
    body,
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: etagOf(body),
  };
}

/** The Content-Security-Policy of every dashboard response; `issuer` adds the provider's origin. */
export function dashboardCsp(issuer: string | null): string {
  let connect = "'self'";
  if (issuer) {
    try {
      connect += ` ${new URL(issuer).origin}`;
    } catch {
      // config validation accepts any issuer string; a non-URL one adds nothing
    }
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** What config.json tells the page. */
export interface DashboardClientConfig {
  /** GraphQL endpoint path (HTTP and WebSocket). */
  graphqlPath: string;
  /** The development sign-in by email is offered (PLANNER_DEV_MODE). */
  devSignIn: boolean;
  /** Provider sign-in (authorization code + PKCE), or null when none is configured. */
  oidc: { issuer: string; clientId: string; audience: string; scope: string } | null;
}

export interface DashboardOptions {
  config: Config;
  /** Mints a server token for an email, creating the user (dev sign-in). Called only in dev mode. */
  mintDevToken: (email: string) => Promise<{ token: string } | { error: string }>;
  log: Logger;
}

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<void>;

const DEV_TOKEN_MAX_BODY = 4096;

/** Builds the /dashboard handler (reads and hashes the assets now; throws if they are missing). */
export function createDashboard(opts: DashboardOptions): DashboardHandler {
  const { config } = opts;
  const dir = publicDir();
  const scripts = [
    hashedAsset(graphqlWsBrowserBuild(), 'graphql-ws.js'),
    ...SCRIPTS.map((s) => hashedAsset(path.join(dir, s), s)),
  ];
  const styles = STYLES.map((s) => hashedAsset(path.join(dir, s), s));
  const assets = new Map<string, Asset>([...scripts, ...styles].map((a) => [a.url, a]));

  const template = readFileSync(path.join(dir, 'index.html'), 'utf8');
  const html = Buffer.from(
    template
      .replace('<!--styles-->', styles.map((s) => `<link rel="stylesheet" href="${s.url}">`).join('\n    '))
      .replace('<!--scripts-->', scripts.map((s) => `<script defer src="${s.url}"></script>`).join('\n    ')),
  );
  const page: Asset = { url: '/dashboard/', body: html, type: TYPES['.html']!, etag: etagOf(html) };

  const oidc = config.oidc;
  const clientConfig: DashboardClientConfig = {
    graphqlPath: '/graphql',
    devSignIn: config.devMode,
    oidc:
      oidc && oidc.dashboardClientId
        ? {
            issuer: oidc.issuer,
            clientId: oidc.dashboardClientId,
            audience: oidc.audience[0] ?? '',
            scope: oidc.dashboardScope,
          }
        : null,
  };
  const configBody = Buffer.from(JSON.stringify(clientConfig));
  const configAsset: Asset = {
    url: '/dashboard/config.json',
    body: configBody,
    type: TYPES['.json']!,
    etag: etagOf(configBody),
  };

  const security: Record<string, string> = {
    'content-security-policy': dashboardCsp(clientConfig.oidc?.issuer ?? null),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'cross-origin-opener-policy': 'same-origin',
  };

  function send(
    res: ServerResponse,
    status: number,
    type: string,
    body: Buffer | string,
    headers: Record<string, string>,
  ) {
    res.writeHead(status, {
      ...security,
      'content-type': type,
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
    res.end(body);
  }

  function sendJson(res: ServerResponse, status: number, body: unknown) {
    send(res, status, TYPES['.json']!, JSON.stringify(body), { 'cache-control': 'no-store' });
  }

  function serve(req: IncomingMessage, res: ServerResponse, asset: Asset, cacheControl: string) {
    const headers = { 'cache-control': cacheControl, etag: asset.etag };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, { ...security, ...headers });
      res.end();
      return;
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, {
        ...security,
        ...headers,
        'content-type': asset.type,
        'content-length': String(asset.body.length),
      });
      res.end();
      return;
    }
    send(res, 200, asset.type, asset.body, headers);
  }

  async function devToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!config.devMode) return sendJson(res, 404, { error: 'not found' });
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return sendJson(res, 405, { error: 'method not allowed' });
    }
    // JSON only: a cross-site form cannot send it without a CORS preflight this server never grants.
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return sendJson(res, 415, { error: 'send application/json' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > DEV_TOKEN_MAX_BODY) return sendJson(res, 413, { error: 'body too large' });
      chunks.push(chunk);
    }
    let email: unknown;
    try {
      email = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { email?: unknown }).email;
    } catch {
      return sendJson(res, 400, { error: 'body is not valid JSON', code: 'VALIDATION' });
    }
    if (typeof email !== 'string' || email.trim() === '')
      return sendJson(res, 400, { error: 'email is required', code: 'VALIDATION' });
    const minted = await opts.mintDevToken(email.trim());
    if ('error' in minted) return sendJson(res, 400, { error: minted.error, code: 'VALIDATION' });
    opts.log.info('dashboard dev sign-in', { email: email.trim() });
    return sendJson(res, 200, { token: minted.token });
  }

  return async (req, res, pathname) => {
    const method = (req.method ?? 'GET').toUpperCase();
    if (pathname === '/dashboard/dev-token') return devToken(req, res);
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendJson(res, 405, { error: 'method not allowed' });
    }
    if (pathname === '/dashboard' || pathname === '/dashboard/' || pathname === '/dashboard/index.html')
      return serve(req, res, page, 'no-cache');
    if (pathname === configAsset.url) return serve(req, res, configAsset, 'no-cache');
    const asset = assets.get(pathname);
    if (asset) return serve(req, res, asset, 'public, max-age=31536000, immutable');
    return sendJson(res, 404, { error: 'not found' });
  };
}
