/**
 * The row-counting cost estimator (src/server/cost.ts) against the real schema: pages, caps,
 * variables, wrappers, fragments and directives; and the caps table held together with the SDL.
 */
import { expect } from 'chai';
import {
  getNamedType,
  getNullableType,
  isLeafType,
  isListType,
  isObjectType,
  parse,
  type GraphQLField,
  type GraphQLSchema,
} from 'graphql';
import { buildSchema } from '../../src/resolvers';
import { LIST_CAPS, queryCost } from '../../src/server/cost';
import { buildLimitRules, DEFAULT_LIMITS } from '../../src/server/limits';
import { READ_CAPS } from '../../src/world/loaders';

const DASHBOARD = `{ conflicts(status: OPEN, first: 100) { edges { node { id kind tasks { id title }
  alternatives { id description score } } } } }`;

describe('query cost (rows, type-aware)', () => {
  let schema: GraphQLSchema;
  const cost = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
    queryCost(schema, parse(query), operationName, variables);

  before(() => {
    schema = buildSchema();
  });

  it('counts the dashboard query as 100 × (1 + 20 tasks + 5 alternatives)', () => {
    expect(cost(DASHBOARD)).to.equal(100 * (1 + READ_CAPS.conflictTasks + READ_CAPS.conflictAlternatives));
    expect(cost(DASHBOARD)).to.be.at.most(DEFAULT_LIMITS.maxCost);
  });

  it('multiplies connections by min(first ?? 20, 100); edges, node and pageInfo add nothing', () => {
    expect(cost('{ tasks { edges { node { id } } } }')).to.equal(20);
    expect(
      cost('{ tasks(first: 7) { edges { cursor node { id title } } pageInfo { hasNextPage } } }'),
    ).to.equal(7);
    expect(cost('{ tasks(first: 5000) { edges { node { id } } } }')).to.equal(100);
    expect(cost('{ tasks(first: 3) { pageInfo { endCursor } } }')).to.equal(0);
    expect(
      cost('{ goals(first: 10) { edges { node { tasks(first: 10) { edges { node { id } } } } } } }'),
    ).to.equal(10 * (1 + 10));
  });

  it('resolves variables and their defaults (a variable execution refuses counts as absent)', () => {
    const q = 'query($n: Int) { tasks(first: $n) { edges { node { id } } } }';
    expect(cost(q, { n: 5 })).to.equal(5);
    expect(cost(q, {})).to.equal(20);
    expect(cost(q, { n: null })).to.equal(20);
    expect(cost(q, { n: 1000 })).to.equal(100);
    expect(cost(q, { n: 'many' })).to.equal(20); // refused by execution anyway
    expect(cost('query($n: Int = 3) { tasks(first: $n) { edges { node { id } } } }')).to.equal(3);
  });

  it('counts plain lists at their cap, and objects once per parent row', () => {
    expect(cost('{ me { id } }')).to.equal(1);
    expect(cost('{ me { workingHours { weekday intervals { start } } } }')).to.equal(
      1 + 7 * (1 + READ_CAPS.dayIntervals),
    );
    expect(cost('{ task(id: "x") { goal { id } dependsOn { id } conflicts { id } } }')).to.equal(
      1 + 1 + 50 + READ_CAPS.taskConflicts,
    );
    expect(
      cost('{ schedule(from: "2026-12-01T00:00:00Z", to: "2026-12-02T00:00:00Z") { id tags } }'),
    ).to.equal(READ_CAPS.scheduleTasks);
    expect(cost('{ operations(first: 10) { edges { node { target { id } } } } }')).to.equal(10 * 2);
  });

  it('refuses nested lists that would produce millions of rows', () => {
    const nested =
      '{ tasks(first: 100) { edges { node { dependsOn { dependsOn { dependsOn { id } } } } } } }';
    expect(cost(nested)).to.equal(100 * (1 + 50 * (1 + 50 * (1 + 50))));
    expect(cost(nested)).to.be.above(1_000_000);
    const rules = buildLimitRules();
    expect(rules.checkCost(schema, parse(nested))?.extensions['code']).to.equal('QUERY_TOO_COMPLEX');
    expect(rules.checkCost(schema, parse(DASHBOARD))).to.equal(null);
  });

  it('gives a reused document the same verdict every time, and a document with variables one per variables', () => {
    const rules = buildLimitRules({ maxCost: 1000 });
    const fixedDoc = parse('{ tasks(first: 100) { edges { node { dependsOn { id } } } } }');
    for (let i = 0; i < 3; i++) {
      expect(rules.checkCost(schema, fixedDoc)?.extensions['cost']).to.equal(100 * (1 + 50));
    }
    const small = parse('{ tasks(first: 5) { edges { node { id } } } }');
    for (let i = 0; i < 2; i++) expect(rules.checkCost(schema, small)).to.equal(null);
    const withVars = parse('query($n: Int) { tasks(first: $n) { edges { node { dependsOn { id } } } } }');
    expect(rules.checkCost(schema, withVars, null, { n: 5 })).to.equal(null);
    expect(rules.checkCost(schema, withVars, null, { n: 100 })?.extensions['cost']).to.equal(100 * 51);
    expect(rules.checkCost(schema, withVars, null, { n: 5 })).to.equal(null);
  });

  it('counts mutation results (UpdateResult itself adds nothing) and subscription payloads', () => {
    expect(cost('mutation { redo { ok task { id goal { id } } conflicts { id tasks { id } } } }')).to.equal(
      1 + 1 + READ_CAPS.resultConflicts * (1 + READ_CAPS.conflictTasks),
    );
    expect(
      cost('subscription { conflictEvents { conflict { id tasks { id } alternatives { id } } } }'),
    ).to.equal(1 + 1 + READ_CAPS.conflictTasks + READ_CAPS.conflictAlternatives);
  });

  it('follows fragments and inline fragments, and honours @skip/@include', () => {
    const q = `query($deep: Boolean!) {
      tasks(first: 10) { edges { node { ...T ... on Task { goal { id } } dependsOn @include(if: $deep) { id } } } }
    } fragment T on Task { conflicts { id } }`;
    expect(cost(q, { deep: false })).to.equal(10 * (1 + READ_CAPS.taskConflicts + 1));
    expect(cost(q, { deep: true })).to.equal(10 * (1 + READ_CAPS.taskConflicts + 1 + 50));
  });

  it('picks the named operation, and ignores introspection', () => {
    const doc = 'query A { me { id } } query B { tasks(first: 4) { edges { node { id } } } }';
    expect(cost(doc, {}, 'B')).to.equal(4);
    expect(cost(doc, {}, 'C')).to.equal(null);
    expect(cost('{ __schema { types { name fields { name } } } }')).to.equal(0);
  });

  it('has a cap for every list of objects, stated in its description', () => {
    const missing: string[] = [];
    const undocumented: string[] = [];
    const lists = new Set<string>();
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields()) as Array<GraphQLField<unknown, unknown>>) {
        if (!isListType(getNullableType(field.type)) || isLeafType(getNamedType(field.type))) continue;
        if (field.name === 'edges' && /Connection$/.test(type.name)) continue;
        const key = `${type.name}.${field.name}`;
        lists.add(key);
        const cap = LIST_CAPS[key];
        if (cap === undefined) {
          missing.push(key);
          continue;
        }
        const stated = cap === 'page' ? 'at most 100' : `at most ${cap}`;
        const text =
          cap === 'page' ? field.args.find((a) => a.name === 'first')?.description : field.description;
        if (!text?.toLowerCase().includes(stated)) undocumented.push(`${key}: "${stated}"`);
      }
    }
    expect(missing, 'list fields without a cap in LIST_CAPS').to.deep.equal([]);
    expect(undocumented, 'caps not stated in the SDL').to.deep.equal([]);
    expect(
      Object.keys(LIST_CAPS).filter((k) => !lists.has(k)),
      'LIST_CAPS entries naming no list',
    ).to.deep.equal([]);
  });
});
