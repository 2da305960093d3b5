import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A mutation's idempotency key and the result it produced, kept per user for 24 hours. */
@Entity({ name: 'idempotency_keys' })
export class IdempotencyKeyEntity {
  @PrimaryColumn('uuid', { name: 'user_id' })
  userId!: string;

  @PrimaryColumn('text')
  key!: string;

  @Column('text', { name: 'request_hash' })
  requestHash!: string;

  @Column('uuid', { name: 'operation_id', nullable: true })
  operationId!: string | null;

  @Column('jsonb')
  result!: unknown;

  @Column('timestamptz', { name: 'created_at' })
  createdAt!: Date;
}
