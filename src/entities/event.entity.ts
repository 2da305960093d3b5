import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** The transactional outbox: one row per event, per-user gap-free `seq` assigned under the user lock. */
@Entity({ name: 'events' })
export class EventEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column('uuid', { name: 'user_id' })
  userId!: string;

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
