/**
 * Query limits, shared by HTTP and WebSocket: GraphQL Armor's depth, alias and directive
 * validation rules, graphql-js's own parser token limit, and our row-counting cost limit
 * (src/server/cost.ts). Every limit is pinned here rather than left to a library default. A
 * rejected query gets `extensions.code = 'QUERY_TOO_COMPLEX'`.
 *
 * Why the cost is not Armor's: its cost rule counts syntax (a literal `first`, 1.5× per level), so
 * it refused a dashboard's 100 conflicts with their tasks and alternatives and could not see a
 * `first: $n`. Ours counts rows from the schema's types with the variables resolved, so it runs
 * once the variables are known: in an Apollo plugin (HTTP) and in graphql-ws's onSubscribe.
 *
 * Why the token limit is graphql-js's `parse(…, { maxTokens })` and not Armor's: Armor's Apollo
 * token plugin throws from `parsingDidStart`, which Apollo treats as an unexpected failure (HTTP
 * 500, code lost). The parser option aborts parsing the same way, on both transports.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type GraphQLSchema,
  type ParseOptions,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { queryCost } from './cost';
import { QueryTooComplexError } from './errors';

export interface QueryLimits {
  /** Maximum field depth (PLANNER_MAX_QUERY_DEPTH). Default 10. */
  maxDepth: number;
  /**
   * Maximum rows a response may hold (PLANNER_MAX_QUERY_COST), counted by src/server/cost.ts.
   * Default 100,000.
   */
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
  maxCost: 100_000,
  maxAliases: 15,
  maxDirectives: 50,
  maxTokens: 2000,
};

export interface LimitRules {
  /** Extra validation rules (after graphql's specified rules). */
  validationRules: ValidationRule[];
  /** Options for `graphql.parse`. */
  parseOptions: ParseOptions;
  /**
   * The cost limit, for a parsed and validated request with its variables: the QUERY_TOO_COMPLEX
   * error to answer, or null when it is within the limit.
   */
  checkCost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName?: string | null,
    variables?: Record<string, unknown> | null,
  ): GraphQLError | null;
  /** Apollo plugins enforcing what validation rules cannot (the cost, which needs the variables). */
  plugins: ApolloServerPlugin<BaseContext>[];
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
    costLimit: { enabled: false }, // syntax-based: replaced by checkCost (rows, variables resolved)
    maxAliases: { enabled: true, n: l.maxAliases, allowList: [], ...common },
    maxDirectives: { enabled: true, n: l.maxDirectives, ...common },
    maxTokens: { enabled: false },
    blockFieldSuggestion: { enabled: false }, // done by formatError in production, for both transports
  });
  const { validationRules } = armor.protect();
  // The cost of a document without variables never changes: computed once per parsed document
  // (Apollo and graphql-ws reuse the DocumentNode of a query text they have seen).
  const fixed = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Map<string, number | null>>>();
  const costFor = (
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | null | undefined,
  ): number | null => {
    const usesVariables = document.definitions.some(
      (d) => d.kind === Kind.OPERATION_DEFINITION && (d.variableDefinitions?.length ?? 0) > 0,
    );
    if (usesVariables) return queryCost(schema, document, operationName, variables);
    let bySchema = fixed.get(schema);
    if (!bySchema) fixed.set(schema, (bySchema = new WeakMap()));
    let byOp = bySchema.get(document);
    if (!byOp) bySchema.set(document, (byOp = new Map()));
    const key = operationName ?? '';
    if (byOp.has(key)) return byOp.get(key)!;
    const cost = queryCost(schema, document, operationName, variables);
    byOp.set(key, cost);
    return cost;
  };
  const checkCost: LimitRules['checkCost'] = (schema, document, operationName, variables) => {
    const cost = costFor(schema, document, operationName, variables);
    if (cost === null || cost <= l.maxCost) return null;
    return new GraphQLError(
      `Query cost ${cost} (rows the response may hold) is over the limit of ${l.maxCost}: ask for smaller pages or fewer nested lists.`,
      { extensions: { code: 'QUERY_TOO_COMPLEX', cost, maxCost: l.maxCost } },
    );
  };
  const costPlugin: ApolloServerPlugin<BaseContext> = {
    requestDidStart: () =>
      Promise.resolve({
        didResolveOperation: (rc) => {
          const refused = checkCost(rc.schema, rc.document, rc.request.operationName, rc.request.variables);
          if (!refused) return Promise.resolve();
          // A request error like the validation rules' (HTTP 400; Apollo strips `http` from the answer).
          return Promise.reject(
            new GraphQLError(refused.message, {
              extensions: { ...refused.extensions, http: { status: 400 } },
            }),
          );
        },
      }),
  };
  return { validationRules, parseOptions: { maxTokens: l.maxTokens }, checkCost, plugins: [costPlugin] };
}
