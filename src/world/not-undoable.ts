/**
 * Operation kinds outside the undo window: undo and redo themselves, and the semantic-memory
 * operations (`remember`, `forgetMemories`), which are final: an erasure is never undone, and a
 * stated fact is forgotten with forgetMemories, not with undo. They are recorded in the audit trail
 * like every operation, never end the redo stack, and are never an undo's target.
 */
export const NOT_UNDOABLE_KINDS = ['UNDO', 'REDO', 'REMEMBER', 'FORGET_MEMORIES'] as const;

/** The same list as an SQL tuple for `kind NOT IN ...`. */
export const NOT_UNDOABLE_SQL = `(${NOT_UNDOABLE_KINDS.map((k) => `'${k}'`).join(',')})`;
