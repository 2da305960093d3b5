/**
 * The feature flags enforced by the write path, through the public API (GraphQL over HTTP against a
 * running server on its own database): each disabled capability answers FEATURE_DISABLED and writes
 * nothing (row counts and operation states compared before and after), every UpdateResult shows the
 * evaluations in force (variant and source) and the operation row records them, both ranking arms
 * offer valid alternatives, usage is counted, and the `planner features` CLI (a real child process)
 * switches undo off and on again on the running server within 5 s. Payload changes go through the
 * store and are awaited on the server's poller (onApplied), never by sleeping.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { proposeAlternatives } from '../../src/domain/alternatives';
import { detectConflicts } from '../../src/domain/conflicts';
import type { PlanTask, UserSettings } from '../../src/domain/types';
import { disable, enable } from '../../src/flags/admin';
import { ALTERNATIVE_RANKING, EXPERIMENTS, FEATURE_KEYS, FLAGS, USAGE } from '../../src/flags/keys';
import type { FeaturePayload } from '../../src/flags/payload';
import { rankBySmallestMove } from '../../src/flags/ranking';
import { ManualClock } from '../../src/world/clock';
import { createScratchDatabase, type ScratchDatabase } from '../support/db';
import { gql } from '../support/graphql';
import { childEnv, run } from '../support/process';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

interface Evaluation {
  key: string;
  on: boolean;
  value: unknown;
  variant: string | null;
  source: string;
}
interface Alternative {
  id: string;
  action: 'MOVE' | 'BACKLOG';
  taskId: string | null;
  start: string | null;
  end: string | null;
  score: number;
}
interface Conflict {
  id: string;
  kind: string;
  alternatives: Alternative[];
}
interface Result {
  ok: boolean;
  errors: Array<{ code: string; message: string; path: string[] | null }>;
  task: { id: string; tags: string[]; estimateMinutes: number | null } | null;
  goal: { id: string } | null;
  operation: { id: string } | null;
  conflicts: Conflict[];
  flags: Evaluation[];
  warnings: string[];
}

const RESULT = `ok errors { code message path } task { id tags estimateMinutes } goal { id } operation { id }
  conflicts { id kind alternatives { id action taskId start end score } }
  flags { key on value variant source } warnings`;

const hour = (d: string, h: number) => `${d}T${String(h).padStart(2, '0')}:00:00.000Z`;

describe('feature flags enforced by the write path (e2e)', function () {
  this.timeout(90_000);
  let scratch: ScratchDatabase;
  let server: TestServer;
  const clock = new ManualClock('2026-12-01T06:00:00Z');

  before(async () => {
    scratch = await createScratchDatabase();
    server = await startTestServer({ clock, env: { DATABASE_URL: scratch.url } }); // default poll (1 s)
  });
  after(async () => {
    await server?.close();
    await scratch?.drop();
  });

  async function person(): Promise<{ token: string; id: string }> {
    const email = `gates-${randomUUID()}@example.com`;
    const token = await server.token(email);
    const id = (await server.world.users.findOrCreateByEmail(email)).id;
    return { token, id };
  }

  async function mutate(token: string, field: string, args: string, vars: Record<string, unknown> = {}) {
    const decl = Object.keys(vars).length
      ? `(${Object.entries(vars)
          .map(([k]) => `$${k}: ${VAR_TYPES[k]}`)
          .join(', ')})`
      : '';
    const r = await gql<Record<string, Result>>(
      server.url,
      token,
      `mutation M${decl} { ${field}${args} { ${RESULT} } }`,
      vars,
    );
    expect(r.errors, JSON.stringify(r.errors)).to.equal(undefined);
    return r.data![field]!;
  }
  const VAR_TYPES: Record<string, string> = {
    input: 'CreateTaskInput!',
    update: 'UpdateTaskInput!',
    goal: 'CreateGoalInput!',
    goalUpdate: 'UpdateGoalInput!',
    id: 'ID!',
    conflictId: 'ID!',
    alternativeId: 'ID!',
  };
  const createTask = (token: string, input: Record<string, unknown>, onConflict = 'ALLOW') =>
    mutate(token, 'createTask', `(input: $input, onConflict: ${onConflict})`, { input });

  /** Everything an operation could write for this user (rows, operations and their states, events). */
  async function footprint(userId: string): Promise<unknown> {
    const [row] = (await server.world.dataSource.query(
      `SELECT (SELECT count(*) FROM tasks WHERE user_id = $1) AS tasks,
              (SELECT count(*) FROM goals WHERE user_id = $1) AS goals,
              (SELECT count(*) FROM task_dependencies WHERE user_id = $1) AS deps,
              (SELECT count(*) FROM conflicts WHERE user_id = $1) AS conflicts,
              (SELECT count(*) FROM events WHERE user_id = $1) AS events,
              (SELECT json_agg(json_build_object('id', id, 'state', state, 'redoable', redoable) ORDER BY seq)
                 FROM operations WHERE user_id = $1) AS operations,
              (SELECT json_agg(t ORDER BY t.id) FROM tasks t WHERE t.user_id = $1) AS task_rows,
              (SELECT json_agg(c ORDER BY c.id) FROM conflicts c WHERE c.user_id = $1) AS conflict_rows,
              (SELECT row_to_json(u) FROM users u WHERE id = $1) AS "user"`,
      [userId],
    )) as unknown[];
    return row;
  }

  /** Resolves once the server has applied a payload of at least `version` (its poller), within 5 s. */
  function applied(version: number): Promise<void> {
    const service = server.flags.service;
    if (service.payload.version >= version) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`payload version ${version} not applied within 5 s`));
      }, 5000);
      const off = service.onApplied((info) => {
        if (info.version < version) return;
        clearTimeout(timer);
        off();
        resolve();
      });
    });
  }

  /** Changes the stored payload (as the CLI does) and waits until the running server has it. */
  async function features(change: (p: FeaturePayload) => FeaturePayload): Promise<void> {
    const { stored } = await server.flags.store.update('e2e-test', 'test change', null, change);
    await applied(stored.version);
  }

  const flag = (r: Result, key: string) => r.flags.find((f) => f.key === key)!;

  it('every UpdateResult shows the evaluations in force (variant and source); the operation row records them', async () => {
    const { token } = await person();
    const r = await createTask(token, { title: 'flagged', tags: ['a'], estimateMinutes: 30 });
    expect(r.ok, JSON.stringify(r.errors)).to.equal(true);
    expect(r.flags.map((f) => f.key)).to.deep.equal([...FEATURE_KEYS]);
    for (const key of Object.values(FLAGS))
      expect(flag(r, key)).to.deep.equal({
        key,
        on: true,
        value: true,
        variant: null,
        source: 'defaultValue',
      });
    const ranking = flag(r, EXPERIMENTS.ALTERNATIVE_RANKING);
    expect(ranking.source).to.equal('experiment');
    expect(ranking.variant).to.be.oneOf(Object.values(ALTERNATIVE_RANKING));
    const q = await gql<{ features: Evaluation[] }>(
      server.url,
      token,
      '{ features { key on value variant source } }',
    );
    expect(q.data!.features).to.deep.equal(r.flags); // the same user, the same payload: the same answer
    const [row] = (await server.world.dataSource.query(`SELECT flags FROM operations WHERE id = $1`, [
      r.operation!.id,
    ])) as Array<{ flags: unknown }>;
    expect(row!.flags).to.deep.equal(r.flags);
  });

  it('undo off: undo and redo answer FEATURE_DISABLED, write nothing, and show undo off', async () => {
    const { token, id } = await person();
    const a = await createTask(token, { title: 'one' });
    await createTask(token, { title: 'two' });
    expect((await mutate(token, 'undo', '')).ok).to.equal(true); // a redo is pending
    await features((p) => disable(p, FLAGS.UNDO));
    try {
      const before = await footprint(id);
      for (const [field, args] of [
        ['undo', ''],
        ['undo', `(operationId: "${a.operation!.id}")`],
        ['redo', ''],
      ] as const) {
        const r = await mutate(token, field, args);
        expect(r.ok, field).to.equal(false);
        expect(
          r.errors.map((e) => [e.code, e.path]),
          field,
        ).to.deep.equal([['FEATURE_DISABLED', null]]);
        expect(r.errors[0]!.message).to.contain('"undo"');
        expect(flag(r, FLAGS.UNDO)).to.include({ on: false, source: 'defaultValue' });
        expect(r.operation).to.equal(null);
      }
      expect(await footprint(id)).to.deep.equal(before);
    } finally {
      await features((p) => enable(p, FLAGS.UNDO));
    }
    const redo = await mutate(token, 'redo', '');
    expect(redo.ok, JSON.stringify(redo.errors)).to.equal(true);
  });

  it('enhanced_models off: goals, dependencies, tags and estimates answer FEATURE_DISABLED per field; stored values stay readable', async () => {
    const { token, id } = await person();
    const goal = await mutate(token, 'createGoal', '(input: $goal)', { goal: { title: 'G' } });
    const dep = await createTask(token, { title: 'dep' });
    const rich = await createTask(token, {
      title: 'rich',
      tags: ['deep'],
      estimateMinutes: 45,
      goalId: goal.goal!.id,
      dependsOn: [dep.task!.id],
    });
    expect(rich.ok, JSON.stringify(rich.errors)).to.equal(true);
    await features((p) => disable(p, FLAGS.ENHANCED_MODELS));
    try {
      const before = await footprint(id);
      const all = await createTask(token, {
        title: 'x',
        goalId: goal.goal!.id,
        dependsOn: [dep.task!.id],
        tags: ['t'],
        estimateMinutes: 10,
      });
      expect(all.ok).to.equal(false);
      expect(all.errors.map((e) => [e.code, e.path])).to.deep.equal([
        ['FEATURE_DISABLED', ['input', 'goalId']],
        ['FEATURE_DISABLED', ['input', 'dependsOn']],
        ['FEATURE_DISABLED', ['input', 'tags']],
        ['FEATURE_DISABLED', ['input', 'estimateMinutes']],
      ]);
      expect(flag(all, FLAGS.ENHANCED_MODELS).on).to.equal(false);
      const upd = await mutate(token, 'updateTask', '(id: $id, input: $update)', {
        id: rich.task!.id,
        update: { tags: ['other'] },
      });
      expect(upd.errors.map((e) => [e.code, e.path])).to.deep.equal([
        ['FEATURE_DISABLED', ['input', 'tags']],
      ]);
      const cg = await mutate(token, 'createGoal', '(input: $goal)', { goal: { title: 'H' } });
      expect(cg.errors.map((e) => [e.code, e.path])).to.deep.equal([['FEATURE_DISABLED', null]]);
      const ug = await mutate(token, 'updateGoal', '(id: $id, input: $goalUpdate)', {
        id: goal.goal!.id,
        goalUpdate: { title: 'G2' },
      });
      expect(ug.errors.map((e) => [e.code, e.path])).to.deep.equal([['FEATURE_DISABLED', null]]);
      expect(await footprint(id)).to.deep.equal(before);

      // The plain model still works, and what is stored stays readable.
      const plain = await createTask(token, { title: 'plain' });
      expect(plain.ok, JSON.stringify(plain.errors)).to.equal(true);
      const rename = await mutate(token, 'updateTask', '(id: $id, input: $update)', {
        id: rich.task!.id,
        update: { title: 'renamed' },
      });
      expect(rename.ok, JSON.stringify(rename.errors)).to.equal(true);
      const read = await gql<{ task: { tags: string[]; estimateMinutes: number; goal: { id: string } } }>(
        server.url,
        token,
        `{ task(id: "${rich.task!.id}") { tags estimateMinutes goal { id } } }`,
      );
      expect(read.errors, JSON.stringify(read.errors)).to.equal(undefined);
      expect(read.data!.task).to.deep.equal({
        tags: ['deep'],
        estimateMinutes: 45,
        goal: { id: goal.goal!.id },
      });
    } finally {
      await features((p) => enable(p, FLAGS.ENHANCED_MODELS));
    }
  });

  it('conflict_resolution off: conflicts reported without alternatives, AUTO_RESOLVE and resolveConflict refused, nothing written; usage counted when on', async () => {
    const { token, id } = await person();
    await createTask(token, {
      title: 'A',
      scheduledStart: hour('2026-12-02', 9),
      scheduledEnd: hour('2026-12-02', 11),
    });
    const b = await createTask(token, {
      title: 'B',
      scheduledStart: hour('2026-12-02', 10),
      scheduledEnd: hour('2026-12-02', 12),
    });
    const offered = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
    expect(offered.alternatives.length).to.be.within(1, 5);
    await features((p) => disable(p, FLAGS.CONFLICT_RESOLUTION));
    try {
      const before = await footprint(id);
      const auto = await createTask(
        token,
        { title: 'C', scheduledStart: hour('2026-12-02', 10), scheduledEnd: hour('2026-12-02', 11) },
        'AUTO_RESOLVE',
      );
      expect(auto.errors.map((e) => [e.code, e.path])).to.deep.equal([['FEATURE_DISABLED', ['onConflict']]]);
      const resolve = await mutate(
        token,
        'resolveConflict',
        '(conflictId: $conflictId, alternativeId: $alternativeId)',
        {
          conflictId: offered.id,
          alternativeId: offered.alternatives[0]!.id,
        },
      );
      expect(resolve.errors.map((e) => [e.code, e.path])).to.deep.equal([['FEATURE_DISABLED', null]]);
      expect(flag(resolve, FLAGS.CONFLICT_RESOLUTION).on).to.equal(false);
      expect(await footprint(id)).to.deep.equal(before);

      const d = await createTask(token, {
        title: 'D',
        scheduledStart: hour('2026-12-02', 10),
        scheduledEnd: hour('2026-12-02', 11),
      });
      expect(d.ok, JSON.stringify(d.errors)).to.equal(true);
      expect(d.conflicts.length).to.be.at.least(1); // still detected and reported
      for (const c of d.conflicts) expect(c.alternatives).to.deep.equal([]);
    } finally {
      await features((p) => enable(p, FLAGS.CONFLICT_RESOLUTION));
    }

    // On again: choosing an alternative and undoing it count as usage (batched, flushed here).
    const open = await gql<{ conflicts: { edges: Array<{ node: Conflict }> } }>(
      server.url,
      token,
      '{ conflicts(status: OPEN) { edges { node { id kind alternatives { id action taskId start end score } } } } }',
    );
    const c = open.data!.conflicts.edges.map((e) => e.node).find((x) => x.alternatives.length > 0)!;
    const chosen = await mutate(
      token,
      'resolveConflict',
      '(conflictId: $conflictId, alternativeId: $alternativeId)',
      {
        conflictId: c.id,
        alternativeId: c.alternatives[0]!.id,
      },
    );
    expect(chosen.ok, JSON.stringify(chosen.errors)).to.equal(true);
    expect((await mutate(token, 'undo', '')).ok).to.equal(true);
    const auto = await createTask(
      token,
      { title: 'E', scheduledStart: hour('2026-12-02', 10), scheduledEnd: hour('2026-12-02', 11) },
      'AUTO_RESOLVE',
    );
    expect(auto.ok, JSON.stringify(auto.errors)).to.equal(true);
    const steps = auto.warnings.filter((w) => w.includes('→ applied')).length;
    expect(steps).to.be.at.least(1);
    await server.flags.recorder.flush();
    const usage = (await server.world.dataSource.query(
      `SELECT metric, experiment, variant, count::int AS count FROM feature_usage WHERE user_id = $1 ORDER BY metric`,
      [id],
    )) as Array<{ metric: string; experiment: string; variant: string; count: number }>;
    const variant = flag(chosen, EXPERIMENTS.ALTERNATIVE_RANKING).variant;
    expect(usage).to.deep.equal([
      {
        metric: USAGE.ALTERNATIVE_CHOSEN,
        experiment: EXPERIMENTS.ALTERNATIVE_RANKING,
        variant,
        count: 1 + steps,
      },
      { metric: USAGE.UNDO_USED, experiment: EXPERIMENTS.ALTERNATIVE_RANKING, variant, count: 1 },
    ]);
  });

  for (const arm of Object.values(ALTERNATIVE_RANKING)) {
    it(`ranking arm "${arm}": at most 5 valid alternatives, by score descending, and the exposure recorded once`, async () => {
      const { token, id } = await person();
      // Everyone in this arm: the experiment forced to one variation (coverage 1, weights 1/0 or 0/1).
      await features((p) => {
        const def = structuredClone(p.features[EXPERIMENTS.ALTERNATIVE_RANKING]!);
        const rule = def.rules![0]!;
        rule.weights = Object.values(ALTERNATIVE_RANKING).map((v) => (v === arm ? 1 : 0));
        return { ...p, features: { ...p.features, [EXPERIMENTS.ALTERNATIVE_RANKING]: def } };
      });
      try {
        // A sits 09:00–11:00; B lands on it at 10:00–12:00 with room later that day and the next days.
        const a = await createTask(token, {
          title: 'A',
          scheduledStart: hour('2026-12-03', 9),
          scheduledEnd: hour('2026-12-03', 11),
        });
        const b = await createTask(token, {
          title: 'B',
          scheduledStart: hour('2026-12-03', 10),
          scheduledEnd: hour('2026-12-03', 12),
        });
        expect(b.ok, JSON.stringify(b.errors)).to.equal(true);
        expect(flag(b, EXPERIMENTS.ALTERNATIVE_RANKING)).to.include({ variant: arm, source: 'experiment' });
        const overlap = b.conflicts.find((c) => c.kind === 'OVERLAP')!;
        const alts = overlap.alternatives;
        expect(alts.length).to.be.within(1, 5);
        expect(new Set(alts.map((a) => a.id)).size).to.equal(alts.length);
        const scores = alts.map((a) => a.score);
        expect(scores).to.deep.equal([...scores].sort((x, y) => y - x));
        for (const x of alts) {
          expect(x.score).to.be.within(0, 1);
          expect(x.taskId).to.be.oneOf([a.task!.id, b.task!.id]);
          if (x.action === 'MOVE') expect(Date.parse(x.start!)).to.be.below(Date.parse(x.end!));
        }
        // The oracle: the domain's proposals for this plan, ordered by the arm, scores handed out in order.
        const [u] = (await server.world.dataSource.query(
          `SELECT time_zone, working_hours, daily_capacity_minutes FROM users WHERE id = $1`,
          [id],
        )) as Array<{
          time_zone: string;
          working_hours: UserSettings['workingHours'];
          daily_capacity_minutes: number;
        }>;
        const settings: UserSettings = {
          timeZone: u!.time_zone,
          workingHours: u!.working_hours,
          dailyCapacityMinutes: u!.daily_capacity_minutes,
        };
        const plan: PlanTask[] = [
          [a.task!.id, 'A', 9, 11],
          [b.task!.id, 'B', 10, 12],
        ].map(([tid, title, from, to]) => ({
          id: tid as string,
          title: title as string,
          status: 'SCHEDULED',
          priority: 'MEDIUM',
          estimateMinutes: null,
          dueAt: null,
          start: new Date(hour('2026-12-03', from as number)),
          end: new Date(hour('2026-12-03', to as number)),
          dependsOn: [],
        }));
        const detected = detectConflicts(plan, new Set([b.task!.id]), settings).find(
          (d) => d.kind === 'OVERLAP',
        )!;
        const proposals = proposeAlternatives(detected, plan, settings, clock.now(), {
          max: 5,
          horizonDays: 14,
        });
        const ordered =
          arm === ALTERNATIVE_RANKING.SMALLEST_MOVE
            ? rankBySmallestMove(proposals, (tid) => plan.find((t) => t.id === tid)?.start ?? null)
            : proposals;
        const handedOut = ordered.map((p) => p.score).sort((x, y) => y - x);
        expect(alts.map((x) => ({ id: x.id, score: x.score }))).to.deep.equal(
          ordered.map((p, i) => ({ id: p.id, score: handedOut[i] })),
        );
        if (arm === ALTERNATIVE_RANKING.SMALLEST_MOVE) {
          // Moves first, each shifting its task no more than the next one does.
          const startOf = new Map([
            [a.task!.id, hour('2026-12-03', 9)],
            [b.task!.id, hour('2026-12-03', 10)],
          ]);
          const moves = alts.filter((a) => a.action === 'MOVE');
          expect(alts.slice(0, moves.length)).to.deep.equal(moves);
          const shifts = moves.map((x) =>
            Math.abs(Date.parse(x.start!) - Date.parse(startOf.get(x.taskId!)!)),
          );
          expect(shifts).to.deep.equal([...shifts].sort((x, y) => x - y));
        }
        // Every alternative offered can be chosen.
        const chosen = await mutate(
          token,
          'resolveConflict',
          '(conflictId: $conflictId, alternativeId: $alternativeId)',
          {
            conflictId: overlap.id,
            alternativeId: alts[alts.length - 1]!.id,
          },
        );
        expect(chosen.ok, JSON.stringify(chosen.errors)).to.equal(true);
        await server.flags.recorder.flush();
        const exposures = (await server.world.dataSource.query(
          `SELECT experiment, variant FROM experiment_exposures WHERE user_id = $1`,
          [id],
        )) as unknown[];
        expect(exposures).to.deep.equal([{ experiment: EXPERIMENTS.ALTERNATIVE_RANKING, variant: arm }]);
      } finally {
        await features((p) => {
          const def = structuredClone(p.features[EXPERIMENTS.ALTERNATIVE_RANKING]!);
          def.rules![0]!.weights = [0.5, 0.5];
          return { ...p, features: { ...p.features, [EXPERIMENTS.ALTERNATIVE_RANKING]: def } };
        });
      }
    });
  }

  it('done when: `planner features disable undo` makes the running server refuse undo within 5 s, `enable undo` restores it', async () => {
    const { token, id } = await person();
    const cli = (...args: string[]) =>
      run(
        process.execPath,
        ['bin/planner.js', 'features', ...args, '--actor', 'e2e-operator'],
        childEnv({ DATABASE_URL: scratch.url, PLANNER_JWT_SECRET: TEST_JWT_SECRET }),
      );
    /** Asks undo again each time the server applies a payload, until `code` answers, up to 5 s from `since`. */
    async function undoAnswers(code: string, since: number): Promise<number> {
      for (;;) {
        let wake!: () => void;
        const appliedNow = new Promise<void>((resolve) => (wake = resolve));
        const unsubscribe = server.flags.service.onApplied(() => wake());
        try {
          const r = await mutate(token, 'undo', '');
          if (r.errors[0]?.code === code) return Date.now() - since;
          const left = 5000 - (Date.now() - since);
          if (left <= 0)
            throw new Error(`undo did not answer ${code} within 5 s: ${JSON.stringify(r.errors)}`);
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            appliedNow,
            new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
          ]);
          clearTimeout(timer);
        } finally {
          unsubscribe();
        }
      }
    }
    expect((await mutate(token, 'undo', '')).errors[0]!.code).to.equal('NOTHING_TO_UNDO');
    const before = await footprint(id);

    const off = await cli('disable', FLAGS.UNDO);
    expect(off.code, off.stderr).to.equal(0);
    expect(await undoAnswers('FEATURE_DISABLED', Date.now())).to.be.below(5000);

    const on = await cli('enable', FLAGS.UNDO);
    expect(on.code, on.stderr).to.equal(0);
    expect(await undoAnswers('NOTHING_TO_UNDO', Date.now())).to.be.below(5000);
    expect(await footprint(id)).to.deep.equal(before);
  });
});
