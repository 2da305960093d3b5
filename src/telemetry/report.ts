/**
 * The rollout report: per flag or experiment and variant, the figures of every instance (from
 * rollout_metrics), exposures and usage (src/flags/report.ts), and the guardrail verdicts. Used by
 * the admin `rolloutReport`/`rollout` queries and `planner rollout report|check`. Cross-user reads
 * (a handful of statements): never on a request's hot path.
 */
import type { DataSource } from 'typeorm';
import { summarise } from '../flags/admin';
import { EXPERIMENT_VARIANTS, FEATURE_KEYS, isExperimentKey, isFlagKey } from '../flags/keys';
import type { FeaturePayload } from '../flags/payload';
import { rolloutAggregates } from '../flags/report';
import {
  judgeFeature,
  figures,
  type FeatureVerdict,
  type GuardrailOptions,
  type VariantFigures,
} from './guardrails';
import { emptyHistogram, mergeInto } from './histogram';

/** The most items each list of the report holds (enforced here; stated in schema/rollout.graphql). */
export const ROLLOUT_CAPS = Object.freeze({
  features: 50,
  variants: 10,
  usage: 10,
  arms: 10,
  checks: 5,
  rollbacks: 50,
});

/** Who --enforce records rollbacks as (the audit trail's actor; `rollout:guardrail:<--actor>` when given). */
export const ROLLBACK_ACTOR = 'rollout:guardrail';

export interface UsageFigure {
  metric: string;
  count: number;
  users: number;
}

export interface VariantReport extends Omit<VariantFigures, 'histogram'> {
  /** Users exposed to this variant (experiments; 0 for flags). */
  exposedUsers: number;
  usage: UsageFigure[];
}

export interface FeatureReport {
  key: string;
  kind: 'flag' | 'experiment' | 'other';
  phase: number | null;
  /** on | off | partial | undefined (the payload in force). */
  state: string;
  /** The targeting in one line. */
  detail: string;
  /** The arm the others are judged against ("off", or the experiment's control). */
  control: string;
  /** Start of the figures' window (the later of `since` and the feature's last rollback). */
  windowFrom: string | null;
  variants: VariantReport[];
  guardrail: FeatureVerdict;
}

export interface RollbackEvent {
  at: string;
  feature: string | null;
  actor: string;
  command: string;
  version: number;
}

export interface RolloutReport {
  generatedAt: string;
  /** Earliest data considered (null: all kept). */
  since: string | null;
  payloadVersion: number | null;
  features: FeatureReport[];
  rollbacks: RollbackEvent[];
}

export interface ReportOptions extends GuardrailOptions {
  /** One feature only. */
  feature?: string | null;
  /** Earliest bucket considered. Default: all. */
  since?: Date | null;
  now?: Date;
}

interface MetricRow {
  bucket: Date;
  feature: string;
  variant: string;
  count: string;
  errors: string;
  sum: number;
  hist: string[];
  rss_sum: number;
  rss_samples: string;
}

/** Rollback events recorded by `rollout check --enforce` (newest first). */
export async function rollbackEvents(ds: DataSource, limit = 50): Promise<RollbackEvent[]> {
  const rows = (await ds.query(
    `SELECT at, feature, actor, command, version FROM feature_audit WHERE actor = $1 OR actor LIKE $1 || ':%' ORDER BY id DESC LIMIT $2`,
    [ROLLBACK_ACTOR, limit],
  )) as Array<{ at: Date; feature: string | null; actor: string; command: string; version: string }>;
  return rows.map((r) => ({
    at: new Date(r.at).toISOString(),
    feature: r.feature,
    actor: r.actor,
    command: r.command,
    version: Number(r.version),
  }));
}

/** Number of rollback events in the audit trail (the planner.rollout.rollbacks gauge). */
export async function rollbackCount(ds: DataSource): Promise<number> {
  const [row] = (await ds.query(
    `SELECT count(*)::int AS n FROM feature_audit WHERE actor = $1 OR actor LIKE $1 || ':%'`,
    [ROLLBACK_ACTOR],
  )) as Array<{ n: number }>;
  return row?.n ?? 0;
}

function capVerdict(v: FeatureVerdict): FeatureVerdict {
  return {
    ...v,
    arms: v.arms
      .slice(0, ROLLOUT_CAPS.arms)
      .map((a) => ({ ...a, checks: a.checks.slice(0, ROLLOUT_CAPS.checks) })),
  };
}

/** Builds the report from the database (every instance's figures). */
export async function buildRolloutReport(
  ds: DataSource,
  payload: FeaturePayload | null,
  payloadVersion: number | null,
  opts: ReportOptions = {},
): Promise<RolloutReport> {
  const feature = opts.feature ?? null;
  const since = opts.since ?? null;
  const rollbacks = await rollbackEvents(ds, 1000);
  const lastRollback = new Map<string, string>();
  for (const r of rollbacks) if (r.feature && !lastRollback.has(r.feature)) lastRollback.set(r.feature, r.at);
  const rows = (await ds.query(
    `SELECT bucket_start AS bucket, feature, variant, count, errors, duration_sum_ms AS sum, hist,
            rss_sum_bytes AS rss_sum, rss_samples
     FROM rollout_metrics
     WHERE ($1::text IS NULL OR feature = $1) AND ($2::timestamptz IS NULL OR bucket_start >= $2)
     ORDER BY bucket_start`,
    [feature, since?.toISOString() ?? null],
  )) as MetricRow[];
  const aggregates = await rolloutAggregates(ds, { experiment: feature });

  const summaries = payload
    ? summarise(payload)
    : FEATURE_KEYS.map((key) => ({
        key,
        kind: isFlagKey(key) ? 'flag' : 'experiment',
        phase: null,
        state: 'undefined',
        detail: 'no payload',
      }));
  const keys = new Set<string>(summaries.map((s) => s.key));
  for (const r of rows) keys.add(r.feature);
  const features: FeatureReport[] = [];
  for (const key of keys) {
    if (feature !== null && key !== feature) continue;
    const s = summaries.find((x) => x.key === key);
    const kind = isExperimentKey(key) ? 'experiment' : isFlagKey(key) ? 'flag' : 'other';
    const control = isExperimentKey(key) ? EXPERIMENT_VARIANTS[key][0]! : 'off';
    const windowFrom = lastRollback.get(key) ?? since?.toISOString() ?? null;
    const from = windowFrom ? Date.parse(windowFrom) : -Infinity;
    const mine = rows.filter((r) => r.feature === key && new Date(r.bucket).getTime() >= from);
    // Per variant: counts and merged histograms; per bucket: which variants saw traffic (memory).
    const acc = new Map<
      string,
      { count: number; errors: number; sum: number; hist: number[]; rss: number; rssN: number }
    >();
    const byBucket = new Map<number, MetricRow[]>();
    for (const r of mine) {
      const t = new Date(r.bucket).getTime();
      const list = byBucket.get(t) ?? [];
      list.push(r);
      byBucket.set(t, list);
    }
    for (const [, list] of byBucket) {
      const active = list.filter((r) => Number(r.count) > 0);
      for (const r of list) {
        let a = acc.get(r.variant);
        if (!a)
          acc.set(r.variant, (a = { count: 0, errors: 0, sum: 0, hist: emptyHistogram(), rss: 0, rssN: 0 }));
        a.count += Number(r.count);
        a.errors += Number(r.errors);
        a.sum += r.sum;
        mergeInto(a.hist, r.hist.map(Number));
        if (active.length === 1 && active[0] === r) {
          a.rss += r.rss_sum;
          a.rssN += Number(r.rss_samples);
        }
      }
    }
    const exp = aggregates.experiments.find((e) => e.experiment === key);
    const variantFigures: VariantFigures[] = [...acc.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([v, a]) => figures(v, a.count, a.errors, a.sum, a.hist, a.rssN > 0 ? a.rss / a.rssN : null));
    const variants: VariantReport[] = variantFigures.map(({ histogram: _h, ...f }) => {
      const agg = exp?.variants.find((x) => x.variant === f.variant);
      return {
        ...f,
        exposedUsers: agg?.exposedUsers ?? 0,
        usage: Object.entries(agg?.usage ?? {}).map(([metric, u]) => ({ metric, ...u })),
      };
    });
    features.push({
      key,
      kind,
      phase: s?.phase ?? null,
      state: s?.state ?? 'undefined',
      detail: s?.detail ?? '',
      control,
      windowFrom,
      variants: variants
        .slice(0, ROLLOUT_CAPS.variants)
        .map((v) => ({ ...v, usage: v.usage.slice(0, ROLLOUT_CAPS.usage) })),
      guardrail: capVerdict(judgeFeature(key, control, variantFigures, opts)),
    });
  }
  return {
    generatedAt: (opts.now ?? new Date()).toISOString(),
    since: since?.toISOString() ?? null,
    payloadVersion,
    features: features.slice(0, ROLLOUT_CAPS.features),
    rollbacks: rollbacks
      .filter((r) => feature === null || r.feature === feature)
      .slice(0, ROLLOUT_CAPS.rollbacks),
  };
}
