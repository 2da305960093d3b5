/**
 * `planner mcp --email <address>`: the planner's agent tools over the Model Context Protocol on
 * stdio, for one user (created if needed, as `planner token` does). Same configuration as
 * `npm start` in this folder (database, data directory, feature flags). stdout carries the
 * protocol only; diagnostics go to stderr. Runs until the client closes stdin.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpServer } from '../agent/mcp';
import { migrateUp } from '../db/data-source';
import { startFlags } from '../flags';
import { systemClock } from '../world/clock';
import { DomainError } from '../world/errors';
import { createWorld } from '../world/world';
import type { Io } from './main';
import { MCP_USAGE } from './mcp-usage';
import { openCliDatabase } from './open-db';

/** Runs `planner mcp …` (args after "mcp"); resolves with the exit code when the client disconnects. */
export async function runMcp(
  args: string[],
  env: Record<string, string | undefined>,
  io: Io,
  stdio: { stdin: NodeJS.ReadableStream; stdout: NodeJS.WritableStream } = process,
): Promise<number> {
  const m = args.length === 2 && args[0] === '--email' ? args[1] : /^--email=(.+)$/.exec(args[0] ?? '')?.[1];
  if (!m || (args.length !== 2 && args.length !== 1)) {
    io.err(`planner: mcp needs --email <address>`);
    io.err(MCP_USAGE);
    return 2;
  }
  const opened = await openCliDatabase(env, io, 'planner-mcp');
  if (!opened) return 1;
  const { config, log, db } = opened;
  let flags;
  try {
    await migrateUp(db.dataSource);
    // As the server's flagsOptions (src/server/app.ts), without loading the server.
    flags = await startFlags(db.dataSource, {
      pollMs: config.flagsPollMs,
      remote:
        config.growthbookApiHost && config.growthbookClientKey
          ? {
              apiHost: config.growthbookApiHost,
              clientKey: config.growthbookClientKey,
              refreshMs: config.growthbookRefreshMs,
            }
          : null,
      now: () => systemClock.now(),
      warn: (msg, fields) => log.warn(msg, fields),
    });
    const world = createWorld(db.dataSource, systemClock, { undoDepth: config.undoDepth, flags });
    let user;
    try {
      user = await world.users.findOrCreateByEmail(m);
    } catch (err) {
      if (err instanceof DomainError) {
        io.err(`planner: ${err.message}`);
        return 2;
      }
      throw err;
    }
    const server = createMcpServer(world, { userId: user.id });
    const closed = new Promise<void>((resolve) => {
      server.onclose = resolve;
      stdio.stdin.once('end', resolve);
      stdio.stdin.once('close', resolve);
    });
    await server.connect(new StdioServerTransport(stdio.stdin as never, stdio.stdout as never));
    io.err(`planner: MCP server on stdio for ${user.email} (user ${user.id})`);
    await closed;
    await server.close();
    await world.updater.flushHints();
    return 0;
  } finally {
    await flags?.close();
    await db.close();
  }
}
