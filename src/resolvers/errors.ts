/** The one translation from world errors to thrown GraphQL errors (for queries; mutations return them). */
import { GraphQLError } from 'graphql';
import { DomainError } from '../world/errors';

/** Runs a read; a DomainError becomes a GraphQLError with the same code and the field path. */
export async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DomainError) {
      throw new GraphQLError(err.message, { extensions: { code: err.code, path: err.path } });
    }
    throw err;
  }
}

/** FORBIDDEN for callers without the role. */
export function forbidden(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'FORBIDDEN' } });
}
