/** The usage text of `planner mcp`. */
export const MCP_USAGE = `  planner mcp --email <address>
      Serve the agent tools over MCP on stdio for that user (created if needed); actor
      agent:mcp:<client name>. Register it in an MCP client: see docs/agent.md.`;
