/**
 * Rollout aggregates for reports (the admin `rolloutReport` query, dashboards): exposures and usage
 * per experiment variant. Cross-user reads: never call them from a request's hot path.
 */
import type { DataSource } from 'typeorm';
import { USAGE_METRICS } from './keys';

export interface VariantAggregate {
  variant: string;
  /** Users exposed to this variant (once each). */
  exposedUsers: number;
  /** Per usage metric: total count and distinct users. */
  usage: Record<string, { count: number; users: number }>;
}

export interface ExperimentAggregate {
  /** '' collects usage of users assigned to no experiment. */
  experiment: string;
  variants: VariantAggregate[];
}

export interface RolloutAggregates {
  /** Inclusive UTC day range of the usage counted (null: all). */
  since: string | null;
  experiments: ExperimentAggregate[];
}

/**
 * Exposures and usage per experiment and variant.
 * @param filter.experiment one experiment only. @param filter.since first UTC day (YYYY-MM-DD) of usage counted.
 */
export async function rolloutAggregates(
  ds: DataSource,
  filter: { experiment?: string | null; since?: string | null } = {},
): Promise<RolloutAggregates> {
  const experiment = filter.experiment ?? null;
  const since = filter.since ?? null;
  const exposures = (await ds.query(
    `/* admin:rollout-report */ SELECT experiment, variant, count(*)::int AS users FROM experiment_exposures
     WHERE $1::text IS NULL OR experiment = $1 GROUP BY experiment, variant`,
    [experiment],
  )) as Array<{ experiment: string; variant: string; users: number }>;
  const usage = (await ds.query(
    `/* admin:rollout-report */ SELECT experiment, variant, metric, sum(count)::bigint AS count, count(DISTINCT user_id)::int AS users
     FROM feature_usage
     WHERE ($1::text IS NULL OR experiment = $1) AND ($2::date IS NULL OR day >= $2::date)
     GROUP BY experiment, variant, metric`,
    [experiment, since],
  )) as Array<{ experiment: string; variant: string; metric: string; count: string; users: number }>;

  const byExperiment = new Map<string, Map<string, VariantAggregate>>();
  const variant = (exp: string, v: string): VariantAggregate => {
    let vs = byExperiment.get(exp);
    if (!vs) byExperiment.set(exp, (vs = new Map()));
    let agg = vs.get(v);
    if (!agg) {
      agg = { variant: v, exposedUsers: 0, usage: {} };
      for (const m of USAGE_METRICS) agg.usage[m] = { count: 0, users: 0 };
      vs.set(v, agg);
    }
    return agg;
  };
  for (const e of exposures) variant(e.experiment, e.variant).exposedUsers = e.users;
  for (const u of usage)
    variant(u.experiment, u.variant).usage[u.metric] = { count: Number(u.count), users: u.users };
  return {
    since,
    experiments: [...byExperiment.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([exp, vs]) => ({
        experiment: exp,
        variants: [...vs.values()].sort((a, b) => a.variant.localeCompare(b.variant)),
      })),
  };
}
