/** Helpers of the semantic-memory tests: a world on the run's database, users, and a whole-database text search. */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { World } from '../../src/world/world';
import type { Actor } from '../../src/world/views';

export async function newUser(world: World, prefix = 'mem'): Promise<Actor> {
  const u = await world.users.findOrCreateByEmail(`${prefix}-${randomUUID()}@example.com`);
  return { userId: u.id, actor: `user:${u.id}` };
}

/**
 * Every place in the database where `needle` occurs: each row of each table in the public schema
 * is rendered as text (row-to-text covers every column, jsonb and arrays included) and searched.
 */
export async function findEverywhere(ds: DataSource, needle: string): Promise<string[]> {
  const tables = (await ds.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`,
  )) as Array<{ table_name: string }>;
  const hits: string[] = [];
  for (const { table_name } of tables) {
    const rows = (await ds.query(
      `SELECT count(*)::int AS n FROM "${table_name}" t WHERE strpos(t::text, $1) > 0`,
      [needle],
    )) as Array<{ n: number }>;
    if (rows[0]!.n > 0) hits.push(`${table_name}: ${rows[0]!.n}`);
  }
  return hits;
}
