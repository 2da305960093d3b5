/**
 * A scripted chat model (no network): answers with queued AI messages, one per call, recording
 * every conversation it was shown. A step may be a function of the messages so far (to use ids a
 * previous tool returned). `bindTools` returns the model itself, so LangGraph's prebuilt agent can
 * drive it. When the script runs out it says so in a plain message (which ends the agent's loop).
 */
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { AIMessage, type BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';

export interface ScriptedToolCall {
  name: string;
  args: Record<string, unknown>;
  id: string;
}

export type ScriptStep =
  | { content?: string; toolCalls?: ScriptedToolCall[] }
  | ((seen: BaseMessage[]) => { content?: string; toolCalls?: ScriptedToolCall[] });

export class ScriptedChatModel extends BaseChatModel {
  /** Every conversation the model was shown, in order. */
  readonly seen: BaseMessage[][] = [];
  /** Tool names bound by the agent. */
  bound: string[] = [];

  constructor(private readonly script: ScriptStep[]) {
    super({});
  }

  _llmType(): string {
    return 'scripted';
  }

  override bindTools(tools: Array<{ name?: string }>): this {
    this.bound = tools.map((t) => String(t.name));
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.seen.push([...messages]);
    const step = this.script.shift();
    const out =
      step === undefined
        ? { content: 'script finished' }
        : typeof step === 'function'
          ? step(messages)
          : step;
    const message = new AIMessage({
      content: out.content ?? '',
      tool_calls: (out.toolCalls ?? []).map((c) => ({ ...c, type: 'tool_call' as const })),
    });
    return { generations: [{ text: String(message.content), message }] };
  }
}

/** The JSON a tool answered, from the last ToolMessage with this tool_call_id. */
export function toolAnswer(messages: BaseMessage[], toolCallId: string): Record<string, unknown> {
  const m = [...messages]
    .reverse()
    .find(
      (x) => x.getType() === 'tool' && (x as unknown as { tool_call_id: string }).tool_call_id === toolCallId,
    );
  if (!m) throw new Error(`no tool answer for ${toolCallId}`);
  return JSON.parse(String(m.content)) as Record<string, unknown>;
}
