/**
 * `npx planner mcp --email <address>` (issue 15) driven by the MCP SDK's own client over stdio,
 * next to a running server on the same database: the client lists the tools, creates a task
 * through tools/call, and the user sees the task and the agent's operation through GraphQL and
 * undoes it there.
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { TOOL_NAMES, toolJsonSchemas } from '../../src/agent';
import { testDatabaseUrl } from '../support/db';
import { gql } from '../support/graphql';
import { childEnv, PROJECT_ROOT } from '../support/process';
import { startTestServer, TEST_JWT_SECRET, type TestServer } from '../support/server';

interface ToolAnswer {
  ok: boolean;
  preview?: boolean;
  task?: { id: string; title: string };
  operation?: { id: string; actor: string };
  errors?: Array<{ code: string; path?: string[] }>;
}

describe('planner mcp (MCP over stdio, e2e)', function () {
  this.timeout(90_000);
  let server: TestServer;
  let client: Client;
  let transport: StdioClientTransport;
  let stderr = '';
  const email = `mcp-${randomUUID()}@example.com`;

  before(async () => {
    server = await startTestServer();
    const env = Object.fromEntries(
      Object.entries(
        childEnv({
          NODE_ENV: 'test',
          DATABASE_URL: testDatabaseUrl(),
          PLANNER_JWT_SECRET: TEST_JWT_SECRET,
          LOG_LEVEL: 'warn',
        }),
      ).filter((e): e is [string, string] => e[1] !== undefined),
    );
    // What `npx planner mcp --email <address>` runs.
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(PROJECT_ROOT, 'bin', 'planner.js'), 'mcp', '--email', email],
      cwd: PROJECT_ROOT,
      env,
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    client = new Client({ name: 'e2e-client', version: '1.0.0' });
    await client.connect(transport);
  });
  after(async () => {
    await client?.close();
    await server?.close();
  });

  async function call(
    name: string,
    args: Record<string, unknown>,
  ): Promise<{ r: ToolAnswer; isError: boolean }> {
    const res = await client.callTool({ name, arguments: args });
    const text = (res.content as Array<{ type: string; text: string }>)[0]!.text;
    const r = JSON.parse(text) as ToolAnswer;
    expect(res.structuredContent, stderr).to.deep.equal(r);
    return { r, isError: res.isError === true };
  }

  it('lists the same tools, with the same JSON schemas, as the LangGraph tools', async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).to.deep.equal([...TOOL_NAMES]);
    const create = tools.find((t) => t.name === 'create_task')!;
    expect(create.description).to.contain('Creates a task');
    expect(create.inputSchema.required).to.deep.equal(['title']);
    expect(Object.keys(create.inputSchema.properties ?? {})).to.include.members([
      'title',
      'scheduledStart',
      'onConflict',
      'dryRun',
      'idempotencyKey',
    ]);
    expect(client.getServerVersion()?.name).to.equal('smart-personal-planner');
    // The zod schemas the LangGraph tools bind, as JSON Schema, exactly.
    expect(
      tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema })),
    ).to.deep.equal(JSON.parse(JSON.stringify(toolJsonSchemas())));
  });

  it('creates a task through tools/call; the user sees it in GraphQL with the agent as actor, and undoes it', async () => {
    const preview = await call('create_task', { title: 'Buy milk', dryRun: true });
    expect(preview.r).to.deep.include({ ok: true, preview: true });
    const { r, isError } = await call('create_task', { title: 'Buy milk', priority: 'HIGH' });
    expect(isError, JSON.stringify(r)).to.equal(false);
    expect(r.ok).to.equal(true);
    expect(r.operation!.actor).to.equal('agent:mcp:e2e-client');

    const token = await server.token(email);
    const seen = await gql<{
      tasks: { edges: Array<{ node: { id: string; title: string; priority: string } }> };
      operations: { edges: Array<{ node: { id: string; kind: string; actor: string } }> };
    }>(
      server.url,
      token,
      '{ tasks { edges { node { id title priority } } } operations { edges { node { id kind actor } } } }',
    );
    expect(seen.errors).to.equal(undefined);
    expect(seen.data!.tasks.edges.map((e) => e.node)).to.deep.equal([
      { id: r.task!.id, title: 'Buy milk', priority: 'HIGH' },
    ]);
    expect(seen.data!.operations.edges.map((e) => e.node)).to.deep.equal([
      { id: r.operation!.id, kind: 'CREATE_TASK', actor: 'agent:mcp:e2e-client' },
    ]);

    const undone = await gql<{ undo: { ok: boolean; preview: boolean } }>(
      server.url,
      token,
      'mutation($id: ID) { undo(operationId: $id) { ok preview } }',
      { id: r.operation!.id },
    );
    expect(undone.data!.undo).to.deep.equal({ ok: true, preview: false });
    const after = await gql<{ task: null | { id: string } }>(
      server.url,
      token,
      'query($id: ID!) { task(id: $id) { id } }',
      {
        id: r.task!.id,
      },
    );
    expect(after.data!.task).to.equal(null);
  });

  it('bad arguments come back as a readable tool error, and change nothing', async () => {
    const { r, isError } = await call('schedule_task', { taskId: randomUUID(), start: 'next tuesday' });
    expect(isError).to.equal(true);
    expect(r.ok).to.equal(false);
    expect(r.errors!.map((e) => [e.code, e.path])).to.deep.equal([['VALIDATION', ['start']]]);
    const token = await server.token(email);
    const ops = await gql<{ operations: { edges: unknown[] } }>(
      server.url,
      token,
      '{ operations { edges { cursor } } }',
    );
    expect(ops.data!.operations.edges.length).to.equal(2); // the create and the user's undo
  });

  it('GraphQL: dryRun previews a mutation (preview: true, nothing stored); me shows the agent settings, updateSettings changes them', async () => {
    const token = await server.token(email);
    const count = async () =>
      (
        await gql<{ operations: { edges: unknown[] } }>(
          server.url,
          token,
          '{ operations(first: 100) { edges { cursor } } }',
        )
      ).data!.operations.edges.length;
    const before = await count();
    const dry = await gql<{
      createTask: { ok: boolean; preview: boolean; task: { title: string }; operation: { kind: string } };
    }>(
      server.url,
      token,
      'mutation { createTask(input: { title: "Maybe" }, dryRun: true) { ok preview task { title } operation { kind } } }',
    );
    expect(dry.errors).to.equal(undefined);
    expect(dry.data!.createTask).to.deep.equal({
      ok: true,
      preview: true,
      task: { title: 'Maybe' },
      operation: { kind: 'CREATE_TASK' },
    });
    const tasks = await gql<{ tasks: { edges: unknown[] } }>(
      server.url,
      token,
      '{ tasks { edges { cursor } } }',
    );
    expect(tasks.data!.tasks.edges).to.deep.equal([]);
    expect(await count()).to.equal(before);

    const me = await gql<{ me: { allowedAgents: string[]; agentsMayUndoMine: boolean } }>(
      server.url,
      token,
      '{ me { allowedAgents agentsMayUndoMine } }',
    );
    expect(me.data!.me).to.deep.equal({ allowedAgents: ['*'], agentsMayUndoMine: false });
    const changed = await gql<{ updateSettings: { ok: boolean } }>(
      server.url,
      token,
      'mutation { updateSettings(input: { allowedAgents: ["mcp:other-client"], agentsMayUndoMine: true }) { ok } }',
    );
    expect(changed.data!.updateSettings.ok).to.equal(true);
    // This client is no longer allowed: its calls are refused, reads included.
    const refused = await call('list_tasks', {});
    expect(refused.isError).to.equal(true);
    expect(refused.r.errors!.map((e) => e.code)).to.deep.equal(['FORBIDDEN']);
    const me2 = await gql<{ me: { allowedAgents: string[]; agentsMayUndoMine: boolean } }>(
      server.url,
      token,
      '{ me { allowedAgents agentsMayUndoMine } }',
    );
    expect(me2.data!.me).to.deep.equal({ allowedAgents: ['mcp:other-client'], agentsMayUndoMine: true });
  });
});
