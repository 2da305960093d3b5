/**
 * API compatibility checks (run by test/unit/api-contract.test.ts, so CI runs them):
 * - contractProblems: every name of schema/contract/contract.graphql (CONTRACT.md as SDL) still
 *   exists in the served schema with the same meaning as far as a schema can say it: the same kind,
 *   field type and nullability, the same arguments with the same types and defaults, every enum
 *   value, and no new required argument on a contract field.
 * - undeclaredBreakingChanges: graphql's findBreakingChanges between the last release's SDL
 *   (schema/release/<version>.graphql) and the served schema, minus those the CHANGELOG declares
 *   under [Unreleased] with a line containing "Breaking" and the changed name in backticks, e.g.
 *   "- Breaking: `Query.rolloutReport` removed; use `Query.rollout`."
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  Kind,
  buildSchema as buildFromSdl,
  findBreakingChanges,
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isNonNullType,
  isObjectType,
  isScalarType,
  parse,
  print,
  type BreakingChange,
  type GraphQLSchema,
  type InputValueDefinitionNode,
} from 'graphql';

const ROOT = path.resolve(__dirname, '..');
export const CONTRACT_SDL = path.join(ROOT, 'schema', 'contract', 'contract.graphql');
export const RELEASE_DIR = path.join(ROOT, 'schema', 'release');
export const CHANGELOG = path.join(ROOT, 'CHANGELOG.md');

function defaultText(node: InputValueDefinitionNode | undefined | null): string | null {
  return node?.defaultValue ? print(node.defaultValue) : null;
}

/** Every way `served` departs from the contract SDL, as readable lines (empty: compatible). */
export function contractProblems(served: GraphQLSchema, contractSdl: string): string[] {
  const out: string[] = [];
  for (const def of parse(contractSdl).definitions) {
    if (!('name' in def) || !def.name) continue;
    const name = def.name.value;
    const t = served.getType(name);
    if (!t) {
      out.push(`${name}: type missing`);
      continue;
    }
    if (def.kind === Kind.SCALAR_TYPE_DEFINITION) {
      if (!isScalarType(t)) out.push(`${name}: no longer a scalar`);
    } else if (def.kind === Kind.ENUM_TYPE_DEFINITION) {
      if (!isEnumType(t)) {
        out.push(`${name}: no longer an enum`);
        continue;
      }
      for (const v of def.values ?? [])
        if (!t.getValue(v.name.value)) out.push(`${name}.${v.name.value}: enum value missing`);
    } else if (def.kind === Kind.INPUT_OBJECT_TYPE_DEFINITION) {
      if (!isInputObjectType(t)) {
        out.push(`${name}: no longer an input type`);
        continue;
      }
      const fields = t.getFields();
      for (const f of def.fields ?? []) {
        const s = fields[f.name.value];
        if (!s) out.push(`${name}.${f.name.value}: input field missing`);
        else if (String(s.type) !== print(f.type))
          out.push(`${name}.${f.name.value}: type ${String(s.type)}, contract says ${print(f.type)}`);
      }
      for (const s of Object.values(fields))
        if (
          isNonNullType(s.type) &&
          s.defaultValue === undefined &&
          !def.fields?.some((f) => f.name.value === s.name)
        )
          out.push(`${name}.${s.name}: new required input field`);
    } else if (def.kind === Kind.OBJECT_TYPE_DEFINITION) {
      if (!isObjectType(t) && !isInterfaceType(t)) {
        out.push(`${name}: no longer an object type`);
        continue;
      }
      const fields = t.getFields();
      for (const f of def.fields ?? []) {
        const at = `${name}.${f.name.value}`;
        const s = fields[f.name.value];
        if (!s) {
          out.push(`${at}: field missing`);
          continue;
        }
        if (String(s.type) !== print(f.type))
          out.push(`${at}: type ${String(s.type)}, contract says ${print(f.type)}`);
        for (const a of f.arguments ?? []) {
          const sa = s.args.find((x) => x.name === a.name.value);
          if (!sa) out.push(`${at}(${a.name.value}): argument missing`);
          else {
            if (String(sa.type) !== print(a.type))
              out.push(`${at}(${a.name.value}): type ${String(sa.type)}, contract says ${print(a.type)}`);
            if (defaultText(sa.astNode) !== defaultText(a))
              out.push(
                `${at}(${a.name.value}): default ${defaultText(sa.astNode)}, contract says ${defaultText(a)}`,
              );
          }
        }
        for (const sa of s.args)
          if (
            isNonNullType(sa.type) &&
            sa.defaultValue === undefined &&
            !f.arguments?.some((a) => a.name.value === sa.name)
          )
            out.push(`${at}(${sa.name}): new required argument`);
      }
    }
  }
  return out;
}

/** The newest release snapshot: [version, SDL] (by semantic version of the file names). */
export function lastRelease(dir = RELEASE_DIR): [string, string] {
  const versions = fs
    .readdirSync(dir)
    .filter((f) => /^\d+\.\d+\.\d+\.graphql$/.test(f))
    .map((f) => f.replace(/\.graphql$/, ''))
    .sort((a, b) => {
      const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
      return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
    });
  const v = versions.at(-1);
  if (!v) throw new Error(`no release SDL in ${dir}`);
  return [v, fs.readFileSync(path.join(dir, `${v}.graphql`), 'utf8')];
}

/** The [Unreleased] section of a Keep-a-Changelog file. */
export function unreleased(changelog: string): string {
  const start = changelog.indexOf('## [Unreleased]');
  if (start < 0) return '';
  const next = changelog.indexOf('\n## [', start + 1);
  return changelog.slice(start, next < 0 ? undefined : next);
}

/** The name a breaking change is about: the first word of graphql's description ("Query.x was removed."). */
export function changedName(c: BreakingChange): string {
  return c.description.split(/\s+/)[0]!.replace(/\.$/, '');
}

/** Breaking changes from `releaseSdl` to `served` that the changelog does not declare. */
export function undeclaredBreakingChanges(
  served: GraphQLSchema,
  releaseSdl: string,
  changelog: string,
): string[] {
  const declared = unreleased(changelog)
    .split('\n')
    .filter((l) => /\bbreaking\b/i.test(l));
  return findBreakingChanges(buildFromSdl(releaseSdl), served)
    .filter((c) => !declared.some((l) => l.includes(`\`${changedName(c)}\``)))
    .map((c) => `${c.type}: ${c.description}`);
}
