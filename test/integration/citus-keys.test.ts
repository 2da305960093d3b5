/**
 * The catalog test (issue 16, scale-out ready): every table keyed by user distributes on Citus
 * colocated by user_id. Generic over the migrated schema, so tables added later are covered; the
 * rules and the allow-list live in test/support/citus-catalog.ts.
 */
import { expect } from 'chai';
import type { DataSource } from 'typeorm';
import { createDataSource } from '../../src/db/data-source';
import { CATALOG_ALLOW_LIST, citusViolations } from '../support/citus-catalog';
import { testDatabaseUrl } from '../support/db';

describe('Citus readiness of the schema (catalog)', () => {
  let ds: DataSource;
  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 1, applicationName: 'planner-test-fixture' });
    await ds.initialize();
  });
  after(async () => {
    await ds.query('DROP SCHEMA IF EXISTS citus_probe CASCADE');
    await ds.destroy();
  });

  it('has user_id in every primary key, unique constraint, unique index and foreign key of user-keyed tables', async () => {
    expect(await citusViolations(ds)).to.deep.equal([]);
  });

  it('the tables the issue names are keyed (user_id, …)', async () => {
    const rows = (await ds.query(
      `SELECT t.relname AS table, pg_get_constraintdef(k.oid) AS def
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
        WHERE k.contype = 'p' AND t.relname = ANY($1) ORDER BY t.relname`,
      [['conflicts', 'events', 'goals', 'operations', 'task_dependencies', 'tasks']],
    )) as Array<{ table: string; def: string }>;
    expect(rows).to.deep.equal([
      { table: 'conflicts', def: 'PRIMARY KEY (user_id, id)' },
      { table: 'events', def: 'PRIMARY KEY (user_id, id)' },
      { table: 'goals', def: 'PRIMARY KEY (user_id, id)' },
      { table: 'operations', def: 'PRIMARY KEY (user_id, id)' },
      { table: 'task_dependencies', def: 'PRIMARY KEY (user_id, task_id, depends_on_id)' },
      { table: 'tasks', def: 'PRIMARY KEY (user_id, id)' },
    ]);
    const [fk] = (await ds.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'operations_target_operation_fk'`,
    )) as Array<{ def: string }>;
    expect(fk?.def).to.equal('FOREIGN KEY (user_id, target_operation_id) REFERENCES operations(user_id, id)');
  });

  it('every allow-list entry names a constraint or index that exists (no stale exceptions)', async () => {
    const names = Object.keys(CATALOG_ALLOW_LIST).map((k) => k.split('.')[1]);
    const rows = (await ds.query(
      `SELECT conname AS n FROM pg_constraint WHERE conname = ANY($1)
       UNION SELECT relname FROM pg_class WHERE relkind = 'i' AND relname = ANY($1)`,
      [names],
    )) as Array<{ n: string }>;
    expect(rows.map((r) => r.n).sort()).to.deep.equal([...new Set(names)].sort());
  });

  it('catches each kind of violation on a probe schema', async () => {
    await ds.query('DROP SCHEMA IF EXISTS citus_probe CASCADE');
    await ds.query('CREATE SCHEMA citus_probe');
    await ds.query(`CREATE TABLE citus_probe.users (id uuid PRIMARY KEY)`);
    await ds.query(`CREATE TABLE citus_probe.notes (
      id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES citus_probe.users(id),
      slug text NOT NULL,
      parent_id uuid REFERENCES citus_probe.notes(id),
      CONSTRAINT notes_slug_key UNIQUE (slug))`);
    await ds.query(`CREATE UNIQUE INDEX notes_lower_slug ON citus_probe.notes (lower(slug))`);
    await ds.query(`CREATE TABLE citus_probe.tags (user_id uuid NOT NULL, name text NOT NULL)`);
    await ds.query(
      `CREATE TABLE citus_probe.global_pins (id int PRIMARY KEY, note_id uuid REFERENCES citus_probe.notes(id))`,
    );
    const found = (await citusViolations(ds, 'citus_probe')).map((v) => `${v.table}.${v.name}: ${v.problem}`);
    expect(found).to.deep.equal([
      'global_pins.global_pins_note_id_fkey: a table without user_id references the user-keyed table notes',
      'notes.notes_lower_slug: unique index without the distribution key',
      'notes.notes_parent_id_fkey: foreign key to notes does not pair user_id with its distribution key',
      'notes.notes_pkey: primary key does not include the distribution key',
      'notes.notes_slug_key: unique/exclusion constraint without the distribution key',
      'tags.: no primary key',
    ]);
  });
});
