/**
 * Row snapshots: the JSON form of an entity used for the operation log (forward = after,
 * inverse = before), field-level change lists, and undo/redo cleanliness checks.
 */
import type { EntityChangeView } from './views';

export type EntityName = 'Task' | 'Goal' | 'User' | 'Conflict';
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Row = { [k: string]: Json };

export interface Snapshot {
  entity: EntityName;
  id: string;
  row: Row | null;
}

/** Fields that move forward on every write and are not restored by undo. */
export const BOOKKEEPING = new Set(['version', 'updatedAt']);

/** JSON-normalises a view (Dates become ISO strings; undefined fields dropped). */
export function toRow(view: object): Row {
  return JSON.parse(JSON.stringify(view)) as Row;
}

export function entityKey(entity: EntityName, id: string): string {
  return `${entity}:${id}`;
}

function same(a: Json | undefined, b: Json | undefined): boolean {
  const x = a ?? null;
  const y = b ?? null;
  // Most fields are scalars: compare those directly, serialise only arrays and objects.
  if (x === y) return true;
  if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
  return JSON.stringify(x) === JSON.stringify(y);
}

/** Equal ignoring bookkeeping fields. */
export function sameContent(a: Row | null, b: Row | null): boolean {
  if (a === null || b === null) return a === b;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!BOOKKEEPING.has(k) && !same(a[k], b[k])) return false;
  return true;
}

/** Records the first "before" and the last "after" of every entity an operation touches. */
export class ChangeTracker {
  private readonly entries = new Map<
    string,
    { entity: EntityName; id: string; before: Row | null; after: Row | null }
  >();

  record(entity: EntityName, id: string, before: Row | null, after: Row | null): void {
    const key = entityKey(entity, id);
    const e = this.entries.get(key);
    if (e) e.after = after;
    else this.entries.set(key, { entity, id, before, after });
  }

  /** Entries that really changed, in first-touched order. */
  effective(): Array<{ entity: EntityName; id: string; before: Row | null; after: Row | null }> {
    return [...this.entries.values()].filter((e) => {
      if (e.before === null || e.after === null) return e.before !== e.after;
      const keys = new Set([...Object.keys(e.before), ...Object.keys(e.after)]);
      for (const k of keys) if (!same(e.before[k], e.after[k])) return true;
      return false;
    });
  }

  ids(entity: EntityName): string[] {
    return [...this.entries.values()].filter((e) => e.entity === entity).map((e) => e.id);
  }

  beforeOf(entity: EntityName, id: string): Row | null | undefined {
    return this.entries.get(entityKey(entity, id))?.before;
  }
}

/** Field-level before/after list of a set of changed entities. */
export function fieldChanges(
  entries: Array<{ entity: EntityName; id: string; before: Row | null; after: Row | null }>,
): EntityChangeView[] {
  const out: EntityChangeView[] = [];
  for (const e of entries) {
    const keys = [...new Set([...Object.keys(e.before ?? {}), ...Object.keys(e.after ?? {})])].filter(
      (k) => k !== 'id',
    );
    for (const k of keys) {
      const b = e.before ? (e.before[k] ?? null) : null;
      const a = e.after ? (e.after[k] ?? null) : null;
      if (!same(b, a)) out.push({ entity: e.entity, id: e.id, field: k, before: b, after: a });
    }
  }
  return out;
}
