/**
 * The payload's home in the database: one row of `feature_payload` (id = 1) with a version that
 * every change bumps, and the `feature_audit` trail. Every instance polls the version (one tiny
 * query per period) and loads the payload only when it changed; a payload that fails validation is
 * refused with a logged message and the one in force stays.
 */
import type { DataSource, EntityManager } from 'typeorm';
import { FEATURE_KEYS } from './keys';
import {
  defaultPayload,
  PayloadError,
  validatePayload,
  type FeatureDefinition,
  type FeaturePayload,
} from './payload';
import type { FlagService } from './service';

export interface StoredPayload {
  version: number;
  payload: unknown;
  updatedAt: Date;
  updatedBy: string;
}

export interface AuditEntry {
  id: number;
  at: Date;
  actor: string;
  command: string;
  /** The feature changed, or null for commands touching several (phase, seed). */
  feature: string | null;
  /** The changed features' definitions before and after (`{key: definition}`; absent = undefined). */
  before: Record<string, FeatureDefinition>;
  after: Record<string, FeatureDefinition>;
  /** The payload version this change produced. */
  version: number;
}

interface PayloadRow {
  version: string;
  payload: unknown;
  updated_at: Date;
  updated_by: string;
}

function toStored(r: PayloadRow): StoredPayload {
  return { version: Number(r.version), payload: r.payload, updatedAt: r.updated_at, updatedBy: r.updated_by };
}

/** Seed actor recorded in the audit trail. */
export const SEED_ACTOR = 'system:seed';

export class FeatureStore {
  constructor(private readonly ds: DataSource) {}

  /** The stored payload, or null before seeding. */
  async read(): Promise<StoredPayload | null> {
    const rows = (await this.ds.query(
      `SELECT version, payload, updated_at, updated_by FROM feature_payload WHERE id = 1`,
    )) as PayloadRow[];
    return rows[0] ? toStored(rows[0]) : null;
  }

  /**
   * Seeds the table from the repository's default payload when it is empty, and adds declared keys
   * the stored payload lacks (a release that declares a new flag) with their defaults. Recorded in
   * the audit trail. Idempotent and safe when several instances start at once.
   */
  async ensureSeeded(seed: FeaturePayload = defaultPayload()): Promise<StoredPayload> {
    return this.ds.transaction(async (m) => {
      await m.query(
        `INSERT INTO feature_payload (id, version, payload, updated_at, updated_by)
         VALUES (1, 1, $1::jsonb, now(), $2) ON CONFLICT (id) DO NOTHING`,
        [JSON.stringify(seed), SEED_ACTOR],
      );
      const row = await this.lock(m);
      if (row.version === 1 && row.updatedBy === SEED_ACTOR && !(await this.hasAudit(m))) {
        await this.audit(m, SEED_ACTOR, 'seed', null, {}, seed.features, 1);
      }
      const stored = row.payload as FeaturePayload;
      const missing = FEATURE_KEYS.filter(
        (k) => stored.features && !(k in stored.features) && seed.features[k] !== undefined,
      );
      if (missing.length === 0) return row;
      const added: Record<string, FeatureDefinition> = {};
      for (const k of missing) added[k] = seed.features[k]!;
      const next = { ...stored, features: { ...stored.features, ...added } };
      return this.write(m, next, SEED_ACTOR, `seed ${missing.join(' ')}`, null, {}, added);
    });
  }

  /**
   * Atomically changes the payload: locks the row, hands a copy to `change`, validates the result,
   * writes it with version + 1 and records who, when, the command and the before/after of every
   * feature that changed. Throws PayloadError (nothing written) when the result is malformed.
   * @returns the new stored payload, or the old one when `change` changed nothing (no version bump).
   */
  async update(
    actor: string,
    command: string,
    feature: string | null,
    change: (payload: FeaturePayload) => FeaturePayload,
    opts: { replacesAll?: boolean } = {},
  ): Promise<{ stored: StoredPayload; changed: string[] }> {
    return this.ds.transaction(async (m) => {
      const row = await this.lock(m);
      let current: FeaturePayload;
      try {
        current = validatePayload(row.payload, `database version ${row.version}`).payload;
      } catch (err) {
        // Edits need a sound base; a whole replacement (import) is how a malformed one is repaired.
        if (!opts.replacesAll || !(err instanceof PayloadError)) {
          if (err instanceof PayloadError) {
            throw new PayloadError(
              err.problems,
              `${err.origin} (replace it: planner features import <file>)`,
            );
          }
          throw err;
        }
        const raw = row.payload as { features?: unknown };
        const features = raw && typeof raw.features === 'object' && raw.features !== null ? raw.features : {};
        current = { features: features as FeaturePayload['features'] };
      }
      const next = validatePayload(change(structuredClone(current)), `the result of "${command}"`).payload;
      const keys = new Set([...Object.keys(current.features), ...Object.keys(next.features)]);
      const before: Record<string, FeatureDefinition> = {};
      const after: Record<string, FeatureDefinition> = {};
      const changed: string[] = [];
      for (const k of keys) {
        if (JSON.stringify(current.features[k]) === JSON.stringify(next.features[k])) continue;
        changed.push(k);
        if (current.features[k] !== undefined) before[k] = current.features[k];
        if (next.features[k] !== undefined) after[k] = next.features[k];
      }
      if (changed.length === 0) return { stored: row, changed };
      const stored = await this.write(m, next, actor, command, feature, before, after);
      return { stored, changed };
    });
  }

  /**
   * Replaces the whole payload (an import of a GrowthBook export, or a test). Validated first:
   * a malformed one throws PayloadError and nothing is written.
   */
  async replace(actor: string, command: string, payload: unknown): Promise<StoredPayload> {
    const valid = validatePayload(payload, command).payload;
    return (await this.update(actor, command, null, () => valid, { replacesAll: true })).stored;
  }

  /** The audit trail, newest first. */
  async auditTrail(limit = 50): Promise<AuditEntry[]> {
    const rows = (await this.ds.query(
      `SELECT id, at, actor, command, feature, before, after, version
       FROM feature_audit ORDER BY id DESC LIMIT $1`,
      [limit],
    )) as Array<{
      id: string;
      at: Date;
      actor: string;
      command: string;
      feature: string | null;
      before: Record<string, FeatureDefinition>;
      after: Record<string, FeatureDefinition>;
      version: string;
    }>;
    return rows.map((r) => ({ ...r, id: Number(r.id), version: Number(r.version) }));
  }

  /** One poll: the stored payload when its version differs from `known`, else null. One round trip. */
  async changedSince(known: number): Promise<StoredPayload | null> {
    const rows = (await this.ds.query(
      `SELECT version, CASE WHEN version <> $1 THEN payload END AS payload, updated_at, updated_by
       FROM feature_payload WHERE id = 1`,
      [known],
    )) as PayloadRow[];
    const r = rows[0];
    return r && Number(r.version) !== known ? toStored(r) : null;
  }

  private async lock(m: EntityManager): Promise<StoredPayload> {
    const rows = (await m.query(
      `SELECT version, payload, updated_at, updated_by FROM feature_payload WHERE id = 1 FOR UPDATE`,
    )) as PayloadRow[];
    if (!rows[0]) throw new Error('feature_payload is empty: the features payload was never seeded');
    return toStored(rows[0]);
  }

  private async hasAudit(m: EntityManager): Promise<boolean> {
    const rows = (await m.query(`SELECT 1 FROM feature_audit LIMIT 1`)) as unknown[];
    return rows.length > 0;
  }

  private async write(
    m: EntityManager,
    payload: FeaturePayload,
    actor: string,
    command: string,
    feature: string | null,
    before: Record<string, FeatureDefinition>,
    after: Record<string, FeatureDefinition>,
  ): Promise<StoredPayload> {
    const rows = (await m.query(
      `UPDATE feature_payload SET version = version + 1, payload = $1::jsonb, updated_at = now(), updated_by = $2
       WHERE id = 1 RETURNING version, payload, updated_at, updated_by`,
      [JSON.stringify(payload), actor],
    )) as [PayloadRow[], number];
    const stored = toStored(rows[0][0]!);
    await this.audit(m, actor, command, feature, before, after, stored.version);
    return stored;
  }

  private async audit(
    m: EntityManager,
    actor: string,
    command: string,
    feature: string | null,
    before: Record<string, FeatureDefinition>,
    after: Record<string, FeatureDefinition>,
    version: number,
  ): Promise<void> {
    await m.query(
      `INSERT INTO feature_audit (actor, command, feature, before, after, version)
       VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)`,
      [actor, command, feature, JSON.stringify(before), JSON.stringify(after), version],
    );
  }
}

export interface PollerOptions {
  /** Poll period in ms. Default 1000. */
  intervalMs?: number;
  warn?: (msg: string, fields?: Record<string, unknown>) => void;
  info?: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Keeps a FlagService on the database payload: polls the version every `intervalMs`, applies a new
 * payload when it changed, refuses a malformed one (logged; the previous stays in force and the same
 * bad version is not retried until it changes again).
 */
export class DatabasePoller {
  private timer: NodeJS.Timeout | null = null;
  private known: number;
  private polling: Promise<void> | null = null;
  private refusedVersion: number | null = null;
  private failing = false;

  constructor(
    private readonly store: FeatureStore,
    private readonly service: FlagService,
    private readonly opts: PollerOptions = {},
  ) {
    this.known = service.payload.version;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** One poll (also used by tests). Never throws: failures are logged and retried next period. */
  poll(): Promise<void> {
    this.polling ??= this.doPoll().finally(() => (this.polling = null));
    return this.polling;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.polling;
  }

  private async doPoll(): Promise<void> {
    try {
      const changed = await this.store.changedSince(this.known);
      if (this.failing) {
        this.failing = false;
        this.opts.info?.('features poll recovered', { inForce: this.known });
      }
      if (!changed || changed.version === this.refusedVersion) return;
      try {
        const warnings = this.service.apply(changed.payload, {
          origin: 'database',
          version: changed.version,
        });
        this.known = changed.version;
        this.refusedVersion = null;
        this.opts.info?.('features payload applied', { version: changed.version, by: changed.updatedBy });
        for (const w of warnings) this.opts.warn?.(w);
      } catch (err) {
        this.refusedVersion = changed.version;
        this.opts.warn?.('features payload refused; the previous one stays in force', {
          version: changed.version,
          inForce: this.known,
          error: (err as Error).message,
        });
      }
    } catch (err) {
      // Logged once per outage (not every period); the payload in force stays.
      if (!this.failing) this.opts.warn?.('features poll failed; will retry', { err, inForce: this.known });
      this.failing = true;
    }
  }
}
