/**
 * `planner restore`: loads a backup (backup-format.ts) into an empty database.
 *
 * 1. The target is brought to the backup's schema: a database without migrations gets exactly the
 *    backup's migrations; one further along than the backup is refused.
 * 2. Empty means no table holds more rows than the migrations themselves insert (found by running
 *    them in a rolled-back scratch schema); otherwise refused unless `force`.
 * 3. One transaction: triggers and foreign-key checks off for it alone (session_replication_role =
 *    replica: the append-only guard of `operations` must not refuse the load, and rows of a
 *    self-referencing table arrive in any order), every table emptied, rows inserted in batches from
 *    their text form, sequences set to their backed-up state, then every table's count and checksum
 *    compared with the header. Any difference rolls everything back.
 * 4. Migrations newer than the backup are then applied, as on a server start.
 */
import fs from 'node:fs';
import readline from 'node:readline';
import { pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import { createDataSource, migrateUp, migrationStatus } from './data-source';
import { ident, listTables, rowCounts, setCanonicalSession, tableChecksum, type Query } from './catalog';
import { BACKUP_FORMAT, BACKUP_VERSION, type BackupHeader, type Progress } from './backup-format';
import { expectedSchema } from './schema-snapshot';

const BATCH_ROWS = 1000;
const BATCH_CHARS = 4 * 1024 * 1024;

/** The restore did nothing because the target is not empty (and force was not given). */
export class RestoreRefused extends Error {}

export interface RestoreOptions {
  /** Replace whatever the target holds. Default false. */
  force?: boolean;
  progress?: Progress;
}

export interface RestoreResult {
  readonly header: BackupHeader;
  /** Rows loaded in all. */
  readonly rows: number;
  /** Migrations applied after the load (the code is newer than the backup). */
  readonly migrated: string[];
}

function migrationName(M: (typeof MIGRATIONS)[number]): string {
  return new M().name ?? M.name;
}

/** Restores `file` into the database of `ds` (connected at `url`). */
export async function restoreDatabase(
  ds: DataSource,
  url: string,
  file: string,
  opts: RestoreOptions = {},
): Promise<RestoreResult> {
  if (!fs.existsSync(file)) throw new Error(`${file}: no such file`);
  const input = pipeline(fs.createReadStream(file), zlib.createGunzip(), () => undefined);
  const lines = readline.createInterface({ input, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`${file}: the backup ends early (incomplete file)`);
    return r.value;
  };
  let header: BackupHeader;
  try {
    header = JSON.parse(await next()) as BackupHeader;
  } catch (err) {
    throw new Error(`${file} is not a planner backup (${err instanceof Error ? err.message : String(err)})`);
  }
  if (header.format !== BACKUP_FORMAT || header.version !== BACKUP_VERSION) {
    throw new Error(`${file} is not a planner backup of format version ${BACKUP_VERSION}`);
  }

  // 1. Schema: exactly the backup's migrations.
  const known = MIGRATIONS.map(migrationName);
  const count = header.migrations.length;
  if (header.migrations.some((name, i) => known[i] !== name)) {
    throw new Error(
      `the backup's schema (${header.migrations.at(-1) ?? 'none'}) is not one this version knows: restore it with the version that wrote it`,
    );
  }
  const prefix = MIGRATIONS.slice(0, count);
  const applied = (await migrationStatus(ds)).filter((m) => m.applied).map((m) => m.name);
  if (applied.length > count || applied.some((name, i) => known[i] !== name)) {
    throw new RestoreRefused(
      `the database is at a newer schema (${applied.at(-1)}) than the backup (${header.migrations.at(-1)}): restore into an empty database`,
    );
  }
  if (applied.length < count) {
    const at = createDataSource(url, { applicationName: 'planner-restore', migrations: prefix });
    await at.initialize();
    try {
      await migrateUp(at);
    } finally {
      await at.destroy();
    }
  }

  // 2. Empty?
  const seeded = (await expectedSchema(ds, prefix)).seededRows;
  const client = new Client({ connectionString: url, application_name: 'planner-restore' });
  await client.connect();
  const q: Query = async (sql, params) => (await client.query(sql, params as unknown[])).rows;
  let loaded = 0;
  try {
    const target = await listTables(q);
    const counts = await rowCounts(
      q,
      target.map((t) => t.name),
    );
    const held = target.filter((t) => (counts.get(t.name) ?? 0) > (seeded.get(t.name) ?? 0));
    if (held.length > 0 && !opts.force) {
      throw new RestoreRefused(
        `the database is not empty (${held.map((t) => `${t.name}: ${counts.get(t.name)} rows`).join(', ')}): ` +
          'restore into an empty database, or give --force to replace its contents',
      );
    }
    const names = new Set(target.map((t) => t.name));
    for (const t of header.tables) {
      const mine = target.find((x) => x.name === t.name);
      if (!mine) throw new Error(`table ${t.name} of the backup does not exist in the database`);
      if (mine.columns.join(',') !== t.columns.join(',') || mine.types.join(',') !== t.types.join(',')) {
        throw new Error(`table ${t.name} has different columns in the database than in the backup`);
      }
      names.delete(t.name);
    }
    if (names.size > 0) throw new Error(`tables missing from the backup: ${[...names].join(', ')}`);

    // 3. Load in one transaction.
    await q('BEGIN');
    await setCanonicalSession(q);
    try {
      await q(`SET LOCAL session_replication_role = replica`);
    } catch (err) {
      throw new Error(
        `restore needs a role allowed to set session_replication_role (a superuser, or GRANT SET ON PARAMETER ` +
          `session_replication_role on PostgreSQL 15+): ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    if (target.length > 0) await q(`TRUNCATE ${target.map((t) => ident(t.name)).join(', ')}`);
    const total = header.tables.reduce((n, t) => n + t.rows, 0);
    for (const t of header.tables) {
      const start = JSON.parse(await next()) as { table?: string };
      if (start.table !== t.name)
        throw new Error(`${file}: expected the rows of ${t.name}, found ${JSON.stringify(start)}`);
      const insert = `INSERT INTO ${ident(t.name)} SELECT * FROM unnest($1::${ident(t.name)}[])`;
      let batch: string[] = [];
      let chars = 0;
      let rows = 0;
      const flush = async (): Promise<void> => {
        if (batch.length === 0) return;
        await q(insert, [batch]);
        rows += batch.length;
        loaded += batch.length;
        opts.progress?.(t.name, loaded, total);
        batch = [];
        chars = 0;
      };
      for (;;) {
        const line = await next();
        if (line.startsWith('{')) {
          const end = JSON.parse(line) as { end?: string; rows?: number };
          if (end.end !== t.name) throw new Error(`${file}: the rows of ${t.name} end unexpectedly`);
          break;
        }
        const row = JSON.parse(line) as string;
        batch.push(row);
        chars += row.length;
        if (batch.length >= BATCH_ROWS || chars >= BATCH_CHARS) await flush();
      }
      await flush();
      if (rows !== t.rows)
        throw new Error(`${file}: ${t.name} holds ${rows} rows, its header says ${t.rows}`);
    }
    const last = JSON.parse(await next()) as { end?: string };
    if (last.end !== 'backup') throw new Error(`${file}: no end marker (incomplete file)`);
    for (const s of header.sequences) {
      await q(`SELECT setval($1::regclass, $2::bigint, $3)`, [ident(s.name), s.lastValue, s.isCalled]);
    }
    for (const t of header.tables) {
      const got = await tableChecksum(q, t.name, t.columns);
      if (got.rows !== t.rows || got.checksum !== t.checksum) {
        throw new Error(
          `table ${t.name} differs from the backup after loading (rows ${got.rows} vs ${t.rows}, checksum ${got.checksum} vs ${t.checksum})`,
        );
      }
    }
    await q('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end();
    void lines.return?.().catch(() => undefined);
  }

  // 4. Newer code: migrate the restored data forward.
  const migrated = applied.length <= count && count < MIGRATIONS.length ? await migrateUp(ds) : [];
  return { header, rows: loaded, migrated };
}
