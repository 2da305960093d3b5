/**
 * The features payload: GrowthBook's SDK payload format (`{"features": {...}}`, as served by
 * `GET <host>/api/features/<clientKey>`), validated before anything evaluates it. A payload that fails
 * validation is refused with a message naming the first problems; whoever holds a previous payload
 * keeps it in force.
 */
import type { FeatureApiResponse, FeatureDefinition, FeatureRule } from '@growthbook/growthbook';
import defaultPayloadJson from './features.default.json';
import { EXPERIMENT_VARIANTS, FEATURE_KEYS, isExperimentKey, isFlagKey } from './keys';

/** A validated payload (GrowthBook's format, features required). */
export type FeaturePayload = FeatureApiResponse & { features: Record<string, FeatureDefinition> };

/** A refused payload. `problems` lists each problem as `path: expected X, got Y`. */
export class PayloadError extends Error {
  constructor(
    readonly problems: readonly string[],
    readonly origin: string,
  ) {
    const shown = problems.slice(0, 5).join('; ');
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`malformed features payload from ${origin}: ${shown}${more}`);
    this.name = 'PayloadError';
  }
}

export interface ValidatedPayload {
  payload: FeaturePayload;
  /** Not errors: declared keys the payload does not define (GrowthBook evaluates them as off). */
  warnings: string[];
}

/** Where the repository's default payload lives (seeds an empty database). */
export const DEFAULT_PAYLOAD_FILE = 'src/flags/features.default.json';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const RULE_FIELDS: Record<string, (v: unknown) => string | null> = {
  id: (v) => (typeof v === 'string' ? null : 'a string'),
  key: (v) => (typeof v === 'string' && v !== '' ? null : 'a non-empty string'),
  seed: (v) => (typeof v === 'string' ? null : 'a string'),
  name: (v) => (typeof v === 'string' ? null : 'a string'),
  phase: (v) => (typeof v === 'string' ? null : 'a string'),
  hashAttribute: (v) => (typeof v === 'string' && v !== '' ? null : 'an attribute name'),
  fallbackAttribute: (v) => (typeof v === 'string' ? null : 'an attribute name'),
  hashVersion: (v) => (v === 1 || v === 2 ? null : '1 or 2'),
  coverage: (v) => (typeof v === 'number' && v >= 0 && v <= 1 ? null : 'a number from 0 to 1'),
  condition: (v) => (isObject(v) ? null : 'a condition object'),
  parentConditions: (v) => (Array.isArray(v) && v.every(isObject) ? null : 'an array of objects'),
  variations: (v) => (Array.isArray(v) && v.length >= 2 ? null : 'an array of at least 2 values'),
  weights: (v) =>
    Array.isArray(v) && v.every((w) => typeof w === 'number' && w >= 0 && w <= 1)
      ? null
      : 'an array of numbers from 0 to 1',
  meta: (v) => (Array.isArray(v) && v.every(isObject) ? null : 'an array of objects'),
  range: (v) =>
    Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number') ? null : '[start, end]',
  ranges: (v) => (Array.isArray(v) ? null : 'an array of [start, end]'),
  filters: (v) => (Array.isArray(v) ? null : 'an array'),
  namespace: (v) => (Array.isArray(v) && v.length === 3 ? null : '[id, start, end]'),
  bucketVersion: (v) => (Number.isInteger(v) ? null : 'an integer'),
  minBucketVersion: (v) => (Number.isInteger(v) ? null : 'an integer'),
  disableStickyBucketing: (v) => (typeof v === 'boolean' ? null : 'a boolean'),
  force: () => null,
  tracks: (v) => (Array.isArray(v) ? null : 'an array'),
  contextualBanditRef: (v) => (typeof v === 'string' ? null : 'a string'),
  contextualVariations: (v) => (Array.isArray(v) ? null : 'an array'),
};

/** What a declared key's values must look like (flags: booleans; experiments: their variant keys). */
function valueProblem(key: string, value: unknown): string | null {
  if (isFlagKey(key)) return typeof value === 'boolean' ? null : 'a boolean (this key is a flag)';
  if (isExperimentKey(key)) {
    const allowed = EXPERIMENT_VARIANTS[key];
    return typeof value === 'string' && allowed.includes(value)
      ? null
      : `one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return null;
}

function checkRule(key: string, rule: unknown, path: string, problems: string[]): void {
  if (!isObject(rule)) {
    problems.push(`${path}: expected a rule object, got ${show(rule)}`);
    return;
  }
  for (const [field, value] of Object.entries(rule)) {
    const check = RULE_FIELDS[field];
    if (!check) {
      problems.push(`${path}.${field}: unknown rule field`);
      continue;
    }
    const expected = check(value);
    if (expected) problems.push(`${path}.${field}: expected ${expected}, got ${show(value)}`);
  }
  const hasForce = 'force' in rule;
  const variations = Array.isArray(rule['variations']) ? (rule['variations'] as unknown[]) : null;
  if (!hasForce && !variations) problems.push(`${path}: expected "force" or "variations", got neither`);
  if (hasForce && variations) problems.push(`${path}: expected "force" or "variations", got both`);
  if (hasForce) {
    const p = valueProblem(key, rule['force']);
    if (p) problems.push(`${path}.force: expected ${p}, got ${show(rule['force'])}`);
  }
  if (variations) {
    variations.forEach((v, i) => {
      const p = valueProblem(key, v);
      if (p) problems.push(`${path}.variations[${i}]: expected ${p}, got ${show(v)}`);
    });
    const weights = rule['weights'];
    if (Array.isArray(weights) && weights.every((w) => typeof w === 'number')) {
      if (weights.length !== variations.length) {
        problems.push(
          `${path}.weights: expected ${variations.length} weights (one per variation), got ${weights.length}`,
        );
      }
      const sum = (weights as number[]).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 0.001) problems.push(`${path}.weights: expected a sum of 1, got ${sum}`);
    }
    const meta = rule['meta'];
    if (Array.isArray(meta) && meta.length !== variations.length) {
      problems.push(
        `${path}.meta: expected ${variations.length} entries (one per variation), got ${meta.length}`,
      );
    }
  }
}

/**
 * Validates a payload (an object, or its JSON text).
 * @param origin where it came from, for the message (a file, "database version 7", a URL).
 * @throws PayloadError naming every problem found.
 */
export function validatePayload(input: unknown, origin: string): ValidatedPayload {
  let value = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input) as unknown;
    } catch (err) {
      throw new PayloadError([`not JSON (${(err as Error).message})`], origin);
    }
  }
  const problems: string[] = [];
  if (!isObject(value)) throw new PayloadError([`expected a JSON object, got ${show(value)}`], origin);
  if ('encryptedFeatures' in value || 'encryptedExperiments' in value) {
    problems.push('encrypted payloads are not supported: turn encryption off for this SDK connection');
  }
  const features = value['features'];
  if (!isObject(features)) {
    problems.push(`features: expected an object of feature definitions, got ${show(features)}`);
    throw new PayloadError(problems, origin);
  }
  for (const [key, def] of Object.entries(features)) {
    const path = `features.${key}`;
    if (!isObject(def)) {
      problems.push(`${path}: expected a feature definition object, got ${show(def)}`);
      continue;
    }
    for (const field of Object.keys(def)) {
      if (field !== 'defaultValue' && field !== 'rules') problems.push(`${path}.${field}: unknown field`);
    }
    if ('defaultValue' in def) {
      const p = valueProblem(key, def['defaultValue']);
      if (p) problems.push(`${path}.defaultValue: expected ${p}, got ${show(def['defaultValue'])}`);
    }
    const rules = def['rules'];
    if (rules !== undefined) {
      if (!Array.isArray(rules)) problems.push(`${path}.rules: expected an array, got ${show(rules)}`);
      else rules.forEach((r, i) => checkRule(key, r, `${path}.rules[${i}]`, problems));
    }
  }
  if (problems.length > 0) throw new PayloadError(problems, origin);
  const warnings = FEATURE_KEYS.filter((k) => !(k in features)).map(
    (k) => `${origin} does not define "${k}": it evaluates as off`,
  );
  return { payload: value as FeaturePayload, warnings };
}

/** The repository's default payload (every capability on for everyone, the experiment 50/50). */
export function defaultPayload(): FeaturePayload {
  return validatePayload(structuredClone(defaultPayloadJson) as unknown, DEFAULT_PAYLOAD_FILE).payload;
}

/** A deep copy of one feature definition (payload edits never share objects). */
export function cloneDefinition(def: FeatureDefinition | undefined): FeatureDefinition | undefined {
  return def === undefined ? undefined : (structuredClone(def) as FeatureDefinition);
}

export type { FeatureDefinition, FeatureRule };
