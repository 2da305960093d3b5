/**
 * The rollout commands as pure edits of a payload (the CLI applies them atomically through
 * FeatureStore.update), and a readable description of each feature for `features list`.
 *
 * Targeting is declarative: each `enable` replaces the feature's previous targeting.
 *  - `enable <flag>`: on for everyone.
 *  - `enable <flag> --percent N`: on for N % of users, bucketed by user id (the same users stay in
 *    when N grows).
 *  - `--users a,b`: on for those user ids (in addition to any percentage).
 *  - `--attribute k=v` (repeatable, all must match): restricts the percentage (or "everyone") to
 *    users with those attributes.
 *  - `disable <flag>`: off for everyone.
 *  - the experiment: `enable` runs it (50/50, `--percent` = share of users in it), `disable` stops it
 *    (everyone gets the control).
 */
import {
  ATTRIBUTE_NAMES,
  ATTRIBUTES,
  EXPERIMENT_VARIANTS,
  FEATURE_KEYS,
  isExperimentKey,
  isFlagKey,
  PHASES,
  phaseOf,
  VARIANT_NAMES,
  type PhaseNumber,
} from './keys';
import type { FeatureDefinition, FeaturePayload, FeatureRule } from './payload';

/** A command that cannot be applied (unknown key, bad option value). Nothing is written. */
export class RolloutError extends Error {
  override name = 'RolloutError';
}

export interface Targeting {
  /** 0–100: share of (matching) users, by user id. Undefined: all matching users. */
  percent?: number;
  /** User ids that always get it. */
  users?: string[];
  /** Attributes a user must all have (for the percentage / everyone part). */
  attributes?: Record<string, string>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function requireKnown(key: string): void {
  if (!FEATURE_KEYS.includes(key)) {
    throw new RolloutError(`unknown feature "${key}": expected one of ${FEATURE_KEYS.join(', ')}`);
  }
}

/** Validates targeting options; throws RolloutError naming the bad one. */
export function validateTargeting(t: Targeting): void {
  if (t.percent !== undefined && !(Number.isFinite(t.percent) && t.percent >= 0 && t.percent <= 100)) {
    throw new RolloutError(`--percent: expected a number from 0 to 100, got ${t.percent}`);
  }
  for (const id of t.users ?? []) {
    if (!UUID.test(id)) throw new RolloutError(`--users: expected user ids (UUIDs), got "${id}"`);
  }
  for (const [k, v] of Object.entries(t.attributes ?? {})) {
    if (!(ATTRIBUTE_NAMES as readonly string[]).includes(k)) {
      throw new RolloutError(`--attribute: expected one of ${ATTRIBUTE_NAMES.join(', ')}, got "${k}"`);
    }
    if (k === ATTRIBUTES.ROLE && v !== 'USER' && v !== 'ADMIN') {
      throw new RolloutError(`--attribute role: expected USER or ADMIN, got "${v}"`);
    }
    if (v === '') throw new RolloutError(`--attribute ${k}: expected a value`);
  }
}

function experimentRule(key: string, coverage: number, condition?: Record<string, unknown>): FeatureRule {
  const variants = EXPERIMENT_VARIANTS[key as keyof typeof EXPERIMENT_VARIANTS];
  return {
    id: `${key}-experiment`,
    key,
    hashAttribute: ATTRIBUTES.ID,
    hashVersion: 2,
    coverage,
    variations: [...variants],
    weights: variants.map(() => 1 / variants.length),
    meta: variants.map((v) => ({ key: v, name: VARIANT_NAMES[v] ?? v })),
    ...(condition ? { condition: condition as FeatureRule['condition'] } : {}),
  };
}

/** The definition `enable <key>` produces. */
export function enabledDefinition(key: string, t: Targeting = {}): FeatureDefinition {
  requireKnown(key);
  validateTargeting(t);
  const attributes = t.attributes ?? {};
  const condition = Object.keys(attributes).length > 0 ? { ...attributes } : undefined;
  const users = [...new Set(t.users ?? [])];
  if (isExperimentKey(key)) {
    const rules: FeatureRule[] = [];
    if (users.length > 0)
      rules.push({ ...experimentRule(key, 1, { [ATTRIBUTES.ID]: { $in: users } }), id: `${key}-users` });
    if (users.length === 0 || t.percent !== undefined || condition) {
      rules.push(experimentRule(key, (t.percent ?? 100) / 100, condition));
    }
    return { defaultValue: EXPERIMENT_VARIANTS[key][0], rules };
  }
  const everyone = t.percent === undefined && users.length === 0 && !condition;
  if (everyone) return { defaultValue: true };
  const rules: FeatureRule[] = [];
  if (users.length > 0)
    rules.push({ id: `${key}-users`, condition: { [ATTRIBUTES.ID]: { $in: users } }, force: true });
  if (t.percent !== undefined || condition || users.length === 0) {
    rules.push({
      id: `${key}-rollout`,
      force: true,
      ...(condition ? { condition: condition as FeatureRule['condition'] } : {}),
      ...(t.percent !== undefined
        ? { coverage: t.percent / 100, hashAttribute: ATTRIBUTES.ID, hashVersion: 2 }
        : {}),
    });
  }
  return { defaultValue: false, rules };
}

/** The definition `disable <key>` produces: off (the control) for everyone. */
export function disabledDefinition(key: string): FeatureDefinition {
  requireKnown(key);
  return isExperimentKey(key) ? { defaultValue: EXPERIMENT_VARIANTS[key][0] } : { defaultValue: false };
}

/** `enable` as a payload edit. */
export function enable(payload: FeaturePayload, key: string, t: Targeting = {}): FeaturePayload {
  return { ...payload, features: { ...payload.features, [key]: enabledDefinition(key, t) } };
}

/** `disable` as a payload edit. */
export function disable(payload: FeaturePayload, key: string): FeaturePayload {
  return { ...payload, features: { ...payload.features, [key]: disabledDefinition(key) } };
}

/** `phase N` as a payload edit: the flags of phases 1..N on for everyone, later ones off. */
export function phase(payload: FeaturePayload, n: number): FeaturePayload {
  if (!Number.isInteger(n) || n < 1 || n > PHASES.length) {
    throw new RolloutError(`phase: expected a phase from 1 to ${PHASES.length}, got ${n}`);
  }
  const features = { ...payload.features };
  for (const p of PHASES) {
    for (const key of p.flags)
      features[key] = p.phase <= n ? enabledDefinition(key) : disabledDefinition(key);
  }
  return { ...payload, features };
}

/** A feature as `features list` shows it. */
export interface FeatureSummary {
  key: string;
  kind: 'flag' | 'experiment' | 'other';
  /** Rollout phase of a flag, else null. */
  phase: PhaseNumber | null;
  /** on | off | partial | undefined */
  state: 'on' | 'off' | 'partial' | 'undefined';
  /** One line: "everyone", "30% of users", "users: 2; role=ADMIN", "50/50 current / smallest_move", … */
  detail: string;
  definition: FeatureDefinition | null;
}

function describeCondition(c: Record<string, unknown> | undefined): string[] {
  if (!c) return [];
  return Object.entries(c).map(([k, v]) => {
    const inList = (v as { $in?: unknown[] } | null)?.$in;
    if (k === ATTRIBUTES.ID && Array.isArray(inList)) {
      return `${inList.length} listed user${inList.length === 1 ? '' : 's'}`;
    }
    return typeof v === 'string' ? `${k}=${v}` : `${k} ${JSON.stringify(v)}`;
  });
}

function pct(coverage: number | undefined): string {
  return `${Math.round((coverage ?? 1) * 10000) / 100}%`;
}

/** A value as people read it: flags on/off, experiment variants by name. */
function word(value: unknown): string {
  if (value === true) return 'on';
  if (value === false) return 'off';
  return typeof value === 'string' ? value : JSON.stringify(value ?? null);
}

function describeRule(r: FeatureRule): string {
  const conditions = describeCondition(r.condition as Record<string, unknown> | undefined);
  const where = conditions.length > 0 ? ` (${conditions.join(', ')})` : '';
  if (r.variations) {
    const weights = r.weights ?? r.variations.map(() => 1 / r.variations!.length);
    const split = weights.map((w) => Math.round(w * 100)).join('/');
    return `experiment ${split} ${r.variations.map(word).join(' / ')} for ${pct(r.coverage)}${where}`;
  }
  const share = r.coverage !== undefined ? ` for ${pct(r.coverage)}` : conditions.length > 0 ? ' for' : '';
  return `${word(r.force)}${share}${conditions.length > 0 && r.coverage === undefined ? ` ${conditions.join(', ')}` : where}`;
}

/** Describes every declared feature (and any other the payload defines). */
export function summarise(payload: FeaturePayload): FeatureSummary[] {
  const keys = [...FEATURE_KEYS, ...Object.keys(payload.features).filter((k) => !FEATURE_KEYS.includes(k))];
  return keys.map((key): FeatureSummary => {
    const def = payload.features[key] ?? null;
    const kind = isFlagKey(key) ? 'flag' : isExperimentKey(key) ? 'experiment' : 'other';
    const phaseN = isFlagKey(key) ? phaseOf(key) : null;
    if (!def)
      return {
        key,
        kind,
        phase: phaseN,
        state: 'undefined',
        detail: 'not defined (evaluates off)',
        definition: null,
      };
    const rules = def.rules ?? [];
    const control = isExperimentKey(key) ? EXPERIMENT_VARIANTS[key][0] : false;
    let state: FeatureSummary['state'];
    if (rules.length === 0)
      state = kind === 'experiment' || def.defaultValue === control ? 'off' : def.defaultValue ? 'on' : 'off';
    else state = 'partial';
    if (kind === 'experiment' && rules.length > 0) {
      const full = rules.length === 1 && !rules[0]!.condition && (rules[0]!.coverage ?? 1) >= 1;
      state = full ? 'on' : 'partial';
    }
    const detail =
      rules.length === 0
        ? `${word(def.defaultValue)} for everyone`
        : `${rules.map(describeRule).join('; ')}; ${word(def.defaultValue)} for everyone else`;
    return { key, kind, phase: phaseN, state, detail, definition: def };
  });
}
