/**
 * The overlap lookups use the range index: with a realistic table (one user holding 20,000 scheduled tasks
 * over a year, other users beside) and fresh statistics (ANALYZE), the planner picks the GiST index
 * tasks_user_schedule_gist for the exact SQL the world runs (RANGES_SQL, one range or several), with sequential
 * scans left enabled. Parameters are bound as the app binds them (unnamed statements: planned with values).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { buildLoad, RANGES_SQL } from '../../src/world/load-sql';
import { createTaskOp } from '../../src/world/ops/tasks';
import { testDatabaseUrl } from '../support/db';

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Index Cond'?: string;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

/** The plan nodes that read the tasks table (not the dependency sub-plan). */
function taskScans(plan: PlanNode): PlanNode[] {
  return nodes(plan).filter(
    (n) => n['Relation Name'] === 'tasks' || (n['Index Name'] ?? '').startsWith('tasks_'),
  );
}

const HEAVY = 20_000;
const YEAR_START = Date.parse('2026-12-01T00:00:00Z');

describe('overlap lookups use the GiST range index (EXPLAIN)', function () {
  this.timeout(120_000);
  let client: Client;
  const heavy = randomUUID();
  const others = [randomUUID(), randomUUID(), randomUUID()];

  before(async () => {
    client = new Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    const insertUser = `INSERT INTO users (id, email, display_name, working_hours) VALUES ($1, $2, 'explain', '{}'::jsonb)`;
    for (const id of [heavy, ...others]) await client.query(insertUser, [id, `explain-${id}@example.com`]);
    // The heavy user: 20,000 tasks of 30 minutes, ~55 a day over a year; the others 2,000 each.
    const bulk = `INSERT INTO tasks (id, user_id, title, status, scheduled_start, scheduled_end, created_at, updated_at)
      SELECT gen_random_uuid(), $1, 'task ' || g, 'SCHEDULED',
             to_timestamp($3 / 1000.0) + (g * interval '1 minute' * 26),
             to_timestamp($3 / 1000.0) + (g * interval '1 minute' * 26) + interval '30 minutes',
             now(), now()
      FROM generate_series(1, $2::int) AS g`;
    await client.query(bulk, [heavy, HEAVY, YEAR_START]);
    for (const id of others) await client.query(bulk, [id, 2000, YEAR_START]);
    // Some unscheduled tasks too (outside the partial index).
    await client.query(
      `INSERT INTO tasks (id, user_id, title, created_at, updated_at)
       SELECT gen_random_uuid(), $1, 'backlog ' || g, now(), now() FROM generate_series(1, 2000) AS g`,
      [heavy],
    );
    await client.query('ANALYZE tasks');
  });

  after(async () => {
    await client.query('DELETE FROM users WHERE id = ANY($1::uuid[])', [[heavy, ...others]]);
    await client.end();
  });

  async function explain(sql: string, params: unknown[]): Promise<PlanNode> {
    const res = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
      `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`,
      params,
    );
    return res.rows[0]!['QUERY PLAN'][0]!.Plan;
  }

  it('stores scheduled times as timestamptz', async () => {
    const res = await client.query<{ column_name: string; data_type: string }>(
      `SELECT column_name, data_type FROM information_schema.columns
       WHERE table_name = 'tasks' AND column_name IN ('scheduled_start', 'scheduled_end', 'due_at') ORDER BY column_name`,
    );
    expect(res.rows.map((r) => r.data_type)).to.deep.equal([
      'timestamp with time zone',
      'timestamp with time zone',
      'timestamp with time zone',
    ]);
  });

  it('the window lookup (one range) is an index scan on tasks_user_schedule_gist', async () => {
    const enabled = await client.query<{ enable_seqscan: string }>('SHOW enable_seqscan');
    expect(enabled.rows[0]!.enable_seqscan).to.equal('on');
    const from = new Date(YEAR_START + 100 * 86_400_000);
    const window = `[${from.toISOString()},${new Date(from.getTime() + 3 * 86_400_000).toISOString()})`;
    const plan = await explain(RANGES_SQL, [heavy, [window]]);
    const scans = taskScans(plan);
    expect(
      scans.map((n) => n['Index Name']),
      JSON.stringify(plan, null, 1),
    ).to.include('tasks_user_schedule_gist');
    expect(scans.map((n) => n['Node Type'])).not.to.include('Seq Scan');
    const gist = scans.find((n) => n['Index Name'] === 'tasks_user_schedule_gist')!;
    expect(gist['Index Cond']).to.contain('tstzrange').and.contain('&&');
    expect(gist['Actual Rows']).to.be.within(100, 400); // ~55 a day over 3 days, not 20,000
  });

  it('the relevant-world lookup (&& ANY of several day ranges) is a bitmap scan on the same index', async () => {
    const day = (n: number) => {
      const s = new Date(YEAR_START + n * 86_400_000);
      return `[${s.toISOString()},${new Date(s.getTime() + 86_400_000).toISOString()})`;
    };
    const plan = await explain(RANGES_SQL, [heavy, [day(10), day(11), day(200)]]);
    const scans = taskScans(plan);
    const gist = scans.find((n) => n['Index Name'] === 'tasks_user_schedule_gist');
    expect(gist, JSON.stringify(plan, null, 1)).to.not.equal(undefined);
    expect(gist!['Node Type']).to.equal('Bitmap Index Scan');
    expect(scans.map((n) => n['Node Type'])).not.to.include('Seq Scan');
    expect(gist!['Actual Rows']).to.be.within(100, 300);
  });

  it('the load statement of createTask, prepared with a generic plan, reads its window through the same index', async () => {
    const start = new Date(YEAR_START + 100 * 86_400_000 + 10 * 3_600_000);
    const now = new Date(YEAR_START + 90 * 86_400_000);
    const op = createTaskOp(
      now,
      { title: 'x', scheduledStart: start, scheduledEnd: new Date(start.getTime() + 3_600_000) },
      'ALLOW',
    );
    const { sql, params } = buildLoad(heavy, op.load, { idempotencyKey: null, undoDepth: 100 }, now, 14);
    const text = (v: unknown): string =>
      v instanceof Date
        ? v.toISOString()
        : Array.isArray(v)
          ? `{${v.map((x) => `"${String(x).replace(/(["\\])/g, '\\$1')}"`).join(',')}}`
          : String(v);
    const literal = (v: unknown) => (v === null ? 'NULL' : client.escapeLiteral(text(v)));
    await client.query('BEGIN');
    try {
      // The runner sends it as a named statement: after a few executions the server may keep a generic plan.
      await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
      await client.query({ name: 'load_generic', text: sql, values: params });
      const res = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE load_generic(${params.map(literal).join(', ')})`,
      );
      const plan = res.rows[0]!['QUERY PLAN'][0]!.Plan;
      const scans = taskScans(plan);
      expect(
        scans.map((n) => n['Index Name']),
        JSON.stringify(plan, null, 1),
      ).to.include('tasks_user_schedule_gist');
      expect(scans.map((n) => n['Node Type'])).not.to.include('Seq Scan');
    } finally {
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE load_generic');
    }
  });
});
