/** Pure parts of the agent integration: actor names, the allowedAgents patterns, MCP naming, usage. */
import { expect } from 'chai';
import { checkAgentName, mcpAgentName, TOOLS, toolJsonSchemas } from '../../src/agent';
import { run as runCli } from '../../src/cli/main';
import { agentAllowed, agentNameOf } from '../../src/world/agents';

describe('agents (pure)', () => {
  it('reads the agent name of an actor; users and system are not agents', () => {
    expect(agentNameOf('agent:assistant')).to.equal('assistant');
    expect(agentNameOf('agent:mcp:claude-ai')).to.equal('mcp:claude-ai');
    for (const a of ['agent:', 'user:123', 'system', 'agentx:y']) expect(agentNameOf(a), a).to.equal(null);
  });

  it('matches allowedAgents: exact names, prefixes ending in *, * for any, [] for none', () => {
    expect(agentAllowed(['*'], 'anything')).to.equal(true);
    expect(agentAllowed(null, 'anything')).to.equal(true);
    expect(agentAllowed([], 'assistant')).to.equal(false);
    expect(agentAllowed(['assistant'], 'assistant')).to.equal(true);
    expect(agentAllowed(['assistant'], 'assistant2')).to.equal(false);
    expect(agentAllowed(['mcp:*'], 'mcp:claude-ai')).to.equal(true);
    expect(agentAllowed(['mcp:*'], 'assistant')).to.equal(false);
  });

  it('names MCP clients mcp:<name> and checks agent names', () => {
    expect(mcpAgentName('Claude Desktop')).to.equal('mcp:Claude Desktop');
    expect(mcpAgentName(undefined)).to.equal('mcp:unknown');
    expect(mcpAgentName('\u0000\u0007')).to.equal('mcp:unknown');
    expect(checkAgentName('  bot ')).to.equal('bot');
    for (const bad of ['', ' ', 'x'.repeat(101), 'a\nb']) expect(() => checkAgentName(bad), bad).to.throw();
  });

  it('gives every tool a description and an object JSON schema; every writing tool takes dryRun and idempotencyKey', () => {
    const schemas = toolJsonSchemas();
    expect(schemas.map((s) => s.name)).to.deep.equal(TOOLS.map((t) => t.name));
    for (const s of schemas) {
      expect(s.description.length, s.name).to.be.greaterThan(20);
      expect(s.inputSchema.type).to.equal('object');
      const writes = TOOLS.find((t) => t.name === s.name)!.writes;
      const props = Object.keys((s.inputSchema.properties as object) ?? {});
      expect(props.includes('dryRun') && props.includes('idempotencyKey'), s.name).to.equal(writes);
    }
  });

  it('planner mcp without --email is a usage error (exit 2)', async () => {
    const err: string[] = [];
    const code = await runCli(['mcp'], {}, { out: () => undefined, err: (l) => err.push(l) });
    expect(code).to.equal(2);
    expect(err.join('\n')).to.contain('mcp needs --email');
  });
});
