/**
 * Shared plumbing of the operations commands (migrate, backup, restore, verify, check): their
 * argument parsing and how they open the configured database and map failures to exit codes.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { openDatabase, type OpenDatabase } from '../server/database';
import { createLogger } from '../server/logger';
import type { Io } from './main';

/** Bad command line of an operations command: message and that command's usage, exit 2. */
export class OpsUsageError extends Error {}

export interface OpsArgs {
  readonly positional: string[];
  /** Boolean switches present (`--json`, `--force`, …). */
  readonly switches: Set<string>;
  /** `--name value` / `--name=value` options. */
  readonly options: Map<string, string>;
}

/** Parses switches and valued options; rejects unknown ones and repeats. */
export function parseOpsArgs(
  args: readonly string[],
  spec: { switches?: readonly string[]; options?: readonly string[] },
): OpsArgs {
  const out: OpsArgs = { positional: [], switches: new Set(), options: new Map() };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      out.positional.push(a);
      continue;
    }
    const name = m[1]!;
    if (spec.switches?.includes(name)) {
      if (m[2] !== undefined) throw new OpsUsageError(`--${name} takes no value`);
      if (out.switches.has(name)) throw new OpsUsageError(`--${name} given twice`);
      out.switches.add(name);
    } else if (spec.options?.includes(name)) {
      const v = m[2] ?? args[++i];
      if (v === undefined || v.startsWith('--')) throw new OpsUsageError(`--${name} needs a value`);
      if (out.options.has(name)) throw new OpsUsageError(`--${name} given twice`);
      out.options.set(name, v);
    } else {
      throw new OpsUsageError(`unknown option --${name}`);
    }
  }
  return out;
}

/**
 * Runs an operations command: parse (usage errors → usage text, 2), load the configuration
 * (error → 1), then `body` (a thrown error → its message, 1; else body's exit code).
 */
export async function runOps(
  usage: string,
  io: Io,
  env: Record<string, string | undefined>,
  parse: () => void,
  body: (config: Config) => Promise<number>,
): Promise<number> {
  try {
    parse();
  } catch (err) {
    if (!(err instanceof OpsUsageError)) throw err;
    io.err(`planner: ${err.message}`);
    io.err(`usage:\n${usage}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(`planner: configuration error: ${err.message}`);
      return 1;
    }
    throw err;
  }
  try {
    return await body(config);
  } catch (err) {
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

/** Opens the configured database (embedded or DATABASE_URL) for the duration of `fn`. */
export async function withOpsDatabase<T>(config: Config, fn: (db: OpenDatabase) => Promise<T>): Promise<T> {
  const log = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  const db = await openDatabase(config, log, { applicationName: 'planner-cli' });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}
