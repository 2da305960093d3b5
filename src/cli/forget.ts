/**
 * `planner forget --email <address>` — erases a whole account and everything held about it (see
 * src/world/erasure.ts): one transaction, the operation log's append-only guard allowing exactly
 * this erasure. Prints what was erased, per table. What remains in backups, and for how long, is in
 * the README ("Memory and privacy").
 *
 * Exit codes: 0 success, 1 failure (configuration, database, no such user), 2 bad usage.
 */
import { migrateUp } from '../db/data-source';
import { systemClock } from '../world/clock';
import { eraseAccount } from '../world/erasure';
import { createWorld } from '../world/world';
import { ExportUsageError, parseEmailArgs } from './export';
import type { Io } from './main';
import { openCliDatabase } from './open-db';

export const FORGET_USAGE = `  planner forget --email <address>
      Erase the account and everything held about it (tasks, goals, operations, conflicts, events,
      memories, flag exposures and usage, audit); final. Backups keep it until they expire.`;

/** Runs `planner forget …` (args after "forget") and returns the exit code. */
export async function runForget(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let email: string;
  try {
    email = parseEmailArgs(args, ['email']).get('email')!;
  } catch (err) {
    if (!(err instanceof ExportUsageError)) throw err;
    io.err(`planner: forget ${err.message}`);
    io.err(FORGET_USAGE);
    return 2;
  }
  const opened = await openCliDatabase(env, io);
  if (!opened) return 1;
  const { config, db } = opened;
  try {
    await migrateUp(db.dataSource);
    const world = createWorld(db.dataSource, systemClock, { undoDepth: config.undoDepth });
    const user = await world.users.findByEmail(email);
    const report = user ? await eraseAccount(db.dataSource, user.id) : null;
    if (!user || !report) {
      io.err(`planner: no user with email ${email}`);
      return 1;
    }
    const parts = Object.entries(report).map(([t, n]) => `${t} ${n}`);
    io.out(`erased ${user.email} (user ${user.id}): ${parts.join(', ')}`);
    return 0;
  } catch (err) {
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await db.close();
  }
}
