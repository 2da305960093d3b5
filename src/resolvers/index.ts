/**
 * The executable schema: SDL from schema/*.graphql (the public contract) plus thin resolvers.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import fs from 'node:fs';
import path from 'node:path';
import type { GraphQLSchema } from 'graphql';
import { instrumentMutations } from '../telemetry/mutations';
import { mutationResolvers } from './mutation.resolver';
import { queryResolvers } from './query.resolver';
import { storableArgs } from './storable';
import { DateTimeScalar, JSONScalar } from './scalars';
import { subscriptionResolvers } from './subscription.resolver';
import { typeResolvers } from './types.resolver';

export { createContext, requireAuth, type AuthContext, type GraphQLContext, type Loaders } from './context';

/** Directory of the SDL files. */
export const SCHEMA_DIR = path.resolve(__dirname, '..', '..', 'schema');

/** The SDL, all files of schema/ concatenated in name order. */
export function loadTypeDefs(dir: string = SCHEMA_DIR): string {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.graphql'))
    .sort()
    .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
}

/** Builds the executable schema. */
export function buildSchema(): GraphQLSchema {
  return makeExecutableSchema({
    typeDefs: loadTypeDefs(),
    resolvers: {
      DateTime: DateTimeScalar,
      JSON: JSONScalar,
      Query: storableArgs(queryResolvers),
      Mutation: instrumentMutations(mutationResolvers),
      Subscription: Object.fromEntries(
        Object.entries(subscriptionResolvers).map(([name, r]) => [
          name,
          { ...r, ...storableArgs({ subscribe: r.subscribe }) },
        ]),
      ),
      ...typeResolvers,
    },
    resolverValidationOptions: { requireResolversToMatchSchema: 'error' },
  });
}
