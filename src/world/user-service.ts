/** Accounts: creation by email (token minting) and lookups. */
import type { DataSource } from 'typeorm';
import { DEFAULT_SETTINGS } from '../domain/types';
import type { Clock } from './clock';
import { DomainError } from './errors';
import { mapUser, type UserRow } from './rows';
import type { UserView } from './views';

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
      `INSERT INTO users (email, display_name, time_zone, working_hours, daily_capacity_minutes, created_at, updated_at)
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
    const existing = (await this.ds.query('SELECT * FROM users WHERE lower(email) = lower($1)', [
      normalized,
    ])) as UserRow[];
    return mapUser(existing[0]!);
  }

  /** The user with this id, or null. */
  async getById(id: string): Promise<UserView | null> {
    if (!isUuid(id)) return null;
    const rows = (await this.ds.query('SELECT * FROM users WHERE id = $1', [id])) as UserRow[];
    return rows[0] ? mapUser(rows[0]) : null;
  }

  /** Grants or revokes the ADMIN role (operators, tests). */
  async setRole(id: string, role: 'USER' | 'ADMIN'): Promise<void> {
    await this.ds.query('UPDATE users SET role = $2 WHERE id = $1', [id, role]);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a syntactically valid UUID (ids that are not cannot exist, so they are NOT_FOUND). */
export function isUuid(id: string): boolean {
  return UUID.test(id);
}
