import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One recorded operation: the audit trail and the undo/redo source. Append-only (trigger-enforced). */
@Entity({ name: 'operations' })
export class OperationEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid')
  id!: string;

  @Column('bigint')
  seq!: string;

  /** `user:<id>`, `agent:<name>` or `system`. */
  @Column('text')
  actor!: string;

  @Column('text')
  kind!: string;

  @Column('jsonb')
  input!: unknown;

  /** Row snapshots after the operation (entity, id, row). */
  @Column('jsonb')
  forward!: unknown;

  /** Row snapshots before the operation: applying them is the exact inverse. */
  @Column('jsonb')
  inverse!: unknown;

  /** `Task:<id>` style keys of every entity changed, for "who changed this since" lookups. */
  @Column('text', { array: true, default: () => "'{}'" })
  entities!: string[];

  @Column('uuid', { name: 'target_operation_id', nullable: true })
  targetOperationId!: string | null;

  @Column('text', { name: 'trace_id', nullable: true })
  traceId!: string | null;

  @Column('jsonb', { default: () => "'[]'" })
  flags!: unknown;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('enum', { enumName: 'operation_state', enum: ['APPLIED', 'UNDONE'], default: 'APPLIED' })
  state!: string;

  @Column('timestamptz', { name: 'state_changed_at', nullable: true })
  stateChangedAt!: Date | null;

  @Column('bigint', { name: 'undone_by_seq', nullable: true })
  undoneBySeq!: string | null;

  @Column('boolean', { default: false })
  redoable!: boolean;
}
