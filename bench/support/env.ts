/** What several benches share: a free loopback port, and a database to run against. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres, type EmbeddedHandle } from '../../src/db/embedded';

/** A port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Runs `fn` against BENCH_DATABASE_URL when set, else against an embedded Postgres in a fresh
 * temporary directory (stopped and removed afterwards).
 */
export async function withBenchDatabase<T>(
  log: (msg: string) => void,
  fn: (url: string) => Promise<T>,
): Promise<T> {
  const external = process.env['BENCH_DATABASE_URL']?.trim();
  if (external) return fn(external);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'planner-bench-pg-'));
  fs.chmodSync(dir, 0o755); // as root, initdb runs as `postgres`, who must enter the dir
  let pg: EmbeddedHandle | null = null;
  try {
    log(`starting embedded Postgres in ${dir}`);
    pg = await startEmbeddedPostgres({
      dataDir: dir,
      password: randomBytes(18).toString('base64url'),
      port: 0,
    });
    return await fn(pg.url);
  } finally {
    await pg?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
