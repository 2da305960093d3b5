/**
 * `planner export --email <address> [--out file]` — everything held about one user as JSON (the
 * same document as the `exportMyData` query): profile and settings, tasks, goals, conflicts, the
 * operation log, memory items, flags as evaluated for the user (the stored features payload),
 * experiment exposures, feature usage, the account audit. To stdout, or to a file created with
 * mode 0600 (it is personal data).
 *
 * Exit codes: 0 success, 1 failure (configuration, database, no such user), 2 bad usage.
 */
import { writeFile } from 'node:fs/promises';
import { migrateUp } from '../db/data-source';
import { FlagService, defaultPayload, validatePayload } from '../flags';
import { FeatureStore } from '../flags/store';
import { createEmbedder } from '../memory/embedder';
import { systemClock } from '../world/clock';
import { createWorld } from '../world/world';
import type { Io } from './main';
import { openCliDatabase } from './open-db';

export const EXPORT_USAGE = `  planner export --email <address> [--out file]
      Everything held about the user as JSON (tasks, goals, operations, conflicts, memories, flags,
      exposures, settings): to stdout, or to a new file readable by its owner only.`;

class ExportUsageError extends Error {}

/** Parses `--email a [--out f]` (also `--name=value`). */
export function parseEmailArgs(args: string[], known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(args[i]!);
    if (!m || !known.includes(m[1]!)) throw new ExportUsageError(`unexpected argument "${args[i]}"`);
    const value = m[2] ?? args[++i];
    if (value === undefined || value.startsWith('--')) throw new ExportUsageError(`--${m[1]} needs a value`);
    if (out.has(m[1]!)) throw new ExportUsageError(`--${m[1]} given twice`);
    out.set(m[1]!, value);
  }
  if (!out.get('email')) throw new ExportUsageError('needs --email <address>');
  return out;
}

export { ExportUsageError };

/** Runs `planner export …` (args after "export") and returns the exit code. */
export async function runExport(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let flags: Map<string, string>;
  try {
    flags = parseEmailArgs(args, ['email', 'out']);
  } catch (err) {
    if (!(err instanceof ExportUsageError)) throw err;
    io.err(`planner: export ${err.message}`);
    io.err(EXPORT_USAGE);
    return 2;
  }
  const opened = await openCliDatabase(env, io);
  if (!opened) return 1;
  const { config, db } = opened;
  try {
    await migrateUp(db.dataSource);
    // Flags as the server evaluates them: the stored payload (the repository's default before seeding).
    const stored = await new FeatureStore(db.dataSource).read();
    const payload = stored ? validatePayload(stored.payload, 'database').payload : defaultPayload();
    const world = createWorld(db.dataSource, systemClock, {
      undoDepth: config.undoDepth,
      flags: {
        service: new FlagService(payload, { origin: 'database', version: stored?.version ?? 0 }),
        recorder: null,
      },
      memory: { embedder: createEmbedder(config.embedder) },
    });
    const email = flags.get('email')!;
    const user = await world.users.findByEmail(email);
    if (!user) {
      io.err(`planner: no user with email ${email}`);
      return 1;
    }
    const data = await world.queries.exportMyData(user.id);
    const text = JSON.stringify(data, null, 2);
    const out = flags.get('out');
    if (out === undefined) io.out(text);
    else {
      await writeFile(out, text + '\n', { mode: 0o600, flag: 'wx' });
      io.err(`planner: exported ${user.email} (user ${user.id}) to ${out}`);
    }
    return 0;
  } catch (err) {
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await db.close();
  }
}
