/**
 * The bench's HTTP ceiling: a bare Apollo Server 5 answering a constant query (`{ hello }`) over
 * node:http through executeHTTPGraphQLRequest, as the planner's server does, with nothing else
 * (no auth, no database, no limits). Run as its own process: prints `listening <port>` on stdout,
 * serves on 127.0.0.1 until SIGTERM.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap } from '@apollo/server';

async function main(): Promise<void> {
  const apollo = new ApolloServer({
    typeDefs: 'type Query { hello: String! }',
    resolvers: { Query: { hello: () => 'world' } },
    csrfPrevention: true,
    stopOnTerminationSignals: false,
  });
  await apollo.start();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      let body: unknown = null;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = null;
      }
      apollo
        .executeHTTPGraphQLRequest({
          httpGraphQLRequest: {
            method: req.method ?? 'POST',
            headers,
            search: new URL(req.url ?? '/', 'http://localhost').search,
            body,
          },
          context: () => Promise.resolve({}),
        })
        .then(async (response) => {
          res.statusCode = response.status ?? 200;
          for (const [k, v] of response.headers) res.setHeader(k, v);
          if (response.body.kind === 'complete') res.end(response.body.string);
          else {
            for await (const chunk of response.body.asyncIterator) res.write(chunk);
            res.end();
          }
        })
        .catch(() => {
          res.statusCode = 500;
          res.end();
        });
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => {
      void apollo.stop().finally(() => process.exit(0));
    });
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`bare-apollo: ${String(err)}\n`);
  process.exit(1);
});
