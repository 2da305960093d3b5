/**
 * A closed-loop HTTP load generator for the benches: `clients` concurrent clients over keep-alive
 * connections (one socket each), each sending its next request when the previous one answered.
 * Every run is bounded twice: it stops after `durationMs` or `maxRequests`, whichever comes first,
 * and every request has a timeout (counted as an error). Loopback only.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';

/** One request: the JSON body and the bearer token (null: none). */
export interface Call {
  body: string;
  token: string | null;
}

/** What a GraphQL answer was: ok, a RATE_LIMITED refusal, or an error (with a short reason). */
export type Verdict = { kind: 'ok' } | { kind: 'rate_limited' } | { kind: 'error'; reason: string };

export interface LoadOptions {
  /** `http://127.0.0.1:<port>/graphql` (loopback only). */
  url: string;
  clients: number;
  durationMs: number;
  /** Unmeasured lead-in (connections opened, JIT warm). Default 500 ms. */
  warmupMs?: number;
  maxRequests: number;
  /** The next request of client `client` (its `n`-th). */
  next(client: number, n: number): Call;
  /** Judges an answer. Default: HTTP 200 and no `errors`. */
  judge?(status: number, body: unknown): Verdict;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
}

export interface LoadResult {
  clients: number;
  requests: number;
  rps: number;
  p50_ms: number;
  /** 95th percentile latency (the rollout guardrail's figure). */
  p95_ms?: number;
  p99_ms: number;
  errors: number;
  rate_limited: number;
  /** Every request answered, the warm-up's included (CPU per request is counted over them all). */
  answered?: number;
  /** CPU milliseconds per answered request, by process (write bench, Linux only). */
  cpu_ms_per_request?: Record<string, number>;
  /** Up to three distinct error reasons, for the reader. */
  error_samples?: string[];
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** HTTP 200 without `errors`; RATE_LIMITED anywhere in `errors` is counted apart. */
export function judgeGraphQL(status: number, body: unknown): Verdict {
  const errors = (body as { errors?: Array<{ message?: string; extensions?: { code?: string } }> } | null)
    ?.errors;
  if (errors && errors.length > 0) {
    if (errors.some((e) => e.extensions?.code === 'RATE_LIMITED')) return { kind: 'rate_limited' };
    return {
      kind: 'error',
      reason: `${errors[0]!.extensions?.code ?? '?'}: ${errors[0]!.message ?? ''}`.slice(0, 160),
    };
  }
  if (status !== 200) return { kind: 'error', reason: `HTTP ${status}` };
  return { kind: 'ok' };
}

function post(
  agent: http.Agent,
  url: URL,
  call: Call,
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        agent,
        hostname: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(call.body),
          ...(call.token ? { authorization: `Bearer ${call.token}` } : {}),
        },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {
            body = null;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(call.body);
  });
}

/** Runs the load; see LoadOptions. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const url = new URL(opts.url);
  if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') throw new Error('loopback only');
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.clients, maxFreeSockets: opts.clients });
  const judge = opts.judge ?? judgeGraphQL;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const warmupMs = opts.warmupMs ?? 500;
  const latencies: number[] = [];
  const reasons = new Set<string>();
  let errors = 0;
  let rateLimited = 0;
  let sent = 0;
  let answered = 0;
  let measuring = false;
  let stop = false;
  let measuredFrom = 0;
  let measuredTo = 0;

  const client = async (id: number): Promise<void> => {
    for (let n = 0; !stop; n++) {
      if (measuring && sent >= opts.maxRequests) {
        stop = true;
        break;
      }
      const counted = measuring;
      if (counted) sent++;
      const call = opts.next(id, n);
      const t0 = performance.now();
      let verdict: Verdict;
      try {
        const r = await post(agent, url, call, timeoutMs);
        verdict = judge(r.status, r.body);
      } catch (err) {
        verdict = { kind: 'error', reason: err instanceof Error ? err.message : String(err) };
      }
      const t1 = performance.now();
      answered++;
      if (!counted) continue;
      measuredTo = Math.max(measuredTo, t1);
      if (verdict.kind === 'ok') latencies.push(t1 - t0);
      else if (verdict.kind === 'rate_limited') rateLimited++;
      else {
        errors++;
        if (reasons.size < 3) reasons.add(verdict.reason);
      }
    }
  };

  const loops = Array.from({ length: opts.clients }, (_, i) => client(i));
  const warm = setTimeout(() => {
    measuring = true;
    measuredFrom = performance.now();
  }, warmupMs);
  const end = setTimeout(() => (stop = true), warmupMs + opts.durationMs);
  try {
    await Promise.all(loops);
  } finally {
    clearTimeout(warm);
    clearTimeout(end);
    agent.destroy();
  }
  const seconds = Math.max(1e-3, (measuredTo - measuredFrom) / 1000);
  const sorted = Float64Array.from(latencies).sort();
  return {
    clients: opts.clients,
    requests: sent,
    rps: round(latencies.length / seconds, 1),
    p50_ms: round(percentile(sorted, 0.5)),
    p95_ms: round(percentile(sorted, 0.95)),
    p99_ms: round(percentile(sorted, 0.99)),
    errors,
    rate_limited: rateLimited,
    answered,
    ...(reasons.size > 0 ? { error_samples: [...reasons] } : {}),
  };
}
