/**
 * Text Postgres cannot hold: a NUL character, or an unpaired UTF-16 surrogate (not Unicode text at
 * all). Like a malformed scalar, such an argument is refused at the edge with VALIDATION naming it,
 * for every query, mutation and subscription (it used to reach Postgres and come back as INTERNAL).
 */
import { GraphQLError } from 'graphql';

// eslint-disable-next-line no-control-regex -- matching NUL is the point
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Path of the first string in `value` that cannot be stored as text, if any. */
export function unstorable(value: unknown, path: string[] = []): string[] | null {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? path : null;
  if (value === null || typeof value !== 'object' || value instanceof Date) return null;
  for (const [k, v] of Object.entries(value)) {
    const hit = unstorable(v, [...path, k]);
    if (hit) return hit;
  }
  return null;
}

/** Throws VALIDATION when an argument holds text that cannot be stored. */
export function assertStorable(args: unknown): void {
  const bad = unstorable(args);
  if (bad) {
    throw new GraphQLError(
      `${bad.join('.')} contains a NUL character or an unpaired surrogate, which cannot be stored`,
      { extensions: { code: 'VALIDATION', path: bad } },
    );
  }
}

/** Wraps every resolver of a map so that its arguments are checked first. */
export function storableArgs<T extends Record<string, unknown>>(resolvers: T): T {
  return Object.fromEntries(
    Object.entries(resolvers).map(([name, r]) => [
      name,
      typeof r === 'function'
        ? (parent: unknown, args: unknown, ...rest: unknown[]) => {
            assertStorable(args);
            return (r as (...a: unknown[]) => unknown)(parent, args, ...rest);
          }
        : r,
    ]),
  ) as T;
}
