/**
 * The runner: the skeleton every operation shares — lock and load, decide, write, record, answer.
 *
 *   BEGIN
 *   load      one statement: locks the user's row (FOR UPDATE, so one user's operations are
 *             serialised and the decision always sees the committed plan), reads the user, the
 *             idempotency record, the undo window's few columns and what the operation asked for
 *   decide    pure code over the loaded world (WorldTx + src/domain): rows, conflicts with their
 *             alternatives, the operation with its exact inverse, the events, the UpdateResult.
 *             Needing more of the plan than was loaded throws NeedMore: one more load, decide again.
 *   write     one statement of writable CTEs: rows, conflicts, operation, events (seq assigned
 *             under the lock), the user's counters, the idempotency record
 *   COMMIT
 *   signal    wake this process's hub, then NOTIFY the other instances (after commit, a hint)
 *
 * Domain problems end in ROLLBACK and come back as `errors`. Only serialisation failures and
 * deadlocks are retried (once); anything else, a unique violation included, is a bug and surfaces.
 */
import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { createHash, randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import { activeOperation, traceOperation, type OperationTrace } from '../telemetry/operation';
import type { ConflictPolicy } from '../domain/types';
import { agentAllowed, agentNameOf, agentRefusal } from './agents';
import type { Clock } from './clock';
import { commitSignals, Notifier } from './commit-signals';
import { ALTERNATIVE_HORIZON_DAYS, type SyncOutcome } from './conflict-sync';
import { DomainError, type UserErrorDetail } from './errors';
import {
  bindFlags,
  openGates,
  recordUsage,
  staticFlagRuntime,
  type FlagRuntime,
  type OperationFlags,
} from './flag-gates';
import { buildLoad } from './load-sql';
import { NOT_UNDOABLE_KINDS } from './not-undoable';
import { LoadedWorld, mergeRequests, NeedMore, type LoadRequest, type OpLite } from './loaded';
import { mapOperation, type OperationRow } from './rows';
import { entityKey, fieldChanges, type Snapshot } from './snapshots';
import { WorldTx } from './tx';
import type {
  Actor,
  ConflictView,
  FlagEvaluationView,
  GoalView,
  MemoryNoteView,
  OperationView,
  PlacementView,
  TaskView,
  UndoStateView,
  UnplacedView,
  UpdateResultView,
} from './views';
import { buildWrite } from './write';

const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** Loads one operation may run before it must have decided (the first one included). */
const MAX_LOADS = 12;
export const NON_ORDINARY: ReadonlySet<string> = new Set(NOT_UNDOABLE_KINDS);

export interface MutationOptions {
  onConflict?: ConflictPolicy | null;
  idempotencyKey?: string | null;
  /**
   * Preview: load and decide as usual, then ROLLBACK instead of the write. The result (preview:
   * true) is what the operation would produce; no operation row, no events, no NOTIFY, no
   * idempotency record (the key is ignored). Default false.
   */
  dryRun?: boolean | null;
}

/** What an operation's decide step answers with (besides what it staged in the WorldTx). */
export interface BodyResult {
  task?: TaskView | null;
  goal?: GoalView | null;
  placements?: PlacementView[];
  unplaced?: UnplacedView[];
  targetOperationId?: string;
  /** The undo/redo's new state for its target operation. */
  targetState?: { id: string; state: 'APPLIED' | 'UNDONE'; redoable: boolean; row: OperationRow };
  /** Conflict status changes are made by the body itself (dismiss): skip detection. */
  skipConflictSync?: boolean;
  /** Extra task ids whose conflicts must be re-evaluated (settings changes, restored conflicts). */
  alsoCheck?: string[];
  /** Stored conflicts to re-evaluate whatever their tasks (settings changes, restored dismissals). */
  reconsider?: string[];
}

/** One operation: its identity, what to load up front, and its decide step. */
export interface OperationSpec {
  kind: string;
  /** The arguments as recorded in the operation log (never memory text: ids only). */
  args: Record<string, unknown>;
  /**
   * What identifies the request for idempotency (hashed, never stored), when it differs from
   * `args`: `remember` hashes its text while the log records only the new memory's id.
   */
  hashArgs?: Record<string, unknown>;
  /** What to load with the lock (from the arguments alone); more is loaded on demand. */
  load: LoadRequest;
  /** The decide step: pure, may run more than once (after NeedMore). */
  decide: (tx: WorldTx) => BodyResult;
  /** Applies the conflict policy and stores conflicts (skipped when the body says so). */
  settle: (tx: WorldTx, out: BodyResult) => SyncOutcome;
}

/** A DomainError that also carries conflicts to show (CONFLICT_REJECTED, ALTERNATIVE_STALE). */
export class DomainErrorWithConflicts extends DomainError {
  constructor(
    code: 'CONFLICT_REJECTED' | 'ALTERNATIVE_STALE' | 'NOT_FOUND',
    message: string,
    path: string[] | null,
    readonly conflicts: ConflictView[],
  ) {
    super(code, message, path);
  }
}

function liteToView(o: OpLite): OperationView {
  return {
    id: o.id,
    seq: o.seq,
    kind: o.kind,
    actor: o.actor,
    state: o.state,
    createdAt: o.created_at,
    targetOperationId: o.target_operation_id,
  };
}

/**
 * A named (prepared) statement: the load and write statements come in a few dozen shapes, and
 * planning them afresh on every call cost about as much as running them. pg prepares a name once
 * per connection; the server may then reuse a generic plan.
 */
function prepared(text: string, values: unknown[]): { name: string; text: string; values: unknown[] } {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `wp_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    if (preparedNames.size >= 1000) preparedNames.clear();
    preparedNames.set(text, name);
  }
  return { name, text, values };
}

/** Statement names by text (a few dozen shapes): hashing a 2–3 kB text per statement is not free. */
const preparedNames = new Map<string, string>();

/**
 * BEGIN, COMMIT and ROLLBACK: sent outside the trace, so they make no pg span (instrumentation-pg
 * only traces inside a span). The phase spans around them (planner.load, planner.write) time them;
 * a span each cost more than the statement itself on the server's side.
 */
function control(client: PoolClient, sql: 'BEGIN' | 'COMMIT' | 'ROLLBACK'): Promise<unknown> {
  return context.with(ROOT_CONTEXT, () => client.query(sql));
}

/** The undo state from the loaded undo window's summary, as it is after `change` (if any). */
export function undoStateOf(
  base: LoadedWorld,
  depth: number,
  change: {
    newOp?: OpLite;
    target?: { id: string; state: 'APPLIED' | 'UNDONE'; redoable: boolean; lite?: OpLite };
  } = {},
): UndoStateView {
  const s = base.undoSummary;
  let applied = s.applied;
  let heads = s.heads;
  let canRedo = base.redoTop.length > 0;
  const ordinary = change.newOp !== undefined && !NON_ORDINARY.has(change.newOp.kind);
  if (ordinary) {
    // The new operation enters the window; at full depth the oldest one leaves it.
    applied += 1 - (s.n >= depth && s.oldestApplied ? 1 : 0);
    heads = [change.newOp!, ...heads];
    canRedo = false;
  } else if (change.target) {
    const t = change.target;
    if (t.state === 'UNDONE') {
      applied -= 1;
      heads = heads.filter((h) => h.id !== t.id);
    } else if (t.lite && s.minSeq !== null && t.lite.seq >= s.minSeq) {
      applied += 1;
      heads = [{ ...t.lite, state: 'APPLIED' as const }, ...heads].sort((a, b) => b.seq - a.seq);
    }
    canRedo = t.redoable || base.redoTop.some((o) => o.id !== t.id);
  }
  return {
    canUndo: applied > 0,
    canRedo,
    depth: applied,
    nextUndo: heads[0] ? liteToView(heads[0]) : null,
  };
}

export class Runner {
  private readonly notifier: Notifier;

  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
    private readonly opts: { undoDepth: number; flags?: FlagRuntime },
    private readonly failureUndo: (userId: string) => Promise<UndoStateView>,
  ) {
    this.notifier = new Notifier(ds);
    this.flags = opts.flags ?? staticFlagRuntime();
  }

  private readonly flags: FlagRuntime;

  /** Resolves once the NOTIFY hints of every committed operation so far have been sent. */
  flushHints(): Promise<void> {
    return this.notifier.flushed();
  }

  private get pool(): Pool {
    return (this.ds.driver as unknown as { master: Pool }).master;
  }

  failure(
    undo: UndoStateView,
    errors: UserErrorDetail[],
    conflicts: ConflictView[] = [],
    flags: FlagEvaluationView[] = [],
  ): UpdateResultView {
    return {
      ok: false,
      operation: null,
      task: null,
      goal: null,
      tasks: [],
      changes: [],
      conflicts,
      errors: errors.map((e) => ({ code: e.code, message: e.message, path: e.path })),
      warnings: [],
      undo,
      memory: [],
      flags,
      placements: [],
      unplaced: [],
      replayed: false,
      preview: false,
    };
  }

  private async load(
    client: PoolClient,
    base: LoadedWorld,
    userId: string,
    req: LoadRequest,
    first: { idempotencyKey: string | null; undoDepth: number } | null,
    now: Date,
  ): Promise<void> {
    const { sql, params } = buildLoad(userId, req, first, now, ALTERNATIVE_HORIZON_DAYS);
    const res = await client.query(prepared(sql, params));
    const row = res.rows[0] as Record<string, unknown>;
    if (
      first &&
      row.user &&
      String((row.user as { event_seq: unknown }).event_seq) !== String(row.snap_event_seq)
    ) {
      // The lock was waited for: the statement's snapshot predates the commit that released it.
      // Read again, now that the lock is held (a fresh snapshot).
      return this.load(client, base, userId, req, first, now);
    }
    base.absorb(req, row);
  }

  /**
   * Runs one operation inside its trace: the operation span (joined with the resolver's when there
   * is one), a child span per phase (load, decide, write, notify; detect_conflicts and
   * rank_alternatives inside decide), and the figures. Tracing does no I/O and adds no round trip.
   */
  async run(
    actor: Actor,
    spec: OperationSpec,
    opts: MutationOptions,
    attempt = 0,
  ): Promise<UpdateResultView> {
    const op = traceOperation(spec.kind, { userId: actor.userId });
    try {
      let result = await op.run(() => this.attempt(op, actor, spec, opts, attempt));
      if (opts.dryRun) result = { ...result, preview: true };
      if (!result.ok) op.setAttributes({ ok: false });
      op.end('ok');
      return result;
    } catch (err) {
      op.end(err);
      throw err;
    }
  }

  private async attempt(
    op: OperationTrace,
    actor: Actor,
    spec: OperationSpec,
    opts: MutationOptions,
    attempt: number,
  ): Promise<UpdateResultView> {
    const dryRun = opts.dryRun === true;
    // A dry run stores no idempotency record, so it neither reads nor replays one either.
    const key = dryRun ? null : (opts.idempotencyKey ?? null);
    if (key !== null && (key.length < 1 || [...key].length > 255)) {
      return this.failure(await this.failureUndo(actor.userId), [
        { code: 'VALIDATION', message: 'idempotencyKey must be 1–255 characters', path: ['idempotencyKey'] },
      ]);
    }
    // The request's fingerprint matters only to an idempotency key: not computed without one.
    const hash =
      key === null
        ? ''
        : createHash('sha256')
            .update(
              JSON.stringify({
                kind: spec.kind,
                args: spec.hashArgs ?? spec.args,
                onConflict: opts.onConflict ?? 'ALLOW',
              }),
            )
            .digest('hex');
    const client = await this.pool.connect();
    let inTx = false;
    let broken: Error | undefined;
    // A connection that dies between statements (a Postgres restart, a terminated backend) emits
    // 'error' on the checked-out client: without a listener that is an uncaught exception that
    // takes the process down. Its next statement fails anyway; here it is only marked broken.
    const onError = (e: Error): void => {
      broken ??= e;
    };
    client.on('error', onError);
    try {
      await control(client, 'BEGIN');
      inTx = true;
      const base = new LoadedWorld();
      const now = this.clock.now();
      await op.phaseAsync('load', () =>
        this.load(
          client,
          base,
          actor.userId,
          spec.load,
          { idempotencyKey: key, undoDepth: this.opts.undoDepth },
          now,
        ),
      );
      if (!base.user) {
        await control(client, 'ROLLBACK');
        inTx = false;
        return this.failure({ canUndo: false, canRedo: false, depth: 0, nextUndo: null }, [
          { code: 'NOT_FOUND', message: 'Your account no longer exists', path: null },
        ]);
      }
      const undoNow = () => undoStateOf(base, this.opts.undoDepth);
      const prior = base.idempotency;
      if (key !== null && prior && now.getTime() - prior.created_at.getTime() < IDEMPOTENCY_TTL_MS) {
        await control(client, 'ROLLBACK');
        inTx = false;
        if (prior.request_hash !== hash) {
          return this.failure(undoNow(), [
            {
              code: 'VALIDATION',
              message: 'idempotencyKey was already used for a different request',
              path: ['idempotencyKey'],
            },
          ]);
        }
        // The first result, with the undo state as it is now (it may have moved since).
        return { ...(prior.result as UpdateResultView), undo: undoNow(), replayed: true, preview: false };
      }
      // An agent acts only when the user allows it (checked on the user row just loaded).
      const agent = agentNameOf(actor.actor);
      if (agent !== null && !agentAllowed(base.user.allowed_agents, agent)) {
        await client.query('ROLLBACK');
        inTx = false;
        return this.failure(undoNow(), [agentRefusal(agent)]);
      }
      // Flags: evaluated once, in memory, from the user row just loaded; a refusal writes nothing.
      const gates = openGates(this.flags, base.user, spec, opts.onConflict);
      if (gates.refused.length > 0) {
        await control(client, 'ROLLBACK');
        inTx = false;
        return this.failure(undoNow(), gates.refused, [], gates.evaluations());
      }

      let decided: {
        tx: WorldTx;
        result: UpdateResultView;
        lastEventSeq: number;
        write: { sql: string; params: unknown[] };
      } | null = null;
      let request = spec.load;
      while (!decided) {
        const tx = new WorldTx(base, now, actor);
        bindFlags(tx, gates);
        try {
          decided = op.phase('decide', () => this.decide(tx, base, actor, spec, key, hash, gates));
        } catch (err) {
          if (err instanceof NeedMore) {
            if (base.loads >= MAX_LOADS)
              throw new Error(`${spec.kind}: still missing data after ${base.loads} loads`);
            request = mergeRequests(request, err.request);
            await op.phaseAsync('load', () => this.load(client, base, actor.userId, err.request, null, now));
            continue;
          }
          if (err instanceof DomainError) {
            await control(client, 'ROLLBACK');
            inTx = false;
            const conflicts = err instanceof DomainErrorWithConflicts ? err.conflicts : [];
            return this.failure(undoNow(), err.details, conflicts, gates.evaluations());
          }
          throw err;
        }
      }
      const { write, lastEventSeq, result } = decided;
      if (dryRun) {
        // The preview: everything decided, nothing written (one round trip fewer than a write).
        await client.query('ROLLBACK');
        inTx = false;
        op.setAttributes({ conflicts: result.conflicts.length, dryRun: true, ok: true });
        return result;
      }
      await op.phaseAsync('write', async () => {
        await client.query(prepared(write.sql, write.params));
        await control(client, 'COMMIT');
      });
      inTx = false;
      recordUsage(this.flags, gates, spec.kind, decided.tx);
      op.phase('notify', () => {
        commitSignals(this.ds).emit('committed', actor.userId, lastEventSeq);
        this.notifier.hint(actor.userId, lastEventSeq);
      });
      op.setAttributes({ conflicts: result.conflicts.length, undoDepth: result.undo.depth, ok: true });
      return result;
    } catch (err) {
      if (inTx) {
        try {
          await control(client, 'ROLLBACK');
        } catch (e) {
          broken = e as Error; // the connection is unusable: do not return it to the pool
        }
      }
      const code = (err as { code?: string }).code;
      // The user lock makes these rare; one retry settles a lost race cleanly. A unique violation
      // (23505) is never retried: it means the decide step wrote something inconsistent.
      if (!((code === '40001' || code === '40P01') && attempt === 0)) throw err;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
    return this.attempt(op, actor, spec, opts, attempt + 1);
  }

  /** The decide step: the body, the conflict policy, then the operation record and the answer. */
  private decide(
    tx: WorldTx,
    base: LoadedWorld,
    actor: Actor,
    spec: OperationSpec,
    key: string | null,
    hash: string,
    flags: OperationFlags,
  ): {
    tx: WorldTx;
    result: UpdateResultView;
    lastEventSeq: number;
    write: { sql: string; params: unknown[] };
  } {
    const out = spec.decide(tx);
    const op = activeOperation();
    const sync = op ? op.phase('detect_conflicts', () => spec.settle(tx, out)) : spec.settle(tx, out);
    if (out.targetState) {
      tx.operationStates.push({
        id: out.targetState.id,
        state: out.targetState.state,
        redoable: out.targetState.redoable,
      });
    }
    const effective = tx.tracker.effective();
    const seq = Number(base.user.op_seq) + 1;
    const opId = randomUUID();
    const forward: Snapshot[] = effective.map((e) => ({ entity: e.entity, id: e.id, row: e.after }));
    const inverse: Snapshot[] = effective.map((e) => ({ entity: e.entity, id: e.id, row: e.before }));
    const operation: OperationView = {
      id: opId,
      seq,
      kind: spec.kind,
      actor: actor.actor,
      state: 'APPLIED',
      createdAt: tx.now,
      targetOperationId: out.targetOperationId ?? null,
    };
    const changes = [...fieldChanges(effective), ...sync.changes];
    const events = [
      { topic: 'plan' as const, type: spec.kind, payload: { operation, changes } },
      ...tx.events,
    ];
    const eventSeqFrom = Number(base.user.event_seq) + 1;
    const taskIds = effective.filter((e) => e.entity === 'Task' && e.after !== null).map((e) => e.id);
    const byId = new Map(tx.tasks(taskIds).map((t) => [t.id, t]));
    const main = out.task !== undefined ? (out.task ? (byId.get(out.task.id) ?? out.task) : null) : null;
    const undo = undoStateOf(base, this.opts.undoDepth, {
      newOp: {
        id: opId,
        seq,
        kind: spec.kind,
        actor: actor.actor,
        state: 'APPLIED',
        created_at: tx.now,
        target_operation_id: operation.targetOperationId,
      },
      target: out.targetState && {
        ...out.targetState,
        lite: {
          id: out.targetState.row.id,
          seq: Number(out.targetState.row.seq),
          kind: out.targetState.row.kind,
          actor: out.targetState.row.actor,
          state: out.targetState.row.state,
          created_at: out.targetState.row.created_at,
          target_operation_id: out.targetState.row.target_operation_id,
        },
      },
    });
    const result: UpdateResultView = {
      ok: true,
      operation,
      task: main,
      goal: out.goal ?? null,
      tasks: taskIds.map((id) => byId.get(id)!).filter(Boolean),
      changes,
      conflicts: sync.open,
      errors: [],
      warnings: tx.warnings,
      undo,
      memory: tx.memoryNotes,
      flags: flags.evaluations(),
      placements: out.placements ?? [],
      unplaced: out.unplaced ?? [],
      replayed: false,
      preview: false,
    };
    const write = buildWrite(tx, base, {
      operation: {
        id: opId,
        seq,
        actor: actor.actor,
        kind: spec.kind,
        input: spec.args,
        forward,
        inverse,
        entities: effective.map((e) => entityKey(e.entity, e.id)),
        targetOperationId: out.targetOperationId ?? null,
        clearsRedo: !NON_ORDINARY.has(spec.kind),
        flags: result.flags,
      },
      events,
      eventSeqFrom,
      idempotency:
        key === null
          ? null
          : {
              key,
              hash,
              // Memory text never leaves the memory tables: the stored answer keeps the notes' ids.
              result: JSON.parse(JSON.stringify({ ...result, memory: result.memory.map(redactNote) })),
              expiredBefore: new Date(tx.now.getTime() - IDEMPOTENCY_TTL_MS),
            },
      extra: tx.extraWrites,
    });
    return { tx, result, lastEventSeq: eventSeqFrom + events.length - 1, write };
  }
}

/** A memory note as an idempotency record keeps it: the id and effect, not the memory's text. */
export const REDACTED_MEMORY_TEXT = '(memory text is not kept with the retry record; see memories)';
function redactNote(n: MemoryNoteView): MemoryNoteView {
  return { ...n, text: REDACTED_MEMORY_TEXT };
}

export { mapOperation };
