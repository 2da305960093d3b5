/**
 * The WorldUpdater: the one way the plan changes. A thin facade: each method names an operation
 * (src/world/ops/*: what it loads and how it decides) and hands it to the Runner, which runs it as
 * load → decide → write in one transaction that first locks the user's row (see runner.ts).
 * Domain problems change nothing and come back as `errors`.
 */
import type { DataSource } from 'typeorm';
import type { Clock } from './clock';
import type { FlagRuntime } from './flag-gates';
import { randomUUID } from 'node:crypto';
import { DomainError } from './errors';
import { defaultMemoryOptions, type MemoryOptions } from './memory-options';
import { autoScheduleOp } from './ops/autoschedule';
import { forgetMemoriesOp, normaliseMemoryText, rememberOp } from './ops/memory';
import { dismissConflictOp, resolveConflictOp } from './ops/conflicts';
import { createGoalOp, updateGoalOp, type CreateGoalInput, type UpdateGoalInput } from './ops/goals';
import { updateSettingsOp, type SettingsInput } from './ops/settings';
import {
  createTaskOp,
  scheduleTaskOp,
  simpleTaskOp,
  updateTaskOp,
  type CreateTaskInput,
  type UpdateTaskInput,
} from './ops/tasks';
import { redoOp, undoOp } from './ops/undo';
import type { QueryService } from './query-service';
import { Runner, type MutationOptions } from './runner';
import type { Actor, UpdateResultView } from './views';

export { EVENTS_CHANNEL } from './commit-signals';
export type {
  CreateTaskInput,
  UpdateTaskInput,
  CreateGoalInput,
  UpdateGoalInput,
  SettingsInput,
  MutationOptions,
};

export class WorldUpdater {
  private readonly runner: Runner;

  constructor(
    ds: DataSource,
    private readonly clock: Clock,
    private readonly queries: QueryService,
    private readonly opts: { undoDepth: number; flags?: FlagRuntime },
    private readonly memory: MemoryOptions = defaultMemoryOptions(),
  ) {
    this.runner = new Runner(ds, clock, opts, (userId) => this.queries.undoState(userId));
  }

  /** Resolves once the NOTIFY hints of every operation committed so far have been sent (tests, shutdown). */
  flushHints(): Promise<void> {
    return this.runner.flushHints();
  }

  // ================================================================= tasks

  async createTask(
    actor: Actor,
    input: CreateTaskInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, createTaskOp(this.clock.now(), input, opts.onConflict ?? 'ALLOW'), opts);
  }

  async updateTask(
    actor: Actor,
    id: string,
    input: UpdateTaskInput,
    opts: MutationOptions & { expectedVersion?: number | null } = {},
  ): Promise<UpdateResultView> {
    const op = updateTaskOp(
      this.clock.now(),
      id,
      input,
      opts.expectedVersion ?? null,
      opts.onConflict ?? 'ALLOW',
    );
    return this.runner.run(actor, op, opts);
  }

  async scheduleTask(
    actor: Actor,
    id: string,
    start: Date,
    end: Date | null,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(
      actor,
      scheduleTaskOp(this.clock.now(), id, start, end, opts.onConflict ?? 'ALLOW'),
      opts,
    );
  }

  async unscheduleTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.runner.run(actor, simpleTaskOp(this.clock.now(), 'UNSCHEDULE_TASK', id), opts);
  }

  async completeTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.runner.run(actor, simpleTaskOp(this.clock.now(), 'COMPLETE_TASK', id), opts);
  }

  async deleteTask(actor: Actor, id: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.runner.run(actor, simpleTaskOp(this.clock.now(), 'DELETE_TASK', id), opts);
  }

  // ================================================================= goals

  async createGoal(
    actor: Actor,
    input: CreateGoalInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, createGoalOp(input), opts);
  }

  async updateGoal(
    actor: Actor,
    id: string,
    input: UpdateGoalInput,
    opts: MutationOptions & { expectedVersion?: number | null } = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, updateGoalOp(id, input, opts.expectedVersion ?? null), opts);
  }

  // ================================================================= settings

  async updateSettings(
    actor: Actor,
    input: SettingsInput,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, updateSettingsOp(this.clock.now(), input), opts);
  }

  // ================================================================= planning

  async autoSchedule(
    actor: Actor,
    taskIds: string[] | null,
    from: Date,
    to: Date,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, autoScheduleOp(taskIds, from, to), opts);
  }

  // ================================================================= conflicts

  async resolveConflict(
    actor: Actor,
    conflictId: string,
    alternativeId: string,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, resolveConflictOp(conflictId, alternativeId), opts);
  }

  async dismissConflict(
    actor: Actor,
    conflictId: string,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, dismissConflictOp(conflictId), opts);
  }

  // ================================================================= undo / redo

  async undo(
    actor: Actor,
    operationId: string | null,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, undoOp(actor, operationId, this.opts.undoDepth), opts);
  }

  async redo(actor: Actor, opts: MutationOptions = {}): Promise<UpdateResultView> {
    return this.runner.run(actor, redoOp(actor), opts);
  }

  // ================================================================= semantic memory

  /**
   * Records a fact the user states (a FACT memory item). The embedding is computed before the
   * transaction (a hosted embedder does I/O); the operation log records the new item's id only.
   * Gated by the semantic_memory flag (FEATURE_DISABLED, nothing written).
   */
  async remember(actor: Actor, text: string, opts: MutationOptions = {}): Promise<UpdateResultView> {
    let normalised: string;
    try {
      normalised = normaliseMemoryText(text);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      return this.runner.failure(await this.queries.undoState(actor.userId), err.details);
    }
    const [embedding] = await this.memory.embedder.embed([normalised]);
    const op = rememberOp({
      id: randomUUID(),
      text: normalised,
      embedding: embedding!,
      ttlDays: this.memory.ttlDays,
      maxItems: this.memory.maxItems,
    });
    return this.runner.run(actor, op, opts);
  }

  /** Erases memory items for good (null: all of them). Never gated: people can always erase. */
  async forgetMemories(
    actor: Actor,
    ids: string[] | null,
    opts: MutationOptions = {},
  ): Promise<UpdateResultView> {
    return this.runner.run(actor, forgetMemoriesOp(ids), opts);
  }
}
