/**
 * `planner backup [file]` — a consistent, compressed snapshot of all data (src/db/backup.ts),
 * from the embedded or the external Postgres, without pg_dump. Progress on a TTY (stderr).
 *
 * Exit codes: 0 written, 1 failure (nothing left behind but the error), 2 bad usage.
 */
import fs from 'node:fs';
import { backupDatabase } from '../db/backup';
import { ttyProgress } from '../db/backup-format';
import type { Io } from './main';
import { OpsUsageError, parseOpsArgs, runOps, withOpsDatabase } from './ops-args';

export const BACKUP_USAGE = `  planner backup [file]
      Write a consistent snapshot of every table (one repeatable-read transaction, gzip) with the
      schema version and per-table row counts and checksums. Default file:
      planner-backup-<UTC time>.gz in the current directory. Refuses to overwrite a file.`;

/** Default file name: planner-backup-20261130T201500Z.gz */
export function defaultBackupFile(now: Date): string {
  return `planner-backup-${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}.gz`;
}

/** Runs `planner backup …` (args after "backup") and returns the exit code. */
export async function runBackup(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let file = '';
  return runOps(
    BACKUP_USAGE,
    io,
    env,
    () => {
      const a = parseOpsArgs(args, {});
      if (a.positional.length > 1) throw new OpsUsageError('backup takes at most one file name');
      file = a.positional[0] ?? defaultBackupFile(new Date());
    },
    async (config) => {
      if (fs.existsSync(file)) throw new Error(`${file} exists: refusing to overwrite it`);
      return withOpsDatabase(config, async (db) => {
        const header = await backupDatabase(db.url, file, { progress: ttyProgress('backup') });
        const rows = header.tables.reduce((n, t) => n + t.rows, 0);
        io.err(
          `planner: backup of ${header.tables.length} tables, ${rows} rows, schema ${header.migrations.at(-1) ?? 'none'}`,
        );
        io.out(file);
        return 0;
      });
    },
  );
}
