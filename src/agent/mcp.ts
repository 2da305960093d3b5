/**
 * The planner's tools over the Model Context Protocol (the official SDK's server): the same names,
 * descriptions and schemas (as JSON Schema) as the LangGraph tools, bound to one user. The actor is
 * `agent:mcp:<the client's name from its initialize handshake>`; the default retry key of a write is
 * the JSON-RPC request id, scoped to this connection (ids restart with every session).
 *
 *   const server = createMcpServer(world, { userId });
 *   await server.connect(new StdioServerTransport());   // `planner mcp --email <address>`
 */
import { randomUUID } from 'node:crypto';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { World } from '../world/world';
import { TOOLS } from './tools';
import { createToolSet, type PlannerToolSet } from './toolset';

/** The server's name and version in the MCP handshake. */
export const MCP_SERVER_INFO = { name: 'smart-personal-planner', version: '0.1.0' } as const;

/** The agent name of an MCP client: `mcp:<its name>` (`mcp:unknown` when it gave none). */
export function mcpAgentName(clientName: string | undefined): string {
  const name = (clientName ?? '')
    .replace(/\p{Cc}/gu, '')
    .trim()
    .slice(0, 90);
  return `mcp:${name || 'unknown'}`;
}

/** Each tool's input as JSON Schema (draft 2020-12, as MCP wants), from its zod schema. */
export function toolJsonSchemas(): Array<{
  name: string;
  description: string;
  inputSchema: { type: 'object'; [k: string]: unknown };
}> {
  return TOOLS.map((t) => {
    const { $schema: _drop, ...schema } = z.toJSONSchema(t.schema, { io: 'input' }) as Record<
      string,
      unknown
    >;
    return {
      name: t.name,
      description: t.description,
      inputSchema: { ...schema, type: 'object' as const },
    };
  });
}

export interface McpServerOptions {
  /** The user the tools act for. */
  userId: string;
}

/** An MCP server (not yet connected) serving the planner's tools for one user. */
export function createMcpServer(world: World, opts: McpServerOptions): Server {
  const server = new Server(
    { ...MCP_SERVER_INFO },
    {
      capabilities: { tools: {} },
      instructions:
        "Tools over the user's Smart Personal Planner. Read before you write; writing tools take dryRun: true to preview. Every change is recorded under this client's name and the user can undo it.",
    },
  );
  const session = randomUUID();
  let bound: PlannerToolSet | null = null;
  // Bound on first use: the client's name is known only after its initialize request.
  const toolSet = (): PlannerToolSet =>
    (bound ??= createToolSet(world, {
      userId: opts.userId,
      agentName: mcpAgentName(server.getClientVersion()?.name),
      keyScope: session,
    }));
  const schemas = toolJsonSchemas();

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: schemas }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const result = await toolSet().call(req.params.name, req.params.arguments ?? {}, extra.requestId);
    return {
      content: [{ type: 'text' as const, text: JSON.stringify(result) }],
      structuredContent: result,
      isError: !result.ok,
    };
  });
  return server;
}
