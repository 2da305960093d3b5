import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** The features payload every instance evaluates: one row (id = 1), version bumped by every change. */
@Entity({ name: 'feature_payload' })
export class FeaturePayloadEntity {
  @PrimaryColumn('smallint', { default: 1 })
  id!: number;

  @Column('bigint')
  version!: string;

  /** GrowthBook's SDK payload format: `{"features": {...}}`. */
  @Column('jsonb')
  payload!: unknown;

  @Column('timestamptz', { name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;

  /** Who made the change: `os:<user>`, `--actor`, or `system:seed`. */
  @Column('text', { name: 'updated_by' })
  updatedBy!: string;
}

/** The rollout audit trail: who changed which feature when, with before/after definitions. */
@Entity({ name: 'feature_audit' })
export class FeatureAuditEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column('timestamptz', { default: () => 'now()' })
  at!: Date;

  @Column('text')
  actor!: string;

  @Column('text')
  command!: string;

  @Column('text', { nullable: true })
  feature!: string | null;

  @Column('jsonb')
  before!: unknown;

  @Column('jsonb')
  after!: unknown;

  /** The payload version the change produced. */
  @Column('bigint')
  version!: string;
}

/** An experiment exposure: the first variant a user was served, once per user and experiment. */
@Entity({ name: 'experiment_exposures' })
export class ExperimentExposureEntity {
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('text')
  experiment!: string;

  @Column('text')
  variant!: string;

  @Column('integer', { name: 'variation_id' })
  variationId!: number;

  @Column('timestamptz', { name: 'first_seen_at' })
  firstSeenAt!: Date;
}

/** Usage counters per user, UTC day, metric and experiment variant ('' / '' when in no experiment). */
@Entity({ name: 'feature_usage' })
export class FeatureUsageEntity {
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('date')
  day!: string;

  @PrimaryColumn('text')
  metric!: string;

  @PrimaryColumn('text')
  experiment!: string;

  @PrimaryColumn('text')
  variant!: string;

  @Column('bigint')
  count!: string;
}
