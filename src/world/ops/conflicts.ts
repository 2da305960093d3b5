/** Conflict decisions: resolve (apply an offered alternative) and dismiss. */
import { detectConflicts } from '../../domain/conflicts';
import type { DetectedConflict } from '../../domain/types';
import { alternativesFor, checkAlternative, loadRelevantWorld, type AlternativeFit } from '../conflict-sync';
import { DomainError } from '../errors';
import { DomainErrorWithConflicts, type OperationSpec } from '../runner';
import type { WorldTx } from '../tx';
import { isUuid } from '../user-service';
import type { AlternativeView, ConflictView } from '../views';
import { applyAlternative, emptySync, settleConflicts } from './common';

function requireConflict(tx: WorldTx, id: string): { view: ConflictView; key: string } {
  const row = isUuid(id) ? tx.conflictRow(id) : null;
  if (!row) throw new DomainError('NOT_FOUND', 'No such conflict', ['conflictId']);
  return { view: tx.conflict(id)!, key: row.key };
}

/** Recomputes a stored conflict against the current plan: the detection (null when gone) and fresh alternatives. */
function freshAlternatives(
  tx: WorldTx,
  conflict: ConflictView,
  key: string,
): { detected: DetectedConflict | null; alternatives: AlternativeView[] } {
  const extraDays = conflict.kind === 'OVER_CAPACITY' ? [key.slice('OVER_CAPACITY:'.length)] : [];
  const near = loadRelevantWorld(tx, conflict.taskIds, [], extraDays);
  const detected = detectConflicts([...near.values()], new Set(conflict.taskIds), tx.settings(), {
    extraDays,
  });
  const d = detected.find((x) => x.key === key);
  if (!d) return { detected: null, alternatives: [] };
  return { detected: d, alternatives: alternativesFor(tx, d, near, tx.settings()) };
}

export function resolveConflictOp(conflictId: string, alternativeId: string): OperationSpec {
  return {
    kind: 'RESOLVE_CONFLICT',
    args: { conflictId, alternativeId },
    load: { conflictIds: isUuid(conflictId) ? [conflictId] : [] },
    decide: (tx) => {
      const { view: conflict, key } = requireConflict(tx, conflictId);
      if (conflict.status !== 'OPEN') {
        throw new DomainError('VALIDATION', `The conflict is already ${conflict.status}`, ['conflictId']);
      }
      const ref = { kind: conflict.kind, key, taskIds: conflict.taskIds };
      // The stored alternative is re-checked against the plan as it is now (not looked up in a fresh top 5:
      // an alternative that still fits must not be refused because newer ones outrank it).
      const stored = conflict.alternatives.find((a) => a.id === alternativeId);
      let alt: AlternativeView | undefined;
      let fit: AlternativeFit = 'STALE';
      if (stored) {
        fit = checkAlternative(tx, ref, stored);
        if (fit !== 'STALE') alt = stored;
      }
      if (!alt) {
        const fresh = freshAlternatives(tx, conflict, key);
        if (!fresh.detected) {
          // Its cause is already gone: re-evaluating the conflict's tasks marks it RESOLVED.
          tx.warnings.push(
            'The conflict no longer holds: it is marked RESOLVED and the alternative was not applied.',
          );
          return { task: null, alsoCheck: conflict.taskIds };
        }
        const freshView: ConflictView = {
          ...conflict,
          message: fresh.detected.message,
          taskIds: fresh.detected.taskIds,
          alternatives: fresh.alternatives,
        };
        const candidate = fresh.alternatives.find((a) => a.id === alternativeId);
        if (candidate) fit = checkAlternative(tx, ref, candidate);
        if (!candidate || fit === 'STALE') {
          throw new DomainErrorWithConflicts(
            stored || candidate ? 'ALTERNATIVE_STALE' : 'NOT_FOUND',
            stored || candidate
              ? 'The plan changed since this alternative was offered and it no longer fits: choose one of the fresh alternatives'
              : 'No such alternative for this conflict',
            ['alternativeId'],
            [freshView],
          );
        }
        alt = candidate;
      }
      applyAlternative(tx, alt);
      if (fit === 'PARTIAL') {
        // Only lowers the day's total: the conflict still holds and stays OPEN (refreshed by detection).
        tx.warnings.push(
          `Applied: ${alt.description}. The day is still over capacity, so the conflict stays OPEN.`,
        );
      } else {
        tx.setConflictStatus(conflict.id, 'RESOLVED', alt.id);
        tx.events.push({
          topic: 'conflict',
          type: 'RESOLVED',
          payload: { conflict: { ...conflict, status: 'RESOLVED', chosenAlternativeId: alt.id } },
        });
      }
      const task = alt.taskId ? tx.task(alt.taskId) : null;
      return { task };
    },
    settle: (tx, out) => settleConflicts(tx, 'ALLOW', out),
  };
}

export function dismissConflictOp(conflictId: string): OperationSpec {
  return {
    kind: 'DISMISS_CONFLICT',
    args: { conflictId },
    load: { conflictIds: isUuid(conflictId) ? [conflictId] : [], windowsOfFocus: false },
    decide: (tx) => {
      const { view: conflict } = requireConflict(tx, conflictId);
      if (conflict.status !== 'OPEN') {
        throw new DomainError('VALIDATION', `The conflict is already ${conflict.status}`, ['conflictId']);
      }
      tx.setConflictStatus(conflict.id, 'DISMISSED', null);
      tx.events.push({
        topic: 'conflict',
        type: 'DISMISSED',
        payload: { conflict: { ...conflict, status: 'DISMISSED' } },
      });
      return { skipConflictSync: true };
    },
    settle: () => emptySync(),
  };
}
