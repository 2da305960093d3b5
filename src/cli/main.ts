/**
 * `planner` — operator CLI. Uses the same configuration as `npm start` in the same folder (data
 * directory, database, JWT secret), so a token it mints is accepted by that server.
 *
 *   planner token --email <address> [--name <display name>] [--role ADMIN|USER]   token alone on the last stdout line
 *   planner migrate status|up [--dry-run]|down [--force]     (src/cli/migrate.ts)
 *   planner backup [file] / restore <file> [--force]          (src/cli/backup.ts, src/cli/restore.ts)
 *   planner verify [--json]                                   (src/cli/verify.ts)
 *   planner check --url <base> [--token t] [--json]           (src/cli/check.ts)
 *   planner features list|enable|disable|phase|import|audit   (src/cli/features.ts)
 *   planner rollout report|check                              (src/cli/rollout.ts)
 *   planner users list|role|revoke                            (src/cli/users.ts)
 *   planner export --email <address> [--out file]             (src/cli/export.ts)
 *   planner forget --email <address>                          (src/cli/forget.ts)
 *   planner mcp --email <address>                             (src/cli/mcp.ts)
 *
 * Exit codes: 0 success, 1 failure (configuration, database), 2 bad usage.
 */
import { ConfigError, loadConfig, type Config } from '../config/config';
import { migrateUp } from '../db/data-source';
import { mintToken } from '../server/auth';
import { openDatabase, type OpenDatabase } from '../server/database';
import { createLogger } from '../server/logger';
import { systemClock } from '../world/clock';
import { BACKUP_USAGE, runBackup } from './backup';
import { CHECK_USAGE, runCheck } from './check';
import { FEATURES_USAGE, runFeatures } from './features';
import { MIGRATE_USAGE, runMigrate } from './migrate';
import { RESTORE_USAGE, runRestore } from './restore';
import { runVerify, VERIFY_USAGE } from './verify';
import { MCP_USAGE } from './mcp-usage';
import { ROLLOUT_USAGE, runRollout } from './rollout';
import { runUsers, USERS_USAGE } from './users';
import { EXPORT_USAGE, runExport } from './export';
import { FORGET_USAGE, runForget } from './forget';
import { DomainError } from '../world/errors';
import { createWorld } from '../world/world';

export const USAGE = `usage:
  planner token --email <address> [--name <display name>] [--role ADMIN|USER]
      Create the user if needed and print a JWT for it (alone on the last line of stdout).
      --role first sets the user's stored role (audited; for development).
${MIGRATE_USAGE}
${BACKUP_USAGE}
${RESTORE_USAGE}
${VERIFY_USAGE}
${CHECK_USAGE}
${FEATURES_USAGE}
${ROLLOUT_USAGE}
${USERS_USAGE}
${EXPORT_USAGE}
${FORGET_USAGE}
${MCP_USAGE}
  planner help
      Show this text.

Configuration comes from the environment, exactly as for \`npm start\` (DATABASE_URL, PLANNER_DATA_DIR,
PLANNER_JWT_SECRET, PLANNER_JWT_ISSUER, PLANNER_TOKEN_TTL, ...).`;

/** Bad command line: usage on stderr, exit 2. */
export class UsageError extends Error {}

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

const stdio: Io = {
  out: (line) => void process.stdout.write(line + '\n'),
  err: (line) => void process.stderr.write(line + '\n'),
};

/** Parses `--flag value` / `--flag=value` options; rejects unknown flags and stray arguments. */
function parseFlags(args: string[], known: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const name = m[1]!;
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`);
    let value = m[2];
    if (value === undefined) {
      value = args[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    }
    if (flags.has(name)) throw new UsageError(`--${name} given twice`);
    flags.set(name, value);
  }
  return flags;
}

async function withDatabase<T>(config: Config, fn: (db: OpenDatabase) => Promise<T>): Promise<T> {
  const log = createLogger(config.logLevel === 'debug' ? 'debug' : 'warn');
  const db = await openDatabase(config, log, { applicationName: 'planner-cli' });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** A parsed command line. */
export type Command =
  { kind: 'help' } | { kind: 'token'; email: string; name: string | undefined; role?: 'ADMIN' | 'USER' };

/** Parses the arguments (after the program name). Throws UsageError. */
export function parseCommand(argv: string[]): Command {
  const [command, ...rest] = argv;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      if (rest.length > 0) throw new UsageError('help takes no arguments');
      return { kind: 'help' };
    case 'token': {
      const flags = parseFlags(rest, ['email', 'name', 'role']);
      const email = flags.get('email');
      if (email === undefined) throw new UsageError('token needs --email <address>');
      const role = flags.get('role');
      if (role !== undefined && role !== 'ADMIN' && role !== 'USER') {
        throw new UsageError('--role must be ADMIN or USER');
      }
      return { kind: 'token', email, name: flags.get('name'), ...(role ? { role } : {}) };
    }
    case undefined:
      throw new UsageError('no command given');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function token(config: Config, cmd: Extract<Command, { kind: 'token' }>, io: Io): Promise<void> {
  await withDatabase(config, async (db) => {
    await migrateUp(db.dataSource);
    const world = createWorld(db.dataSource, systemClock, { undoDepth: config.undoDepth });
    let user;
    try {
      user = await world.users.findOrCreateByEmail(cmd.email, cmd.name);
    } catch (err) {
      if (err instanceof DomainError) throw new UsageError(err.message);
      throw err;
    }
    if (cmd.role !== undefined && cmd.role !== user.role) {
      await world.users.setRole(user.id, cmd.role, `os:${process.env['USER'] ?? 'cli'} (token --role)`);
      user = { ...user, role: cmd.role };
    }
    const now = systemClock.now();
    const jwt = mintToken(
      db.jwtSecret,
      config.jwtIssuer,
      { userId: user.id, email: user.email, role: user.role },
      config.tokenTtlSeconds,
      now,
    );
    const expires = new Date(now.getTime() + config.tokenTtlSeconds * 1000).toISOString();
    io.err(`planner: token for ${user.email} (user ${user.id}, role ${user.role}), valid until ${expires}`);
    io.out(jwt);
  });
}

/**
 * Runs the CLI and returns the exit code (never calls process.exit).
 * @param argv arguments after the program name.
 * @param env environment to configure from. Default process.env.
 * @param io where lines go. Default stdout / stderr.
 */
export async function run(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
  io: Io = stdio,
): Promise<number> {
  if (argv[0] === 'features') return runFeatures(argv.slice(1), env, io);
  if (argv[0] === 'rollout') return runRollout(argv.slice(1), env, io);
  if (argv[0] === 'users') return runUsers(argv.slice(1), env, io);
  if (argv[0] === 'export') return runExport(argv.slice(1), env, io);
  if (argv[0] === 'forget') return runForget(argv.slice(1), env, io);
  if (argv[0] === 'migrate') return runMigrate(argv.slice(1), env, io);
  if (argv[0] === 'backup') return runBackup(argv.slice(1), env, io);
  if (argv[0] === 'restore') return runRestore(argv.slice(1), env, io);
  if (argv[0] === 'verify') return runVerify(argv.slice(1), env, io);
  if (argv[0] === 'check') return runCheck(argv.slice(1), env, io);
  if (argv[0] === 'mcp') {
    // Loaded on demand: no other command needs the MCP SDK and the agent tools (start-up time).
    const { runMcp } = require('./mcp') as typeof import('./mcp');
    return runMcp(argv.slice(1), env, io);
  }
  try {
    const cmd = parseCommand(argv);
    if (cmd.kind === 'help') {
      io.out(USAGE);
      return 0;
    }
    const config = loadConfig(env);
    await token(config, cmd, io);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`planner: ${err.message}`);
      io.err(USAGE);
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

/** Entry point: runs with process.argv and exits with the code. Used by bin/planner.js. */
export function main(): void {
  run(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`planner: ${String(err)}\n`);
      process.exit(1);
    },
  );
}

if (require.main === module) main();
