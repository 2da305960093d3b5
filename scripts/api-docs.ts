/**
 * docs/api.md, generated from the SDL (schema/*.graphql): `npm run docs:api` writes it,
 * `npm run docs:api -- --check` exits 1 when the file is not what the SDL gives (CI; the same
 * comparison is a mocha test, test/unit/api-docs.test.ts). The output is run through prettier so
 * that `prettier --check .` agrees with the generator.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  isSpecifiedScalarType,
  isUnionType,
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputField,
  type GraphQLNamedType,
  type GraphQLSchema,
} from 'graphql';
import prettier from 'prettier';
import { buildSchema } from '../src/resolvers';

export const API_DOC = path.resolve(__dirname, '..', 'docs', 'api.md');

/** One line of table text: newlines folded, pipes escaped. */
function cell(text: string | null | undefined): string {
  return (text ?? '')
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\|/g, '\\|')
    .trim();
}

function anchor(name: string): string {
  return name.toLowerCase();
}

function defaultOf(a: GraphQLArgument | GraphQLInputField): string {
  if (a.astNode?.defaultValue === undefined) return '';
  const v = a.astNode.defaultValue;
  const text = 'value' in v ? String(v.value) : v.kind === 'ListValue' ? '[…]' : v.kind;
  return ` = ${text}`;
}

function operation(f: GraphQLField<unknown, unknown>): string {
  const out = [`### \`${f.name}\``, '', `\`${f.name}${argsSignature(f.args)}: ${String(f.type)}\``, ''];
  if (f.description) out.push(f.description.trim(), '');
  if (f.deprecationReason) out.push(`**Deprecated:** ${f.deprecationReason}`, '');
  if (f.args.length) {
    out.push('| Argument | Type | Description |', '| --- | --- | --- |');
    for (const a of f.args)
      out.push(`| \`${a.name}\` | \`${String(a.type)}${defaultOf(a)}\` | ${cell(a.description)} |`);
    out.push('');
  }
  return out.join('\n');
}

function argsSignature(args: readonly GraphQLArgument[]): string {
  if (!args.length) return '';
  return `(${args.map((a) => `${a.name}: ${String(a.type)}${defaultOf(a)}`).join(', ')})`;
}

function namedType(t: GraphQLNamedType): string {
  const kind = isObjectType(t)
    ? 'type'
    : isInputObjectType(t)
      ? 'input'
      : isEnumType(t)
        ? 'enum'
        : isInterfaceType(t)
          ? 'interface'
          : isUnionType(t)
            ? 'union'
            : 'scalar';
  const out = [`### ${t.name}`, '', `_${kind}_`, ''];
  if (t.description) out.push(t.description.trim(), '');
  if (isObjectType(t) || isInterfaceType(t)) {
    out.push('| Field | Type | Description |', '| --- | --- | --- |');
    for (const f of Object.values(t.getFields())) {
      const dep = f.deprecationReason ? ` **Deprecated:** ${cell(f.deprecationReason)}` : '';
      out.push(
        `| \`${f.name}${argsSignature(f.args)}\` | \`${String(f.type)}\` | ${cell(f.description)}${dep} |`,
      );
    }
    out.push('');
  } else if (isInputObjectType(t)) {
    out.push('| Field | Type | Description |', '| --- | --- | --- |');
    for (const f of Object.values(t.getFields()))
      out.push(`| \`${f.name}\` | \`${String(f.type)}${defaultOf(f)}\` | ${cell(f.description)} |`);
    out.push('');
  } else if (isEnumType(t)) {
    out.push('| Value | Description |', '| --- | --- |');
    for (const v of t.getValues()) out.push(`| \`${v.name}\` | ${cell(v.description)} |`);
    out.push('');
  } else if (isUnionType(t)) {
    out.push(
      `One of: ${t
        .getTypes()
        .map((m) => `[${m.name}](#${anchor(m.name)})`)
        .join(', ')}`,
      '',
    );
  }
  return out.join('\n');
}

/** The Markdown reference of `schema` (prettier-formatted). */
export async function renderApiDoc(schema: GraphQLSchema = buildSchema()): Promise<string> {
  const roots = [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].filter(
    (t) => t != null,
  );
  const rootNames = new Set(roots.map((r) => r.name));
  const types = Object.values(schema.getTypeMap())
    .filter((t) => !t.name.startsWith('__') && !rootNames.has(t.name))
    .filter((t) => !(isScalarType(t) && isSpecifiedScalarType(t)))
    .sort((a, b) => a.name.localeCompare(b.name));
  const parts = [
    '# API reference',
    '',
    '<!-- Generated from schema/*.graphql by `npm run docs:api`. Do not edit: CI fails when it is stale. -->',
    '',
    'GraphQL over HTTP at `POST /graphql` and over WebSocket (graphql-ws) at the same path. Every',
    'operation acts for the authenticated user only. Conventions, errors and examples: README.md',
    '("Using the API", "Live events", "Errors and dev mode"); the fixed names: CONTRACT.md.',
    '',
  ];
  for (const root of roots) {
    parts.push(`## ${root.name}`, '');
    if (root.description) parts.push(root.description.trim(), '');
    for (const f of Object.values(root.getFields())) parts.push(operation(f));
  }
  parts.push('## Types', '');
  for (const t of types) parts.push(namedType(t));
  const config = (await prettier.resolveConfig(API_DOC)) ?? {};
  return prettier.format(parts.join('\n'), { ...config, filepath: API_DOC });
}

async function main(): Promise<void> {
  const want = await renderApiDoc();
  if (process.argv.includes('--check')) {
    const have = fs.existsSync(API_DOC) ? fs.readFileSync(API_DOC, 'utf8') : '';
    if (have !== want) {
      console.error('docs/api.md is stale: run `npm run docs:api` and commit the result.');
      process.exit(1);
    }
    console.log('docs/api.md is current.');
    return;
  }
  fs.writeFileSync(API_DOC, want);
  console.log(`wrote ${path.relative(process.cwd(), API_DOC)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
