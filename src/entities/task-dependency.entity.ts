import { Column, Entity, PrimaryColumn } from 'typeorm';

/** "task_id depends on depends_on_id": the dependency must end before the task starts. */
@Entity({ name: 'task_dependencies' })
export class TaskDependencyEntity {
  @PrimaryColumn('uuid', { name: 'task_id' })
  taskId!: string;

  @PrimaryColumn('uuid', { name: 'depends_on_id' })
  dependsOnId!: string;

  @Column('uuid', { name: 'user_id' })
  userId!: string;
}
