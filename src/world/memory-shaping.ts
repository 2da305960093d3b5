/**
 * Semantic memory in the decide step: the user's active learned items (loaded with the lock by the
 * first load, no extra statement) as a {@link Shaping}, and the bookkeeping of what they shaped:
 * a MemoryNote per item and effect for UpdateResult.memory, and the items' use counted by the
 * operation's one write statement. Nothing here when the semantic_memory flag is off.
 */
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
