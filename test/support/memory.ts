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

/** Working hours 07:00–22:00 every day and a long capacity: evenings are bookable. */
export async function openEvenings(world: World, u: Actor): Promise<void> {
  const days = ['MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY', 'SUNDAY'] as const;
  const r = await world.updater.updateSettings(u, {
    timeZone: 'UTC',
    dailyCapacityMinutes: 900,
    workingHours: days.map((weekday) => ({ weekday, intervals: [{ start: '07:00', end: '22:00' }] })),
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
}

/**
 * A week of synthetic evening reschedules: each day from `firstDay` (YYYY-MM-DD, UTC) a task titled
 * `title` is planned at 08:00 and then moved to 18:00. Returns the task ids.
 */
export async function eveningReschedules(
  world: World,
  u: Actor,
  firstDay: string,
  days = 7,
  title = 'Gym session',
): Promise<string[]> {
  const ids: string[] = [];
  const base = new Date(`${firstDay}T00:00:00Z`).getTime();
  for (let d = 0; d < days; d++) {
    const day = base + d * 86_400_000;
    const c = await world.updater.createTask(u, {
      title,
      estimateMinutes: 60,
      scheduledStart: new Date(day + 8 * 3600_000),
      scheduledEnd: new Date(day + 9 * 3600_000),
    });
    if (!c.ok) throw new Error(JSON.stringify(c.errors));
    const id = c.task!.id;
    const m = await world.updater.scheduleTask(
      u,
      id,
      new Date(day + 18 * 3600_000),
      new Date(day + 19 * 3600_000),
    );
    if (!m.ok) throw new Error(JSON.stringify(m.errors));
    ids.push(id);
  }
  return ids;
}
