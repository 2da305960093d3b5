import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/** Audit trail of sign-in identity: role changes, revocations, provider users created, email changes. */
@Entity({ name: 'user_auth_audit' })
export class UserAuthAuditEntity {
  /** The distribution key (Citus): first column of the primary key (user_id, id). */
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column('timestamptz', { default: () => 'now()' })
  at!: Date;

  /** Who: `os:<user>` (CLI), `--actor`, or `provider:<issuer>` (claim mapping at sign-in). */
  @Column('text')
  actor!: string;

  /** ROLE | REVOKE | CREATE | EMAIL */
  @Column('text')
  action!: string;

  @Column('text', { nullable: true })
  before!: string | null;

  @Column('text', { nullable: true })
  after!: string | null;
}

/** One row (id = 1) bumped by every role change or revocation; instances poll it to drop cached roles. */
@Entity({ name: 'auth_version' })
export class AuthVersionEntity {
  @PrimaryColumn('smallint', { default: 1 })
  id!: number;

  @Column('bigint', { default: 0 })
  version!: string;

  @Column('timestamptz', { name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
