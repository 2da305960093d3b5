import { Column, Entity, PrimaryColumn } from 'typeorm';

/** One thing semantic memory holds about a user (text and embedding live only here). */
@Entity({ name: 'memory_items' })
export class MemoryItemEntity {
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid')
  id!: string;

  /** PREFERENCE, PATTERN or FACT. */
  @Column('text')
  kind!: string;

  /** Learned items: a stable key per user (what was learned about); FACTs: null. */
  @Column('text', { nullable: true })
  key!: string | null;

  @Column('text')
  text!: string;

  /** Learned items: the counts behind them and the rule they apply. */
  @Column('jsonb', { nullable: true })
  rule!: unknown;

  /** Unit-length vector from the embedder (cosine = dot product). */
  @Column('real', { array: true })
  embedding!: number[];

  @Column('real')
  confidence!: number;

  /** Ids of the operations the item was learned from (the newest 100). */
  @Column('uuid', { array: true, default: () => "'{}'" })
  evidence!: string[];

  /** Learned items shape plans only once active (enough consistent evidence). */
  @Column('boolean', { default: true })
  active!: boolean;

  /** How many operations it has shaped. */
  @Column('integer', { default: 0 })
  uses!: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;

  @Column('timestamptz', { name: 'last_used_at', nullable: true })
  lastUsedAt!: Date | null;

  @Column('timestamptz', { name: 'expires_at', nullable: true })
  expiresAt!: Date | null;
}

/** The memory learner's position in one user's outbox. */
@Entity({ name: 'memory_learner_cursors' })
export class MemoryLearnerCursorEntity {
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  /** The last event seq learned from. */
  @Column('bigint', { name: 'event_seq' })
  eventSeq!: string;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}
