/**
 * Ranking strategies of conflict alternatives, as pure functions (no I/O, no clock): the
 * `alternative_ranking` experiment picks one per user.
 *
 * - "current": the order src/domain/alternatives.ts already produces (score descending, then start).
 * - "smallest_move": prefer the alternative that moves a task the least: MOVE proposals first, by
 *   the absolute shift of the task's start from where it is now, ties by score descending then start
 *   ascending; BACKLOG proposals (unscheduling) after every move, by score.
 *
 * Structural types, so src/domain need not be imported; AlternativeProposal fits.
 */
import { ALTERNATIVE_RANKING, type AlternativeRankingVariant } from './keys';

export interface RankableAlternative {
  action: 'MOVE' | 'BACKLOG';
  taskId: string;
  start: Date | null;
  score: number;
}

/** How far a MOVE shifts its task, in ms (Infinity when the task's current start is unknown). */
export function moveDistance(a: RankableAlternative, currentStart: (taskId: string) => Date | null): number {
  if (a.action !== 'MOVE' || a.start === null) return Infinity;
  const from = currentStart(a.taskId);
  return from === null ? Infinity : Math.abs(a.start.getTime() - from.getTime());
}

/** Orders alternatives by the smallest move. Returns a new array; stable for equal keys. */
export function rankBySmallestMove<T extends RankableAlternative>(
  alternatives: readonly T[],
  currentStart: (taskId: string) => Date | null,
): T[] {
  return alternatives
    .map((a, i) => ({ a, i, d: moveDistance(a, currentStart), backlog: a.action === 'BACKLOG' ? 1 : 0 }))
    .sort(
      (x, y) =>
        x.backlog - y.backlog ||
        x.d - y.d || // Infinity - Infinity is NaN: falsy, falls through to the score
        y.a.score - x.a.score ||
        (x.a.start?.getTime() ?? Infinity) - (y.a.start?.getTime() ?? Infinity) ||
        x.i - y.i,
    )
    .map((x) => x.a);
}

/**
 * Applies the user's variant: "smallest_move" re-orders, anything else keeps the given order.
 * `currentStart` gives each involved task's scheduled start before the change.
 */
export function rankAlternatives<T extends RankableAlternative>(
  variant: AlternativeRankingVariant | string,
  alternatives: readonly T[],
  currentStart: (taskId: string) => Date | null,
): T[] {
  return variant === ALTERNATIVE_RANKING.SMALLEST_MOVE
    ? rankBySmallestMove(alternatives, currentStart)
    : [...alternatives];
}
