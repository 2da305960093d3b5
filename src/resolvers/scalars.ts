/** DateTime (ISO-8601 with a mandatory offset) and JSON scalars. */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { INSTANT_RANGE } from '../domain/validation';

const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

function parseInstant(value: unknown): Date {
  if (typeof value !== 'string' || !ISO_WITH_OFFSET.test(value)) {
    throw new GraphQLError(
      `DateTime must be an ISO-8601 string with an offset (e.g. 2026-12-01T09:00:00Z), got ${JSON.stringify(value)}`,
      { extensions: { code: 'VALIDATION' } },
    );
  }
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) {
    throw new GraphQLError(`DateTime ${JSON.stringify(value)} is not a real instant`, {
      extensions: { code: 'VALIDATION' },
    });
  }
  if (d.getTime() < INSTANT_RANGE.min || d.getTime() >= INSTANT_RANGE.max) {
    throw new GraphQLError(
      `DateTime ${JSON.stringify(value)} is outside the supported range 1900-01-01T00:00:00Z to 2200-01-01T00:00:00Z (exclusive)`,
      { extensions: { code: 'VALIDATION' } },
    );
  }
  return d;
}

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'ISO-8601 instant with offset; output in UTC.',
  serialize(value) {
    const d = value instanceof Date ? value : new Date(value as string);
    if (Number.isNaN(d.getTime())) throw new GraphQLError('DateTime cannot represent an invalid date');
    return d.toISOString();
  },
  parseValue: parseInstant,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) parseInstant(null);
    return parseInstant((ast as { value: string }).value);
  },
});

function literal(ast: ValueNode, variables: Record<string, unknown> | null | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literal(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literal(f.value, variables)]));
    case Kind.VARIABLE:
      return variables ? variables[ast.name.value] : undefined;
    default:
      return undefined;
  }
}

export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Arbitrary JSON value.',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (ast, variables) => literal(ast, variables),
});
