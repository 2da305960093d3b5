/**
 * `planner check --url <base> [--token t] [--json]` — the post-deployment check, run against a
 * deployed server from anywhere:
 * 1. GET /healthz and /readyz answer 200;
 * 2. a WebSocket handshake (graphql-ws, authenticated) and a planEvents subscription;
 * 3. on the dedicated check user: create a task in a fixed slot far in the future, create a second
 *    one overlapping it (an OVERLAP conflict must come back), undo both — the slot is empty again,
 *    so however often the check runs, no tasks or open conflicts accumulate (the audit trail keeps
 *    its rows, as for every change, and events age out with the outbox retention);
 * 4. the subscription receives at least one event of that round trip.
 * The token is --token's, else minted for CHECK_USER_EMAIL with the local configuration's secret
 * (the same as `planner token`).
 *
 * Exit codes: 0 every step passed, 1 a step failed (named, with its reason), 2 bad usage.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { migrationStatus } from '../db/data-source';
import { mintToken } from '../server/auth';
import { systemClock } from '../world/clock';
import { createWorld } from '../world/world';
import type { Io } from './main';
import { OpsUsageError, parseOpsArgs, runOps, withOpsDatabase } from './ops-args';

export const CHECK_USAGE = `  planner check --url <base> [--token <jwt>] [--json]
      Post-deployment check of the server at <base> (e.g. https://planner.example.com): /healthz,
      /readyz, a WebSocket subscription receiving an event, and create → conflict → undo on the
      check user (${'planner-check@localhost'}; nothing accumulates). Without --token, a token is
      minted with the local configuration's secret.`;

/** The dedicated user every check runs as (when the token is minted locally). */
export const CHECK_USER_EMAIL = 'planner-check@localhost';
/** The fixed, far-future slot the check's tasks occupy (and leave empty again). */
const SLOT = { from: '2090-01-02T10:00:00.000Z', to: '2090-01-02T12:00:00.000Z' };
const STEP_TIMEOUT_MS = 10_000;

interface Step {
  name: string;
  ok: boolean;
  ms: number;
  detail: string;
}

class StepFailed extends Error {}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(
        () => reject(new StepFailed(`${what}: no answer within ${STEP_TIMEOUT_MS} ms`)),
        STEP_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  let res: Response;
  try {
    res = await withTimeout(fetch(url), `GET ${url}`);
  } catch (err) {
    if (err instanceof StepFailed) throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new StepFailed(`GET ${url} failed: ${cause?.code ?? cause?.message ?? String(err)}`);
  }
  return { status: res.status, body: await res.text() };
}

interface GqlResult {
  data?: Record<string, unknown> | null;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

async function graphql(base: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  let res: Response;
  try {
    res = await withTimeout(
      fetch(`${base}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      }),
      'POST /graphql',
    );
  } catch (err) {
    if (err instanceof StepFailed) throw err;
    throw new StepFailed(`POST /graphql failed: ${String((err as { cause?: unknown }).cause ?? err)}`);
  }
  const body = (await res.json().catch(() => ({}))) as GqlResult;
  if (body.errors?.length) {
    const e = body.errors[0]!;
    throw new StepFailed(`${e.extensions?.code ?? `HTTP ${res.status}`}: ${e.message}`);
  }
  if (!body.data) throw new StepFailed(`HTTP ${res.status} without data`);
  return body.data as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const RESULT = `ok operation { id } task { id } conflicts { kind } errors { message code }`;

/** Runs every step; stops at the first failure. */
async function runChecks(base: string, token: string, steps: Step[]): Promise<void> {
  const step = async (name: string, fn: () => Promise<string>): Promise<void> => {
    const start = Date.now();
    try {
      const detail = await fn();
      steps.push({ name, ok: true, ms: Date.now() - start, detail });
    } catch (err) {
      steps.push({
        name,
        ok: false,
        ms: Date.now() - start,
        detail: err instanceof Error ? err.message : String(err),
      });
      throw new StepFailed(name);
    }
  };
  await step('healthz', async () => {
    const r = await httpGet(`${base}/healthz`);
    if (r.status !== 200) throw new StepFailed(`HTTP ${r.status}: ${r.body.slice(0, 200)}`);
    return 'HTTP 200';
  });
  await step('readyz', async () => {
    const r = await httpGet(`${base}/readyz`);
    if (r.status !== 200) throw new StepFailed(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    return 'HTTP 200';
  });
  let ws: Client | null = null;
  try {
    let firstEvent: Promise<string> = Promise.resolve('');
    await step('websocket', async () => {
      let acked!: () => void;
      let failed!: (e: Error) => void;
      const connected = new Promise<void>((resolve, reject) => ((acked = resolve), (failed = reject)));
      ws = createClient({
        url: `${base.replace(/^http/, 'ws')}/graphql`,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
        onNonLazyError: () => undefined,
        on: {
          connected: () => acked(),
          closed: (e) =>
            failed(
              new StepFailed(
                `socket closed: ${(e as { code?: number }).code ?? ''} ${(e as { reason?: string }).reason ?? ''}`,
              ),
            ),
          error: (e) => failed(new StepFailed(`socket error: ${e instanceof Error ? e.message : String(e)}`)),
        },
      });
      await withTimeout(connected, 'WebSocket handshake');
      const client: Client = ws;
      firstEvent = new Promise<string>((resolve, reject) => {
        client.subscribe(
          { query: 'subscription { planEvents { cursor type } }' },
          {
            next: (m) => {
              const e = (m.data as { planEvents?: { type: string; cursor: string } } | null)?.planEvents;
              if (e) resolve(`${e.type} (cursor ${e.cursor})`);
              else reject(new StepFailed(`subscription error: ${JSON.stringify(m.errors ?? m)}`));
            },
            error: (e) =>
              reject(
                new StepFailed(`subscription error: ${e instanceof Error ? e.message : JSON.stringify(e)}`),
              ),
            complete: () => reject(new StepFailed('subscription completed without an event')),
          },
        );
      });
      firstEvent.catch(() => undefined);
      return 'graphql-ws connection acknowledged, planEvents subscribed';
    });
    let user = '';
    await step('authenticated', async () => {
      const d = await graphql(base, token, '{ me { id email } }');
      user = d['me'].email as string;
      return `as ${user}`;
    });
    await step('clean slot', async () => {
      const d = await graphql(
        base,
        token,
        `
          query ($from: DateTime!, $to: DateTime!) {
            schedule(from: $from, to: $to) {
              id
            }
          }
        `,
        SLOT,
      );
      const left = d['schedule'] as Array<{ id: string }>;
      for (const t of left) {
        await graphql(
          base,
          token,
          `
            mutation ($id: ID!) {
              deleteTask(id: $id) {
                ok
              }
            }
          `,
          { id: t.id },
        );
      }
      return left.length === 0
        ? 'the check slot is empty'
        : `removed ${left.length} task(s) left by an interrupted check`;
    });
    const create = (start: string, end: string, title: string) =>
      graphql(
        base,
        token,
        `mutation ($input: CreateTaskInput!) { createTask(input: $input) { ${RESULT} } }`,
        { input: { title, scheduledStart: start, scheduledEnd: end } },
      ).then((d) => {
        const r = d['createTask'];
        if (!r.ok) throw new StepFailed(`createTask refused: ${JSON.stringify(r.errors)}`);
        return r as { operation: { id: string }; conflicts: Array<{ kind: string }> };
      });
    const ops: string[] = [];
    await step('create', async () => {
      const r = await create('2090-01-02T10:00:00.000Z', '2090-01-02T11:00:00.000Z', 'planner check A');
      ops.push(r.operation.id);
      return `task created (operation ${r.operation.id})`;
    });
    await step('conflict', async () => {
      const r = await create('2090-01-02T10:30:00.000Z', '2090-01-02T11:30:00.000Z', 'planner check B');
      ops.push(r.operation.id);
      if (!r.conflicts.some((c) => c.kind === 'OVERLAP')) {
        throw new StepFailed(
          `an overlapping task raised no OVERLAP conflict (got ${JSON.stringify(r.conflicts)})`,
        );
      }
      return 'overlapping task raised an OVERLAP conflict';
    });
    await step('undo', async () => {
      for (const id of ops.reverse()) {
        const d = await graphql(
          base,
          token,
          `
            mutation ($id: ID) {
              undo(operationId: $id) {
                ok
                errors {
                  message
                  code
                }
              }
            }
          `,
          { id },
        );
        if (!d['undo'].ok) throw new StepFailed(`undo of ${id} refused: ${JSON.stringify(d['undo'].errors)}`);
      }
      const d = await graphql(
        base,
        token,
        `
          query ($from: DateTime!, $to: DateTime!) {
            schedule(from: $from, to: $to) {
              id
            }
          }
        `,
        SLOT,
      );
      if ((d['schedule'] as unknown[]).length !== 0)
        throw new StepFailed('the check slot is not empty after undo');
      return 'both creations undone; the slot is empty again';
    });
    await step('event', () => withTimeout(firstEvent, 'waiting for a planEvents event'));
  } finally {
    const c = ws as Client | null;
    if (c) await c.dispose();
  }
}

/** Runs `planner check …` (args after "check") and returns the exit code. */
export async function runCheck(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let base = '';
  let token: string | undefined;
  let json = false;
  return runOps(
    CHECK_USAGE,
    io,
    env,
    () => {
      const a = parseOpsArgs(args, { switches: ['json'], options: ['url', 'token'] });
      if (a.positional.length > 0) throw new OpsUsageError(`unexpected argument "${a.positional[0]}"`);
      const url = a.options.get('url');
      if (url === undefined) throw new OpsUsageError('check needs --url <base>');
      if (!/^https?:\/\/[^/\s]+/.test(url))
        throw new OpsUsageError(`--url must be an http(s) URL, got "${url}"`);
      base = url.replace(/\/+$/, '').replace(/\/graphql$/, '');
      token = a.options.get('token');
      json = a.switches.has('json');
    },
    async (config) => {
      const steps: Step[] = [];
      let failure: string | null = null;
      try {
        if (token === undefined) {
          token = await withOpsDatabase(config, async (db) => {
            const pending = (await migrationStatus(db.dataSource)).filter((m) => !m.applied);
            if (pending.length > 0)
              throw new StepFailed(`local database has pending migrations: cannot mint a token`);
            const user = await createWorld(db.dataSource, systemClock, {
              undoDepth: config.undoDepth,
            }).users.findOrCreateByEmail(CHECK_USER_EMAIL, 'Deployment check');
            return mintToken(
              db.jwtSecret,
              config.jwtIssuer,
              { userId: user.id, email: user.email, role: user.role },
              600,
              systemClock.now(),
            );
          });
        }
        await runChecks(base, token, steps);
      } catch (err) {
        failure =
          err instanceof StepFailed
            ? steps.at(-1)?.ok === false
              ? `${steps.at(-1)!.name}: ${steps.at(-1)!.detail}`
              : err.message
            : String(err instanceof Error ? err.message : err);
      }
      if (json) {
        io.out(JSON.stringify({ ok: failure === null, url: base, steps, ...(failure ? { failure } : {}) }));
      } else {
        for (const s of steps) io.out(`${s.ok ? 'ok  ' : 'FAIL'} ${s.name} (${s.ms} ms): ${s.detail}`);
      }
      if (failure !== null) {
        io.err(`planner: check failed: ${failure}`);
        return 1;
      }
      if (!json) io.out(`ok: ${base} passed every check`);
      return 0;
    },
  );
}
