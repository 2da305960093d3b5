import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A person using the planner. Settings drive conflict detection (time zone, hours, capacity). */
@Entity({ name: 'users' })
export class UserEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column('text')
  email!: string;

  @Column('text', { name: 'display_name' })
  displayName!: string;

  @Column('text', { name: 'time_zone', default: 'UTC' })
  timeZone!: string;

  /** Per weekday, local "HH:MM" intervals. */
  @Column('jsonb', { name: 'working_hours' })
  workingHours!: Record<string, Array<{ start: string; end: string }>>;

  @Column('integer', { name: 'daily_capacity_minutes', default: 480 })
  dailyCapacityMinutes!: number;

  @Column('text', { default: 'USER' })
  role!: string;

  /** Last operation sequence number handed out for this user (assigned under the user row lock). */
  @Column('bigint', { name: 'op_seq', default: 0 })
  opSeq!: string;

  /** Last event (outbox) sequence number for this user: the subscription cursor space. */
  @Column('bigint', { name: 'event_seq', default: 0 })
  eventSeq!: string;

  @Column('integer', { default: 1 })
  version!: number;

  /** Agent names allowed to act for the user: exact names or prefixes ending in `*` (`*`: any). */
  @Column('text', { name: 'allowed_agents', array: true, default: () => "'{*}'" })
  allowedAgents!: string[];

  /** Whether an agent may undo the user's own operations (otherwise only its own). */
  @Column('boolean', { name: 'agents_may_undo_mine', default: false })
  agentsMayUndoMine!: boolean;

  /** `iss` of the identity provider that signs this user in (null: HS256 tokens only). */
  @Column('text', { name: 'provider_issuer', nullable: true })
  providerIssuer!: string | null;

  /** The provider's subject claim: unique per issuer; the user is matched by it, never by email. */
  @Column('text', { name: 'provider_subject', nullable: true })
  providerSubject!: string | null;

  /** Tokens issued before this time are refused (`planner users revoke`). */
  @Column('timestamptz', { name: 'valid_after', nullable: true })
  validAfter!: Date | null;

  @Column('timestamptz', { name: 'created_at', default: () => 'now()' })
  createdAt!: Date;

  @Column('timestamptz', { name: 'updated_at', default: () => 'now()' })
  updatedAt!: Date;
}
