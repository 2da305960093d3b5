/**
 * `planner verify [--json]` — the deployment checklist's model verification: every migration is
 * applied (none unknown), and the live schema's tables, columns, enums, indexes, constraints,
 * triggers, sequences and functions are exactly what the migrations declare (built by running them
 * all in a scratch schema inside a rolled-back transaction, then compared object by object).
 *
 * Exit codes: 0 as declared, 1 differences (listed) or failure, 2 bad usage.
 */
import { verifyDatabase, type SchemaProblem } from '../db/schema-snapshot';
import type { Io } from './main';
import { OpsUsageError, parseOpsArgs, runOps, withOpsDatabase } from './ops-args';

export const VERIFY_USAGE = `  planner verify [--json]
      Check that every migration is applied and that tables, columns, enums, indexes, constraints
      and triggers are exactly as the migrations declare. Lists each difference; exit 1 if any.`;

function describe(p: SchemaProblem): string {
  const detail =
    p.problem === 'differs'
      ? `: expected ${p.expected}, found ${p.actual}`
      : p.problem === 'missing' && p.expected
        ? ` (${p.expected})`
        : p.problem === 'unexpected' && p.actual
          ? ` (${p.actual})`
          : '';
  return `${p.kind} ${p.name}: ${p.problem}${detail}`;
}

/** Runs `planner verify …` (args after "verify") and returns the exit code. */
export async function runVerify(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let json = false;
  return runOps(
    VERIFY_USAGE,
    io,
    env,
    () => {
      const a = parseOpsArgs(args, { switches: ['json'] });
      if (a.positional.length > 0)
        throw new OpsUsageError(`verify takes no arguments (got "${a.positional[0]}")`);
      json = a.switches.has('json');
    },
    (config) =>
      withOpsDatabase(config, async (db) => {
        const problems = await verifyDatabase(db.dataSource);
        if (json) {
          io.out(JSON.stringify({ ok: problems.length === 0, problems }));
        } else if (problems.length === 0) {
          io.out('ok: every migration is applied and the schema is as the migrations declare');
        } else {
          io.out(
            `${problems.length} difference${problems.length === 1 ? '' : 's'} from the declared schema:`,
          );
          for (const p of problems) io.out(`  ${describe(p)}`);
        }
        return problems.length === 0 ? 0 : 1;
      }),
  );
}
