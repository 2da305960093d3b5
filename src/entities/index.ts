import { ConflictEntity } from './conflict.entity';
import { EventEntity } from './event.entity';
import {
  ExperimentExposureEntity,
  FeatureAuditEntity,
  FeaturePayloadEntity,
  FeatureUsageEntity,
} from './feature-flags.entity';
import { GoalEntity } from './goal.entity';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { MemoryItemEntity, MemoryLearnerCursorEntity } from './memory.entity';
import { OperationEntity } from './operation.entity';
import { RolloutMetricsEntity } from './rollout-metrics.entity';
import { TaskDependencyEntity } from './task-dependency.entity';
import { TaskEntity } from './task.entity';
import { AuthVersionEntity, UserAuthAuditEntity } from './user-auth.entity';
import { UserEntity } from './user.entity';

export {
  AuthVersionEntity,
  ConflictEntity,
  EventEntity,
  ExperimentExposureEntity,
  FeatureAuditEntity,
  FeaturePayloadEntity,
  FeatureUsageEntity,
  GoalEntity,
  IdempotencyKeyEntity,
  MemoryItemEntity,
  MemoryLearnerCursorEntity,
  OperationEntity,
  RolloutMetricsEntity,
  TaskDependencyEntity,
  TaskEntity,
  UserAuthAuditEntity,
  UserEntity,
};

/** Every entity, for the DataSource. */
export const ENTITIES = [
  UserEntity,
  GoalEntity,
  TaskEntity,
  TaskDependencyEntity,
  OperationEntity,
  ConflictEntity,
  EventEntity,
  IdempotencyKeyEntity,
  FeaturePayloadEntity,
  FeatureAuditEntity,
  ExperimentExposureEntity,
  FeatureUsageEntity,
  RolloutMetricsEntity,
  UserAuthAuditEntity,
  AuthVersionEntity,
  MemoryItemEntity,
  MemoryLearnerCursorEntity,
];
