import { Entity, PrimaryColumn } from 'typeorm';

/** "task_id depends on depends_on_id": the dependency must end before the task starts. */
@Entity({ name: 'task_dependencies' })
export class TaskDependencyEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, task_id, depends_on_id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('uuid', { name: 'task_id' })
  taskId!: string;

  @PrimaryColumn('uuid', { name: 'depends_on_id' })
  dependsOnId!: string;
}
