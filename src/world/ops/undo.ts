/**
 * Undo and redo: bring the entities an operation changed back to their snapshots, exactly, or
 * refuse with UNDO_BLOCKED naming the later operation in the way. Conflicts are derived state:
 * a restored conflict decision is re-evaluated instead of written back blindly (a key never gets a
 * second OPEN row, and a restored dismissal whose cause is gone ends RESOLVED), and undoing a
 * settings change re-checks every conflict the settings decide.
 */
import { DomainError } from '../errors';
import { mapOperation, type OperationRow } from '../rows';
import { NON_ORDINARY, type BodyResult, type OperationSpec } from '../runner';
import { entityKey, sameContent, type EntityName, type Row, type Snapshot } from '../snapshots';
import type { WorldTx } from '../tx';
import { agentNameOf } from '../agents';
import { isUuid } from '../user-service';
import type { Actor, TaskView } from '../views';
import { settleConflicts } from './common';
import { settingsRecheck, settingsRecheckLoad } from './settings';

/**
 * Who may undo or redo a user's operations: the user, or an agent acting for them. Anyone else is
 * answered as if the operations did not exist.
 */
function ensureMayUndo(actor: Actor, path: string[] | null): void {
  if (actor.actor === `user:${actor.userId}` || agentNameOf(actor.actor) !== null) return;
  throw new DomainError('NOT_FOUND', 'No such operation', path);
}

/**
 * An agent undoes or redoes only its own operations, and the user's own ones when the user allows
 * it (settings: agentsMayUndoMine); never another agent's. The user may undo anything of theirs.
 */
function ensureAgentMay(tx: WorldTx, actor: Actor, target: OperationRow, path: string[] | null): void {
  if (agentNameOf(actor.actor) === null || target.actor === actor.actor) return;
  if (target.actor === `user:${actor.userId}` && tx.user.agents_may_undo_mine) return;
  throw new DomainError(
    'FORBIDDEN',
    target.actor === `user:${actor.userId}`
      ? `Operation #${target.seq} is the user's own: the user has not allowed agents to undo it (settings: agentsMayUndoMine)`
      : `Operation #${target.seq} was done by ${target.actor}: an agent may undo only its own operations`,
    path,
  );
}

/**
 * An operation's forward and inverse snapshots, restricted to the entities whose content it really
 * changed: an entity it only touched (a version bump) is neither checked nor restored, so undoing
 * it never overwrites what a later operation did to that entity.
 */
function contentDelta(op: OperationRow): { forward: Snapshot[]; inverse: Snapshot[] } {
  const inverse = new Map((op.inverse as Snapshot[]).map((s) => [entityKey(s.entity, s.id), s]));
  const forward: Snapshot[] = [];
  const before: Snapshot[] = [];
  for (const f of op.forward as Snapshot[]) {
    const i = inverse.get(entityKey(f.entity, f.id));
    if (!i || sameContent(f.row, i.row)) continue;
    forward.push(f);
    before.push(i);
  }
  return { forward, inverse: before };
}

/**
 * The applied operation, later than `op`, that last changed an entity: ordinary operations first
 * (an UNDO/REDO cannot itself be undone, so naming one would not help the user).
 */
function blockerOf(tx: WorldTx, op: OperationRow, entity: EntityName, id: string) {
  const key = entityKey(entity, id);
  tx.need({ blockers: { afterSeq: Number(op.seq), entities: [key] } });
  return tx.base.blockers
    .filter((b) => b.entities.includes(key))
    .sort((a, b) => Number(NON_ORDINARY.has(a.kind)) - Number(NON_ORDINARY.has(b.kind)) || b.seq - a.seq)[0];
}

function blocked(tx: WorldTx, op: OperationRow, entity: EntityName, id: string, why: string): never {
  const b = blockerOf(tx, op, entity, id);
  throw new DomainError(
    'UNDO_BLOCKED',
    b
      ? `${why} (operation #${b.seq}, ${b.kind}, id ${b.id}): undo that first`
      : `${why}: the operation can no longer be cleanly reversed`,
    ['operationId'],
  );
}

/** Each task, goal and settings entity must still be as `expected` (content, not bookkeeping). */
function ensureClean(tx: WorldTx, op: OperationRow, expected: Snapshot[]): void {
  for (const s of expected) {
    if (s.entity === 'Conflict') continue; // derived state: re-evaluated, never a reason to block
    const current = tx.snapshot(s.entity, s.id);
    if (sameContent(current, s.row)) continue;
    const b = blockerOf(tx, op, s.entity, s.id);
    throw new DomainError(
      'UNDO_BLOCKED',
      b
        ? `${s.entity} ${s.id} was changed since by operation #${b.seq} (${b.kind}, id ${b.id}): undo that first`
        : `${s.entity} ${s.id} was changed since: the operation can no longer be cleanly reversed`,
      ['operationId'],
    );
  }
}

/**
 * An undo by id: no APPLIED ordinary operation after it may have touched what it changed, even if
 * the content came back (A → B → A). Undoing it anyway would strand that later operation: its own
 * undo could never be clean again, and "undo everything" would stop on it.
 */
function ensureNoLaterChange(tx: WorldTx, changed: Snapshot[]): void {
  const keys = new Set(changed.filter((s) => s.entity !== 'Conflict').map((s) => entityKey(s.entity, s.id)));
  const later = tx.base.laterOrdinary
    .filter((b) => b.entities.some((e) => keys.has(e)))
    .sort((a, b) => b.seq - a.seq)[0];
  if (!later) return;
  const what = later.entities.find((e) => keys.has(e))!.replace(':', ' ');
  throw new DomainError(
    'UNDO_BLOCKED',
    `${what} was changed since by operation #${later.seq} (${later.kind}, id ${later.id}): undo that first`,
    ['operationId'],
  );
}

/**
 * Applying `snaps` must neither leave a dangling reference nor silently rewrite an entity outside
 * them: every dependency and goal a restored task names must exist (or come back in the same
 * pass), and no task outside the pass may still depend on a task (or belong to a goal) that the
 * pass removes. Otherwise UNDO_BLOCKED, naming the later operation in the way.
 */
function ensureReferences(tx: WorldTx, op: OperationRow, snaps: Snapshot[]): void {
  const inPass = new Map(snaps.map((s) => [entityKey(s.entity, s.id), s.row]));
  for (const s of snaps) {
    if (s.entity !== 'Task' || s.row === null) continue;
    const deps = ((s.row.dependsOn as string[] | undefined) ?? []).filter(
      (d) => !inPass.has(entityKey('Task', d)),
    );
    for (const d of tx.missingTasks(deps))
      blocked(tx, op, 'Task', d, `Task ${d}, a dependency of task ${s.id}, no longer exists`);
    const goalId = (s.row.goalId as string | null | undefined) ?? null;
    if (goalId !== null && !inPass.has(entityKey('Goal', goalId)) && !tx.goal(goalId)) {
      blocked(tx, op, 'Goal', goalId, `Goal ${goalId} of task ${s.id} no longer exists`);
    }
  }
  for (const s of snaps) {
    if (s.row !== null || (s.entity !== 'Task' && s.entity !== 'Goal')) continue;
    const refs = s.entity === 'Task' ? tx.dependentsOf(s.id) : tx.tasksOfGoal(s.id);
    for (const r of refs) {
      const target = inPass.get(entityKey('Task', r));
      if (target === null) continue; // removed in the same pass
      if (target !== undefined) {
        const still =
          s.entity === 'Task'
            ? ((target.dependsOn as string[] | undefined) ?? []).includes(s.id)
            : target.goalId === s.id;
        if (!still) continue; // the pass itself drops the reference
      }
      blocked(
        tx,
        op,
        'Task',
        r,
        s.entity === 'Task' ? `Task ${r} depends on task ${s.id}` : `Task ${r} belongs to goal ${s.id}`,
      );
    }
  }
}

/**
 * Brings a conflict decision back, re-evaluated: a conflict is reopened only when no other row of
 * its key is open (that one then stands for it), and every reopened one is re-checked by the sync
 * (RESOLVED when its cause is gone). Closing decisions apply only to a conflict still open.
 */
function restoreConflict(tx: WorldTx, id: string, target: Row | null, reconsider: string[]): void {
  const current = tx.knownConflict(id) ?? tx.conflictRow(id);
  if (!current || !target) return;
  const status = target.status as 'OPEN' | 'DISMISSED' | 'RESOLVED';
  const chosen = (target.chosenAlternativeId as string | null | undefined) ?? null;
  if (status === 'OPEN') {
    if (current.status === 'OPEN') return;
    const live = tx.activeConflictsByKeys([current.key]).some((c) => c.id !== id && c.status === 'OPEN');
    if (live) return;
    tx.setConflictStatus(id, 'OPEN', null);
    reconsider.push(id);
  } else if (current.status === 'OPEN') {
    tx.setConflictStatus(id, status, chosen);
  }
}

/** Brings every entity to its snapshot, in an order that satisfies references. */
function applySnapshots(tx: WorldTx, snaps: Snapshot[]): Pick<BodyResult, 'alsoCheck' | 'reconsider'> {
  const of = (e: EntityName, present: boolean) =>
    snaps.filter((s) => s.entity === e && (s.row !== null) === present);
  for (const s of of('Goal', true)) tx.restore('Goal', s.id, s.row);
  // Tasks first without dependencies (a dependency may be a task restored in this same pass) ...
  for (const s of of('Task', true)) tx.restore('Task', s.id, { ...s.row!, dependsOn: [] });
  // ... then with them.
  for (const s of of('Task', true)) tx.restore('Task', s.id, s.row);
  for (const s of of('Task', false)) tx.restore('Task', s.id, null);
  for (const s of of('Goal', false)) tx.restore('Goal', s.id, null);
  let recheck: Pick<BodyResult, 'alsoCheck' | 'reconsider'> = {};
  for (const s of snaps.filter((x) => x.entity === 'User')) {
    tx.restore('User', s.id, s.row);
    recheck = settingsRecheck(tx);
  }
  const reconsider = [...(recheck.reconsider ?? [])];
  for (const s of snaps.filter((x) => x.entity === 'Conflict')) restoreConflict(tx, s.id, s.row, reconsider);
  const alsoCheck = [...(recheck.alsoCheck ?? [])];
  for (const id of reconsider) alsoCheck.push(...(tx.knownConflict(id)?.task_ids ?? []));
  return { alsoCheck: [...new Set(alsoCheck)], reconsider: [...new Set(reconsider)] };
}

function mainTaskOf(tx: WorldTx, op: OperationRow): TaskView | null {
  const first = (op.forward as Snapshot[]).find((s) => s.entity === 'Task');
  return first ? tx.task(first.id) : null;
}

/** A settings snapshot in the delta means every conflict may change: load what that re-check reads. */
function recheckNeeds(tx: WorldTx, snaps: Snapshot[]): void {
  if (snaps.some((s) => s.entity === 'User')) tx.need(settingsRecheckLoad(tx.now));
}

export function undoOp(actor: Actor, operationId: string | null, undoDepth: number): OperationSpec {
  return {
    kind: 'UNDO',
    args: { operationId },
    load:
      operationId === null
        ? // An agent's "undo the latest" is the latest of ITS operations (or the user's, if allowed).
          {
            latestUndoable: true,
            latestUndoableBy: agentNameOf(actor.actor) !== null ? actor.actor : undefined,
          }
        : isUuid(operationId)
          ? { operationIds: [operationId], laterOrdinaryOf: operationId }
          : { operationIds: [] },
    decide: (tx) => {
      ensureMayUndo(actor, operationId === null ? null : ['operationId']);
      const window = tx.base.undoSummary;
      let target: OperationRow | null | undefined;
      if (operationId === null) {
        target = tx.base.latestUndoable;
        if (!target)
          throw new DomainError(
            'NOTHING_TO_UNDO',
            agentNameOf(actor.actor) !== null
              ? 'There is no operation of this agent to undo'
              : 'There is no operation to undo',
            null,
          );
      } else {
        target = isUuid(operationId) ? tx.base.operations.get(operationId) : null;
        if (!target) throw new DomainError('NOT_FOUND', 'No such operation', ['operationId']);
        if (NON_ORDINARY.has(target.kind)) {
          throw new DomainError(
            'VALIDATION',
            target.kind === 'UNDO' || target.kind === 'REDO'
              ? `An ${target.kind} cannot itself be undone: use ${target.kind === 'UNDO' ? 'redo' : 'undo'}`
              : `${target.kind} is final and cannot be undone (forget a remembered fact with forgetMemories)`,
            ['operationId'],
          );
        }
        if (target.state === 'UNDONE')
          throw new DomainError('NOTHING_TO_UNDO', 'That operation is already undone', ['operationId']);
        if (window.minSeq === null || Number(target.seq) < window.minSeq) {
          throw new DomainError(
            'UNDO_BLOCKED',
            `Operation #${target.seq} is older than the undo depth (${undoDepth})`,
            ['operationId'],
          );
        }
      }
      ensureAgentMay(tx, actor, target, operationId === null ? null : ['operationId']);
      const delta = contentDelta(target);
      if (operationId !== null) ensureNoLaterChange(tx, delta.forward);
      recheckNeeds(tx, delta.inverse);
      ensureClean(tx, target, delta.forward);
      ensureReferences(tx, target, delta.inverse);
      const recheck = applySnapshots(tx, delta.inverse);
      tx.events.push({
        topic: 'undo',
        type: 'UNDONE',
        payload: { operation: { ...mapOperation(target), state: 'UNDONE' } },
      });
      return {
        targetOperationId: target.id,
        task: mainTaskOf(tx, target),
        targetState: { id: target.id, state: 'UNDONE', redoable: true, row: target },
        ...recheck,
      };
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}

export function redoOp(actor: Actor): OperationSpec {
  return {
    kind: 'REDO',
    args: {},
    load: { redoTarget: true },
    decide: (tx) => {
      ensureMayUndo(actor, null);
      const target = tx.base.redoTarget;
      if (!target) throw new DomainError('NOTHING_TO_REDO', 'There is no undone operation to redo', null);
      ensureAgentMay(tx, actor, target, null);
      const delta = contentDelta(target);
      recheckNeeds(tx, delta.forward);
      ensureClean(tx, target, delta.inverse);
      ensureReferences(tx, target, delta.forward);
      const recheck = applySnapshots(tx, delta.forward);
      tx.events.push({
        topic: 'undo',
        type: 'REDONE',
        payload: { operation: { ...mapOperation(target), state: 'APPLIED' } },
      });
      return {
        targetOperationId: target.id,
        task: mainTaskOf(tx, target),
        targetState: { id: target.id, state: 'APPLIED', redoable: false, row: target },
        ...recheck,
      };
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}
