/**
 * `planner rollout report|check`: the rollout figures of every instance (rollout_metrics), exposures
 * and usage, and the guardrail verdicts (src/telemetry/guardrails.ts).
 *
 *   planner rollout report [feature] [--json] [--since <ISO instant>]
 *   planner rollout check [feature] [--enforce] [--json] [--since <ISO>] [--min-sample N] [--actor who]
 *
 * `check` prints a verdict per feature: pass, breach or insufficient (too little data is neither a
 * pass nor a fail). Exit 1 on any breach. `--enforce` turns a breaching flag off, or sends a
 * breaching experiment's traffic to its control (src/flags/admin.ts `disable`), through the audited
 * FeatureStore (actor `rollout:guardrail`, the verdict in the command): that audit row is the
 * rollback event. With a remote GrowthBook nothing is written: exit 1 with the verdict, saying the
 * change must be made there. Exit codes: 0 ok, 1 breach or failure, 2 bad usage.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { migrateUp } from '../db/data-source';
import { disable } from '../flags/admin';
import { FEATURE_KEYS } from '../flags/keys';
import { validatePayload, type FeaturePayload } from '../flags/payload';
import { FeatureStore } from '../flags/store';
import { openDatabase, type OpenDatabase } from '../server/database';
import { createLogger } from '../server/logger';
import { MIN_SAMPLE } from '../telemetry/guardrails';
import { buildRolloutReport, ROLLBACK_ACTOR, type RolloutReport } from '../telemetry/report';

export const ROLLOUT_USAGE = `  planner rollout report [feature] [--json] [--since <ISO instant>]
      Per flag or experiment and variant: operations, error rate, p50/p95/p99 latency, exposures,
      usage, guardrail verdict. Figures of every instance, from the database.
  planner rollout check [feature] [--enforce] [--json] [--since <ISO>] [--min-sample N] [--actor who]
      Guardrails (p95 +${100} ms; error rate: one-sided two-proportion z-test at alpha 0.01, at least
      ${MIN_SAMPLE} operations per arm; process RSS +5 % between periods with only one arm): a verdict per
      feature; exit 1 on a breach. --enforce turns a breaching flag off or sends an experiment to
      its control, recorded as a rollback in the audit trail (not possible with a remote GrowthBook).`;

export interface RolloutIo {
  out(line: string): void;
  err(line: string): void;
}

class RolloutUsageError extends Error {}

interface Parsed {
  feature: string | null;
  json: boolean;
  enforce: boolean;
  since: Date | null;
  minSample: number | undefined;
  actor: string | null;
}

function parse(args: string[], check: boolean): Parsed {
  const p: Parsed = {
    feature: null,
    json: false,
    enforce: false,
    since: null,
    minSample: undefined,
    actor: null,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new RolloutUsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--json') p.json = true;
    else if (a === '--enforce' && check) p.enforce = true;
    else if (a === '--since') {
      const v = value();
      const d = new Date(v);
      if (Number.isNaN(d.getTime()))
        throw new RolloutUsageError(`--since: expected an ISO-8601 instant, got "${v}"`);
      p.since = d;
    } else if (a === '--min-sample' && check) {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1)
        throw new RolloutUsageError(`--min-sample: expected a positive integer, got "${v}"`);
      p.minSample = Number(v);
    } else if (a === '--actor' && check) p.actor = value();
    else if (a.startsWith('--')) throw new RolloutUsageError(`unknown option ${a}`);
    else if (p.feature === null) {
      if (!FEATURE_KEYS.includes(a))
        throw new RolloutUsageError(`unknown feature "${a}": expected one of ${FEATURE_KEYS.join(', ')}`);
      p.feature = a;
    } else throw new RolloutUsageError(`unexpected argument "${a}"`);
  }
  return p;
}

async function withDb<T>(config: Config, fn: (db: OpenDatabase) => Promise<T>): Promise<T> {
  const db = await openDatabase(config, createLogger(config.logLevel === 'debug' ? 'debug' : 'warn'), {
    applicationName: 'planner-cli',
  });
  try {
    await migrateUp(db.dataSource);
    return await fn(db);
  } finally {
    await db.close();
  }
}

const num = (v: number | null, unit = '') =>
  v === null ? '-' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)}${unit}`;
const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(2)}%`);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
}

function printReport(report: RolloutReport, io: RolloutIo): void {
  io.out(
    `rollout report ${report.generatedAt} (payload version ${report.payloadVersion ?? '-'}${report.since ? `, since ${report.since}` : ''})`,
  );
  const rows: string[][] = [
    [
      'feature',
      'phase',
      'state',
      'variant',
      'ops',
      'errors',
      'p50',
      'p95',
      'p99',
      'exposed',
      'usage',
      'verdict',
    ],
  ];
  for (const f of report.features) {
    if (f.variants.length === 0) {
      rows.push([
        f.key,
        String(f.phase ?? '-'),
        f.state,
        '-',
        '0',
        '-',
        '-',
        '-',
        '-',
        '-',
        '-',
        f.guardrail.verdict,
      ]);
      continue;
    }
    for (const v of f.variants) {
      const arm = f.guardrail.arms.find((a) => a.variant === v.variant);
      const usage =
        v.usage
          .filter((u) => u.count > 0)
          .map((u) => `${u.metric}=${u.count}`)
          .join(',') || '-';
      rows.push([
        f.key,
        String(f.phase ?? '-'),
        f.state,
        v.variant + (v.variant === f.control ? ' (control)' : ''),
        String(v.count),
        pct(v.errorRate),
        num(v.p50Ms, 'ms'),
        num(v.p95Ms, 'ms'),
        num(v.p99Ms, 'ms'),
        String(v.exposedUsers),
        usage,
        v.variant === f.control ? '' : (arm?.verdict ?? f.guardrail.verdict),
      ]);
    }
  }
  for (const line of table(rows)) io.out(line);
  if (report.rollbacks.length > 0) {
    io.out('rollbacks:');
    for (const r of report.rollbacks) io.out(`  ${r.at} ${r.feature ?? '-'} v${r.version}: ${r.command}`);
  }
}

/** Runs `planner rollout <args>`; returns the exit code. */
export async function runRollout(
  args: string[],
  env: Record<string, string | undefined>,
  io: RolloutIo,
): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub !== 'report' && sub !== 'check')
      throw new RolloutUsageError(`expected report or check, got ${sub ?? 'nothing'}`);
    const p = parse(rest, sub === 'check');
    const config = loadConfig(env);
    return await withDb(config, async (db) => {
      const store = new FeatureStore(db.dataSource);
      const stored = (await store.read()) ?? (await store.ensureSeeded());
      let payload: FeaturePayload | null = null;
      try {
        payload = validatePayload(stored.payload, `database version ${stored.version}`).payload;
      } catch {
        payload = null; // report the figures anyway; `features list` names the problems
      }
      const report = await buildRolloutReport(db.dataSource, payload, stored.version, {
        feature: p.feature,
        since: p.since,
        minSample: p.minSample,
      });
      if (sub === 'report') {
        if (p.json) io.out(JSON.stringify(report, null, 2));
        else printReport(report, io);
        return 0;
      }
      const breaches = report.features.filter((f) => f.guardrail.verdict === 'breach');
      const actions: Array<{ feature: string; action: string }> = [];
      let remoteRefusal: string | null = null;
      if (p.enforce && breaches.length > 0) {
        if (config.growthbookApiHost) {
          remoteRefusal = `remote mode: flags come from GrowthBook at ${config.growthbookApiHost}; nothing was changed here. Make the change there: ${breaches
            .map((b) =>
              b.kind === 'experiment' ? `stop experiment ${b.key} (serve ${b.control})` : `turn ${b.key} off`,
            )
            .join('; ')}`;
        } else {
          for (const b of breaches) {
            const command = `rollout check --enforce: ${b.key} ${b.guardrail.verdict}: ${b.guardrail.summary}`;
            const { stored: after, changed } = await store.update(
              p.actor ? `${ROLLBACK_ACTOR}:${p.actor}` : ROLLBACK_ACTOR,
              command,
              b.key,
              (pl) => disable(pl, b.key),
            );
            const what =
              b.kind === 'experiment' ? `experiment stopped: everyone gets ${b.control}` : 'turned off';
            actions.push({
              feature: b.key,
              action:
                changed.length > 0
                  ? `${what} (payload version ${after.version}; servers apply it within ${config.flagsPollMs} ms)`
                  : `already ${b.kind === 'experiment' ? 'stopped' : 'off'}`,
            });
          }
        }
      }
      if (p.json) {
        io.out(
          JSON.stringify(
            {
              verdicts: report.features.map((f) => f.guardrail),
              enforced: actions,
              remote: remoteRefusal,
            },
            null,
            2,
          ),
        );
      } else {
        for (const f of report.features) io.out(`${f.key}: ${f.guardrail.verdict} - ${f.guardrail.summary}`);
        for (const a of actions) io.out(`rollback ${a.feature}: ${a.action}`);
      }
      if (remoteRefusal) io.err(`planner: ${remoteRefusal}`);
      return breaches.length > 0 ? 1 : 0;
    });
  } catch (err) {
    if (err instanceof RolloutUsageError) {
      io.err(`planner: ${err.message}`);
      io.err(`usage:\n${ROLLOUT_USAGE}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err(`planner: configuration error: ${err.message}`);
      return 1;
    }
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
