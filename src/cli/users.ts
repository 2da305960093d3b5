/**
 * `planner users list|role|revoke` — who can sign in, with which stored role (issue 13). Role
 * changes and revocations are recorded in user_auth_audit with who (`--actor`, else the OS user)
 * and when, and bump auth_version: every running server drops its cached roles within
 * PLANNER_AUTH_POLL_MS (1 s by default).
 *
 * Exit codes: 0 success, 1 failure (configuration, database, no such user), 2 bad usage.
 */
import os from 'node:os';
import { migrateUp } from '../db/data-source';
import { systemClock } from '../world/clock';
import { createWorld } from '../world/world';
import type { Io } from './main';
import { openCliDatabase } from './open-db';

export const USERS_USAGE = `  planner users list [--json]
      Every user: email, stored role, provider subject, valid-after (revocation) time.
  planner users role <email> ADMIN|USER [--actor who]
      Set a user's stored role (audited). Running servers apply it within PLANNER_AUTH_POLL_MS.
  planner users revoke <email> [--actor who]
      Refuse every token issued to the user before now (audited); new tokens still work.`;

class UsersUsageError extends Error {}

/** Who is changing roles: --actor, else `os:<login name>`. */
function operator(given: string | undefined): string {
  if (given?.trim()) return given.trim();
  try {
    return `os:${os.userInfo().username}`;
  } catch {
    return `os:${process.env['USER'] ?? process.env['LOGNAME'] ?? 'unknown'}`;
  }
}

interface Parsed {
  positional: string[];
  actor?: string;
  json: boolean;
}

function parse(args: string[]): Parsed {
  const out: Parsed = { positional: [], json: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--json') out.json = true;
    else if (a === '--actor' || a.startsWith('--actor=')) {
      const v = a === '--actor' ? args[++i] : a.slice('--actor='.length);
      if (v === undefined || v.startsWith('--')) throw new UsersUsageError('--actor needs a value');
      out.actor = v;
    } else if (a.startsWith('--')) throw new UsersUsageError(`unknown option ${a}`);
    else out.positional.push(a);
  }
  return out;
}

/** Runs `planner users …` (args after "users") and returns the exit code. */
export async function runUsers(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
): Promise<number> {
  let p: Parsed;
  const [sub, ...rest] = args;
  try {
    p = parse(rest);
    if (sub === 'list') {
      if (p.positional.length > 0 || p.actor) throw new UsersUsageError('users list takes only --json');
    } else if (sub === 'role') {
      const role = p.positional[1];
      if (p.positional.length !== 2 || (role !== 'ADMIN' && role !== 'USER')) {
        throw new UsersUsageError('users role needs <email> ADMIN|USER');
      }
    } else if (sub === 'revoke') {
      if (p.positional.length !== 1) throw new UsersUsageError('users revoke needs <email>');
    } else {
      throw new UsersUsageError(
        sub === undefined ? 'users needs list, role or revoke' : `unknown users command "${sub}"`,
      );
    }
  } catch (err) {
    if (!(err instanceof UsersUsageError)) throw err;
    io.err(`planner: ${err.message}`);
    io.err(USERS_USAGE);
    return 2;
  }
  const opened = await openCliDatabase(env, io);
  if (!opened) return 1;
  const { config, db } = opened;
  try {
    await migrateUp(db.dataSource);
    const users = createWorld(db.dataSource, systemClock, { undoDepth: config.undoDepth }).users;
    if (sub === 'list') {
      const rows = await users.listAuth();
      if (p.json) {
        io.out(JSON.stringify(rows));
      } else {
        if (rows.length === 0) io.out('no users');
        for (const r of rows) {
          const provider = r.providerSubject === null ? '-' : `${r.providerIssuer} ${r.providerSubject}`;
          const revoked = r.validAfter === null ? '' : `  valid after ${r.validAfter.toISOString()}`;
          io.out(`${r.email}  ${r.role}  ${r.id}  ${provider}${revoked}`);
        }
      }
      return 0;
    }
    const email = p.positional[0]!;
    const user = await users.findByEmail(email);
    if (!user) {
      io.err(`planner: no user with email ${email}`);
      return 1;
    }
    const actor = operator(p.actor);
    if (sub === 'role') {
      const role = p.positional[1] as 'ADMIN' | 'USER';
      const before = await users.setRole(user.id, role, actor);
      io.out(
        before === role
          ? `nothing changed: ${user.email} is already ${role}`
          : `${user.email}: ${before} → ${role} by ${actor}; running servers apply it within ${config.authPollMs} ms`,
      );
    } else {
      const at = await users.revoke(user.id, actor);
      io.out(
        `${user.email}: tokens issued before ${at!.toISOString()} are refused (by ${actor}); running servers apply it within ${config.authPollMs} ms`,
      );
    }
    return 0;
  } catch (err) {
    io.err(`planner: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    await db.close();
  }
}
