/**
 * Every migration is reversible without losing what existed before it: generic over
 * src/migrations/index.ts (a migration added later is covered without touching this file).
 *
 * A plan is seeded through the API, then, from the latest migration down to the first: record the
 * schema and every table's rows, revert the migration, record every surviving table's count and
 * checksum over its surviving columns, apply the migration again, and require
 * - those counts and checksums unchanged (nothing that existed before the migration was lost);
 * - the schema exactly as it was before the revert (down undoes up object for object);
 * then revert it once more and go on with the one before.
 * Finally everything is applied again and `verifyDatabase` finds the schema as declared.
 */
import { expect } from 'chai';
import { Client } from 'pg';
import {
  listTables,
  setCanonicalSession,
  tableChecksum,
  type Query,
  type TableInfo,
} from '../../src/db/catalog';
import { createDataSource, migrateDown, migrateUp, migrationStatus } from '../../src/db/data-source';
import { snapshotSchema, verifyDatabase } from '../../src/db/schema-snapshot';
import { MIGRATIONS } from '../../src/migrations';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { seedPlan } from '../support/ops';
import { startTestServer } from '../support/server';

async function withClient<T>(url: string, fn: (q: Query) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const q: Query = async (sql, params) => (await client.query(sql, params as unknown[])).rows;
    await q('BEGIN');
    await setCanonicalSession(q);
    const r = await fn(q);
    await q('COMMIT');
    return r;
  } finally {
    await client.end();
  }
}

async function sums(url: string, tables: readonly TableInfo[]): Promise<Record<string, string>> {
  return withClient(url, async (q) => {
    const out: Record<string, string> = {};
    for (const t of tables) {
      const c = await tableChecksum(q, t.name, t.columns);
      out[t.name] = `${c.rows} rows, checksum ${c.checksum}`;
    }
    return out;
  });
}

describe('migrations: every down reverses its up without losing earlier data', function () {
  this.timeout(300_000);
  let scratch: ScratchDatabase;

  before(async () => {
    scratch = await createScratchDatabase();
    const server = await startTestServer({ env: { DATABASE_URL: scratch.url } });
    try {
      await seedPlan(server, 2, 'reversible');
      const token = await server.token('reversible-0@example.com');
      expect(token).to.be.a('string');
      const user = await server.world.users.findByEmail('reversible-1@example.com');
      await server.world.users.revoke(user!.id, 'test'); // a value a later column holds
    } finally {
      await server.close();
    }
  });

  after(async () => {
    await scratch.drop();
  });

  it(`down, up, down for each of the ${MIGRATIONS.length} migrations from the latest`, async () => {
    const ds = createDataSource(scratch.url, { poolSize: 4 });
    await ds.initialize();
    try {
      const seeded = await withClient(scratch.url, async (q) => listTables(q));
      const users = seeded.find((t) => t.name === 'users');
      const counted = await sums(scratch.url, [users!]);
      expect(counted['users']).to.match(/^2 rows/);
      for (let k = MIGRATIONS.length - 1; k >= 0; k--) {
        const name = new MIGRATIONS[k]!().name;
        const status = await migrationStatus(ds);
        expect(
          status.filter((s) => s.applied).map((s) => s.name),
          'applied before the revert',
        ).to.deep.equal(MIGRATIONS.slice(0, k + 1).map((M) => new M().name));
        const schemaBefore = await withClient(scratch.url, (q) => snapshotSchema(q, 'public'));
        // Which tables and columns exist without this migration: its down, rolled back.
        const survivors = await withClient(scratch.url, async (q) => {
          await q('SAVEPOINT s');
          await new MIGRATIONS[k]!().down({ query: (sql: string, p?: unknown[]) => q(sql, p) } as never);
          const t = await listTables(q);
          await q('ROLLBACK TO SAVEPOINT s');
          return t;
        });
        const before = await sums(scratch.url, survivors);
        expect(await migrateDown(ds)).to.equal(name);
        expect(await sums(scratch.url, survivors), `after reverting ${name}`).to.deep.equal(before);

        const upTo = createDataSource(scratch.url, { poolSize: 3, migrations: MIGRATIONS.slice(0, k + 1) });
        await upTo.initialize();
        try {
          expect(await migrateUp(upTo), `re-applying ${name}`).to.deep.equal([name]);
        } finally {
          await upTo.destroy();
        }
        expect(await sums(scratch.url, survivors), `rows that existed before ${name}`).to.deep.equal(before);
        const schemaAfter = await withClient(scratch.url, (q) => snapshotSchema(q, 'public'));
        expect([...schemaAfter].sort(), `schema after down+up of ${name}`).to.deep.equal(
          [...schemaBefore].sort(),
        );

        expect(await migrateDown(ds)).to.equal(name);
      }
      expect((await migrationStatus(ds)).every((s) => !s.applied)).to.equal(true);
      expect(await migrateUp(ds)).to.have.length(MIGRATIONS.length);
      expect(await verifyDatabase(ds)).to.deep.equal([]);
    } finally {
      await ds.destroy();
    }
  });
});
