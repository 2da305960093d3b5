/**
 * remember and forgetMemories: semantic memory's two operations. They run through the runner like
 * every operation (the user's lock, one load, one write statement, the audit trail, the outbox), but
 * are final (not on the undo stack, see not-undoable.ts), and the operation log, the outbox and the
 * idempotency record hold the memories' ids, never their text: an erasure can be complete while the
 * audit trail stays append-only.
 */
import { MOST_USEFUL_FIRST } from '../../memory/store';
import { DomainError } from '../errors';
import type { OperationSpec } from '../runner';
import { isUuid } from '../user-service';

/** The longest text `remember` accepts. */
export const MAX_MEMORY_TEXT = 1000;
/** The most ids one forgetMemories names. */
export const MAX_FORGET_IDS = 1000;

export interface RememberInput {
  /** The new item's id (chosen before the operation runs, so its embedding can be computed first). */
  id: string;
  text: string;
  embedding: number[];
  ttlDays: number;
  maxItems: number;
}

/** Validates and normalises a stated fact; throws DomainError VALIDATION. */
export function normaliseMemoryText(text: string): string {
  const t = text.trim();
  if (t.length === 0) throw new DomainError('VALIDATION', 'text must not be empty', ['text']);
  if ([...t].length > MAX_MEMORY_TEXT)
    throw new DomainError('VALIDATION', `text must be at most ${MAX_MEMORY_TEXT} characters`, ['text']);
  return t;
}

/** remember(text): a FACT stated by the user, with its embedding; evicts the least useful beyond the cap. */
export function rememberOp(input: RememberInput): OperationSpec {
  return {
    kind: 'REMEMBER',
    args: { memoryId: input.id },
    hashArgs: { text: input.text },
    load: {},
    decide: (tx) => {
      const text = normaliseMemoryText(input.text);
      const expires = new Date(tx.now.getTime() + input.ttlDays * 86_400_000);
      tx.extraWrites.push(
        (p) => `m_ins AS (INSERT INTO memory_items (user_id, id, kind, key, text, rule, embedding, confidence,
            evidence, active, uses, created_at, updated_at, expires_at)
          VALUES ($1, ${p(input.id)}::uuid, 'FACT', NULL, ${p(text)}, NULL, ${p(input.embedding)}::real[], 1,
            ARRAY[]::uuid[], true, 0, ${p(tx.now)}, ${p(tx.now)}, ${p(expires)}))`,
        // The statement's snapshot does not see the new row: keep the cap - 1 most useful others.
        (p) => `m_cap AS (DELETE FROM memory_items WHERE user_id = $1 AND id IN (
            SELECT id FROM memory_items WHERE user_id = $1 ORDER BY ${MOST_USEFUL_FIRST} OFFSET ${p(input.maxItems - 1)}))`,
      );
      tx.memoryNotes.push({ memoryId: input.id, text, effect: 'remembered (a fact you stated)' });
      return { skipConflictSync: true };
    },
    settle: () => ({ opened: [], resolved: [], open: [], changes: [] }),
  };
}

/**
 * forgetMemories(ids): erases the named items (null: every item of the user) with their embeddings,
 * for good. The learner's cursor moves to the newest event, so evidence from before the erasure
 * that was not learned from yet never teaches the item again.
 */
export function forgetMemoriesOp(ids: string[] | null): OperationSpec {
  const list = ids === null ? null : [...new Set(ids)];
  return {
    kind: 'FORGET_MEMORIES',
    args: { ids: list },
    load: {},
    decide: (tx) => {
      if (list !== null) {
        if (list.length > MAX_FORGET_IDS)
          throw new DomainError('VALIDATION', `at most ${MAX_FORGET_IDS} ids at once`, ['ids']);
        const bad = list.findIndex((id) => !isUuid(id));
        if (bad >= 0)
          throw new DomainError('VALIDATION', `"${list[bad]}" is not a memory id`, ['ids', String(bad)]);
      }
      const lastEvent = Number(tx.base.user.event_seq) + 1; // this operation's own plan event
      tx.extraWrites.push(
        (p) =>
          `m_del AS (DELETE FROM memory_items WHERE user_id = $1${list === null ? '' : ` AND id = ANY(${p(list)}::uuid[])`})`,
        (p) => `m_cur AS (INSERT INTO memory_learner_cursors (user_id, event_seq, updated_at)
          VALUES ($1, ${p(lastEvent)}, ${p(tx.now)}) ON CONFLICT (user_id) DO UPDATE
          SET event_seq = GREATEST(memory_learner_cursors.event_seq, EXCLUDED.event_seq), updated_at = EXCLUDED.updated_at)`,
      );
      if (list === null)
        tx.memoryNotes.push({ memoryId: null, text: 'every memory item', effect: 'forgotten' });
      else
        for (const id of list) tx.memoryNotes.push({ memoryId: id, text: '(erased)', effect: 'forgotten' });
      return { skipConflictSync: true };
    },
    settle: () => ({ opened: [], resolved: [], open: [], changes: [] }),
  };
}
