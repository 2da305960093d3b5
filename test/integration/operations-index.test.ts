/**
 * The write path's hot look-ups on the operation log stay index look-ups at 100,000 operations for
 * one user (other users beside, fresh statistics, sequential scans enabled): the undo state, the
 * undo target (the newest applied operation of the undo window, as the load statement reads it),
 * the redo target, and ending the redo stack. EXPLAIN ANALYZE runs the exact SQL the world runs.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { ALTERNATIVE_HORIZON_DAYS } from '../../src/world/conflict-sync';
import { buildLoad } from '../../src/world/load-sql';
import { UNDO_STATE_SQL } from '../../src/world/query-service';
import { CLEAR_REDO_SQL } from '../../src/world/write';
import { testDatabaseUrl } from '../support/db';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

const OPS = 100_000;

describe('operation log look-ups at 100k operations for one user (EXPLAIN)', function () {
  this.timeout(120_000);
  let client: Client;
  const heavy = randomUUID();
  const other = randomUUID();

  before(async () => {
    client = new Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    for (const id of [heavy, other]) {
      await client.query(
        `INSERT INTO users (id, email, display_name, working_hours, op_seq, event_seq)
         VALUES ($1, $2, 'ops', '{}'::jsonb, $3, 0)`,
        [id, `ops-${id}@example.com`, id === heavy ? OPS : 1000],
      );
    }
    // Every tenth operation an UNDO (its target UNDONE); the last few undone ones redoable.
    await client.query(
      `INSERT INTO operations (id, user_id, seq, actor, kind, input, forward, inverse, entities, created_at, state, redoable, undone_by_seq)
       SELECT gen_random_uuid(), $1::uuid, g, 'user:' || $1::text, CASE WHEN g % 10 = 0 THEN 'UNDO' ELSE 'UPDATE_TASK' END,
         '{}'::jsonb, jsonb_build_array(jsonb_build_object('entity', 'Task', 'id', gen_random_uuid(), 'row', '{"title":"after"}'::jsonb)),
         jsonb_build_array(jsonb_build_object('entity', 'Task', 'id', gen_random_uuid(), 'row', '{"title":"before"}'::jsonb)),
         ARRAY['Task:' || gen_random_uuid()], now() - make_interval(secs => $2 - g),
         CASE WHEN g % 10 = 9 THEN 'UNDONE'::operation_state ELSE 'APPLIED'::operation_state END,
         g % 10 = 9 AND g > $2 - 30, CASE WHEN g % 10 = 9 THEN g + 1 END
       FROM generate_series(1, $2) g`,
      [heavy, OPS],
    );
    await client.query(
      `INSERT INTO operations (id, user_id, seq, actor, kind, input, forward, inverse, created_at)
       SELECT gen_random_uuid(), $1::uuid, g, 'user:' || $1::text, 'CREATE_TASK', '{}', '[]', '[]', now()
       FROM generate_series(1, 1000) g`,
      [other],
    );
    await client.query('ANALYZE operations');
  });

  after(async () => {
    await client.query(`SET planner.allow_user_erasure = 'on'`);
    await client.query('DELETE FROM users WHERE id = ANY($1::uuid[])', [[heavy, other]]);
    await client.end();
  });

  async function explain(sql: string, params: unknown[]): Promise<PlanNode> {
    await client.query('BEGIN');
    try {
      const res = await client.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(
        `EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`,
        params,
      );
      return res.rows[0]!['QUERY PLAN'][0]!.Plan;
    } finally {
      await client.query('ROLLBACK');
    }
  }

  /** No sequential scan of operations, and only a few hundred of its rows read in all. */
  function expectIndexed(plan: PlanNode, index: string): void {
    const ops = nodes(plan).filter((n) => n['Relation Name'] === 'operations');
    const detail = JSON.stringify(plan, null, 1);
    expect(ops.length, detail).to.be.above(0);
    expect(
      ops.map((n) => n['Node Type']),
      detail,
    ).to.not.include('Seq Scan');
    // A Bitmap Index Scan names its index but not its relation: look at every node for the index.
    expect(
      nodes(plan).map((n) => n['Index Name']),
      detail,
    ).to.include(index);
    const read = ops.reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    expect(read, detail).to.be.below(1000);
  }

  it('keeps sequential scans enabled (the planner chooses the indexes)', async () => {
    const r = await client.query<{ enable_seqscan: string }>('SHOW enable_seqscan');
    expect(r.rows[0]!.enable_seqscan).to.equal('on');
  });

  it('the undo state reads the newest ordinary operations and probes the redo stack by index', async () => {
    const plan = await explain(UNDO_STATE_SQL, [heavy, 100]);
    expectIndexed(plan, 'operations_user_seq_key');
    expectIndexed(plan, 'operations_user_redoable_idx');
  });

  it("the undo target (the load statement of undo) reads the undo window's few rows", async () => {
    const { sql, params } = buildLoad(
      heavy,
      { latestUndoable: true },
      { idempotencyKey: null, undoDepth: 100 },
      new Date(),
      ALTERNATIVE_HORIZON_DAYS,
    );
    const plan = await explain(sql, params);
    expectIndexed(plan, 'operations_user_seq_key');
  });

  it('the redo target (the load statement of redo) is the head of the redoable index', async () => {
    const { sql, params } = buildLoad(
      heavy,
      { redoTarget: true },
      { idempotencyKey: null, undoDepth: 100 },
      new Date(),
      ALTERNATIVE_HORIZON_DAYS,
    );
    const plan = await explain(sql, params);
    expectIndexed(plan, 'operations_user_redoable_idx');
  });

  it('ending the redo stack touches only the redoable operations', async () => {
    const plan = await explain(CLEAR_REDO_SQL, [heavy]);
    expectIndexed(plan, 'operations_user_redoable_idx');
  });
});
