/**
 * `planner features ...`: the rollout commands. Each change is validated, applied atomically (one
 * transaction that locks the payload row, bumps its version and writes the audit row) and recorded
 * with who (`--actor`, else the OS user) and when. Running servers poll the version and apply the
 * change within PLANNER_FLAGS_POLL_MS (1 s by default; the product promises 5 s).
 *
 * Exit codes: 0 success, 1 failure (configuration, database, remote mode, malformed payload),
 * 2 bad usage (unknown command, key or option value).
 */
import fs from 'node:fs';
import os from 'node:os';
import { ConfigError, loadConfig, type Config } from '../config/config';
import { migrateUp } from '../db/data-source';
import {
  disable,
  enable,
  phase,
  RolloutError,
  summarise,
  type FeatureSummary,
  type Targeting,
} from '../flags/admin';
import { FEATURE_KEYS, PHASES } from '../flags/keys';
import { PayloadError, validatePayload, type FeaturePayload } from '../flags/payload';
import { fetchRemotePayload } from '../flags/remote';
import { FeatureStore } from '../flags/store';
import { openDatabase } from '../server/database';
import { createLogger } from '../server/logger';

export const FEATURES_USAGE = `  planner features list [--json]
      Every flag and experiment with its state and targeting, and the payload version.
  planner features enable <key> [--percent N] [--users id,id] [--attribute k=v]... [--actor who]
      Turn a flag on (for everyone, N % of users by user id, listed users, users with attributes
      id/role/signupDate/timeZone), or run the experiment. Replaces the key's previous targeting.
  planner features disable <key> [--actor who]
      Turn a flag off for everyone, or stop the experiment (everyone gets the control).
  planner features phase <1-4> [--actor who]
      Phases 1..N on for everyone, later phases off (1 enhanced models; 2 logging hooks, undo;
      3 conflict resolution, semantic memory; 4 LangGraph tools).
  planner features import <file.json> [--actor who]
      Replace the whole payload with a GrowthBook payload file (validated first).
  planner features audit [--limit N] [--json]
      The rollout audit trail, newest first.`;

export interface FeaturesIo {
  out(line: string): void;
  err(line: string): void;
}

class FeaturesUsageError extends Error {}

interface Parsed {
  positional: string[];
  options: Map<string, string[]>;
}

const OPTIONS: Record<string, { repeat: boolean; flag?: boolean }> = {
  json: { repeat: false, flag: true },
  percent: { repeat: false },
  users: { repeat: true },
  attribute: { repeat: true },
  actor: { repeat: false },
  limit: { repeat: false },
};

function parse(args: string[], allowed: string[]): Parsed {
  const positional: string[] = [];
  const options = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      positional.push(arg);
      continue;
    }
    const name = m[1]!;
    const spec = OPTIONS[name];
    if (!spec || !allowed.includes(name)) throw new FeaturesUsageError(`unknown option --${name}`);
    let value = m[2];
    if (spec.flag) {
      if (value !== undefined) throw new FeaturesUsageError(`--${name} takes no value`);
      value = 'true';
    } else if (value === undefined) {
      value = args[++i];
      if (value === undefined || value.startsWith('--'))
        throw new FeaturesUsageError(`--${name} needs a value`);
    }
    const list = options.get(name) ?? [];
    if (list.length > 0 && !spec.repeat) throw new FeaturesUsageError(`--${name} given twice`);
    list.push(value);
    options.set(name, list);
  }
  return { positional, options };
}

function one(p: Parsed, name: string): string | undefined {
  return p.options.get(name)?.[0];
}

function exactlyOne(p: Parsed, what: string): string {
  if (p.positional.length !== 1) {
    throw new FeaturesUsageError(
      `expected exactly one ${what}, got ${p.positional.length === 0 ? 'none' : p.positional.join(' ')}`,
    );
  }
  return p.positional[0]!;
}

/** Who is changing flags: --actor, else `os:<login name>`. */
export function actorOf(p: { options: Map<string, string[]> }): string {
  const given = p.options.get('actor')?.[0]?.trim();
  if (given) return given;
  try {
    return `os:${os.userInfo().username}`;
  } catch {
    return `os:${process.env['USER'] ?? process.env['LOGNAME'] ?? 'unknown'}`;
  }
}

function targeting(p: Parsed): Targeting {
  const t: Targeting = {};
  const percent = one(p, 'percent');
  if (percent !== undefined) {
    if (!/^\d+(\.\d+)?$/.test(percent))
      throw new RolloutError(`--percent: expected a number from 0 to 100, got "${percent}"`);
    t.percent = Number(percent);
  }
  const users = (p.options.get('users') ?? [])
    .flatMap((u) => u.split(','))
    .map((u) => u.trim())
    .filter(Boolean);
  if (p.options.has('users') && users.length === 0)
    throw new RolloutError('--users: expected user ids, got none');
  if (users.length > 0) t.users = users;
  const attributes: Record<string, string> = {};
  for (const a of p.options.get('attribute') ?? []) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new RolloutError(`--attribute: expected k=v, got "${a}"`);
    const k = a.slice(0, eq).trim();
    if (k in attributes) throw new RolloutError(`--attribute ${k} given twice`);
    attributes[k] = a.slice(eq + 1).trim();
  }
  if (Object.keys(attributes).length > 0) t.attributes = attributes;
  return t;
}

/** The command as recorded in the audit trail (canonical option order, no --actor). */
function describeEnable(key: string, t: Targeting): string {
  const parts = ['features', 'enable', key];
  if (t.percent !== undefined) parts.push('--percent', String(t.percent));
  if (t.users) parts.push('--users', t.users.join(','));
  for (const [k, v] of Object.entries(t.attributes ?? {})) parts.push('--attribute', `${k}=${v}`);
  return parts.join(' ');
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) =>
    r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '),
  );
}

function listLines(features: FeatureSummary[]): string[] {
  return table([
    ['KEY', 'KIND', 'PHASE', 'STATE', 'TARGETING'],
    ...features.map((f) => [f.key, f.kind, f.phase === null ? '-' : String(f.phase), f.state, f.detail]),
  ]);
}

async function withStore<T>(config: Config, fn: (store: FeatureStore) => Promise<T>): Promise<T> {
  const log = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  const db = await openDatabase(config, log, { applicationName: 'planner-cli' });
  try {
    await migrateUp(db.dataSource);
    const store = new FeatureStore(db.dataSource);
    await store.ensureSeeded();
    return await fn(store);
  } finally {
    await db.close();
  }
}

function refuseRemote(config: Config): void {
  if (config.growthbookApiHost) {
    throw new Error(
      `remote mode: GROWTHBOOK_API_HOST is set (${config.growthbookApiHost}), so servers take flags from that GrowthBook; change them there (this command edits the database payload)`,
    );
  }
}

async function change(
  config: Config,
  io: FeaturesIo,
  actor: string,
  command: string,
  feature: string | null,
  edit: (p: FeaturePayload) => FeaturePayload,
  replacesAll = false,
): Promise<void> {
  refuseRemote(config);
  await withStore(config, async (store) => {
    const { stored, changed } = await store.update(actor, command, feature, edit, { replacesAll });
    const summaries = summarise(stored.payload as FeaturePayload).filter((s) => changed.includes(s.key));
    if (changed.length === 0) {
      io.out(`nothing changed: payload version ${stored.version} already says so`);
      return;
    }
    for (const s of summaries) io.out(`${s.key}: ${s.state} (${s.detail})`);
    io.out(
      `payload version ${stored.version} by ${actor}; running servers apply it within ${config.flagsPollMs} ms`,
    );
  });
}

/**
 * Runs `planner features <args>` and returns the exit code (never calls process.exit).
 * @param args the arguments after `features`.
 */
export async function runFeatures(
  args: string[],
  env: Record<string, string | undefined>,
  io: FeaturesIo,
): Promise<number> {
  const [sub, ...rest] = args;
  try {
    let config: Config;
    const load = () => (config = loadConfig(env));
    switch (sub) {
      case 'list': {
        const p = parse(rest, ['json']);
        if (p.positional.length > 0) throw new FeaturesUsageError('list takes no arguments');
        load();
        let head: {
          source: string;
          version: number | null;
          updatedAt: string | null;
          updatedBy: string | null;
        };
        let payload: FeaturePayload;
        if (config!.growthbookApiHost && config!.growthbookClientKey) {
          payload = (await fetchRemotePayload(config!.growthbookApiHost, config!.growthbookClientKey))
            .payload;
          head = {
            source: `remote ${config!.growthbookApiHost}`,
            version: null,
            updatedAt: null,
            updatedBy: null,
          };
        } else {
          const stored = await withStore(config!, (store) => store.read());
          try {
            payload = validatePayload(stored!.payload, `database version ${stored!.version}`).payload;
          } catch (err) {
            if (!(err instanceof PayloadError)) throw err;
            throw new Error(
              `${err.message}; running servers keep their last good payload; repair it with planner features import <file>`,
            );
          }
          head = {
            source: 'database',
            version: stored!.version,
            updatedAt: stored!.updatedAt.toISOString(),
            updatedBy: stored!.updatedBy,
          };
        }
        const features = summarise(payload);
        if (one(p, 'json')) {
          io.out(JSON.stringify({ ...head, features }, null, 2));
        } else {
          io.out(
            head.version === null
              ? `payload: ${head.source}`
              : `payload version ${head.version} (${head.source}), updated ${head.updatedAt} by ${head.updatedBy}`,
          );
          for (const line of listLines(features)) io.out(line);
        }
        return 0;
      }
      case 'enable': {
        const p = parse(rest, ['percent', 'users', 'attribute', 'actor']);
        const key = exactlyOne(p, 'feature key');
        const t = targeting(p);
        enable({ features: {} }, key, t); // validates key and options before touching the database
        load();
        await change(config!, io, actorOf(p), describeEnable(key, t), key, (pl) => enable(pl, key, t));
        return 0;
      }
      case 'disable': {
        const p = parse(rest, ['actor']);
        const key = exactlyOne(p, 'feature key');
        disable({ features: {} }, key);
        load();
        await change(config!, io, actorOf(p), `features disable ${key}`, key, (pl) => disable(pl, key));
        return 0;
      }
      case 'phase': {
        const p = parse(rest, ['actor']);
        const raw = exactlyOne(p, 'phase number');
        if (!/^[1-9]\d*$/.test(raw) || Number(raw) > PHASES.length) {
          throw new RolloutError(`phase: expected a phase from 1 to ${PHASES.length}, got "${raw}"`);
        }
        const n = Number(raw);
        load();
        await change(config!, io, actorOf(p), `features phase ${n}`, null, (pl) => phase(pl, n));
        return 0;
      }
      case 'import': {
        const p = parse(rest, ['actor']);
        const file = exactlyOne(p, 'payload file');
        let text: string;
        try {
          text = fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new Error(`cannot read ${file}: ${(err as Error).message}`);
        }
        const payload = validatePayload(text, file).payload; // refused here: nothing is written
        load();
        await change(config!, io, actorOf(p), `features import ${file}`, null, () => payload, true);
        return 0;
      }
      case 'audit': {
        const p = parse(rest, ['limit', 'json']);
        if (p.positional.length > 0) throw new FeaturesUsageError('audit takes no arguments');
        const rawLimit = one(p, 'limit') ?? '20';
        if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 1000) {
          throw new FeaturesUsageError(`--limit: expected an integer from 1 to 1000, got "${rawLimit}"`);
        }
        load();
        const entries = await withStore(config!, (store) => store.auditTrail(Number(rawLimit)));
        if (one(p, 'json')) io.out(JSON.stringify(entries, null, 2));
        else {
          for (const line of table([
            ['AT', 'ACTOR', 'VERSION', 'COMMAND'],
            ...entries.map((e) => [e.at.toISOString(), e.actor, String(e.version), e.command]),
          ]))
            io.out(line);
        }
        return 0;
      }
      case undefined:
        throw new FeaturesUsageError(`features needs a command: list, enable, disable, phase, import, audit`);
      default:
        throw new FeaturesUsageError(`unknown features command "${sub}"`);
    }
  } catch (err) {
    if (err instanceof FeaturesUsageError || err instanceof RolloutError) {
      io.err(`planner: ${err.message}`);
      io.err(`usage:\n${FEATURES_USAGE}\nkeys: ${FEATURE_KEYS.join(', ')}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      io.err(`planner: configuration error: ${err.message}`);
      return 1;
    }
    if (err instanceof PayloadError) {
      io.err(`planner: refused: ${err.message}; the payload in force is unchanged`);
      return 1;
    }
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}
