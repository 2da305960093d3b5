/**
 * Citus readiness, read from the Postgres catalog (generic: it covers every table, including ones
 * added later by other migrations). A table is USER-KEYED when it has a `user_id` column; `users`
 * itself is keyed by `id` (its distribution column once distributed). For every user-keyed table:
 * - its PRIMARY KEY includes the key column;
 * - every UNIQUE constraint and unique index includes the key column;
 * - every FOREIGN KEY to a user-keyed table pairs the key column with the referenced table's key
 *   column (user_id → user_id, or user_id → users.id), so the referenced row is on the same shard.
 * And no table WITHOUT a user_id column (a global / reference table) references a user-keyed table
 * (Citus refuses reference → distributed foreign keys).
 */
import type { DataSource } from 'typeorm';

export interface Violation {
  table: string;
  /** Constraint or index name ('' for a missing primary key). */
  name: string;
  problem: string;
}

/**
 * Documented exceptions, `table.name` → reason. Keep it SHORT: each entry is a promise made in
 * docs/scaling.md about how the rule holds once distributed.
 */
export const CATALOG_ALLOW_LIST: Record<string, string> = {
  'users.users_email_lower_key':
    'email uniqueness across shards is kept by the user_emails lookup table approach (docs/scaling.md, "Email uniqueness")',
  'users.users_provider_subject_key':
    'provider identity uniqueness is kept by the same lookup-table approach as email (docs/scaling.md)',
};

interface ColumnRow {
  table: string;
  column: string;
  attnum: number;
}
interface ConstraintRow {
  table: string;
  name: string;
  type: string;
  cols: number[];
  ref_table: string | null;
  ref_cols: number[] | null;
}
interface IndexRow {
  table: string;
  name: string;
  cols: number[];
  constraint: boolean;
}

/** The key column of each user-keyed table in `schema` (table → attnum of user_id, or users.id). */
async function keyColumns(ds: DataSource, schema: string): Promise<Map<string, number>> {
  const rows = (await ds.query(
    `SELECT c.relname AS table, a.attname AS column, a.attnum
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        AND (a.attname = 'user_id' OR (c.relname = 'users' AND a.attname = 'id'))`,
    [schema],
  )) as ColumnRow[];
  return new Map(rows.map((r) => [r.table, r.attnum]));
}

/** Every violation of the rules above in `schema`, allow-listed ones excluded. */
export async function citusViolations(ds: DataSource, schema = 'public'): Promise<Violation[]> {
  const keys = await keyColumns(ds, schema);
  const constraints = (await ds.query(
    `SELECT t.relname AS table, k.conname AS name, k.contype AS type, k.conkey::int[] AS cols,
            r.relname AS ref_table, k.confkey::int[] AS ref_cols
       FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
       LEFT JOIN pg_class r ON r.oid = k.confrelid
      WHERE n.nspname = $1 AND k.contype IN ('p', 'u', 'f', 'x')`,
    [schema],
  )) as ConstraintRow[];
  const uniqueIndexes = (await ds.query(
    `SELECT t.relname AS table, ic.relname AS name, i.indkey::int2[]::int[] AS cols,
            EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = t.oid) AS constraint
       FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = $1 AND i.indisunique`,
    [schema],
  )) as IndexRow[];

  const out: Violation[] = [];
  const add = (table: string, name: string, problem: string) => {
    if (!(`${table}.${name}` in CATALOG_ALLOW_LIST)) out.push({ table, name, problem });
  };
  for (const [table, key] of keys) {
    const pk = constraints.find((c) => c.table === table && c.type === 'p');
    if (!pk) add(table, '', 'no primary key');
    else if (!pk.cols.includes(key)) add(table, pk.name, 'primary key does not include the distribution key');
    for (const c of constraints.filter((x) => x.table === table && (x.type === 'u' || x.type === 'x'))) {
      if (!c.cols.includes(key))
        add(table, c.name, 'unique/exclusion constraint without the distribution key');
    }
    // Unique indexes not backing a constraint (CREATE UNIQUE INDEX, partial or on expressions).
    for (const i of uniqueIndexes.filter((x) => x.table === table && !x.constraint)) {
      if (!i.cols.includes(key)) add(table, i.name, 'unique index without the distribution key');
    }
  }
  for (const fk of constraints.filter((c) => c.type === 'f')) {
    const refKey = fk.ref_table === null ? undefined : keys.get(fk.ref_table);
    if (refKey === undefined) continue; // references a global table: allowed from anywhere
    const key = keys.get(fk.table);
    if (key === undefined) {
      add(fk.table, fk.name, `a table without user_id references the user-keyed table ${fk.ref_table}`);
      continue;
    }
    const at = fk.cols.indexOf(key);
    if (at < 0 || fk.ref_cols?.[at] !== refKey)
      add(
        fk.table,
        fk.name,
        `foreign key to ${fk.ref_table} does not pair user_id with its distribution key`,
      );
  }
  return out.sort((a, b) => `${a.table}.${a.name}`.localeCompare(`${b.table}.${b.name}`));
}
