/**
 * Agents acting for a user: the actor naming (`agent:<name>`) and the user's control over them
 * (users.allowed_agents, users.agents_may_undo_mine; changed by updateSettings). Pure functions:
 * the runner checks them against the user row its locking load already read (no round trip).
 */
import type { UserErrorDetail } from './errors';

/** The actor prefix of every agent. */
export const AGENT_PREFIX = 'agent:';

/** The agent's name of an actor string (`agent:mcp:claude` → `mcp:claude`), or null for a non-agent. */
export function agentNameOf(actor: string): string | null {
  return actor.startsWith(AGENT_PREFIX) && actor.length > AGENT_PREFIX.length
    ? actor.slice(AGENT_PREFIX.length)
    : null;
}

/** Whether `name` matches one of the patterns: an exact name, or a prefix ending in `*` (`*`: any). */
export function agentAllowed(patterns: readonly string[] | null | undefined, name: string): boolean {
  return (patterns ?? ['*']).some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
}

/** The refusal of an agent the user has not allowed (nothing is read or written for it). */
export function agentRefusal(name: string): UserErrorDetail {
  return {
    code: 'FORBIDDEN',
    message: `The user has not allowed the agent "${name}" to act (settings: allowedAgents)`,
    path: null,
  };
}
