/**
 * The backup file: gzip-compressed lines.
 *
 *   line 1        header (JSON, BackupHeader): format, version, time, the applied migrations (the
 *                 schema version), every table with its columns, types, row count and checksum,
 *                 and every sequence's state;
 *   per table     {"table":"<name>"}, then one JSON string per row (the row's Postgres text form,
 *                 `(v1,v2,…)`, exactly as the composite type's input reads it back), then
 *                 {"end":"<name>","rows":<n>};
 *   last line     {"end":"backup"} (a file without it was cut short).
 *
 * Everything is read in one REPEATABLE READ transaction, so counts, checksums and rows describe
 * the same instant.
 */
import type { TableChecksum } from './catalog';

export const BACKUP_FORMAT = 'planner-backup';
export const BACKUP_VERSION = 1;

export interface BackupTable extends TableChecksum {
  readonly name: string;
  readonly columns: string[];
  readonly types: string[];
}

export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT;
  readonly version: number;
  readonly createdAt: string;
  /** Names of the applied migrations, in order: the schema the rows belong to. */
  readonly migrations: string[];
  readonly tables: BackupTable[];
  readonly sequences: Array<{ name: string; lastValue: string; isCalled: boolean }>;
}

/** Reports progress (rows done of rows total) while a backup or restore runs. */
export type Progress = (table: string, done: number, total: number) => void;

/** A progress reporter that redraws one stderr line, or nothing when stderr is not a TTY. */
export function ttyProgress(verb: string, stream: NodeJS.WriteStream = process.stderr): Progress | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  return (table, done, total) => {
    const now = Date.now();
    if (done < total && now - last < 200) return;
    last = now;
    const pct = total === 0 ? 100 : Math.floor((done * 100) / total);
    stream.write(`\r${verb} ${done}/${total} rows (${pct}%) ${table}\x1b[K${done >= total ? '\n' : ''}`);
  };
}
