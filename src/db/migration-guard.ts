/**
 * Safety around migrations, generic over every migration (nothing to declare per migration):
 * - `previewDown` runs the latest applied migration's `down` inside a transaction, compares the
 *   catalog before and after, counts what it would take away (rows of dropped tables, non-null
 *   values of dropped columns, rows deleted from surviving tables) and rolls everything back;
 * - `pendingSql` records the SQL that pending migrations' `up` would run, without running it.
 */
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import { ident, listTables, MIGRATIONS_TABLE, rowCounts, type Query } from './catalog';

/**
 * Tables whose rows are bookkeeping that the migration's `up` re-creates, not user data: losing
 * them on `down` is not data loss. Each with its reason.
 */
export const BOOKKEEPING_TABLES: Readonly<Record<string, string>> = {
  auth_version: 'one change counter row, inserted again by its migration; instances only compare it',
};

export interface DataLoss {
  readonly table: string;
  /** The dropped column, when a column (not the whole table) goes. */
  readonly column?: string;
  /** Rows (or non-null values of the column) that would be lost. */
  readonly rows: number;
}

export interface DownPreview {
  /** The migration `down` would revert. */
  readonly migration: string;
  /** What it would lose (empty: nothing). */
  readonly losses: DataLoss[];
}

type MigrationClass = new () => MigrationInterface;

function nameOf(M: MigrationClass): string {
  return new M().name ?? M.name;
}

/** Name of the most recently applied migration (as TypeORM's undo chooses it), or null. */
export async function latestApplied(ds: DataSource): Promise<string | null> {
  const exists = (await ds.query(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE])) as Array<{
    t: string | null;
  }>;
  if (!exists[0]?.t) return null;
  const rows = (await ds.query(
    `SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY timestamp DESC, id DESC LIMIT 1`,
  )) as Array<{ name: string }>;
  return rows[0]?.name ?? null;
}

/** Runs the latest applied migration's down in a rolled-back transaction; null when none is applied. */
export async function previewDown(ds: DataSource): Promise<DownPreview | null> {
  const name = await latestApplied(ds);
  if (name === null) return null;
  const M = MIGRATIONS.find((m) => nameOf(m) === name);
  if (!M)
    throw new Error(`the latest applied migration ${name} is not known to this version: cannot revert it`);
  const qr: QueryRunner = ds.createQueryRunner();
  await qr.connect();
  const q: Query = (sql, params) => qr.query(sql, params) as Promise<Array<Record<string, unknown>>>;
  try {
    await qr.startTransaction();
    const before = await listTables(q);
    const beforeCounts = await rowCounts(
      q,
      before.map((t) => t.name),
    );
    await q('SAVEPOINT planner_preview_down');
    await new M().down(qr);
    const after = await listTables(q);
    const afterCounts = await rowCounts(
      q,
      after.map((t) => t.name),
    );
    await q('ROLLBACK TO SAVEPOINT planner_preview_down');
    const losses: DataLoss[] = [];
    for (const t of before) {
      const survivor = after.find((a) => a.name === t.name);
      const rows = beforeCounts.get(t.name) ?? 0;
      if (!survivor) {
        if (rows > 0 && !(t.name in BOOKKEEPING_TABLES)) losses.push({ table: t.name, rows });
        continue;
      }
      const lostRows = rows - (afterCounts.get(t.name) ?? 0);
      if (lostRows > 0) losses.push({ table: t.name, rows: lostRows });
      const gone = t.columns.filter((c) => !survivor.columns.includes(c));
      if (gone.length === 0 || rows === 0) continue;
      const [counts] = (await q(
        `SELECT ${gone.map((c, i) => `count(${ident(c)})::bigint::text AS c${i}`).join(', ')} FROM ONLY ${ident(t.name)}`,
      )) as Array<Record<string, string>>;
      gone.forEach((c, i) => {
        const n = Number(counts![`c${i}`]);
        if (n > 0) losses.push({ table: t.name, column: c, rows: n });
      });
    }
    return { migration: name, losses };
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    await qr.release();
  }
}

/** One line per loss: `table users column provider_subject: 3 values`. */
export function describeLosses(losses: readonly DataLoss[]): string[] {
  return losses.map((l) =>
    l.column === undefined
      ? `table ${l.table}: ${l.rows} row${l.rows === 1 ? '' : 's'}`
      : `column ${l.table}.${l.column}: ${l.rows} non-null value${l.rows === 1 ? '' : 's'}`,
  );
}

export interface PendingSql {
  readonly migration: string;
  readonly statements: Array<{ sql: string; params?: unknown[] }>;
}

/**
 * The SQL each pending migration's `up` would run, recorded by a stand-in query runner that
 * executes nothing (no locks, no side effects). A migration that needs anything but `query`
 * (or reads data to decide) cannot be dry-run: it throws saying so.
 */
export async function pendingSql(ds: DataSource): Promise<PendingSql[]> {
  const exists = (await ds.query(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE])) as Array<{
    t: string | null;
  }>;
  const applied = new Set(
    exists[0]?.t
      ? ((await ds.query(`SELECT name FROM ${MIGRATIONS_TABLE}`)) as Array<{ name: string }>).map(
          (r) => r.name,
        )
      : [],
  );
  const out: PendingSql[] = [];
  for (const M of MIGRATIONS) {
    const name = nameOf(M);
    if (applied.has(name)) continue;
    const statements: Array<{ sql: string; params?: unknown[] }> = [];
    const recorder = new Proxy(
      {},
      {
        get(_target, prop) {
          if (prop === 'query') {
            return (sql: string, params?: unknown[]) => {
              statements.push(params && params.length > 0 ? { sql, params } : { sql });
              return Promise.resolve([]);
            };
          }
          if (prop === 'then') return undefined;
          throw new Error(`cannot dry-run ${name}: it uses queryRunner.${String(prop)}, not only query()`);
        },
      },
    ) as QueryRunner;
    await new M().up(recorder);
    out.push({ migration: name, statements });
  }
  return out;
}
