/**
 * The statement log of the whole suite (issue 16, scale-out ready), and its check.
 *
 * CAPTURE. Loaded by .mocharc.json (`require`), this wraps `pg.Client.prototype.query`, so every
 * statement any pool or client of the test process sends is recorded: the in-process test servers,
 * the world runner, readers, hubs, sweepers and the tests' own fixture SQL. Spawned processes
 * (test/e2e via bin/planner) run the same src/ code and are not captured. Each statement is
 * recorded once per distinct (origin, text) with a count: the log stays small and the check fast.
 * ORIGIN is the nearest project frame of the caller's (async) stack: a file under test/ is a test
 * fixture, under src/migrations/ a migration, anything else under src/ is the application.
 *
 * CHECK (a root after-all hook, so it runs once after every file of the run, whichever ran): an
 * APPLICATION statement that touches a user table (one with a user_id column, read from the
 * migrated catalog at start, plus `users`) must be routable to one user's shard:
 * - a predicate `user_id = $n` / `user_id = ANY($n…)` / `user_id IN (…)` (for `users`: `id = $n`);
 * - or, for an INSERT, `user_id` in the inserted column list.
 * Otherwise the run fails with the statement and the file that sent it.
 *
 * MARKERS. A statement that is meant to reach many users (or find a user by something other than
 * its id) starts with a comment naming why, and the name must be in UNSCOPED_ALLOW_LIST below:
 *   /* background:<job> *\/      a job outside any request (sweeps, the memory learner, backup)
 *   /* admin:<report> *\/        an admin-only report over all users
 *   /* directory:<lookup> *\/    the account directory (sign-in by email / provider identity)
 * An unlisted marker fails the check too. A new job (the memory learner is already listed as
 * background:learner) puts its marker first in its SQL and, if new, adds ONE line to the list.
 * A per-pool application_name was rejected: pools are shared by requests and jobs, while the
 * marker travels with the statement (into pg_stat_activity and the server log too). DDL
 * (migrations, test schema probes) and statements that touch no user table are out of scope.
 *
 * Set PLANNER_STATEMENT_LOG=<file> to also write the distinct statements as JSON lines.
 */
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

/**
 * The one allow-list of statements that may touch many users' rows (or find a user by something
 * other than its id), each with its reason. Keyed by the marker the SQL starts with:
 * `background:<job>` for jobs outside any request, `admin:<report>` for admin-only reports over
 * all users, `directory:<lookup>` for the account directory
 * (sign-in by email / provider identity: on Citus these go through the lookup tables of
 * docs/scaling.md, "Email uniqueness", and then to one shard).
 */
export const UNSCOPED_ALLOW_LIST: Record<string, string> = {
  'background:events-retention':
    'outbox retention sweep: deletes events older than PLANNER_OUTBOX_RETENTION_DAYS for all users, in batches (on Citus a multi-shard DELETE, fine for a sweep)',
  'background:idempotency-sweep': 'expired idempotency keys of all users, in batches (TTL sweep)',
  'background:operator-cli': 'operator commands over all accounts (`planner users list`), not a request',
  'background:learner':
    'memory learner and its TTL sweep: a batch pass over the users whose events moved past their cursor, outside any request',
  'background:memory-metrics':
    'the memory items/bytes gauges: one aggregate over all users, read by the metrics reader',
  'background:ops-catalog':
    'operator commands (backup, restore, verify, the migrate down guard): whole-table row counts and checksums',
  'background:backup': 'planner backup/restore: a consistent snapshot of every table, outside any request',
  'admin:rollout-report':
    'the admins’ rollout report (rollout, rolloutReport, `planner rollout report`): exposures and usage summed over all users; on Citus a multi-shard aggregate, admin-only and rare',
  'directory:email':
    'find or create the account of an email (token CLI, users CLI, sign-in): the email → user_id lookup table on Citus',
  'directory:provider-identity':
    'find or create the account of a provider (issuer, subject): the identity → user_id lookup table on Citus',
};

export type Origin = 'application' | 'migration' | 'fixture' | 'library';

export interface LoggedStatement {
  origin: Origin;
  /** The project file nearest to the caller ('' when none: driver/ORM internals). */
  file: string;
  sql: string;
  count: number;
}

const ROOT = path.resolve(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src') + path.sep;
const TEST = path.join(ROOT, 'test') + path.sep;
const log = new Map<string, LoggedStatement>();

function originOf(): { origin: Origin; file: string } {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  let sites: NodeJS.CallSite[] = [];
  try {
    Error.stackTraceLimit = 40;
    Error.prepareStackTrace = (_e, cs) => cs;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, originOf);
    sites = (holder.stack as NodeJS.CallSite[] | undefined) ?? [];
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
  for (const s of sites) {
    let f = s.getFileName() ?? '';
    if (f.startsWith('file://')) f = new URL(f).pathname;
    if (f === __filename || f.includes(`${path.sep}node_modules${path.sep}`)) continue;
    const rel = path.relative(ROOT, f);
    if (f.startsWith(TEST)) return { origin: 'fixture', file: rel };
    if (f.startsWith(path.join(SRC, 'migrations'))) return { origin: 'migration', file: rel };
    if (f.startsWith(SRC)) return { origin: 'application', file: rel };
  }
  return { origin: 'library', file: '' };
}

function record(sql: unknown): void {
  const text = typeof sql === 'string' ? sql : (sql as { text?: unknown } | null)?.text;
  if (typeof text !== 'string') return;
  const { origin, file } = originOf();
  const key = `${origin}\u0000${file}\u0000${text}`;
  const seen = log.get(key);
  if (seen) seen.count++;
  else log.set(key, { origin, file, sql: text, count: 1 });
}

let installed = false;
/** Wraps pg's Client#query (idempotent). */
export function installStatementLog(): void {
  if (installed) return;
  installed = true;
  const proto = pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    record(args[0]);
    return original.apply(this, args);
  };
}

export function statementLog(): LoggedStatement[] {
  return [...log.values()];
}

const DDL = /^\s*(CREATE|ALTER|DROP|TRUNCATE|COMMENT|GRANT|REVOKE)\b/i;
const MARKER = /^\s*\/\*\s*((?:background|directory|admin):[\w-]+)\s*\*\//;

/** Strips comments and string literals (so names inside them do not count). */
function bare(sql: string): string {
  return sql
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/'(?:[^']|'')*'/g, "''");
}

/** User tables the statement reads or writes (FROM / JOIN / INTO / UPDATE / DELETE FROM / USING). */
export function tablesTouched(sql: string, userTables: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  const re = /\b(?:FROM|JOIN|INTO|UPDATE|USING)\s+(?:ONLY\s+)?(?:"?public"?\.)?"?([a-z_][a-z0-9_]*)"?/gi;
  for (const m of bare(sql).matchAll(re)) {
    const t = m[1]!.toLowerCase();
    if (userTables.has(t)) out.add(t);
  }
  return [...out].sort();
}

/**
 * Why an application statement is not scoped to one user, or null when it is. `userTables` are
 * the user-keyed tables (`users` included).
 */
export function unscopedReason(sql: string, userTables: ReadonlySet<string>): string | null {
  const marker = MARKER.exec(sql);
  if (marker) {
    return marker[1]! in UNSCOPED_ALLOW_LIST ? null : `marker "${marker[1]}" is not in UNSCOPED_ALLOW_LIST`;
  }
  if (DDL.test(sql)) return null;
  const touched = tablesTouched(sql, userTables);
  if (touched.length === 0) return null;
  const s = bare(sql);
  const keyed = /\buser_id"?\s*(?:=\s*(?:\$\d+|ANY\s*\(\s*\$\d+)|IN\s*\()/i.test(s);
  const insertCols = /^\s*(?:WITH[\s\S]*?)?INSERT\s+INTO\s+"?\w+"?\s*\(([^)]*)\)/i.exec(s);
  const inserted = insertCols !== null && /\buser_id\b/i.test(insertCols[1]!);
  const usersById = /\bid"?\s*=\s*(?:\$\d+|ANY\s*\(\s*\$\d+)/i.test(s);
  if (keyed || inserted) return null;
  if (touched.length === 1 && touched[0] === 'users' && usersById) return null;
  return `touches ${touched.join(', ')} without a user_id predicate`;
}

/** Every application statement of the log that is not scoped to one user, as readable lines. */
export function violations(userTables: ReadonlySet<string>, entries = statementLog()): string[] {
  const out: string[] = [];
  for (const e of entries) {
    if (e.origin !== 'application' && e.origin !== 'library') continue;
    const why = unscopedReason(e.sql, userTables);
    if (why)
      out.push(`${e.file || '(driver)'} ×${e.count}: ${why}\n    ${e.sql.replace(/\s+/g, ' ').trim()}`);
  }
  return out;
}

/** The user-keyed tables of the migrated schema (read once by the root hook). */
export async function loadUserTables(url: string): Promise<Set<string>> {
  const c = new pg.Client({ connectionString: url, application_name: 'planner-test-statement-log' });
  await c.connect();
  try {
    const { rows } = await c.query<{ t: string }>(
      `SELECT DISTINCT c.relname AS t FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attname = 'user_id' AND NOT a.attisdropped`,
    );
    return new Set(['users', ...rows.map((r) => r.t)]);
  } finally {
    await c.end();
  }
}

export function writeStatementLog(file: string): void {
  fs.writeFileSync(
    file,
    statementLog()
      .map((e) => JSON.stringify(e))
      .join('\n') + '\n',
  );
}
