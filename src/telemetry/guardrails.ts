/**
 * Guardrails of the rollout plan, as pure functions over per-variant figures. A flag is judged
 * "on" against "off"; an experiment's variants against its control (variant 0).
 *
 * - Latency: p95 of the arm must not exceed the control's p95 by more than 100 ms.
 * - Errors: a one-sided two-proportion z-test (pooled) at α = 0.01 (z > 2.326): the arm's error
 *   rate is higher than the control's beyond noise. Both arms need at least MIN_SAMPLE (100)
 *   operations, else the verdict is "insufficient".
 * - Memory: both arms share one process, so the comparison is between PERIODS (time buckets) in
 *   which only one arm of the feature saw traffic (flag fully off vs fully on): mean process RSS of
 *   the arm's exclusive buckets must not exceed the control's by more than 5 %. The feature's own
 *   bytes (memory items, undo stack) are not measured yet (semantic memory does not exist; the undo
 *   stack lives in Postgres). Without exclusive periods on both sides, memory is "insufficient"
 *   and does not decide the verdict on its own.
 */
import { quantile } from './histogram';

export const P95_BUDGET_MS = 100;
export const ERROR_Z = 2.326;
export const MIN_SAMPLE = 100;
export const MEMORY_BUDGET = 0.05;

export type Verdict = 'pass' | 'breach' | 'insufficient';

/** Figures of one variant of one feature over the report window. */
export interface VariantFigures {
  variant: string;
  count: number;
  errors: number;
  errorRate: number | null;
  meanMs: number | null;
  p50Ms: number | null;
  p95Ms: number | null;
  p99Ms: number | null;
  /** Mean process RSS in bytes over buckets where only this arm saw traffic (null: none). */
  exclusiveRssBytes: number | null;
  /** The merged histogram (src/telemetry/histogram.ts). */
  histogram: number[];
}

export interface CheckResult {
  check: 'latency_p95' | 'error_rate' | 'memory_rss';
  verdict: Verdict;
  detail: string;
}

export interface ArmVerdict {
  variant: string;
  control: string;
  verdict: Verdict;
  checks: CheckResult[];
}

export interface FeatureVerdict {
  feature: string;
  verdict: Verdict;
  arms: ArmVerdict[];
  /** One line for people. */
  summary: string;
}

export interface GuardrailOptions {
  minSample?: number;
  p95BudgetMs?: number;
  memoryBudget?: number;
}

/** Figures from a merged histogram and counts. */
export function figures(
  variant: string,
  count: number,
  errors: number,
  sumMs: number,
  histogram: number[],
  exclusiveRssBytes: number | null,
): VariantFigures {
  return {
    variant,
    count,
    errors,
    errorRate: count > 0 ? errors / count : null,
    meanMs: count > 0 ? sumMs / count : null,
    p50Ms: quantile(histogram, 0.5),
    p95Ms: quantile(histogram, 0.95),
    p99Ms: quantile(histogram, 0.99),
    exclusiveRssBytes,
    histogram,
  };
}

/** One-sided two-proportion z statistic (arm worse than control); 0 when undefined. */
export function twoProportionZ(e1: number, n1: number, e0: number, n0: number): number {
  if (n1 === 0 || n0 === 0) return 0;
  const p = (e1 + e0) / (n1 + n0);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n0));
  if (se === 0) return 0;
  return (e1 / n1 - e0 / n0) / se;
}

const ms = (v: number | null) => (v === null ? '-' : `${v.toFixed(1)} ms`);

/** Judges one arm against the control. */
export function judgeArm(
  arm: VariantFigures,
  control: VariantFigures,
  opts: GuardrailOptions = {},
): ArmVerdict {
  const min = opts.minSample ?? MIN_SAMPLE;
  const budget = opts.p95BudgetMs ?? P95_BUDGET_MS;
  const memBudget = opts.memoryBudget ?? MEMORY_BUDGET;
  const checks: CheckResult[] = [];
  const enough = arm.count >= min && control.count >= min;
  const sample = `n=${arm.count} vs ${control.count}, minimum ${min} each`;
  if (!enough) {
    checks.push({ check: 'latency_p95', verdict: 'insufficient', detail: sample });
    checks.push({ check: 'error_rate', verdict: 'insufficient', detail: sample });
  } else {
    const d = (arm.p95Ms ?? 0) - (control.p95Ms ?? 0);
    checks.push({
      check: 'latency_p95',
      verdict: d > budget ? 'breach' : 'pass',
      detail: `p95 ${ms(arm.p95Ms)} vs ${ms(control.p95Ms)} (${d >= 0 ? '+' : ''}${d.toFixed(1)} ms, budget +${budget} ms)`,
    });
    const z = twoProportionZ(arm.errors, arm.count, control.errors, control.count);
    checks.push({
      check: 'error_rate',
      verdict: z > ERROR_Z ? 'breach' : 'pass',
      detail: `errors ${arm.errors}/${arm.count} vs ${control.errors}/${control.count} (z=${z.toFixed(2)}, breach above ${ERROR_Z}: one-sided two-proportion z-test, α=0.01)`,
    });
  }
  if (arm.exclusiveRssBytes === null || control.exclusiveRssBytes === null) {
    checks.push({
      check: 'memory_rss',
      verdict: 'insufficient',
      detail: 'no periods with only one arm on each side',
    });
  } else {
    const ratio = arm.exclusiveRssBytes / control.exclusiveRssBytes - 1;
    checks.push({
      check: 'memory_rss',
      verdict: ratio > memBudget ? 'breach' : 'pass',
      detail: `RSS ${(arm.exclusiveRssBytes / 1048576).toFixed(1)} MiB vs ${(control.exclusiveRssBytes / 1048576).toFixed(1)} MiB (${(ratio * 100).toFixed(1)} %, budget +${memBudget * 100} %)`,
    });
  }
  const decisive = checks.filter((c) => c.check !== 'memory_rss' || c.verdict === 'breach');
  const verdict: Verdict = checks.some((c) => c.verdict === 'breach')
    ? 'breach'
    : decisive.some((c) => c.verdict === 'insufficient')
      ? 'insufficient'
      : 'pass';
  return { variant: arm.variant, control: control.variant, verdict, checks };
}

/** Judges a feature: every non-control variant against the control. */
export function judgeFeature(
  feature: string,
  control: string,
  variants: VariantFigures[],
  opts: GuardrailOptions = {},
): FeatureVerdict {
  const c = variants.find((v) => v.variant === control) ?? figures(control, 0, 0, 0, [], null);
  const arms = variants.filter((v) => v.variant !== control).map((v) => judgeArm(v, c, opts));
  if (arms.length === 0) {
    return {
      feature,
      verdict: 'insufficient',
      arms: [],
      summary: `no traffic beside the control (${control}) in the window`,
    };
  }
  const verdict: Verdict = arms.some((a) => a.verdict === 'breach')
    ? 'breach'
    : arms.some((a) => a.verdict === 'insufficient')
      ? 'insufficient'
      : 'pass';
  const summary = arms
    .map((a) => {
      const bad = a.checks.filter((x) => x.verdict === (verdict === 'pass' ? 'pass' : verdict));
      return `${a.variant} vs ${a.control}: ${a.verdict}${bad.length ? ` (${bad.map((b) => `${b.check}: ${b.detail}`).join('; ')})` : ''}`;
    })
    .join('; ');
  return { feature, verdict, arms, summary };
}
