/**
 * `planner backup`: a consistent snapshot of every table of the schema, streamed and compressed,
 * without pg_dump (the embedded Postgres ships none, and an external server's version need not
 * match a local one). One REPEATABLE READ, READ ONLY transaction: the header's counts and
 * checksums are computed first, then each table is read through a cursor, batch by batch, and
 * written as it comes (memory stays flat however large the database). Format: backup-format.ts.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import { finished } from 'node:stream/promises';
import zlib from 'node:zlib';
import { Client } from 'pg';
import {
  ident,
  listSequences,
  listTables,
  MIGRATIONS_TABLE,
  setCanonicalSession,
  tableChecksum,
  type Query,
} from './catalog';
import {
  BACKUP_FORMAT,
  BACKUP_VERSION,
  type BackupHeader,
  type BackupTable,
  type Progress,
} from './backup-format';

const FETCH_ROWS = 2000;

export interface BackupOptions {
  /** Called as rows are written (the CLI passes a TTY progress line). */
  progress?: Progress;
  /** Application name on the connection. Default planner-backup. */
  applicationName?: string;
}

/**
 * Writes a backup of the database at `url` to `file` (through `<file>.partial`, renamed when
 * complete, so a failed backup never leaves a file that looks whole). Returns the header.
 */
export async function backupDatabase(
  url: string,
  file: string,
  opts: BackupOptions = {},
): Promise<BackupHeader> {
  const client = new Client({
    connectionString: url,
    application_name: opts.applicationName ?? 'planner-backup',
  });
  await client.connect();
  const partial = `${file}.partial`;
  const gzip = zlib.createGzip();
  const out = fs.createWriteStream(partial);
  const written = finished(gzip.pipe(out));
  const write = async (line: string): Promise<void> => {
    if (!gzip.write(line + '\n')) await once(gzip, 'drain');
  };
  try {
    const q: Query = async (sql, params) => (await client.query(sql, params as unknown[])).rows;
    await q('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await setCanonicalSession(q);
    const exists = (await q(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE])) as Array<{
      t: string | null;
    }>;
    if (!exists[0]?.t)
      throw new Error(
        'the database has no migrations table: nothing to back up (is it the planner database?)',
      );
    const migrations = (
      (await q(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY timestamp, id`)) as Array<{ name: string }>
    ).map((r) => r.name);
    const tables: BackupTable[] = [];
    for (const t of await listTables(q)) {
      tables.push({ ...t, ...(await tableChecksum(q, t.name, t.columns)) });
    }
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: new Date().toISOString(),
      migrations,
      tables,
      sequences: await listSequences(q),
    };
    await write(JSON.stringify(header));
    const total = tables.reduce((n, t) => n + t.rows, 0);
    let done = 0;
    for (const t of tables) {
      await write(JSON.stringify({ table: t.name }));
      await q(`DECLARE planner_backup NO SCROLL CURSOR FOR SELECT r::text AS r FROM ONLY ${ident(t.name)} r`);
      let rows = 0;
      for (;;) {
        const batch = (await q(`FETCH ${FETCH_ROWS} FROM planner_backup`)) as Array<{ r: string }>;
        if (batch.length === 0) break;
        await write(batch.map((b) => JSON.stringify(b.r)).join('\n'));
        rows += batch.length;
        done += batch.length;
        opts.progress?.(t.name, done, total);
      }
      await q('CLOSE planner_backup');
      if (rows !== t.rows)
        throw new Error(`table ${t.name}: read ${rows} rows, counted ${t.rows} (snapshot broken?)`);
      await write(JSON.stringify({ end: t.name, rows }));
    }
    await write(JSON.stringify({ end: 'backup' }));
    await q('COMMIT');
    opts.progress?.('done', total, total);
    gzip.end();
    await written;
    fs.renameSync(partial, file);
    return header;
  } catch (err) {
    gzip.destroy();
    await written.catch(() => undefined);
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    await client.end();
  }
}
