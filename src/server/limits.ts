/**
 * Query limits, shared by HTTP and WebSocket: GraphQL Armor's depth, cost, alias and directive
 * validation rules, and graphql-js's own parser token limit. Every limit is pinned here rather than
 * left to a library default. A rejected query gets `extensions.code = 'QUERY_TOO_COMPLEX'`.
 *
 * Why the token limit is graphql-js's `parse(…, { maxTokens })` and not Armor's: Armor's Apollo
 * token plugin throws from `parsingDidStart`, which Apollo treats as an unexpected failure (HTTP
 * 500, code lost). The parser option aborts parsing the same way, on both transports.
 */
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { ParseOptions, ValidationContext, ValidationRule } from 'graphql';
import type { GraphQLError } from 'graphql';
import { QueryTooComplexError } from './errors';

export interface QueryLimits {
  /** Maximum field depth (PLANNER_MAX_QUERY_DEPTH). Default 10. */
  maxDepth: number;
  /** Maximum Armor cost (PLANNER_MAX_QUERY_COST). Default 5000. */
  maxCost: number;
  /** Maximum aliases per operation (`__typename` aliases count too). Default 15. */
  maxAliases: number;
  /** Maximum directives per operation. Default 50. */
  maxDirectives: number;
  /** Maximum lexical tokens per document. Default 2000. */
  maxTokens: number;
}

export const DEFAULT_LIMITS: QueryLimits = {
  maxDepth: 10,
  maxCost: 5000,
  maxAliases: 15,
  maxDirectives: 50,
  maxTokens: 2000,
};

export interface LimitRules {
  /** Extra validation rules (after graphql's specified rules). */
  validationRules: ValidationRule[];
  /** Options for `graphql.parse`. */
  parseOptions: ParseOptions;
}

/** Reports the Armor rejection into the validation context as a QUERY_TOO_COMPLEX error. */
function report(ctx: ValidationContext | null, err: GraphQLError): void {
  ctx?.reportError(new QueryTooComplexError(err.message.replace(/^Syntax Error: /, '')));
}

/** Builds the validation rules and parse options enforcing `limits` (see QueryLimits for defaults). */
export function buildLimitRules(limits: Partial<QueryLimits> = {}): LimitRules {
  const l = { ...DEFAULT_LIMITS, ...limits };
  const common = { onReject: [report], propagateOnRejection: false, exposeLimits: true };
  const armor = new ApolloArmor({
    maxDepth: { enabled: true, n: l.maxDepth, ignoreIntrospection: true, flattenFragments: false, ...common },
    costLimit: {
      enabled: true,
      maxCost: l.maxCost,
      objectCost: 2,
      scalarCost: 1,
      depthCostFactor: 1.5,
      ignoreIntrospection: true,
      ...common,
    },
    maxAliases: { enabled: true, n: l.maxAliases, allowList: [], ...common },
    maxDirectives: { enabled: true, n: l.maxDirectives, ...common },
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: false }, // done by formatError in production, for both transports
  });
  const { validationRules } = armor.protect();
  return { validationRules, parseOptions: { maxTokens: l.maxTokens } };
}
