/**
 * `planner migrate status|up|down` — the schema's migrations, applied by hand (the server also
 * applies them on start unless PLANNER_MIGRATE_ON_START=false).
 * - `up --dry-run` prints the SQL the pending migrations would run and changes nothing;
 * - `down` reverts the latest migration, but first runs its `down` in a rolled-back transaction and
 *   refuses (exit 1, listing what would go) when that would lose rows or values, unless `--force`.
 *
 * Exit codes: 0 success, 1 failure or refusal, 2 bad usage.
 */
import { migrateDown, migrateUp, migrationStatus } from '../db/data-source';
import { describeLosses, pendingSql, previewDown } from '../db/migration-guard';
import type { Io } from './main';
import { OpsUsageError, parseOpsArgs, runOps, withOpsDatabase, type OpsArgs } from './ops-args';

export const MIGRATE_USAGE = `  planner migrate status
      List every migration, applied [x] or pending [ ].
  planner migrate up [--dry-run]
      Apply the pending migrations; --dry-run prints the SQL they would run and applies nothing.
  planner migrate down [--force]
      Revert the latest migration. Refuses when that would drop rows or non-null values (listed),
      unless --force.`;

/** Runs `planner migrate …` (args after "migrate") and returns the exit code. */
export async function runMigrate(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let a: OpsArgs;
  const action = args[0];
  return runOps(
    MIGRATE_USAGE,
    io,
    env,
    () => {
      if (action !== 'up' && action !== 'down' && action !== 'status') {
        throw new OpsUsageError('migrate needs exactly one of up, down, status');
      }
      a = parseOpsArgs(args.slice(1), {
        switches: action === 'up' ? ['dry-run'] : action === 'down' ? ['force'] : [],
      });
      if (a.positional.length > 0) throw new OpsUsageError('migrate needs exactly one of up, down, status');
    },
    (config) =>
      withOpsDatabase(config, async (db) => {
        const ds = db.dataSource;
        if (action === 'status') {
          for (const m of await migrationStatus(ds)) io.out(`${m.applied ? '[x]' : '[ ]'} ${m.name}`);
          return 0;
        }
        if (action === 'up') {
          if (a.switches.has('dry-run')) {
            const pending = await pendingSql(ds);
            if (pending.length === 0) io.out('-- nothing to apply: every migration is applied');
            for (const p of pending) {
              io.out(`-- ${p.migration}`);
              for (const s of p.statements) {
                io.out(`${s.sql.trim()};${s.params ? ` -- parameters: ${JSON.stringify(s.params)}` : ''}`);
              }
            }
            return 0;
          }
          const applied = await migrateUp(ds);
          if (applied.length === 0) io.out('nothing to apply: every migration is applied');
          for (const name of applied) io.out(`applied ${name}`);
          return 0;
        }
        const preview = await previewDown(ds);
        if (preview === null) {
          io.out('nothing to revert: no migration is applied');
          return 0;
        }
        if (preview.losses.length > 0) {
          const lines = describeLosses(preview.losses);
          if (!a.switches.has('force')) {
            io.err(`planner: refusing to revert ${preview.migration}: its down would lose data:`);
            for (const l of lines) io.err(`  ${l}`);
            io.err('planner: take a backup (planner backup), then run migrate down --force to revert anyway');
            return 1;
          }
          io.err(`planner: --force: reverting ${preview.migration} loses:`);
          for (const l of lines) io.err(`  ${l}`);
        }
        const reverted = await migrateDown(ds);
        io.out(reverted === null ? 'nothing to revert: no migration is applied' : `reverted ${reverted}`);
        return 0;
      }),
  );
}
