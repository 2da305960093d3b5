/**
 * PLANNER_MIGRATE_ON_START=false with pending migrations: the server does not run on a schema it
 * was not written for, and does not migrate it either. Until an operator runs `planner migrate up`
 * it serves only its probes on the configured address — /healthz 200, /readyz 503 naming the
 * pending migrations, anything else 503 — checking every `pollMs` whether they were applied. Then
 * it frees the address for the full server (same port, also when PORT=0 chose it).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataSource } from 'typeorm';
import { migrationStatus } from '../db/data-source';
import type { Logger } from './logger';

/** Default period of the pending-migrations poll. */
export const MIGRATION_POLL_MS = 1000;

async function pending(ds: DataSource): Promise<string[]> {
  return (await migrationStatus(ds)).filter((m) => !m.applied).map((m) => m.name);
}

/** The readiness reason while migrations are pending (also what /readyz says after start). */
export function pendingReason(names: readonly string[]): string {
  return `migrations not applied: ${names.join(', ')} (PLANNER_MIGRATE_ON_START=false: run \`planner migrate up\`)`;
}

/**
 * Returns at once when nothing is pending. Otherwise serves the probes on host:port until every
 * migration is applied, and returns the port it listened on (for the full server to take over).
 */
export async function awaitMigrations(
  ds: DataSource,
  host: string,
  port: number,
  log: Logger,
  pollMs = MIGRATION_POLL_MS,
): Promise<number> {
  let names = await pending(ds);
  if (names.length === 0) return port;
  log.warn('migrations pending and PLANNER_MIGRATE_ON_START=false: waiting for `planner migrate up`', {
    pending: names,
  });
  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
    res.end(JSON.stringify(body));
  };
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/healthz') send(res, 200, { status: 'ok' });
    else send(res, 503, { status: 'unavailable', reason: pendingReason(names) });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  log.info('serving probes only until migrations are applied', { port: bound });
  try {
    while (names.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      try {
        names = await pending(ds);
      } catch (err) {
        log.warn('pending-migrations check failed', { err });
      }
    }
  } finally {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  log.info('migrations applied by an operator: starting');
  return bound;
}
