/**
 * The test run's database: one per run, provided by hooks.ts (TEST_DATABASE_URL's server, or an
 * embedded Postgres in a temp dir). Scratch databases on the same server for tests that need
 * their own (readiness, migrations), all dropped at the end of the run.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

let runUrl: string | null = null;
let adminUrl: string | null = null;
const scratch = new Set<string>();

/** Called once by hooks.ts: the run's database and a URL to issue CREATE/DROP DATABASE from. */
export function setTestDatabase(url: string, admin: string): void {
  runUrl = url;
  adminUrl = admin;
}

/** URL of the run's test database (migrated). Throws outside a mocha run with hooks.ts loaded. */
export function testDatabaseUrl(): string {
  if (runUrl === null)
    throw new Error('no test database: run through mocha (.mocharc.json requires test/support/hooks.ts)');
  return runUrl;
}

/** `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** Runs SQL on the admin connection (CREATE/DROP DATABASE cannot run in a transaction: one client each). */
export async function adminQuery(sql: string): Promise<void> {
  if (adminUrl === null) throw new Error('no test database server');
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A unique database name: `<prefix>_<pid>_<random hex>`. */
export function uniqueDatabaseName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops it (WITH (FORCE): open connections are terminated). Idempotent. */
  drop(): Promise<void>;
}

/** Creates an empty database on the test server (no migrations applied). */
export async function createScratchDatabase(): Promise<ScratchDatabase> {
  const name = uniqueDatabaseName('planner_scratch');
  await adminQuery(`CREATE DATABASE ${name}`);
  scratch.add(name);
  return {
    name,
    url: withDatabase(testDatabaseUrl(), name),
    drop: async () => {
      if (!scratch.delete(name)) return;
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/** Drops every scratch database still present (afterAll). */
export async function dropScratchDatabases(): Promise<void> {
  for (const name of [...scratch]) {
    scratch.delete(name);
    await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}
