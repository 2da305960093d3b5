/**
 * What the schema is, and what it should be. `snapshotSchema` reads one schema's objects from the
 * catalog as `kind name → definition`; `expectedSchema` builds the schema every migration declares
 * by running all of them in a scratch schema inside a transaction that is rolled back (nothing is
 * left behind, no other database is needed, and the expected catalog can never drift from the
 * migrations); `diffSchemas` lists what is missing, unexpected or different.
 */
import { randomBytes } from 'node:crypto';
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { MIGRATIONS } from '../migrations';
import { listTables, MIGRATIONS_TABLE, rowCounts, type Query } from './catalog';

export type SchemaObjectKind =
  'table' | 'column' | 'enum' | 'index' | 'constraint' | 'trigger' | 'sequence' | 'function' | 'extension';

/** `kind:name` → normalised definition. */
export type SchemaSnapshot = Map<string, string>;

/**
 * Reads the objects of `schema` (quoted names resolved with search_path set to it, so definitions
 * carry no schema prefix). Call inside a transaction.
 */
export async function snapshotSchema(q: Query, schema: string): Promise<SchemaSnapshot> {
  await q(`SELECT set_config('search_path', $1, true)`, [schema]);
  const strip = (s: string): string => s.split(`${schema}.`).join('').split(`"${schema}".`).join('');
  const snap: SchemaSnapshot = new Map();
  const add = (kind: SchemaObjectKind, name: string, def: string): void =>
    void snap.set(`${kind}:${name}`, strip(def));
  const ns = `(SELECT oid FROM pg_namespace WHERE nspname = $1)`;
  const skip = [MIGRATIONS_TABLE];
  for (const r of (await q(
    `SELECT c.relname AS t, a.attname AS c, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS nn,
            pg_get_expr(d.adbin, d.adrelid) AS def
       FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      WHERE c.relnamespace = ${ns} AND c.relkind IN ('r', 'p') AND c.relname <> ALL($2)`,
    [schema, skip],
  )) as Array<{ t: string; c: string; type: string; nn: boolean; def: string | null }>) {
    add('table', r.t, '');
    add('column', `${r.t}.${r.c}`, `${r.type}${r.nn ? ' NOT NULL' : ''}${r.def ? ` DEFAULT ${r.def}` : ''}`);
  }
  for (const r of (await q(
    `SELECT t.typname AS n, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) AS labels
       FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid WHERE t.typnamespace = ${ns} GROUP BY t.typname`,
    [schema],
  )) as Array<{ n: string; labels: string }>) {
    add('enum', r.n, r.labels);
  }
  for (const r of (await q(
    `SELECT i.relname AS n, pg_get_indexdef(i.oid) AS def
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relnamespace = ${ns} AND t.relname <> ALL($2)`,
    [schema, skip],
  )) as Array<{ n: string; def: string }>) {
    add('index', r.n, r.def);
  }
  for (const r of (await q(
    `SELECT t.relname AS t, k.conname AS n, pg_get_constraintdef(k.oid) AS def
       FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
      WHERE t.relnamespace = ${ns} AND t.relname <> ALL($2)`,
    [schema, skip],
  )) as Array<{ t: string; n: string; def: string }>) {
    add('constraint', `${r.t}.${r.n}`, r.def);
  }
  for (const r of (await q(
    `SELECT t.relname AS t, g.tgname AS n, pg_get_triggerdef(g.oid) AS def
       FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
      WHERE t.relnamespace = ${ns} AND NOT g.tgisinternal`,
    [schema],
  )) as Array<{ t: string; n: string; def: string }>) {
    add('trigger', `${r.t}.${r.n}`, r.def);
  }
  for (const r of (await q(
    `SELECT c.relname AS n FROM pg_class c WHERE c.relnamespace = ${ns} AND c.relkind = 'S'
        AND c.relname <> $2`,
    [schema, `${MIGRATIONS_TABLE}_id_seq`],
  )) as Array<{ n: string }>) {
    add('sequence', r.n, '');
  }
  for (const r of (await q(
    `SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS n, md5(p.prosrc) AS def
       FROM pg_proc p WHERE p.pronamespace = ${ns}
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')`,
    [schema],
  )) as Array<{ n: string; def: string }>) {
    add('function', r.n, r.def);
  }
  return snap;
}

export interface ExpectedSchema {
  readonly snapshot: SchemaSnapshot;
  /** Rows each table holds right after the migrations (rows they insert themselves). */
  readonly seededRows: Map<string, number>;
  /** Extensions the migrations create (database-wide, so checked by name). */
  readonly extensions: string[];
}

/**
 * Runs `migrations` (default: all) in a fresh scratch schema inside one transaction, reads what they
 * built, and rolls everything back. Migrations must address their objects unqualified (they do:
 * the search_path decides where they land).
 */
export async function expectedSchema(
  ds: DataSource,
  migrations: ReadonlyArray<new () => MigrationInterface> = MIGRATIONS,
): Promise<ExpectedSchema> {
  const qr: QueryRunner = ds.createQueryRunner();
  await qr.connect();
  const q: Query = (sql, params) => qr.query(sql, params) as Promise<Array<Record<string, unknown>>>;
  const scratch = `planner_expected_${randomBytes(4).toString('hex')}`;
  try {
    await qr.startTransaction();
    await q(`CREATE SCHEMA ${scratch}`);
    await q(`SELECT set_config('search_path', $1, true)`, [scratch]);
    for (const M of migrations) await new M().up(qr);
    const installed = new Set(
      ((await q(`SELECT extname FROM pg_extension`)) as Array<{ extname: string }>).map((r) => r.extname),
    );
    const extensions = extensionsOf(migrations).filter((e) => installed.has(e));
    const snapshot = await snapshotSchema(q, scratch);
    await q(`SELECT set_config('search_path', $1, true)`, [scratch]);
    const tables = (await listTables(q)).map((t) => t.name);
    const seededRows = await rowCounts(q, tables);
    return { snapshot, seededRows, extensions };
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    await qr.release();
  }
}

/** Extensions named by a CREATE EXTENSION in any migration's source. */
function extensionsOf(migrations: ReadonlyArray<new () => MigrationInterface>): string[] {
  const names = new Set<string>();
  for (const M of migrations) {
    for (const m of M.prototype.up
      .toString()
      .matchAll(/CREATE EXTENSION (?:IF NOT EXISTS )?"?([a-z0-9_]+)"?/gi)) {
      names.add(m[1]!);
    }
  }
  return [...names];
}

export interface SchemaProblem {
  readonly kind: SchemaObjectKind | 'migration';
  readonly name: string;
  readonly problem: 'missing' | 'unexpected' | 'differs' | 'not applied' | 'unknown';
  readonly expected?: string;
  readonly actual?: string;
}

/** Every difference between the expected and the actual snapshot, sorted by kind and name. */
export function diffSchemas(expected: SchemaSnapshot, actual: SchemaSnapshot): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const split = (key: string): { kind: SchemaObjectKind; name: string } => {
    const i = key.indexOf(':');
    return { kind: key.slice(0, i) as SchemaObjectKind, name: key.slice(i + 1) };
  };
  for (const [key, def] of expected) {
    const got = actual.get(key);
    if (got === undefined) problems.push({ ...split(key), problem: 'missing', expected: def });
    else if (got !== def) problems.push({ ...split(key), problem: 'differs', expected: def, actual: got });
  }
  for (const [key, def] of actual) {
    if (!expected.has(key)) problems.push({ ...split(key), problem: 'unexpected', actual: def });
  }
  return problems.sort((a, b) => a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
}

/**
 * `planner verify`: every migration applied (and none unknown), and the live schema exactly what
 * the migrations declare. Returns the problems (empty: the database is as declared).
 */
export async function verifyDatabase(ds: DataSource): Promise<SchemaProblem[]> {
  const problems: SchemaProblem[] = [];
  const known = MIGRATIONS.map((M) => new M().name ?? M.name);
  const exists = (await ds.query(`SELECT to_regclass($1) AS t`, [MIGRATIONS_TABLE])) as Array<{
    t: string | null;
  }>;
  const applied = exists[0]?.t
    ? ((await ds.query(`SELECT name FROM ${MIGRATIONS_TABLE}`)) as Array<{ name: string }>).map((r) => r.name)
    : [];
  for (const name of known)
    if (!applied.includes(name)) problems.push({ kind: 'migration', name, problem: 'not applied' });
  for (const name of applied)
    if (!known.includes(name)) problems.push({ kind: 'migration', name, problem: 'unknown' });

  const expected = await expectedSchema(ds);
  const qr = ds.createQueryRunner();
  await qr.connect();
  let actual: SchemaSnapshot;
  let installed: Set<string>;
  try {
    await qr.startTransaction();
    const q: Query = (sql, params) => qr.query(sql, params) as Promise<Array<Record<string, unknown>>>;
    const [{ s }] = (await q(`SELECT current_schema() AS s`)) as [{ s: string }];
    installed = new Set(
      ((await q(`SELECT extname FROM pg_extension`)) as Array<{ extname: string }>).map((r) => r.extname),
    );
    actual = await snapshotSchema(q, s);
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction();
    await qr.release();
  }
  for (const e of expected.extensions)
    if (!installed.has(e)) problems.push({ kind: 'extension', name: e, problem: 'missing' });
  problems.push(...diffSchemas(expected.snapshot, actual));
  return problems;
}
