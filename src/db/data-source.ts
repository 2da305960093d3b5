/**
 * TypeORM DataSource construction and migration running. The schema belongs to migrations
 * (synchronize is never on); concurrent instances serialise migrations with an advisory lock.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { ENTITIES } from '../entities';
import { MIGRATIONS } from '../migrations';

/** Default Postgres lock_timeout of pooled connections (PLANNER_LOCK_TIMEOUT_MS). */
export const DEFAULT_LOCK_TIMEOUT_MS = 5000;

/**
 * Builds (does not connect) the DataSource for a Postgres URL. Every pooled connection starts with
 * `lock_timeout` set (a startup option: no extra round trip), so an operation never queues on a row
 * lock for longer than `lockTimeoutMs`: it fails with 55P03, answered as UNAVAILABLE.
 */
export function createDataSource(
  url: string,
  opts: {
    poolSize?: number;
    applicationName?: string;
    lockTimeoutMs?: number;
    /** The migrations it knows. Default all (restore brings a database to a backup's schema with fewer). */
    migrations?: typeof MIGRATIONS;
  } = {},
): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: opts.migrations ?? MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    poolSize: opts.poolSize ?? 20,
    applicationName: opts.applicationName ?? 'planner',
    extra: {
      connectionTimeoutMillis: 10_000,
      options: `-c lock_timeout=${opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS}`,
    },
  });
}

const MIGRATION_LOCK = 7_411_112_001;

async function withMigrationLock<T>(ds: DataSource, fn: () => Promise<T>): Promise<T> {
  const qr = ds.createQueryRunner();
  await qr.connect();
  try {
    // Instances starting together wait for each other's migrations however long they take.
    await qr.query('SET lock_timeout = 0');
    await qr.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      return await fn();
    } finally {
      await qr.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      await qr.query('RESET lock_timeout');
    }
  } finally {
    await qr.release();
  }
}

/** Applies pending migrations (each in its own transaction). Returns the names applied. */
export async function migrateUp(ds: DataSource): Promise<string[]> {
  return withMigrationLock(ds, async () => {
    const applied = await ds.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  });
}

/** Reverts the most recent migration. Returns its name or null when none is applied. */
export async function migrateDown(ds: DataSource): Promise<string | null> {
  return withMigrationLock(ds, async () => {
    const before = await migrationStatus(ds);
    const last = [...before].reverse().find((m) => m.applied);
    if (!last) return null;
    await ds.undoLastMigration({ transaction: 'each' });
    return last.name;
  });
}

export interface MigrationState {
  name: string;
  applied: boolean;
}

/** Every known migration with whether it is applied. */
export async function migrationStatus(ds: DataSource): Promise<MigrationState[]> {
  const exists = (await ds.query(`SELECT to_regclass('migrations') AS t`)) as Array<{ t: string | null }>;
  const done = new Set<string>();
  if (exists[0]?.t) {
    const rows = (await ds.query('SELECT name FROM migrations')) as Array<{ name: string }>;
    for (const r of rows) done.add(r.name);
  }
  return MIGRATIONS.map((M) => {
    const name = new M().name ?? M.name;
    return { name, applied: done.has(name) };
  });
}
