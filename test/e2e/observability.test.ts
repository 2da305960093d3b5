/**
 * Observability end to end with the REAL OpenTelemetry SDK (started in-process by
 * test/support/otel.ts before pg/graphql/http load, as otel/register.ts does for `npm start`):
 * the span tree of one mutation, OTLP/HTTP export from a child process started like `npm start`,
 * a slowed experiment variant caught by `rollout check` and rolled back by `--enforce`, two
 * instances' figures combined in one report, and the /metrics scrape.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { runRollout } from '../../src/cli/rollout';
import { ALTERNATIVE_RANKING, EXPERIMENTS, FLAGS } from '../../src/flags/keys';
import { toFlagUser } from '../../src/flags/service';
import {
  FEATURE_FLAG_EVALUATION,
  FEATURE_FLAG_KEY,
  FEATURE_FLAG_PROVIDER_NAME,
  FEATURE_FLAG_RESULT_VARIANT,
  OPERATION_KIND,
  USER_HASH,
} from '../../src/telemetry/attributes';
import type { RolloutReport } from '../../src/telemetry/report';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { collect, deferred, gql, wsClient } from '../support/graphql';
import { spanCapture } from '../support/otel';
import { childEnv, PROJECT_ROOT } from '../support/process';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

const CREATE = 'mutation ($i: CreateTaskInput!) { createTask(input: $i) { ok } }';

async function createTask(server: TestServer, token: string, title = 'a task'): Promise<void> {
  const r = await gql<{ createTask: { ok: boolean } }>(server.url, token, CREATE, { i: { title } });
  expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
  expect(r.data!.createTask.ok).to.equal(true);
}

function cli(args: string[], db: ScratchDatabase) {
  const out: string[] = [];
  const err: string[] = [];
  const env = {
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    PLANNER_JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'silent',
  };
  return runRollout(args, env, { out: (l) => out.push(l), err: (l) => err.push(l) }).then((code) => ({
    code,
    out: out.join('\n'),
    err: err.join('\n'),
  }));
}

const flagEvents = (s: ReadableSpan) => s.events.filter((e) => e.name === FEATURE_FLAG_EVALUATION);

describe('observability (real OpenTelemetry SDK)', function () {
  this.timeout(60_000);

  it('one mutation yields an operation span with flags and variants, under HTTP and GraphQL spans, with pg spans', async () => {
    const cap = spanCapture.capture();
    const server = await startTestServer();
    try {
      const token = await server.token(`otel-${randomUUID()}@example.com`);
      const secret = `secret-title-${randomUUID()}`;
      await createTask(server, token, secret);
      const opOf = (spans: ReadableSpan[]) =>
        spans.find((s) => s.attributes[OPERATION_KIND] === 'createTask');
      await cap.until((spans) => {
        const op = opOf(spans);
        return (
          !!op &&
          spans.some(
            (s) => s.kind === SpanKind.SERVER && s.spanContext().traceId === op.spanContext().traceId,
          )
        );
      });
      const op = opOf(cap.spans)!;
      const trace = cap.spans.filter((s) => s.spanContext().traceId === op.spanContext().traceId);
      const scopes = new Set(trace.map((s) => s.instrumentationScope.name));
      expect([...scopes]).to.include.members([
        '@opentelemetry/instrumentation-http',
        '@opentelemetry/instrumentation-graphql',
        '@opentelemetry/instrumentation-pg',
        'planner',
      ]);
      // The tree: HTTP server span → graphql execute → operation → pg queries of the write.
      const byId = new Map(trace.map((s) => [s.spanContext().spanId, s]));
      const ancestors = (s: ReadableSpan): ReadableSpan[] => {
        const out: ReadableSpan[] = [];
        for (
          let p = s.parentSpanContext?.spanId;
          p && byId.has(p);
          p = byId.get(p)!.parentSpanContext?.spanId
        )
          out.push(byId.get(p)!);
        return out;
      };
      const opAncestors = ancestors(op);
      expect(opAncestors.some((s) => s.kind === SpanKind.SERVER)).to.equal(true);
      expect(
        opAncestors.some((s) => s.instrumentationScope.name === '@opentelemetry/instrumentation-graphql'),
      ).to.equal(true);
      const pgUnderOp = trace.filter(
        (s) =>
          s.instrumentationScope.name === '@opentelemetry/instrumentation-pg' && ancestors(s).includes(op),
      );
      expect(pgUnderOp.length).to.be.greaterThan(0);
      // The write path's phases are the operation's children, in order; the write's SQL sits under
      // planner.write, and the conflicts found and undo depth are on the operation.
      const phases = trace
        .filter(
          (s) => s.parentSpanContext?.spanId === op.spanContext().spanId && s.name.startsWith('planner.'),
        )
        .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
        .map((s) => s.name);
      expect(phases).to.include.members([
        'planner.load',
        'planner.decide',
        'planner.detect_conflicts',
        'planner.write',
        'planner.notify',
      ]);
      expect(phases.indexOf('planner.load')).to.be.lessThan(phases.indexOf('planner.decide'));
      expect(phases.indexOf('planner.decide')).to.be.lessThan(phases.indexOf('planner.write'));
      const write = trace.find(
        (s) => s.name === 'planner.write' && s.parentSpanContext?.spanId === op.spanContext().spanId,
      )!;
      expect(
        trace.some(
          (s) =>
            s.instrumentationScope.name === '@opentelemetry/instrumentation-pg' &&
            ancestors(s).includes(write),
        ),
      ).to.equal(true);
      expect(op.attributes['planner.conflicts']).to.be.a('number');
      expect(op.attributes['planner.undo.depth']).to.be.a('number');
      // Flags in force, OpenTelemetry feature-flag conventions.
      const events = flagEvents(op);
      const undo = events.find((e) => e.attributes?.[FEATURE_FLAG_KEY] === FLAGS.UNDO)!;
      expect(undo.attributes?.[FEATURE_FLAG_RESULT_VARIANT]).to.equal('on');
      expect(undo.attributes?.[FEATURE_FLAG_PROVIDER_NAME]).to.equal('GrowthBook');
      const ranking = events.find(
        (e) => e.attributes?.[FEATURE_FLAG_KEY] === EXPERIMENTS.ALTERNATIVE_RANKING,
      )!;
      expect(Object.values(ALTERNATIVE_RANKING)).to.include(
        ranking.attributes?.[FEATURE_FLAG_RESULT_VARIANT],
      );
      expect(op.attributes['planner.operation.ok']).to.equal(true);
      expect(op.attributes[USER_HASH]).to.match(/^[0-9a-f]{16}$/);
      // Never the title, never the raw user id.
      const me = await server.world.queries.me(
        (await server.world.users.findOrCreateByEmail('x@example.com')).id,
      );
      const dump = JSON.stringify(trace.map((s) => [s.attributes, s.events]));
      expect(dump).not.to.contain(secret);
      expect(dump).not.to.contain(me.id);
    } finally {
      cap.stop();
      await server.close();
    }
  });

  it('exports traces over OTLP/HTTP from a server started like `npm start` when the endpoint is set', async function () {
    this.timeout(90_000);
    const received = deferred<{ service: string; spans: string[] }>();
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        if (req.url !== '/v1/traces') return;
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: Array<{
            resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
            scopeSpans: Array<{ spans: Array<{ name: string }> }>;
          }>;
        };
        for (const rs of body.resourceSpans) {
          const service =
            rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          const spans = rs.scopeSpans.flatMap((s) => s.spans.map((x) => x.name));
          if (
            spans.some(
              (n) => n.startsWith('GET') || n.startsWith('POST') || n.includes('readyz') || n.length > 0,
            )
          )
            received.resolve({ service, spans });
        }
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const db = await createScratchDatabase();
    const child = spawn(
      process.execPath,
      [
        `${PROJECT_ROOT}/node_modules/tsx/dist/cli.mjs`,
        '--import',
        './otel/register.ts',
        'src/server/main.ts',
      ],
      {
        cwd: PROJECT_ROOT,
        env: childEnv({
          NODE_ENV: 'test',
          DATABASE_URL: db.url,
          PORT: '0',
          PLANNER_JWT_SECRET: TEST_JWT_SECRET,
          LOG_LEVEL: 'warn',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
          OTEL_SERVICE_NAME: 'planner-otlp-test',
          OTEL_BSP_SCHEDULE_DELAY: '50',
          OTEL_METRICS_EXPORTER: 'none',
        }),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      const listening = deferred<string>();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        const m = /listening on (http:\/\/\S+)/.exec(d);
        if (m) listening.resolve(m[1]!);
      });
      void exited.then((code) => listening.reject(new Error(`server exited ${code}: ${stderr}`)));
      const url = await listening.promise;
      // An unauthenticated GraphQL request is enough to make HTTP and GraphQL spans.
      const r = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      expect(r.status).to.equal(200);
      const got = await received.promise;
      expect(got.service).to.equal('planner-otlp-test');
      expect(got.spans.length).to.be.greaterThan(0);
    } finally {
      child.kill('SIGTERM');
      await exited;
      receiver.close();
      await db.drop();
    }
  });

  describe('rollout figures from real spans', () => {
    let db: ScratchDatabase;
    beforeEach(async () => {
      db = await createScratchDatabase();
    });
    afterEach(async () => {
      await db.drop();
    });

    async function usersByVariant(server: TestServer, perVariant: number): Promise<Record<string, string[]>> {
      const tokens: Record<string, string[]> = {
        [ALTERNATIVE_RANKING.CURRENT]: [],
        [ALTERNATIVE_RANKING.SMALLEST_MOVE]: [],
      };
      for (let i = 0; Object.values(tokens).some((t) => t.length < perVariant); i++) {
        if (i > 200) throw new Error('could not find users in both variants');
        const email = `v-${i}-${randomUUID()}@example.com`;
        const user = await server.world.users.findOrCreateByEmail(email);
        const me = await server.world.queries.me(user.id);
        const v = server.flags.service.forUser(toFlagUser(me)).assignment(EXPERIMENTS.ALTERNATIVE_RANKING);
        if (v && tokens[v]!.length < perVariant) tokens[v]!.push(await server.token(email));
      }
      return tokens;
    }

    it('catches a slowed variant: rollout check reports the breach, --enforce sends the experiment to its control', async () => {
      const delayed = { count: 0 };
      const server = await startTestServer({
        env: { DATABASE_URL: db.url, PLANNER_FLAGS_POLL_MS: '50' },
        observability: {
          rolloutFlushMs: 0,
          // TEST-ONLY slowdown of one variant, inside the operation span (real latency, real spans).
          delay: (experiment, variant) => {
            if (
              experiment !== EXPERIMENTS.ALTERNATIVE_RANKING ||
              variant !== ALTERNATIVE_RANKING.SMALLEST_MOVE
            )
              return undefined;
            delayed.count++;
            return new Promise((r) => setTimeout(r, 500));
          },
        },
      });
      try {
        // One chain of sequential mutations per user (users in parallel: no queueing on the
        // per-user lock), both arms at once, so that they share the same load and the same cold
        // start (run one after the other, the first arm alone paid for the warm-up: on a busy
        // machine that hid most of the slowdown) and the figures show the variant's own latency.
        const tokens = await usersByVariant(server, 10);
        await Promise.all(
          [ALTERNATIVE_RANKING.CURRENT, ALTERNATIVE_RANKING.SMALLEST_MOVE].flatMap((variant) =>
            tokens[variant]!.map(async (token) => {
              for (let i = 0; i < 11; i++) await createTask(server, token);
            }),
          ),
        );
        await server.observability.flush();

        const before = await cli(['check', '--json'], db);
        expect(before.code, before.out + before.err).to.equal(1);
        const verdicts = (
          JSON.parse(before.out) as {
            verdicts: Array<{
              feature: string;
              verdict: string;
              arms: Array<{ checks: Array<{ check: string; verdict: string }> }>;
            }>;
          }
        ).verdicts;
        const ranking = verdicts.find((v) => v.feature === EXPERIMENTS.ALTERNATIVE_RANKING)!;
        expect(ranking.verdict, JSON.stringify(ranking)).to.equal('breach');
        expect(ranking.arms[0]!.checks.find((c) => c.check === 'latency_p95')!.verdict).to.equal('breach');
        // Flags at 100 % have no "off" arm: too little data, neither pass nor fail.
        expect(verdicts.find((v) => v.feature === FLAGS.UNDO)!.verdict).to.equal('insufficient');

        const applied = new Promise<void>((resolve) => {
          const off = server.flags.service.onApplied(() => {
            off();
            resolve();
          });
        });
        const enforced = await cli(['check', '--enforce'], db);
        expect(enforced.code).to.equal(1);
        expect(enforced.out).to.match(
          /rollback alternative_ranking: experiment stopped: everyone gets current/,
        );
        await applied;

        // The next requests run the control: no variant assigned, the delay hook is not reached.
        const slowUser = tokens[ALTERNATIVE_RANKING.SMALLEST_MOVE]![0]!;
        const calls = delayed.count;
        await createTask(server, slowUser);
        expect(delayed.count).to.equal(calls);
        const f = await gql<{ features: Array<{ key: string; value: unknown; variant: string | null }> }>(
          server.url,
          slowUser,
          '{ features { key value variant } }',
        );
        const mine = f.data!.features.find((x) => x.key === EXPERIMENTS.ALTERNATIVE_RANKING)!;
        expect(mine).to.deep.include({ value: ALTERNATIVE_RANKING.CURRENT, variant: null });

        // The rollback is in the rollout's audit trail and report, and the window restarts after it.
        const after = await cli(['report', EXPERIMENTS.ALTERNATIVE_RANKING, '--json'], db);
        const report = JSON.parse(after.out) as RolloutReport;
        expect(report.rollbacks).to.have.length(1);
        expect(report.rollbacks[0]!.command).to.match(/latency_p95/);
        expect(report.features[0]!.guardrail.verdict).to.equal('insufficient');
        const recheck = await cli(['check'], db);
        expect(recheck.code, recheck.out).to.equal(0);
      } finally {
        await server.close();
      }
    });

    it("combines two instances' traffic in one report, and the admin query shows it", async () => {
      const a = await startTestServer({
        env: { DATABASE_URL: db.url },
        observability: { rolloutFlushMs: 0 },
      });
      const b = await startTestServer({
        env: { DATABASE_URL: db.url },
        observability: { rolloutFlushMs: 0 },
      });
      try {
        const ta = await a.token(`a-${randomUUID()}@example.com`);
        const tb = await b.token(`b-${randomUUID()}@example.com`);
        for (let i = 0; i < 3; i++) await createTask(a, ta);
        for (let i = 0; i < 4; i++) await createTask(b, tb);
        await Promise.all([a.observability.flush(), b.observability.flush()]);
        const r = await cli(['report', FLAGS.UNDO, '--json'], db);
        const undo = (JSON.parse(r.out) as RolloutReport).features[0]!;
        expect(undo.variants.map((v) => [v.variant, v.count])).to.deep.equal([['on', 7]]);
        expect(undo.variants[0]!.p95Ms).to.be.greaterThan(0);

        const admin = await a.token(`admin-${randomUUID()}@example.com`, { role: 'ADMIN' });
        const q = await gql<{
          rollout: {
            features: Array<{
              key: string;
              phase: number;
              variants: Array<{ variant: string; count: number }>;
              guardrail: { verdict: string };
            }>;
          };
        }>(
          a.url,
          admin,
          '{ rollout(feature: "undo") { features { key phase variants { variant count } guardrail { verdict } } } }',
        );
        expect(q.errors, JSON.stringify(q.errors)).to.equal(undefined);
        expect(q.data!.rollout.features[0]).to.deep.equal({
          key: 'undo',
          phase: 2,
          variants: [{ variant: 'on', count: 7 }],
          guardrail: { verdict: 'INSUFFICIENT' },
        });
        const json = await gql<{ rolloutReport: RolloutReport }>(
          a.url,
          admin,
          '{ rolloutReport(feature: "undo") }',
        );
        expect(json.data!.rolloutReport.features[0]!.variants[0]!.count).to.equal(7);
        const denied = await gql(a.url, ta, '{ rolloutReport }');
        expect(denied.errors?.[0]?.extensions?.['code']).to.equal('FORBIDDEN');
      } finally {
        await a.close();
        await b.close();
      }
    });
  });

  it('serves Prometheus metrics at /metrics only when PLANNER_METRICS_ENDPOINT=true', async () => {
    // Off first, and closed before the other starts: the instruments are process-wide, so a second
    // app in this process would also answer the gauges' and counters' callbacks.
    const off = await startTestServer();
    try {
      expect((await fetch(`${off.origin}/metrics`)).status).to.equal(404);
    } finally {
      await off.close();
    }
    const on = await startTestServer({ env: { PLANNER_METRICS_ENDPOINT: 'true' } });
    try {
      const token = await on.token(`m-${randomUUID()}@example.com`);
      // A live subscriber receives the task's event: the relay's lag and the delivery are counted.
      const ws = wsClient(on.wsUrl, token);
      try {
        await ws.connected;
        const sub = collect(ws.client, { query: 'subscription { planEvents { cursor type } }' });
        const got = sub.take(1);
        await on.events.waitForSubscriptionCount(1);
        await createTask(on, token);
        await got;
        sub.stop();
      } finally {
        await ws.dispose();
      }
      await on.observability.flush();
      const r = await fetch(`${on.origin}/metrics`);
      expect(r.status).to.equal(200);
      const text = await r.text();
      expect(text).to.match(/planner_operation_duration_bucket\{[^}]*kind="createTask"/);
      expect(text).to.contain('planner_rollout_rollbacks');
      const delivered = /^planner_events_delivered(?:_total)?(?:\{[^}]*\})? (\d+)/m.exec(text);
      expect(delivered, text).to.not.equal(null);
      expect(Number(delivered![1])).to.be.at.least(1);
      expect(text).to.match(
        /^planner_consumer_lag(?:_milliseconds)?\{[^}]*consumer="event_relay"[^}]*\} \d/m,
      );
    } finally {
      await on.close();
    }
  });
});
