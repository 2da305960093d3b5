/**
 * What the operation families share: validation helpers, reference checks, and the conflict policy
 * (ALLOW, REJECT, AUTO_RESOLVE) applied before the conflicts are stored. All of it is decide-step
 * code: it reads the loaded world through WorldTx and stages changes, never touching the database.
 */
import { randomUUID } from 'node:crypto';
import { detectConflicts } from '../../domain/conflicts';
import type { ConflictPolicy, DetectedConflict, PlanTask } from '../../domain/types';
import type { Problem } from '../../domain/validation';
import {
  alternativesFor,
  alternativesForAll,
  loadRelevantWorld,
  syncConflicts,
  type SyncOutcome,
} from '../conflict-sync';
import { DomainError, type UserErrorDetail } from '../errors';
import { noteAlternativeChosen } from '../flag-gates';
import { DomainErrorWithConflicts, type BodyResult } from '../runner';
import type { TaskPatch, WorldTx } from '../tx';
import { isUuid } from '../user-service';
import type { AlternativeView, ConflictView, TaskView } from '../views';

const AUTO_RESOLVE_ROUNDS = 5;

export function problemsToError(problems: Problem[]): DomainError {
  return DomainError.many(problems.map((p) => ({ code: 'VALIDATION', message: p.message, path: p.path })));
}

export function emptySync(): SyncOutcome {
  return { opened: [], resolved: [], open: [], changes: [] };
}

export function asDate(v: Date | string | null): Date | null {
  return v === null ? null : new Date(v);
}

export function requireTask(tx: WorldTx, id: string): TaskView {
  const t = isUuid(id) ? tx.task(id) : null;
  if (!t) throw new DomainError('NOT_FOUND', 'No such task', ['id']);
  return t;
}

/** The goal and dependencies must be the user's own, and dependencies must not close a cycle. */
export function checkReferences(
  tx: WorldTx,
  taskId: string | null,
  goalId: string | null,
  deps: string[],
): void {
  const problems: UserErrorDetail[] = [];
  if (goalId !== null && (!isUuid(goalId) || !tx.goal(goalId))) {
    problems.push({
      code: 'VALIDATION',
      message: 'goalId is not one of your goals',
      path: ['input', 'goalId'],
    });
  }
  const bad = deps.filter((d) => !isUuid(d));
  const missing = new Set([...bad, ...tx.missingTasks(deps.filter(isUuid))]);
  deps.forEach((d, i) => {
    if (missing.has(d))
      problems.push({
        code: 'VALIDATION',
        message: `dependsOn: ${d} is not one of your tasks`,
        path: ['input', 'dependsOn', String(i)],
      });
  });
  if (problems.length === 0 && taskId !== null && deps.length > 0) {
    if (deps.includes(taskId) || tx.wouldCycle(taskId, deps)) {
      problems.push({
        code: 'VALIDATION',
        message: 'dependsOn would create a dependency cycle',
        path: ['input', 'dependsOn'],
      });
    }
  }
  if (problems.length > 0) throw DomainError.many(problems);
}

/** Applies an offered alternative: a MOVE or a BACKLOG of its task. */
export function applyAlternative(tx: WorldTx, alt: AlternativeView): void {
  if (!alt.taskId) return;
  const t = tx.task(alt.taskId);
  if (!t)
    throw new DomainError('ALTERNATIVE_STALE', 'The task of this alternative no longer exists', [
      'alternativeId',
    ]);
  noteAlternativeChosen(tx); // usage "alternative chosen", counted after the commit
  if (alt.action === 'BACKLOG') {
    tx.updateTask(alt.taskId, { scheduledStart: null, scheduledEnd: null, status: 'BACKLOG' }, null, t);
  } else {
    const patch: TaskPatch = { scheduledStart: new Date(alt.start!), scheduledEnd: new Date(alt.end!) };
    if (t.status === 'BACKLOG' || t.status === 'TODO') patch.status = 'SCHEDULED';
    tx.updateTask(alt.taskId, patch, null, t);
  }
}

/** Detected conflicts for `touched` that are not already stored OPEN / dismissed (what a change would add). */
function newConflicts(
  tx: WorldTx,
  touched: string[],
): { fresh: DetectedConflict[]; near: Map<string, PlanTask> } {
  const near = loadRelevantWorld(tx, touched, tx.oldRanges, []);
  const detected = detectConflicts([...near.values()], new Set(touched), tx.settings());
  if (detected.length === 0) return { fresh: [], near };
  const known = new Set(tx.activeConflictsByKeys(detected.map((d) => d.key)).map((c) => c.key));
  return { fresh: detected.filter((d) => !known.has(d.key)), near };
}

/** Applies the conflict policy, then stores conflicts. */
export function settleConflicts(tx: WorldTx, policy: ConflictPolicy, out: BodyResult): SyncOutcome {
  if (out.skipConflictSync) return emptySync();
  const extra = out.alsoCheck ?? [];
  const touched = () => [...new Set([...tx.tracker.ids('Task'), ...extra])];
  if (policy === 'REJECT') {
    const { fresh, near } = newConflicts(tx, touched());
    if (fresh.length > 0) {
      const offered = alternativesForAll(tx, fresh, near, tx.settings());
      const views: ConflictView[] = fresh.map((d) => ({
        id: randomUUID(),
        kind: d.kind,
        status: 'OPEN',
        message: d.message,
        taskIds: d.taskIds,
        alternatives: offered.get(d.key)!,
        chosenAlternativeId: null,
        detectedAt: tx.now,
        closedAt: null,
      }));
      throw new DomainErrorWithConflicts(
        'CONFLICT_REJECTED',
        `The change would cause ${fresh.length} conflict(s); nothing was written (onConflict: REJECT)`,
        null,
        views,
      );
    }
  } else if (policy === 'AUTO_RESOLVE') {
    for (let round = 0; round < AUTO_RESOLVE_ROUNDS; round++) {
      const { fresh, near } = newConflicts(tx, touched());
      if (fresh.length === 0) break;
      const d = fresh[0]!;
      const best = alternativesFor(tx, d, near, tx.settings())[0];
      if (!best) {
        tx.warnings.push(`AUTO_RESOLVE: no alternative found for: ${d.message}`);
        break;
      }
      applyAlternative(tx, best);
      tx.warnings.push(`AUTO_RESOLVE: ${d.message} → applied: ${best.description}`);
    }
  }
  const reconsider = (out.reconsider ?? [])
    .map((id) => tx.knownConflict(id))
    .filter((c): c is NonNullable<typeof c> => c !== undefined);
  return syncConflicts(tx, touched(), reconsider);
}
