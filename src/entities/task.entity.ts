import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** A task: optionally scheduled ([scheduled_start, scheduled_end), both or neither). */
@Entity({ name: 'tasks' })
@Index('tasks_user_created_idx', ['userId', 'createdAt', 'id'])
@Index('tasks_user_status_idx', ['userId', 'status'])
export class TaskEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid')
  id!: string;

  @Column('text')
  title!: string;

  @Column('text', { nullable: true })
  notes!: string | null;

  @Column('enum', {
    enumName: 'task_status',
    enum: ['BACKLOG', 'TODO', 'SCHEDULED', 'IN_PROGRESS', 'DONE', 'CANCELLED'],
    default: 'BACKLOG',
  })
  status!: string;

  @Column('enum', { enumName: 'task_priority', enum: ['LOW', 'MEDIUM', 'HIGH', 'URGENT'], default: 'MEDIUM' })
  priority!: string;

  @Column('integer', { name: 'estimate_minutes', nullable: true })
  estimateMinutes!: number | null;

  @Column('timestamptz', { name: 'due_at', nullable: true })
  dueAt!: Date | null;

  @Column('timestamptz', { name: 'scheduled_start', nullable: true })
  scheduledStart!: Date | null;

  @Column('timestamptz', { name: 'scheduled_end', nullable: true })
  scheduledEnd!: Date | null;

  @Column('text', { array: true, default: () => "'{}'" })
  tags!: string[];

  @Column('uuid', { name: 'goal_id', nullable: true })
  goalId!: string | null;

  @Column('integer', { default: 1 })
  version!: number;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at' })
  updatedAt!: Date;
}
