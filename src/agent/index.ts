/**
 * src/agent: AI agents over the WorldUpdater — one set of tools (tools.ts), served to LangGraph
 * (langgraph.ts: LangChain tools and the prebuilt ReAct agent) and over MCP (mcp.ts). See
 * docs/agent.md.
 *
 *   const agent = createPlannerAgent({ world, model, userId, agentName: 'assistant' });
 *   await agent.invoke({ messages: [{ role: 'user', content: 'Put my backlog into tomorrow morning' }] });
 *
 *   const tools = createToolSet(world, { userId, agentName: 'assistant' });
 *   await tools.call('list_tasks', { status: ['BACKLOG'] }, 'call-1');
 */
export { createPlannerAgent, plannerTools, PlannerTool, DEFAULT_SYSTEM_PROMPT } from './langgraph';
export type { PlannerAgentOptions } from './langgraph';
export { createMcpServer, mcpAgentName, toolJsonSchemas, MCP_SERVER_INFO } from './mcp';
export { createToolSet, PlannerToolSet, checkAgentName } from './toolset';
export type { ToolResult, ToolSetOptions } from './toolset';
export { TOOLS, TOOL_NAMES } from './tools';
export type { ToolDef, ToolContext } from './tools';
