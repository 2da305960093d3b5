/**
 * A TCP proxy in front of Postgres for fault tests. It reads each connection's startup message to
 * learn its `application_name`, and can then silently cut chosen connections: it stops forwarding in
 * both directions WITHOUT closing either socket (a half-open connection, as after a NAT timeout or a
 * dead peer), so the client only notices by a timeout of its own.
 */
import net from 'node:net';

export interface ProxiedConnection {
  readonly applicationName: string | null;
  /** True once frozen: bytes are dropped in both directions, sockets stay open. */
  frozen: boolean;
}

export interface TcpProxy {
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  readonly port: number;
  /** Connections opened so far (frozen ones included). */
  readonly connections: readonly ProxiedConnection[];
  /** Freezes every open connection whose application_name is `name`; returns how many. */
  freeze(name: string): number;
  close(): Promise<void>;
}

/** Parses `application_name` out of a Postgres StartupMessage (protocol 3.0), if complete. */
function applicationNameOf(startup: Buffer): string | null | undefined {
  if (startup.length < 8) return undefined;
  const len = startup.readInt32BE(0);
  if (startup.length < len) return undefined;
  const parts = startup.subarray(8, len).toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) if (parts[i] === 'application_name') return parts[i + 1]!;
  return null;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const conns: Array<ProxiedConnection & { client: net.Socket; upstream: net.Socket }> = [];
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client);
    sockets.add(upstream);
    const conn = { applicationName: null as string | null, frozen: false, client, upstream };
    conns.push(conn);
    let head: Buffer | null = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const name = applicationNameOf(head);
        if (name !== undefined) {
          conn.applicationName = name;
          head = null;
        }
      }
      if (!conn.frozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!conn.frozen) client.write(chunk);
    });
    const end = () => {
      if (conn.frozen) return; // half-open on purpose: nobody is told
      client.destroy();
      upstream.destroy();
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    connections: conns,
    urlFor(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    freeze(name) {
      let n = 0;
      for (const c of conns) {
        if (!c.frozen && c.applicationName === name && !c.client.destroyed) {
          c.frozen = true;
          n++;
        }
      }
      return n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
