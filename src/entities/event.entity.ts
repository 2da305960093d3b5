import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** The transactional outbox: one row per event, per-user gap-free `seq` assigned under the user lock. */
@Entity({ name: 'events' })
export class EventEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column('bigint')
  seq!: string;

  /** conflict | undo | plan */
  @Column('text')
  topic!: string;

  @Column('text')
  type!: string;

  @Column('jsonb')
  payload!: unknown;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;
}
