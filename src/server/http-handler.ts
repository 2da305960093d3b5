/**
 * The node:http request handler: routes /graphql to Apollo (executeHTTPGraphQLRequest, no
 * framework), /healthz and /readyz to probes, /dashboard/* to the dashboard, everything else to a
 * 404. Enforces the body limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type HTTPGraphQLResponse } from '@apollo/server';
import type { GraphQLContext } from '../resolvers';
import { metricsHandler } from '../telemetry/global';
import type { Logger } from './logger';

export interface Readiness {
  ok: boolean;
  /** Why not ready (omitted when ready). */
  reason?: string;
}

export interface HttpHandlerOptions {
  apollo: ApolloServer<GraphQLContext>;
  /** Builds the per-request context from the raw `Authorization` header value. */
  context: (authorization: string | undefined) => Promise<GraphQLContext>;
  readiness: () => Promise<Readiness>;
  /** Maximum request body in bytes; larger bodies get 413. */
  maxBodyBytes: number;
  /** True once shutdown began: responses carry `Connection: close`. */
  isClosing: () => boolean;
  log: Logger;
  /** Serve the Prometheus scrape at /metrics (PLANNER_METRICS_ENDPOINT). Default false. */
  metrics?: boolean;
  /** Serves /dashboard and everything under it (dashboard.ts). Default: none (404). */
  dashboard?: (req: IncomingMessage, res: ServerResponse, pathname: string) => Promise<void>;
}

const GRAPHQL_PATH = '/graphql';

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function requestError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
) {
  sendJson(res, status, { errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] }, headers);
}

class BodyTooLarge extends Error {}

/** Reads the whole body, failing fast (BodyTooLarge) once it exceeds `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(new BodyTooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.off('end', onEnd);
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', reject);
  });
}

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const essence = contentType.split(';')[0]!.trim().toLowerCase();
  return essence === 'application/json' || essence.endsWith('+json');
}

async function writeApolloResponse(res: ServerResponse, response: HTTPGraphQLResponse): Promise<void> {
  res.statusCode = response.status ?? 200;
  for (const [key, value] of response.headers) res.setHeader(key, value);
  if (response.body.kind === 'complete') {
    res.end(response.body.string);
    return;
  }
  for await (const chunk of response.body.asyncIterator) res.write(chunk);
  res.end();
}

/** Creates the request listener for `http.createServer`. */
export function createHttpHandler(
  opts: HttpHandlerOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { apollo, log } = opts;

  async function graphql(req: IncomingMessage, res: ServerResponse, search: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    let body: unknown = undefined;
    if (method === 'POST') {
      let raw: Buffer;
      try {
        raw = await readBody(req, opts.maxBodyBytes);
      } catch (err) {
        if (err instanceof BodyTooLarge) {
          requestError(res, 413, `Request body exceeds ${opts.maxBodyBytes} bytes.`, { connection: 'close' });
          return;
        }
        throw err;
      }
      const text = raw.toString('utf8');
      if (isJson(req.headers['content-type'])) {
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            requestError(res, 400, 'Request body is not valid JSON.');
            return;
          }
        }
      } else {
        body = text; // Apollo rejects it (CSRF prevention / "invalid Content-Type") with a 400
      }
    }
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method, headers, search, body },
      context: () => opts.context(req.headers.authorization),
    });
    await writeApolloResponse(res, response);
  }

  async function probe(
    req: IncomingMessage,
    res: ServerResponse,
    which: 'healthz' | 'readyz',
  ): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
      return;
    }
    if (which === 'healthz') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    const ready = await opts.readiness();
    if (ready.ok) sendJson(res, 200, { status: 'ready' });
    else sendJson(res, 503, { status: 'unavailable', reason: ready.reason });
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (opts.isClosing()) res.setHeader('connection', 'close');
    const url = new URL(req.url ?? '/', 'http://localhost');
    switch (url.pathname) {
      case GRAPHQL_PATH:
        return graphql(req, res, url.search);
      case '/healthz':
        return probe(req, res, 'healthz');
      case '/readyz':
        return probe(req, res, 'readyz');
      case '/metrics': {
        const scrape = opts.metrics ? metricsHandler() : null;
        if (scrape) return scrape(req, res);
        return sendJson(res, 404, { error: 'not found' });
      }
      default:
        if (opts.dashboard && (url.pathname === '/dashboard' || url.pathname.startsWith('/dashboard/')))
          return opts.dashboard(req, res, url.pathname);
        sendJson(res, 404, { error: 'not found' });
    }
  }

  return (req, res) => {
    route(req, res).catch((err: unknown) => {
      log.error('request failed', { err, method: req.method, url: req.url });
      if (!res.headersSent) {
        sendJson(res, 500, { errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL' } }] });
      } else {
        res.destroy();
      }
    });
  };
}
