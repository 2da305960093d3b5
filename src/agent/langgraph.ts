/**
 * The tools as LangChain tools, and the planner agent: LangGraph's prebuilt ReAct agent (a model
 * node and a ToolNode in a loop) over them. Any LangChain chat model with tool calling can drive it.
 */
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { LanguageModelLike } from '@langchain/core/language_models/base';
import { ToolMessage } from '@langchain/core/messages';
import { StructuredTool, ToolInputParsingException, type ToolRunnableConfig } from '@langchain/core/tools';
import { createReactAgent } from '@langchain/langgraph/prebuilt';
import type { z } from 'zod';
import type { World } from '../world/world';
import type { ToolDef } from './tools';
import { createToolSet, type PlannerToolSet } from './toolset';

/** One planner tool as a LangChain tool: the result is the tool set's compact JSON, as a string. */
export class PlannerTool extends StructuredTool<z.ZodObject> {
  name: string;
  description: string;
  schema: z.ZodObject;

  constructor(
    private readonly set: PlannerToolSet,
    def: ToolDef,
  ) {
    super();
    this.name = def.name;
    this.description = def.description;
    this.schema = def.schema;
  }

  protected async _call(arg: unknown, _run?: unknown, config?: ToolRunnableConfig): Promise<string> {
    return JSON.stringify(await this.set.call(this.name, arg, config?.toolCall?.id));
  }

  /**
   * LangChain validates the arguments before `_call` and throws on a mismatch; the model gets the
   * tool set's own VALIDATION answer instead (which argument, what was wrong), as a tool result.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override async call(arg: any, configArg?: any, tags?: string[]): Promise<any> {
    try {
      return await super.call(arg, configArg, tags);
    } catch (err) {
      if (!(err instanceof ToolInputParsingException)) throw err;
      const isCall = arg && typeof arg === 'object' && 'args' in arg && 'name' in arg;
      const raw: unknown = isCall ? arg.args : arg;
      const id: string | undefined = isCall ? arg.id : configArg?.toolCall?.id;
      const content = JSON.stringify(await this.set.call(this.name, raw, id));
      return id ? new ToolMessage({ content, tool_call_id: id, name: this.name, status: 'error' }) : content;
    }
  }
}

/** The planner's tools as LangChain tools, bound to one user and one agent. */
export function plannerTools(world: World, opts: { userId: string; agentName: string }): PlannerTool[] {
  const set = createToolSet(world, opts);
  return set.tools.map((def) => new PlannerTool(set, def));
}

export const DEFAULT_SYSTEM_PROMPT = `You are a planning assistant working inside the user's Smart Personal Planner.
Act only through the tools. Look before you leap: read the plan (list_tasks, get_schedule,
find_free_slots, list_conflicts, recall_memories) before changing it, and pass dryRun: true to a
writing tool when you are unsure what it would do. Every change you make is recorded under your
name and the user can undo it; undo_last undoes your own latest change. Times are ISO-8601 with an
offset. When a tool answers ok: false, read its errors and fix the arguments, or tell the user.`;

export interface PlannerAgentOptions {
  /** Any LangChain chat model that supports tool calling (bindTools). */
  model: BaseChatModel | LanguageModelLike;
  /** The user the agent acts for. */
  userId: string;
  /** The agent's name: its operations are recorded as `agent:<name>`. */
  agentName: string;
  /** The world to act on (the composition root's). */
  world: World;
  /** System prompt; default DEFAULT_SYSTEM_PROMPT. */
  prompt?: string;
}

/**
 * A compiled LangGraph graph (prebuilt ReAct agent) over the planner tools. Invoke it with
 * `{ messages: [...] }`. Gated by the user's `langgraph_tools` flag: off, every tool refuses.
 */
export function createPlannerAgent(opts: PlannerAgentOptions) {
  return createReactAgent({
    llm: opts.model as LanguageModelLike,
    tools: plannerTools(opts.world, { userId: opts.userId, agentName: opts.agentName }),
    prompt: opts.prompt ?? DEFAULT_SYSTEM_PROMPT,
  });
}
