import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A goal that tasks contribute to. */
@Entity({ name: 'goals' })
@Index('goals_user_created_idx', ['userId', 'createdAt', 'id'])
export class GoalEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid')
  id!: string;

  @Column('text')
  title!: string;

  @Column('enum', {
    enumName: 'goal_status',
    enum: ['ACTIVE', 'PAUSED', 'ACHIEVED', 'ABANDONED'],
    default: 'ACTIVE',
  })
  status!: string;

  @Column('enum', { enumName: 'task_priority', enum: ['LOW', 'MEDIUM', 'HIGH', 'URGENT'], default: 'MEDIUM' })
  priority!: string;

  @Column('timestamptz', { name: 'target_date', nullable: true })
  targetDate!: Date | null;

  @Column('integer', { default: 1 })
  version!: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}
