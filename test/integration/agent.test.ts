/**
 * The agent tools over the real database (issue 15): a scripted chat model (no network) drives
 * LangGraph's prebuilt agent through "put my backlog into tomorrow morning, then undo the last
 * step"; bad arguments, isolation between users, retries, previews, the langgraph_tools flag and
 * the user's control over agents.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import type { BaseMessage } from '@langchain/core/messages';
import type { DataSource } from 'typeorm';
import { createPlannerAgent, createToolSet, plannerTools, TOOL_NAMES } from '../../src/agent';
import { createDataSource } from '../../src/db/data-source';
import { defaultPayload, FlagService, FLAGS } from '../../src/flags';
import { disable } from '../../src/flags/admin';
import { Admission, attachAdmission } from '../../src/world/admission';
import { ManualClock } from '../../src/world/clock';
import type { Actor } from '../../src/world/views';
import { createWorld, type World } from '../../src/world/world';
import { testDatabaseUrl } from '../support/db';
import { ScriptedChatModel, toolAnswer } from '../support/scripted-model';

const TOMORROW_9 = '2026-12-02T09:00:00.000Z';
const TOMORROW_12 = '2026-12-02T12:00:00.000Z';

interface Counts {
  ops: number;
  tasks: number;
  events: number;
  keys: number;
}

describe('agent tools (LangGraph, scripted model, real database)', function () {
  this.timeout(60_000);
  let ds: DataSource;
  let world: World;
  /** The same database with langgraph_tools off. */
  let off: World;
  const clock = new ManualClock('2026-12-01T06:00:00Z'); // a Tuesday; tomorrow is Wednesday

  before(async () => {
    ds = createDataSource(testDatabaseUrl(), { poolSize: 4, applicationName: 'agent-tools' });
    await ds.initialize();
    world = createWorld(ds, clock, { undoDepth: 100 });
    off = createWorld(ds, clock, {
      undoDepth: 100,
      flags: {
        service: new FlagService(disable(defaultPayload(), FLAGS.LANGGRAPH_TOOLS), {
          origin: 'static',
          version: 1,
        }),
        recorder: null,
      },
    });
  });
  after(async () => {
    if (ds?.isInitialized) await ds.destroy();
  });

  async function user(): Promise<Actor> {
    const u = await world.users.findOrCreateByEmail(`agent-${randomUUID()}@example.com`);
    return { userId: u.id, actor: `user:${u.id}` };
  }

  async function counts(userId: string): Promise<Counts> {
    const [row] = (await ds.query(
      `SELECT (SELECT count(*) FROM operations WHERE user_id = $1)::int AS ops,
              (SELECT count(*) FROM tasks WHERE user_id = $1)::int AS tasks,
              (SELECT count(*) FROM events WHERE user_id = $1)::int AS events,
              (SELECT count(*) FROM idempotency_keys WHERE user_id = $1)::int AS keys`,
      [userId],
    )) as Counts[];
    return row!;
  }

  async function trail(userId: string): Promise<Array<[string, string, string]>> {
    const page = await world.queries.operations(userId, 100);
    return page.items.map((i) => [i.node.kind, i.node.actor, i.node.state]);
  }

  it('a scripted run: puts the backlog into tomorrow morning, then undoes the last step; the audit trail names the agent', async () => {
    const me = await user();
    const titles = ['Write report', 'Call the bank', 'Review budget'];
    const ids: string[] = [];
    for (const title of titles) {
      const r = await world.updater.createTask(me, { title, estimateMinutes: 60 });
      ids.push(r.task!.id);
      clock.advance(60_000); // oldest first: list_tasks lists them in this order
    }
    const model = new ScriptedChatModel([
      {
        toolCalls: [
          { name: 'list_tasks', args: { status: ['BACKLOG', 'TODO'], scheduled: false }, id: 'c1' },
        ],
      },
      { toolCalls: [{ name: 'find_free_slots', args: { from: TOMORROW_9, to: TOMORROW_12 }, id: 'c2' }] },
      // One tool call per turn: a ToolNode runs the calls of one turn concurrently.
      ...[0, 1, 2].map((i) => (seen: BaseMessage[]) => {
        const backlog = (toolAnswer(seen, 'c1').tasks as Array<{ id: string }>).map((t) => t.id);
        const slots = toolAnswer(seen, 'c2').slots as Array<{ start: string }>;
        expect(slots[0]!.start).to.equal(TOMORROW_9);
        const start = `2026-12-02T${String(9 + i).padStart(2, '0')}:00:00Z`;
        return {
          toolCalls: [
            {
              name: 'schedule_task',
              args: { taskId: backlog[i]!, start, onConflict: 'REJECT' },
              id: `s${i}`,
            },
          ],
        };
      }),
      { toolCalls: [{ name: 'undo_last', args: {}, id: 'u1' }] },
      { content: 'Scheduled two of your backlog tasks tomorrow morning; the last step is undone.' },
    ]);
    const agent = createPlannerAgent({ world, model, userId: me.userId, agentName: 'assistant' });
    const out = await agent.invoke({
      messages: [{ role: 'user', content: 'Put my backlog into tomorrow morning, then undo the last step.' }],
    });
    expect(model.bound).to.have.members([...TOOL_NAMES]);
    const messages = out.messages as BaseMessage[];
    expect(String(messages[messages.length - 1]!.content)).to.contain('undone');
    for (const id of ['s0', 's1', 's2', 'u1'])
      expect(toolAnswer(messages, id).ok, JSON.stringify(toolAnswer(messages, id))).to.equal(true);
    expect((toolAnswer(messages, 'c1').tasks as unknown[]).length).to.equal(3);

    // The database: the first two tasks tomorrow at 9 and 10, the third back in the backlog.
    const tasks = await world.queries.tasksByIds(me.userId, ids);
    expect(tasks.map((t) => t!.scheduledStart && new Date(t!.scheduledStart).toISOString())).to.deep.equal([
      TOMORROW_9,
      '2026-12-02T10:00:00.000Z',
      null,
    ]);
    expect(tasks[2]!.status).to.equal('BACKLOG');
    // The audit trail: exactly that, with the agent as actor; the user's own operations untouched.
    expect(await trail(me.userId)).to.deep.equal([
      ['UNDO', 'agent:assistant', 'APPLIED'],
      ['SCHEDULE_TASK', 'agent:assistant', 'UNDONE'],
      ['SCHEDULE_TASK', 'agent:assistant', 'APPLIED'],
      ['SCHEDULE_TASK', 'agent:assistant', 'APPLIED'],
      ['CREATE_TASK', `user:${me.userId}`, 'APPLIED'],
      ['CREATE_TASK', `user:${me.userId}`, 'APPLIED'],
      ['CREATE_TASK', `user:${me.userId}`, 'APPLIED'],
    ]);
    // The user undoes the agent's work their own way (by id, as GraphQL's undo(operationId) does).
    const second = (await world.queries.operations(me.userId, 100)).items[2]!.node;
    const undone = await world.updater.undo(me, second.id);
    expect(undone.ok, JSON.stringify(undone.errors)).to.equal(true);
    expect((await world.queries.task(me.userId, ids[1]!))!.scheduledStart).to.equal(null);
  });

  it('bad arguments change nothing and tell the model what was wrong', async () => {
    const me = await user();
    const t = await world.updater.createTask(me, { title: 'Backlog item' });
    const before = await counts(me.userId);
    const model = new ScriptedChatModel([
      {
        toolCalls: [
          { name: 'schedule_task', args: { taskId: t.task!.id, start: 'tomorrow at 9' }, id: 'b1' },
          { name: 'create_task', args: { title: '', priority: 'SOMEDAY' }, id: 'b2' },
          { name: 'schedule_task', args: { taskId: 'not-a-task', start: TOMORROW_9 }, id: 'b3' },
        ],
      },
      { content: 'I could not do it.' },
    ]);
    const agent = createPlannerAgent({ world, model, userId: me.userId, agentName: 'assistant' });
    const out = await agent.invoke({ messages: [{ role: 'user', content: 'Schedule it' }] });
    const messages = out.messages as BaseMessage[];
    const b1 = toolAnswer(messages, 'b1') as { ok: boolean; errors: Array<{ code: string; path: string[] }> };
    expect(b1.ok).to.equal(false);
    expect(b1.errors.map((e) => [e.code, e.path])).to.deep.equal([['VALIDATION', ['start']]]);
    const b2 = toolAnswer(messages, 'b2') as { ok: boolean; errors: Array<{ code: string; path: string[] }> };
    expect(b2.errors.map((e) => e.path[0])).to.have.members(['title', 'priority']);
    const b3 = toolAnswer(messages, 'b3') as { ok: boolean; errors: Array<{ code: string }> };
    expect(b3.errors[0]!.code).to.equal('NOT_FOUND');
    expect(await counts(me.userId)).to.deep.equal(before);

    // The same answers straight from the tool set, and an unknown tool.
    const set = createToolSet(world, { userId: me.userId, agentName: 'assistant' });
    const r = await set.call('get_schedule', { from: TOMORROW_12, to: TOMORROW_9 });
    expect(r).to.deep.include({ ok: false });
    expect((r.errors as Array<{ code: string; path: string[] }>)[0]).to.include({ code: 'VALIDATION' });
    const unknown = await set.call('drop_database', {});
    expect((unknown.errors as Array<{ message: string }>)[0]!.message).to.contain('list_tasks');
    expect(await counts(me.userId)).to.deep.equal(before);
  });

  it('isolation: a tool set bound to one user cannot see or touch another’s tasks', async () => {
    const alice = await user();
    const bob = await user();
    const bobs = await world.updater.createTask(bob, { title: 'Bob private' });
    const bobBefore = await counts(bob.userId);
    const set = createToolSet(world, { userId: alice.userId, agentName: 'assistant' });
    const listed = await set.call('list_tasks', {});
    expect(listed).to.deep.equal({ ok: true, tasks: [], more: false });
    for (const [name, args, code] of [
      ['schedule_task', { taskId: bobs.task!.id, start: TOMORROW_9 }, 'NOT_FOUND'],
      ['auto_schedule', { taskIds: [bobs.task!.id], from: TOMORROW_9, to: TOMORROW_12 }, 'NOT_FOUND'],
      ['undo_last', {}, 'NOTHING_TO_UNDO'],
    ] as const) {
      const r = await set.call(name, args, `iso-${name}`);
      expect(r.ok, `${name}: ${JSON.stringify(r)}`).to.equal(false);
      expect((r.errors as Array<{ code: string }>).map((e) => e.code)).to.deep.equal([code]);
      if (name === 'schedule_task')
        expect((r.errors as Array<{ path: string[] }>)[0]!.path).to.deep.equal(['taskId']);
    }
    const bobTask = await world.queries.task(bob.userId, bobs.task!.id);
    expect(bobTask!.scheduledStart).to.equal(null);
    expect(await counts(bob.userId)).to.deep.equal(bobBefore);
    expect(await world.queries.task(alice.userId, bobs.task!.id)).to.equal(null);
  });

  it('retries: the same tool call id writes once; two agents never share a key', async () => {
    const me = await user();
    const set = createToolSet(world, { userId: me.userId, agentName: 'assistant' });
    const first = await set.call('create_task', { title: 'Pay rent' }, 'call-7');
    const again = await set.call('create_task', { title: 'Pay rent' }, 'call-7');
    expect(first.ok).to.equal(true);
    expect(again).to.deep.include({ ok: true, replayed: true });
    expect((again.task as { id: string }).id).to.equal((first.task as { id: string }).id);
    // Through LangChain: a ToolNode re-running the same tool call.
    const [create] = plannerTools(world, { userId: me.userId, agentName: 'assistant' }).filter(
      (t) => t.name === 'create_task',
    );
    const call = {
      name: 'create_task',
      args: { title: 'Water plants' },
      id: 'lc-1',
      type: 'tool_call' as const,
    };
    await create!.invoke(call);
    await create!.invoke(call);
    // An explicit key wins over the call id.
    await set.call('create_task', { title: 'Gym', idempotencyKey: 'gym-once' }, 'call-8');
    const gym = await set.call('create_task', { title: 'Gym', idempotencyKey: 'gym-once' }, 'call-9');
    expect(gym.replayed).to.equal(true);
    // Another agent with the same call id is another request.
    const other = createToolSet(world, { userId: me.userId, agentName: 'planner-bot' });
    expect((await other.call('create_task', { title: 'Pay rent' }, 'call-7')).replayed).to.equal(undefined);
    expect((await counts(me.userId)).tasks).to.equal(4);
    // Call ids that restart per connection (MCP request ids) are scoped to it: a new session's call 7 is new.
    const s1 = createToolSet(world, { userId: me.userId, agentName: 'mcp:desk', keyScope: 'session-1' });
    const s2 = createToolSet(world, { userId: me.userId, agentName: 'mcp:desk', keyScope: 'session-2' });
    expect((await s1.call('create_task', { title: 'Call mum' }, 7)).replayed).to.equal(undefined);
    expect((await s1.call('create_task', { title: 'Call mum' }, 7)).replayed).to.equal(true);
    expect((await s2.call('create_task', { title: 'Call mum' }, 7)).replayed).to.equal(undefined);
    expect((await counts(me.userId)).tasks).to.equal(6);
    // Same id, different arguments: refused, nothing written.
    const misuse = await set.call('create_task', { title: 'Something else' }, 'call-7');
    expect((misuse.errors as Array<{ code: string }>)[0]!.code).to.equal('VALIDATION');
    expect((await counts(me.userId)).tasks).to.equal(6);
  });

  it('preview: dryRun answers the would-be result and writes nothing (no operation, event or key)', async () => {
    const me = await user();
    const set = createToolSet(world, { userId: me.userId, agentName: 'assistant' });
    await set.call(
      'create_task',
      { title: 'Standup', scheduledStart: TOMORROW_9, scheduledEnd: '2026-12-02T10:00:00Z' },
      'p0',
    );
    const backlog = await world.updater.createTask(me, { title: 'Deep work', estimateMinutes: 60 });
    const before = await counts(me.userId);
    const eventsBefore = await ds.query('SELECT seq, type FROM events WHERE user_id = $1 ORDER BY seq', [
      me.userId,
    ]);
    const preview = await set.call(
      'schedule_task',
      { taskId: backlog.task!.id, start: TOMORROW_9, dryRun: true },
      'p1',
    );
    expect(preview).to.deep.include({ ok: true, preview: true });
    const conflicts = preview.conflicts as Array<{ kind: string; alternatives: unknown[] }>;
    expect(conflicts.map((c) => c.kind)).to.include('OVERLAP');
    expect(conflicts.find((c) => c.kind === 'OVERLAP')!.alternatives.length).to.be.greaterThan(0);
    for (const [name, args] of [
      ['create_task', { title: 'x', dryRun: true }],
      ['auto_schedule', { from: TOMORROW_9, to: TOMORROW_12, dryRun: true }],
      ['undo_last', { dryRun: true }],
    ] as const) {
      const r = await set.call(name, args, `p-${name}`);
      expect(r, name).to.deep.include({ ok: true, preview: true });
    }
    expect(await counts(me.userId)).to.deep.equal(before);
    expect(
      await ds.query('SELECT seq, type FROM events WHERE user_id = $1 ORDER BY seq', [me.userId]),
    ).to.deep.equal(eventsBefore);
    expect((await world.queries.task(me.userId, backlog.task!.id))!.scheduledStart).to.equal(null);
    // The same call id afterwards really writes (the preview kept no key).
    const real = await set.call('schedule_task', { taskId: backlog.task!.id, start: TOMORROW_9 }, 'p1');
    expect(real).to.deep.include({ ok: true, preview: false });
    expect(real.replayed).to.equal(undefined);
  });

  it('the flag: with langgraph_tools off every tool refuses and nothing is read or written', async () => {
    const me = await user();
    await world.updater.createTask(me, { title: 'Secret' });
    const before = await counts(me.userId);
    const set = createToolSet(off, { userId: me.userId, agentName: 'assistant' });
    const args: Record<string, Record<string, unknown>> = {
      get_schedule: { from: TOMORROW_9, to: TOMORROW_12 },
      find_free_slots: { from: TOMORROW_9, to: TOMORROW_12 },
      create_task: { title: 'x' },
      schedule_task: { taskId: randomUUID(), start: TOMORROW_9 },
      resolve_conflict: { conflictId: randomUUID(), alternativeId: 'a' },
      auto_schedule: { from: TOMORROW_9, to: TOMORROW_12 },
    };
    for (const name of TOOL_NAMES) {
      const r = await set.call(name, args[name] ?? {}, `f-${name}`);
      expect(r.ok, name).to.equal(false);
      const errors = r.errors as Array<{ code: string; message: string }>;
      expect(
        errors.map((e) => e.code),
        name,
      ).to.deep.equal(['FEATURE_DISABLED']);
      expect(errors[0]!.message).to.contain('langgraph_tools');
      expect(r.tasks, name).to.equal(undefined);
    }
    // The agent graph over the same tools says so to the model.
    const model = new ScriptedChatModel([
      { toolCalls: [{ name: 'list_tasks', args: {}, id: 'x1' }] },
      { content: 'The tools are off.' },
    ]);
    const out = await createPlannerAgent({
      world: off,
      model,
      userId: me.userId,
      agentName: 'assistant',
    }).invoke({
      messages: [{ role: 'user', content: 'What is on my list?' }],
    });
    expect(toolAnswer(out.messages as BaseMessage[], 'x1')).to.deep.include({ ok: false });
    expect(await counts(me.userId)).to.deep.equal(before);
  });

  it('the user’s control: allowedAgents refuses other agents; undo_last undoes the user’s own operations only when allowed', async () => {
    const me = await user();
    const set = createToolSet(world, { userId: me.userId, agentName: 'assistant' });
    const mine = await set.call('create_task', { title: 'By the agent' }, 'k1');
    const users = await world.updater.createTask(me, { title: 'By the user' });
    // The latest operation is the user's: undo_last skips it and undoes the agent's own.
    const u1 = await set.call('undo_last', {}, 'k2');
    expect(u1.ok, JSON.stringify(u1)).to.equal(true);
    expect(await world.queries.task(me.userId, (mine.task as { id: string }).id)).to.equal(null);
    expect(await world.queries.task(me.userId, users.task!.id)).to.not.equal(null);
    const u2 = await set.call('undo_last', {}, 'k3');
    expect((u2.errors as Array<{ code: string }>)[0]!.code).to.equal('NOTHING_TO_UNDO');
    // Allowed: the user's own latest operation is the agent's to undo too.
    const allow = await world.updater.updateSettings(me, { agentsMayUndoMine: true });
    expect(allow.ok, JSON.stringify(allow.errors)).to.equal(true);
    expect((await world.queries.me(me.userId)).agentsMayUndoMine).to.equal(true);
    // (the settings change is itself the user's latest operation; undoing it would revoke the permission)
    const another = await world.updater.createTask(me, { title: 'Another of mine' });
    const u3 = await set.call('undo_last', {}, 'k4');
    expect(u3.ok, JSON.stringify(u3)).to.equal(true);
    expect(await world.queries.task(me.userId, another.task!.id)).to.equal(null);

    // Only the listed agents may act, for reads and writes alike.
    const only = await world.updater.updateSettings(me, { allowedAgents: ['mcp:*', 'planner-bot'] });
    expect(only.ok, JSON.stringify(only.errors)).to.equal(true);
    expect((await world.queries.me(me.userId)).allowedAgents).to.deep.equal(['mcp:*', 'planner-bot']);
    const before = await counts(me.userId);
    for (const r of [await set.call('list_tasks', {}), await set.call('create_task', { title: 'x' }, 'k5')])
      expect((r.errors as Array<{ code: string }>)[0]!.code).to.equal('FORBIDDEN');
    const direct = await world.updater.createTask(
      { userId: me.userId, actor: 'agent:assistant' },
      { title: 'y' },
    );
    expect(direct.errors.map((e) => e.code)).to.deep.equal(['FORBIDDEN']);
    expect(await counts(me.userId)).to.deep.equal(before);
    for (const name of ['mcp:claude-ai', 'planner-bot']) {
      const r = await createToolSet(world, { userId: me.userId, agentName: name }).call('list_tasks', {});
      expect(r.ok, name).to.equal(true);
    }
    const bad = await world.updater.updateSettings(me, { allowedAgents: ['', 'a*b'] });
    expect(bad.errors.map((e) => e.path)).to.deep.equal([
      ['input', 'allowedAgents', '0'],
      ['input', 'allowedAgents', '1'],
    ]);
  });

  it('writes count as the user’s in-flight operations (admission): over the cap, RATE_LIMITED and nothing written', async () => {
    const me = await user();
    const capped = createWorld(ds, clock, { undoDepth: 100 });
    const admission = new Admission(1, 0);
    attachAdmission(capped, admission);
    const set = createToolSet(capped, { userId: me.userId, agentName: 'assistant' });
    let release!: () => void;
    const held = admission.run(me.userId, () => new Promise<void>((r) => (release = r)));
    const refused = await set.call('create_task', { title: 'Too many at once' }, 'adm-1');
    expect(refused).to.deep.include({ ok: false });
    expect((refused.errors as Array<{ code: string }>)[0]!.code).to.equal('RATE_LIMITED');
    expect(refused.retryAfterMs).to.be.a('number');
    expect((await set.call('list_tasks', {})).ok).to.equal(true); // reads are not admitted
    release();
    await held;
    expect((await set.call('create_task', { title: 'Now' }, 'adm-1')).ok).to.equal(true);
    expect((await counts(me.userId)).tasks).to.equal(1);
  });
});
