/**
 * The database's own description of itself, read from the Postgres catalog: the tables of the
 * planner's schema (whatever migrations created them, so tables added later are covered without a
 * list to maintain), per-table row counts and content checksums, and a normalised snapshot of the
 * schema objects (tables, columns, enums, indexes, constraints, triggers, sequences, functions)
 * for `planner verify`. Used by migrate (data-loss guard), backup, restore and verify.
 */

/** Runs one SQL statement and returns its rows (a pg Client's or a TypeORM QueryRunner's query). */
export type Query = (sql: string, params?: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** TypeORM's bookkeeping table: handled explicitly by every command, never as data. */
export const MIGRATIONS_TABLE = 'migrations';

/** Quotes an SQL identifier. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Session settings that make the text form of every value the same on every connection
 * (timestamps in UTC, ISO dates, shortest exact floats): checksums compare across databases.
 * Run inside a transaction (SET LOCAL).
 */
export async function setCanonicalSession(q: Query): Promise<void> {
  await q(
    `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, MDY', true),
            set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true),
            set_config('bytea_output', 'hex', true)`,
  );
}

export interface TableInfo {
  readonly name: string;
  /** Column names in column order (dropped columns excluded). */
  readonly columns: string[];
  /** format_type of each column, same order. */
  readonly types: string[];
}

/**
 * Every ordinary table of the current schema except the migrations table, parents before the
 * tables whose foreign keys reference them (a table referencing itself does not count).
 */
export async function listTables(q: Query): Promise<TableInfo[]> {
  const rows = (await q(
    `SELECT c.relname AS name,
            array_agg(a.attname::text ORDER BY a.attnum) AS columns,
            array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types
       FROM pg_class c
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
        AND c.relname <> $1
      GROUP BY c.relname
      ORDER BY c.relname`,
    [MIGRATIONS_TABLE],
  )) as Array<{ name: string; columns: string[]; types: string[] }>;
  const deps = (await q(
    `SELECT c.relname AS child, p.relname AS parent
       FROM pg_constraint k
       JOIN pg_class c ON c.oid = k.conrelid
       JOIN pg_class p ON p.oid = k.confrelid
      WHERE k.contype = 'f' AND c.relnamespace = current_schema()::regnamespace AND c.oid <> p.oid`,
  )) as Array<{ child: string; parent: string }>;
  const parents = new Map<string, Set<string>>(rows.map((r) => [r.name, new Set<string>()]));
  for (const d of deps) parents.get(d.child)?.add(d.parent);
  const ordered: TableInfo[] = [];
  const done = new Set<string>();
  const visit = (name: string, path: Set<string>): void => {
    if (done.has(name) || path.has(name)) return;
    path.add(name);
    for (const p of parents.get(name) ?? []) visit(p, path);
    path.delete(name);
    done.add(name);
    const r = rows.find((x) => x.name === name)!;
    ordered.push({ name: r.name, columns: r.columns, types: r.types });
  };
  for (const r of rows) visit(r.name, new Set());
  return ordered;
}

export interface TableChecksum {
  readonly rows: number;
  /**
   * Order-independent content checksum: the sum over rows of the first 60 bits of md5(row text),
   * as a decimal string. Equal contents give equal sums on any database (canonical session).
   */
  readonly checksum: string;
}

/**
 * Row count and content checksum of one table over `columns` (in the order given). Call inside a
 * transaction after setCanonicalSession.
 */
export async function tableChecksum(
  q: Query,
  table: string,
  columns: readonly string[],
): Promise<TableChecksum> {
  const row = columns.length === 0 ? 'ROW()' : `ROW(${columns.map(ident).join(', ')})`;
  const [r] = (await q(
    `/* background:ops-catalog */ SELECT count(*)::bigint::text AS n,
            coalesce(sum(('x' || left(md5(${row}::text), 15))::bit(60)::bigint), 0)::text AS s
       FROM ONLY ${ident(table)}`,
  )) as Array<{ n: string; s: string }>;
  return { rows: Number(r!.n), checksum: r!.s };
}

/** Exact row counts of every listed table. */
export async function rowCounts(q: Query, tables: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (tables.length === 0) return counts;
  const sql = tables.map((t, i) => `SELECT ${i} AS i, count(*)::bigint::text AS n FROM ONLY ${ident(t)}`);
  const rows = (await q('/* background:ops-catalog */ ' + sql.join(' UNION ALL '))) as Array<{
    i: number;
    n: string;
  }>;
  for (const r of rows) counts.set(tables[r.i]!, Number(r.n));
  return counts;
}

/** Sequences of the current schema with their state (for backup and restore). */
export async function listSequences(
  q: Query,
): Promise<Array<{ name: string; lastValue: string; isCalled: boolean }>> {
  const seqs = (await q(
    `SELECT c.relname AS name FROM pg_class c
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'S'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
                         WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND t.relname = $1)
      ORDER BY c.relname`,
    [MIGRATIONS_TABLE],
  )) as Array<{ name: string }>;
  const out: Array<{ name: string; lastValue: string; isCalled: boolean }> = [];
  for (const s of seqs) {
    const [r] = (await q(`SELECT last_value::text AS v, is_called AS c FROM ${ident(s.name)}`)) as Array<{
      v: string;
      c: boolean;
    }>;
    out.push({ name: s.name, lastValue: r!.v, isCalled: r!.c });
  }
  return out;
}
