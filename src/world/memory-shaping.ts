/**
 * Semantic memory in the decide step: the user's active learned items (loaded with the lock by the
 * first load, no extra statement) as a {@link Shaping}, and the bookkeeping of what they shaped:
 * a MemoryNote per item and effect for UpdateResult.memory, and the items' use counted by the
 * operation's one write statement. Nothing here when the semantic_memory flag is off.
 */
import type { AlternativeOptions } from '../domain/alternatives';
import { plannedDurationMinutes } from '../domain/autoschedule';
import type { PlanTask } from '../domain/types';
import { Shaping, type ShapingItem } from '../memory/rules';
import { memoryAllowed } from './flag-gates';
import type { WorldTx } from './tx';

const cache = new WeakMap<WorldTx, Shaping | null>();

/** The shaping memory of this attempt, or null (flag off, or nothing active and unexpired). */
export function shapingOf(tx: WorldTx): Shaping | null {
  let s = cache.get(tx);
  if (s !== undefined) return s;
  s = null;
  if (memoryAllowed(tx)) {
    const now = tx.now.getTime();
    const live = tx.base.memory.filter((m) => m.expiresAt === null || m.expiresAt.getTime() > now);
    if (live.length > 0) s = new Shaping(live);
  }
  cache.set(tx, s);
  return s;
}

/** Records that `item` shaped the result (one note per item and effect; its use is counted once). */
export function noteMemory(tx: WorldTx, item: ShapingItem, effect: string): void {
  if (!tx.memoryNotes.some((n) => n.memoryId === item.id && n.effect === effect))
    tx.memoryNotes.push({ memoryId: item.id, text: item.text, effect });
  if (!tx.memoryUsed.has(item.id)) {
    if (tx.memoryUsed.size === 0) {
      tx.extraWrites.push(
        (p) => `m_use AS (UPDATE memory_items SET uses = uses + 1, last_used_at = ${p(tx.now)}
          WHERE user_id = $1 AND id = ANY(${p([...tx.memoryUsed])}::uuid[]))`,
      );
    }
    tx.memoryUsed.add(item.id);
  }
}

const fmtMin = (m: number): string => {
  const h = Math.floor(m / 60);
  const r = Math.round(m % 60);
  return h === 0 ? `${r} min` : r === 0 ? `${h} h` : `${h} h ${r} min`;
};

/**
 * The minutes semantic memory proposes for a task whose slot lasts `currentMin`: its estimate (else
 * the slot) times the learned ratio; never shorter than the slot when such tasks overrun, never
 * longer when they finish early. Null when no pattern applies.
 */
export function proposedMinutes(
  shaping: Shaping,
  task: { title: string; estimateMinutes: number | null },
  currentMin: number,
): { minutes: number; item: ShapingItem } | null {
  const basis = task.estimateMinutes && task.estimateMinutes > 0 ? task.estimateMinutes : currentMin;
  const adj = shaping.adjustedMinutes(task.title, basis);
  if (!adj) return null;
  const minutes = adj.minutes > basis ? Math.max(currentMin, adj.minutes) : Math.min(currentMin, adj.minutes);
  return minutes === currentMin ? null : { minutes, item: adj.item };
}

interface Rankable {
  action: 'MOVE' | 'BACKLOG';
  taskId: string;
  start: Date | null;
  end: Date | null;
  score: number;
}

/**
 * Memory for a conflict's alternatives: the domain options (preferred slots are searched and ranked
 * first; moved tasks get the durations their patterns suggest), and `apply`, run after the
 * alternative_ranking arm ordered them (both arms): alternatives in a preferred window move to the
 * front (each group keeps the arm's order), the scores are handed out again in the new order, and
 * notes say which memory did what.
 */
export function alternativeMemory(
  tx: WorldTx,
  tasks: ReadonlyMap<string, PlanTask>,
): {
  options: Pick<AlternativeOptions, 'preferred' | 'durationMs'>;
  apply<T extends Rankable>(list: T[]): T[];
} | null {
  const shaping = shapingOf(tx);
  if (!shaping) return null;
  const tz = tx.user.time_zone;
  return {
    options: {
      preferred: (task, s, e) => shaping.satisfied(task.title, s, e, tz).length > 0,
      durationMs: (task, current) => {
        const p = proposedMinutes(shaping, task, current / 60_000);
        return p ? p.minutes * 60_000 : current;
      },
    },
    apply<T extends Rankable>(list: T[]): T[] {
      const used = new Map<ShapingItem, number>();
      const preferred: T[] = [];
      const rest: T[] = [];
      for (const a of list) {
        const task = tasks.get(a.taskId);
        const hits =
          a.action === 'MOVE' && task && a.start && a.end
            ? shaping.satisfied(task.title, a.start.getTime(), a.end.getTime(), tz)
            : [];
        for (const h of hits) used.set(h, (used.get(h) ?? 0) + 1);
        (hits.length > 0 ? preferred : rest).push(a);
        if (a.action === 'MOVE' && task?.start && task.end && a.start && a.end) {
          const current = (task.end.getTime() - task.start.getTime()) / 60_000;
          const proposed = (a.end.getTime() - a.start.getTime()) / 60_000;
          const p = proposedMinutes(shaping, task, current);
          if (p && proposed === p.minutes)
            noteMemory(
              tx,
              p.item,
              `proposed ${fmtMin(proposed)} instead of ${fmtMin(current)} for the moved task`,
            );
        }
      }
      for (const [item, n] of used)
        noteMemory(tx, item, `ranked ${n} alternative${n === 1 ? '' : 's'} in your preferred time first`);
      if (preferred.length === 0) return list;
      const ordered = [...preferred, ...rest];
      if (ordered.every((a, i) => a === list[i])) return list;
      const scores = ordered.map((a) => a.score).sort((x, y) => y - x);
      return ordered.map((a, i) => (a.score === scores[i] ? a : { ...a, score: scores[i]! }));
    },
  };
}

/** Notes of an autoSchedule shaped by memory: tasks placed in a preferred window, durations planned from patterns. */
export function noteAutoSchedule(
  tx: WorldTx,
  shaping: Shaping,
  placing: PlanTask[],
  placed: Array<{ taskId: string; start: Date; end: Date; preferred?: boolean }>,
): void {
  const byId = new Map(placing.map((t) => [t.id, t]));
  const prefs = new Map<ShapingItem, number>();
  for (const p of placed) {
    const t = byId.get(p.taskId);
    if (!t) continue;
    if (p.preferred) {
      const { tod, wd } = shaping.preferencesFor(t.title);
      for (const item of [tod, wd]) if (item) prefs.set(item, (prefs.get(item) ?? 0) + 1);
    }
    const minutes = (p.end.getTime() - p.start.getTime()) / 60_000;
    const base = plannedDurationMinutes(t);
    const adj = proposedMinutes(shaping, { title: t.title, estimateMinutes: base }, base);
    if (adj && adj.minutes === minutes)
      noteMemory(tx, adj.item, `planned ${fmtMin(minutes)} instead of the estimated ${fmtMin(base)}`);
  }
  for (const [item, n] of prefs)
    noteMemory(tx, item, `placed ${n} task${n === 1 ? '' : 's'} in your preferred time`);
}
