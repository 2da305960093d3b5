/**
 * Accounts: creation by email (token minting) or from a provider's claims (sign-in), lookups, and
 * the sign-in identity: role, revocation ("valid after"), each change audited in user_auth_audit
 * and announced through auth_version (every instance polls it) and onAuthChange (this instance).
 */
import type { DataSource } from 'typeorm';
import { DEFAULT_SETTINGS } from '../domain/types';
import type { Clock } from './clock';
import { DomainError } from './errors';
import { mapUser, type UserRow } from './rows';
import type { UserView } from './views';

/** A provider token whose email belongs to another account (not linked to its subject). */
export class EmailTakenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmailTakenError';
  }
}

/** What a verified provider token says about its user. */
export interface ProviderClaims {
  issuer: string;
  subject: string;
  email: string;
  name?: string;
  /** The role mapped from the configured claim, or null when no mapping is configured. */
  role: 'USER' | 'ADMIN' | null;
}

/** A user's sign-in state, as auth caches it. */
export interface UserAuthRow {
  id: string;
  email: string;
  role: 'USER' | 'ADMIN';
  validAfter: Date | null;
  providerIssuer: string | null;
  providerSubject: string | null;
  createdAt: Date;
}

type AuthChangeListener = (userId: string) => void;

const EMAIL = /^[^\s@]{1,200}@[^\s@]{1,200}$/;

export class UserService {
  constructor(
    private readonly ds: DataSource,
    private readonly clock: Clock,
  ) {}

  /**
   * Returns the user with this email (case-insensitive), creating it with default settings if absent.
   * Throws DomainError VALIDATION for an address that is not an email.
   */
  async findOrCreateByEmail(email: string, displayName?: string): Promise<UserView> {
    const normalized = email.trim();
    if (!EMAIL.test(normalized) || normalized.length > 320) {
      throw new DomainError('VALIDATION', `"${email}" is not an email address`, ['email']);
    }
    const name = (displayName?.trim() || normalized.split('@')[0]!).slice(0, 200);
    const now = this.clock.now();
    const rows = (await this.ds.query(
      `/* directory:email */ INSERT INTO users (email, display_name, time_zone, working_hours, daily_capacity_minutes, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)
       ON CONFLICT ((lower(email))) DO NOTHING
       RETURNING *`,
      [
        normalized,
        name,
        DEFAULT_SETTINGS.timeZone,
        JSON.stringify(DEFAULT_SETTINGS.workingHours),
        DEFAULT_SETTINGS.dailyCapacityMinutes,
        now,
      ],
    )) as UserRow[];
    if (rows[0]) return mapUser(rows[0]);
    const existing = (await this.ds.query(
      '/* directory:email */ SELECT * FROM users WHERE lower(email) = lower($1)',
      [normalized],
    )) as UserRow[];
    return mapUser(existing[0]!);
  }

  /** The user with this id, or null. */
  async getById(id: string): Promise<UserView | null> {
    if (!isUuid(id)) return null;
    const rows = (await this.ds.query('SELECT * FROM users WHERE id = $1', [id])) as UserRow[];
    return rows[0] ? mapUser(rows[0]) : null;
  }

  private readonly listeners = new Set<AuthChangeListener>();

  /** Called (in this process) after a user's role or valid-after changed. Returns the unsubscribe. */
  onAuthChange(listener: AuthChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private announce(userId: string): void {
    for (const l of this.listeners) l(userId);
  }

  /**
   * Sets the stored role (operators, tests, provider claim mapping), audited with `actor`; other
   * instances learn of it through auth_version. Returns the previous role, or null when no such user.
   */
  async setRole(id: string, role: 'USER' | 'ADMIN', actor = 'system'): Promise<'USER' | 'ADMIN' | null> {
    if (!isUuid(id)) return null;
    const rows = (await this.ds.query(
      `WITH old AS (SELECT id, role FROM users WHERE id = $1 FOR UPDATE),
            upd AS (UPDATE users u SET role = $2 FROM old WHERE u.id = old.id AND old.role <> $2 RETURNING u.id),
            audit AS (INSERT INTO user_auth_audit (user_id, at, actor, action, before, after)
                      SELECT old.id, $3, $4, 'ROLE', old.role, $2 FROM old JOIN upd ON upd.id = old.id),
            bump AS (UPDATE auth_version SET version = version + 1, updated_at = $3
                     WHERE id = 1 AND EXISTS (SELECT 1 FROM upd))
       SELECT role FROM old`,
      [id, role, this.clock.now(), actor],
    )) as Array<{ role: 'USER' | 'ADMIN' }>;
    if (!rows[0]) return null;
    if (rows[0].role !== role) this.announce(id);
    return rows[0].role;
  }

  /**
   * Refuses every token issued to the user before now (`valid_after`), audited with `actor`.
   * Returns the new valid-after time, or null when no such user.
   */
  async revoke(id: string, actor: string): Promise<Date | null> {
    if (!isUuid(id)) return null;
    const now = this.clock.now();
    const rows = (await this.ds.query(
      `WITH upd AS (UPDATE users SET valid_after = $2 WHERE id = $1 RETURNING id),
            audit AS (INSERT INTO user_auth_audit (user_id, at, actor, action, after)
                      SELECT id, $2, $3, 'REVOKE', $4 FROM upd),
            bump AS (UPDATE auth_version SET version = version + 1, updated_at = $2
                     WHERE id = 1 AND EXISTS (SELECT 1 FROM upd))
       SELECT id FROM upd`,
      [id, now, actor, now.toISOString()],
    )) as Array<{ id: string }>;
    if (!rows[0]) return null;
    this.announce(id);
    return now;
  }

  /** The user with this email (case-insensitive), or null. */
  async findByEmail(email: string): Promise<UserView | null> {
    const rows = (await this.ds.query(
      '/* directory:email */ SELECT * FROM users WHERE lower(email) = lower($1)',
      [email.trim()],
    )) as UserRow[];
    return rows[0] ? mapUser(rows[0]) : null;
  }

  /** Every user's sign-in state, by email (`planner users list`). */
  async listAuth(): Promise<UserAuthRow[]> {
    const rows = (await this.ds.query(
      `/* background:operator-cli */ SELECT id, email, role, valid_after, provider_issuer, provider_subject, created_at
       FROM users ORDER BY lower(email)`,
    )) as AuthRow[];
    return rows.map(mapAuthRow);
  }

  /** One user's sign-in state (the per-instance auth cache loads through this), or null. */
  async authState(id: string): Promise<UserAuthRow | null> {
    if (!isUuid(id)) return null;
    const rows = (await this.ds.query(
      `SELECT id, email, role, valid_after, provider_issuer, provider_subject, created_at
       FROM users WHERE id = $1`,
      [id],
    )) as AuthRow[];
    return rows[0] ? mapAuthRow(rows[0]) : null;
  }

  /** The audit trail of one user's sign-in identity, oldest first. */
  async authAudit(
    id: string,
  ): Promise<
    Array<{ at: Date; actor: string; action: string; before: string | null; after: string | null }>
  > {
    return (await this.ds.query(
      'SELECT at, actor, action, before, after FROM user_auth_audit WHERE user_id = $1 ORDER BY id',
      [id],
    )) as Array<{ at: Date; actor: string; action: string; before: string | null; after: string | null }>;
  }

  /** The auth_version counter (bumped by every role change or revocation). */
  async authVersion(): Promise<string> {
    const rows = (await this.ds.query('SELECT version FROM auth_version WHERE id = 1')) as Array<{
      version: string;
    }>;
    return rows[0]?.version ?? '0';
  }

  /**
   * Signs a provider user in: matched by (issuer, subject), never by email. Unknown subject: the
   * user is created from the claims. A changed email follows the subject. An email that belongs to
   * another account (not linked to this subject) throws EmailTakenError. With a mapped role, the
   * stored role follows it (audited as `provider:<issuer>`).
   */
  async signInProvider(claims: ProviderClaims): Promise<UserAuthRow> {
    const email = claims.email.trim();
    if (!EMAIL.test(email) || email.length > 320) {
      throw new EmailTakenError(`email claim "${claims.email}" is not an email address`);
    }
    const actor = `provider:${claims.issuer}`;
    const now = this.clock.now();
    const byEmail = await this.findByEmail(email);
    const linked = (await this.ds.query(
      '/* directory:provider-identity */ SELECT * FROM users WHERE provider_issuer = $1 AND provider_subject = $2',
      [claims.issuer, claims.subject],
    )) as UserRow[];
    let id: string;
    if (linked[0]) {
      id = linked[0].id;
      if (byEmail && byEmail.id !== id) {
        throw new EmailTakenError(
          `email ${email} belongs to user ${byEmail.id}, not to ${id} (subject ${claims.subject} of ${claims.issuer})`,
        );
      }
      if (linked[0].email !== email) {
        await this.ds.query(
          `WITH upd AS (UPDATE users SET email = $2, updated_at = $3 WHERE id = $1)
           INSERT INTO user_auth_audit (user_id, at, actor, action, before, after) VALUES ($1, $3, $4, 'EMAIL', $5, $2)`,
          [id, email, now, actor, linked[0].email],
        );
      }
    } else {
      if (byEmail) {
        throw new EmailTakenError(
          `email ${email} belongs to user ${byEmail.id}, which is not linked to subject ${claims.subject} of ${claims.issuer}`,
        );
      }
      const name = (claims.name?.trim() || email.split('@')[0]!).slice(0, 200);
      const rows = (await this.ds.query(
        `/* directory:provider-identity */ INSERT INTO users (email, display_name, time_zone, working_hours, daily_capacity_minutes,
                            provider_issuer, provider_subject, role, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT DO NOTHING
         RETURNING id`,
        [
          email,
          name,
          DEFAULT_SETTINGS.timeZone,
          JSON.stringify(DEFAULT_SETTINGS.workingHours),
          DEFAULT_SETTINGS.dailyCapacityMinutes,
          claims.issuer,
          claims.subject,
          claims.role ?? 'USER',
          now,
        ],
      )) as Array<{ id: string }>;
      if (!rows[0]) {
        // A concurrent sign-in of the same subject (or a new account with this email) won the race.
        return this.signInProvider(claims);
      }
      id = rows[0].id;
      await this.ds.query(
        `INSERT INTO user_auth_audit (user_id, at, actor, action, after) VALUES ($1, $2, $3, 'CREATE', $4)`,
        [id, now, actor, `${claims.issuer} ${claims.subject}`],
      );
    }
    if (claims.role !== null) await this.setRole(id, claims.role, actor);
    return (await this.authState(id))!;
  }
}

interface AuthRow {
  id: string;
  email: string;
  role: 'USER' | 'ADMIN';
  valid_after: Date | null;
  provider_issuer: string | null;
  provider_subject: string | null;
  created_at: Date;
}

function mapAuthRow(r: AuthRow): UserAuthRow {
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    validAfter: r.valid_after,
    providerIssuer: r.provider_issuer,
    providerSubject: r.provider_subject,
    createdAt: r.created_at,
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a syntactically valid UUID (ids that are not cannot exist, so they are NOT_FOUND). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}
