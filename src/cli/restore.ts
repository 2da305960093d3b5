/**
 * `planner restore <file> [--force]` — loads a backup into an empty database (src/db/restore.ts):
 * migrates a fresh database to the backup's schema first, refuses a non-empty one unless --force,
 * checks every table's count and checksum before committing, then applies newer migrations.
 *
 * Exit codes: 0 restored, 1 failure or refusal (nothing changed), 2 bad usage.
 */
import { ttyProgress } from '../db/backup-format';
import { restoreDatabase } from '../db/restore';
import type { Io } from './main';
import { OpsUsageError, parseOpsArgs, runOps, withOpsDatabase } from './ops-args';

export const RESTORE_USAGE = `  planner restore <file> [--force]
      Load a backup into an empty database (a fresh one is migrated to the backup's schema first).
      Refuses a database holding data unless --force (which replaces it). Every table's count and
      checksum are compared before commit; newer migrations are applied after.`;

/** Runs `planner restore …` (args after "restore") and returns the exit code. */
export async function runRestore(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let file = '';
  let force = false;
  return runOps(
    RESTORE_USAGE,
    io,
    env,
    () => {
      const a = parseOpsArgs(args, { switches: ['force'] });
      if (a.positional.length !== 1) throw new OpsUsageError('restore needs exactly one backup file');
      file = a.positional[0]!;
      force = a.switches.has('force');
    },
    (config) =>
      withOpsDatabase(config, async (db) => {
        const r = await restoreDatabase(db.dataSource, db.url, file, {
          force,
          progress: ttyProgress('restore'),
        });
        io.out(
          `restored ${r.rows} rows into ${r.header.tables.length} tables from ${file} (backup of ${r.header.createdAt}); counts and checksums match`,
        );
        for (const name of r.migrated) io.out(`applied ${name}`);
        return 0;
      }),
  );
}
