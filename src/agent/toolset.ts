/**
 * A tool set: the planner's tools (tools.ts) bound to one user and one agent. Every call
 *
 *   1. is refused (FEATURE_DISABLED) while the user's `langgraph_tools` flag is off, and (FORBIDDEN)
 *      when the user has not allowed this agent (settings: allowedAgents);
 *   2. validates its arguments against the tool's zod schema: bad ones come back as VALIDATION
 *      errors naming the argument, and nothing is read or written;
 *   3. runs as actor `agent:<name>`; a write's idempotency key is the explicit `idempotencyKey` or
 *      the tool call's id, scoped to this agent (and to the key scope, e.g. one MCP session), so
 *      two agents never share a key and a retried call never writes twice;
 *   4. writes run under the user's admission (in-flight cap, as GraphQL mutations: RATE_LIMITED);
 *   5. answers compact JSON (format.ts); domain problems and unexpected failures come back as
 *      `{ ok: false, errors }`, never as a thrown error.
 *
 * Tool calls are counted as usage (`agent_tool_called`) when the flags runtime records usage.
 */
import { createHash } from 'node:crypto';
import { FLAGS, toFlagUser, USAGE } from '../flags';
import { AdmissionRefused, admissionOf } from '../world/admission';
import { agentAllowed } from '../world/agents';
import { DomainError } from '../world/errors';
import type { Actor } from '../world/views';
import type { World } from '../world/world';
import { errorJson } from './format';
import { TOOLS, type ToolDef } from './tools';

export interface ToolSetOptions {
  /** The user the agent acts for (every read and write is scoped to them). */
  userId: string;
  /** The agent's name: its operations are recorded with actor `agent:<name>`. 1–100 characters. */
  agentName: string;
  /**
   * Scope of keys derived from tool call ids (default none). Ids that restart per connection (MCP
   * request ids) need one per connection, or a new session's call 1 would replay an old one.
   */
  keyScope?: string;
}

/** A tool's answer: compact JSON; `ok: false` with `errors` when nothing was done. */
export type ToolResult = Record<string, unknown> & { ok: boolean };

const MAX_KEY = 255;

/** Checks an agent name (1–100 characters, no control characters); returns it trimmed. */
export function checkAgentName(name: string): string {
  const n = name.trim();
  if (n.length < 1 || n.length > 100 || /\p{Cc}/u.test(n))
    throw new Error(`agent name must be 1–100 printable characters, got ${JSON.stringify(name)}`);
  return n;
}

export class PlannerToolSet {
  readonly actor: Actor;
  readonly agentName: string;

  constructor(
    private readonly world: World,
    private readonly opts: ToolSetOptions,
  ) {
    this.agentName = checkAgentName(opts.agentName);
    this.actor = { userId: opts.userId, actor: `agent:${this.agentName}` };
  }

  /** The tool definitions (name, description, zod schema). */
  get tools(): readonly ToolDef[] {
    return TOOLS;
  }

  /** The idempotency key of a write: explicit, or derived from the call id; scoped to this agent. */
  private keyFor(explicit: string | undefined, callId: string | number | null | undefined): string | null {
    let key: string;
    if (explicit !== undefined) key = `${this.actor.actor}|key:${explicit}`;
    else if (callId !== undefined && callId !== null && String(callId) !== '')
      key = `${this.actor.actor}|${this.opts.keyScope ? `${this.opts.keyScope}|` : ''}call:${callId}`;
    else return null;
    return [...key].length <= MAX_KEY
      ? key
      : `${this.actor.actor.slice(0, 100)}|sha256:${createHash('sha256').update(key).digest('hex')}`;
  }

  /**
   * Calls a tool by name with raw (unvalidated) arguments.
   * @param callId the tool call's id (LangGraph tool_call_id, MCP request id): the default retry key.
   * Never throws: every problem comes back as `{ ok: false, errors: [{ code, message, path }] }`.
   */
  async call(name: string, rawArgs: unknown, callId?: string | number | null): Promise<ToolResult> {
    const def = TOOLS.find((t) => t.name === name);
    if (!def) {
      return errorJson([
        {
          code: 'VALIDATION',
          message: `Unknown tool "${name}". Tools: ${TOOLS.map((t) => t.name).join(', ')}`,
          path: null,
        },
      ]) as ToolResult;
    }
    try {
      const refusal = await this.gate();
      if (refusal) return refusal;
      const parsed = def.schema.safeParse(rawArgs ?? {});
      if (!parsed.success) {
        return errorJson(
          parsed.error.issues.map((i) => ({
            code: 'VALIDATION',
            message: `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`,
            path: i.path.length ? i.path.map(String) : null,
          })),
        ) as ToolResult;
      }
      const ctx = {
        world: this.world,
        actor: this.actor,
        idempotencyKey: (explicit: string | undefined) => this.keyFor(explicit, callId),
      };
      // A write is one of the user's in-flight operations, as a GraphQL mutation is (admission.ts).
      const out = def.writes
        ? await admissionOf(this.world).run(this.actor.userId, () => def.run(ctx, parsed.data))
        : await def.run(ctx, parsed.data);
      return ('ok' in out ? out : { ok: true, ...out }) as ToolResult;
    } catch (err) {
      if (err instanceof DomainError) return errorJson(err.details) as ToolResult;
      if (err instanceof AdmissionRefused) {
        return {
          ...errorJson([{ code: 'RATE_LIMITED', message: err.message, path: null }]),
          retryAfterMs: err.retryAfterMs,
        } as ToolResult;
      }
      return errorJson([
        {
          code: 'INTERNAL',
          message: 'Unexpected error; the call may be retried with the same idempotency key.',
          path: null,
        },
      ]) as ToolResult;
    }
  }

  /** The flag and the user's permission, from the user's row (one read); counts the call. */
  private async gate(): Promise<ToolResult | null> {
    const me = await this.world.queries.me(this.actor.userId);
    const f = this.world.flags.service.forUser(toFlagUser(me));
    if (!f.isOn(FLAGS.LANGGRAPH_TOOLS)) {
      return errorJson([
        {
          code: 'FEATURE_DISABLED',
          message: `The planner's agent tools are turned off for this user (feature "${FLAGS.LANGGRAPH_TOOLS}"): nothing was read or changed. Tell the user; do not retry.`,
          path: null,
        },
      ]) as ToolResult;
    }
    if (!agentAllowed(me.allowedAgents, this.agentName)) {
      return errorJson([
        {
          code: 'FORBIDDEN',
          message: `The user has not allowed the agent "${this.agentName}" to act for them (settings: allowedAgents): nothing was read or changed.`,
          path: null,
        },
      ]) as ToolResult;
    }
    this.world.flags.recorder?.recordUsage(f, USAGE.AGENT_TOOL_CALLED);
    return null;
  }
}

/** The planner's tools bound to one user and one agent (see PlannerToolSet). */
export function createToolSet(world: World, opts: ToolSetOptions): PlannerToolSet {
  return new PlannerToolSet(world, opts);
}
