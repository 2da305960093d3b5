/**
 * The query cost: how many rows (objects) a response can hold at most, computed from the schema's
 * types and the request's variables before anything runs. Syntax does not count; rows do:
 *
 * - a connection (a `…Connection` type) holds `min(first ?? 20, 100)` edges, `first` read with
 *   the variables resolved; its `edges`, each edge's `node` wrapper and `pageInfo` add nothing;
 * - a plain list holds at most its cap (LIST_CAPS: each one enforced by its resolver and stated in
 *   the schema's description); a list of scalars adds nothing;
 * - every other object counts 1 (the mutation's UpdateResult envelope 0), times the lists above it;
 * - fields skipped by `@skip`/`@include` and introspection count nothing; an interface or union
 *   counts as its costliest possible type.
 *
 * So the dashboard query `conflicts(first: 100) { … tasks { … } alternatives { … } }` costs
 * 100 × (1 + 20 + 5) = 2,600, while `tasks(first: 100) { … dependsOn { dependsOn { … } } }`
 * costs 100 × (1 + 50 × (1 + 50)) = 255,100.
 */
import {
  getArgumentValues,
  getDirectiveValues,
  getNamedType,
  getNullableType,
  getVariableValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isAbstractType,
  isLeafType,
  isListType,
  isObjectType,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { LIMITS } from '../domain/validation';
import { ROLLOUT_CAPS } from '../telemetry/report';
import { READ_CAPS } from '../world/loaders';
import { DEFAULT_PAGE, MAX_PAGE } from '../world/query-service';

/** Items a list can hold at most: a number, or `'page'` for `min(first ?? 20, 100)`. */
export type ListCap = number | 'page';

/**
 * Every list field of an object type and its cap (`Type.field`). Lists of scalars are not listed:
 * they add no rows. A test holds this table, the resolvers and the schema's descriptions together.
 */
export const LIST_CAPS: Readonly<Record<string, ListCap>> = {
  'Query.schedule': READ_CAPS.scheduleTasks,
  'Query.memories': 'page',
  'Query.features': READ_CAPS.features,
  'User.workingHours': 7,
  'WorkingDay.intervals': READ_CAPS.dayIntervals,
  'Task.dependsOn': LIMITS.dependsOnMax,
  'Task.conflicts': READ_CAPS.taskConflicts,
  'Conflict.tasks': READ_CAPS.conflictTasks,
  'Conflict.alternatives': READ_CAPS.conflictAlternatives,
  'UpdateResult.tasks': READ_CAPS.resultTasks,
  'UpdateResult.changes': READ_CAPS.resultChanges,
  'UpdateResult.conflicts': READ_CAPS.resultConflicts,
  'UpdateResult.errors': READ_CAPS.resultErrors,
  'UpdateResult.memory': READ_CAPS.resultMemory,
  'UpdateResult.flags': READ_CAPS.features,
  'UpdateResult.placements': READ_CAPS.resultTasks,
  'UpdateResult.unplaced': READ_CAPS.resultTasks,
  'RolloutDashboard.features': ROLLOUT_CAPS.features,
  'RolloutDashboard.rollbacks': ROLLOUT_CAPS.rollbacks,
  'RolloutFeature.variants': ROLLOUT_CAPS.variants,
  'RolloutVariant.usage': ROLLOUT_CAPS.usage,
  'GuardrailVerdict.arms': ROLLOUT_CAPS.arms,
  'GuardrailArm.checks': ROLLOUT_CAPS.checks,
};

/** Types that only wrap others: they add no row of their own. */
function isWrapper(type: GraphQLNamedType): boolean {
  return /Connection$|Edge$/.test(type.name) || type.name === 'PageInfo' || type.name === 'UpdateResult';
}

function isConnection(type: GraphQLNamedType): boolean {
  return /Connection$/.test(type.name) && isObjectType(type) && 'edges' in type.getFields();
}

/** `min(first ?? 20, 100)`; a `first` that cannot be read counts as 100. */
function pageOf(
  field: GraphQLField<unknown, unknown>,
  node: FieldNode,
  vars: Record<string, unknown>,
): number {
  let first: unknown;
  try {
    first = getArgumentValues(field, node, vars)['first'];
  } catch {
    return MAX_PAGE;
  }
  if (first === undefined || first === null) return DEFAULT_PAGE;
  if (typeof first !== 'number' || !Number.isInteger(first)) return MAX_PAGE;
  return Math.min(Math.max(first, 0), MAX_PAGE);
}

interface Walk {
  schema: GraphQLSchema;
  vars: Record<string, unknown>;
  fragments: Map<string, FragmentDefinitionNode>;
}

function skipped(node: FieldNode | { directives?: FieldNode['directives'] }, vars: Record<string, unknown>) {
  const n = node as FieldNode;
  try {
    if (getDirectiveValues(GraphQLSkipDirective, n, vars)?.['if'] === true) return true;
    if (getDirectiveValues(GraphQLIncludeDirective, n, vars)?.['if'] === false) return true;
  } catch {
    return false; // a bad variable fails execution; count the field
  }
  return false;
}

/**
 * Rows of one selection set on `type`. `edges`: the page size when `type` is a connection.
 * `seen` guards against fragment cycles (validation refuses them; this never loops anyway).
 */
function costOf(
  w: Walk,
  set: SelectionSetNode,
  type: GraphQLObjectType,
  edges: number,
  seen: ReadonlySet<string>,
): number {
  let total = 0;
  for (const sel of set.selections) {
    if (skipped(sel, w.vars)) continue;
    if (sel.kind === Kind.INLINE_FRAGMENT) {
      const on = sel.typeCondition ? w.schema.getType(sel.typeCondition.name.value) : type;
      if (on && isObjectType(on)) total += costOf(w, sel.selectionSet, on, edges, seen);
      continue;
    }
    if (sel.kind === Kind.FRAGMENT_SPREAD) {
      const name = sel.name.value;
      const frag = w.fragments.get(name);
      if (!frag || seen.has(name)) continue;
      const on = w.schema.getType(frag.typeCondition.name.value);
      if (on && isObjectType(on)) total += costOf(w, frag.selectionSet, on, edges, new Set([...seen, name]));
      continue;
    }
    total += fieldCost(w, sel, type, edges, seen);
  }
  return total;
}

function fieldCost(
  w: Walk,
  node: FieldNode,
  parent: GraphQLObjectType,
  edges: number,
  seen: ReadonlySet<string>,
): number {
  const name = node.name.value;
  if (name.startsWith('__')) return 0; // __typename, introspection
  const field = parent.getFields()[name];
  if (!field) return 0; // validation reports it
  const named = getNamedType(field.type);
  if (isLeafType(named) || !node.selectionSet) return 0;
  let each: number;
  if (isAbstractType(named)) {
    // An interface or union: its costliest possible type (fragments counted generously).
    each = 0;
    for (const t of w.schema.getPossibleTypes(named))
      each = Math.max(each, 1 + costOf(w, node.selectionSet, t, 0, seen));
  } else if (isObjectType(named)) {
    const page = isConnection(named) ? pageOf(field, node, w.vars) : 0;
    each = (isWrapper(named) ? 0 : 1) + costOf(w, node.selectionSet, named, page, seen);
  } else return 0;
  if (!isListType(getNullableType(field.type))) return each;
  let items: number;
  if (name === 'edges' && isConnection(parent)) items = edges;
  else {
    const cap = LIST_CAPS[`${parent.name}.${name}`] ?? MAX_PAGE;
    items = cap === 'page' ? pageOf(field, node, w.vars) : cap;
  }
  return items * each;
}

/** The operation `operationName` names (or the only one), as graphql-js would pick it. */
function operationOf(document: DocumentNode, operationName?: string | null): OperationDefinitionNode | null {
  const ops = document.definitions.filter(
    (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION,
  );
  if (operationName) return ops.find((o) => o.name?.value === operationName) ?? null;
  return ops.length === 1 ? ops[0]! : null;
}

/**
 * The most rows the operation's response can hold. Variables are coerced as execution would;
 * when they cannot be (execution will refuse the request), page sizes count as 100.
 * Null when there is no such operation (execution reports that).
 */
export function queryCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
  variables?: Record<string, unknown> | null,
): number | null {
  const op = operationOf(document, operationName);
  if (!op) return null;
  const root =
    op.operation === 'query'
      ? schema.getQueryType()
      : op.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  if (!root) return null;
  const coerced = getVariableValues(schema, op.variableDefinitions ?? [], variables ?? {});
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
  const vars = coerced.coerced ?? {};
  return costOf({ schema, vars, fragments }, op.selectionSet, root, 0, new Set());
}
