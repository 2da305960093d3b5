import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A detected scheduling conflict and the alternatives offered for it. */
@Entity({ name: 'conflicts' })
export class ConflictEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid')
  id!: string;

  @Column('enum', {
    enumName: 'conflict_kind',
    enum: ['OVERLAP', 'OVER_CAPACITY', 'PAST_DUE', 'DEPENDENCY_ORDER', 'OUTSIDE_WORKING_HOURS'],
  })
  kind!: string;

  /** Stable identity of the conflict (see src/domain/types.ts DetectedConflict.key). */
  @Column('text')
  key!: string;

  @Column('enum', { enumName: 'conflict_status', enum: ['OPEN', 'RESOLVED', 'DISMISSED'], default: 'OPEN' })
  status!: string;

  @Column('text')
  message!: string;

  @Column('uuid', { name: 'task_ids', array: true })
  taskIds!: string[];

  @Column('jsonb', { default: () => "'[]'" })
  alternatives!: unknown;

  @Column('text', { name: 'chosen_alternative_id', nullable: true })
  chosenAlternativeId!: string | null;

  @Column('timestamptz', { name: 'detected_at' })
  detectedAt!: Date;

  @Column('timestamptz', { name: 'closed_at', nullable: true })
  closedAt!: Date | null;

  /** Whether the condition still holds (a DISMISSED conflict stays quiet while it does). */
  @Column('boolean', { default: true })
  active!: boolean;

  @Column('integer', { default: 1 })
  version!: number;
}
