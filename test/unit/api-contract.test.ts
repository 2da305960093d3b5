/**
 * Documentation and compatibility checks of the public API (issue 16, documentation), run in CI as
 * part of the suite: docs/api.md is what `npm run docs:api` generates from the SDL; every name of
 * the contract keeps its meaning; no breaking change against the last release's SDL unless the
 * CHANGELOG declares it. Each check is also shown failing on a changed schema.
 */
import fs from 'node:fs';
import { expect } from 'chai';
import { buildSchema as buildFromSdl, type GraphQLSchema } from 'graphql';
import { buildSchema, loadTypeDefs } from '../../src/resolvers';
import { API_DOC, renderApiDoc } from '../../scripts/api-docs';
import {
  CHANGELOG,
  CONTRACT_SDL,
  contractProblems,
  lastRelease,
  undeclaredBreakingChanges,
} from '../../scripts/schema-checks';

/** The served SDL without the `redo` mutation (its description, arguments and all). */
const withoutRedo = (sdl: string) => sdl.replace(/\n\s*"[^"\n]*"\n\s*redo\([\s\S]*?\): UpdateResult!/, '');

/**
 * Contract names another branch adds, missing here until the merge: name → branch. After that
 * merge the name exists and the test below fails until its line is removed (no stale entries).
 */
const PENDING_CONTRACT: Record<string, string> = {};

/** The served SDL with `edit` applied (a changed schema for the failing cases). */
function edited(edit: (sdl: string) => string): GraphQLSchema {
  const sdl = edit(loadTypeDefs());
  expect(sdl).to.not.equal(loadTypeDefs(), 'the edit must change the SDL');
  return buildFromSdl(sdl);
}

describe('API documentation and compatibility', () => {
  const served = buildSchema();
  const contract = fs.readFileSync(CONTRACT_SDL, 'utf8');
  const [version, releaseSdl] = lastRelease();
  const changelog = fs.readFileSync(CHANGELOG, 'utf8');

  it('docs/api.md is current (regenerate with `npm run docs:api`)', async function () {
    this.timeout(60_000); // prettier formats ~1,100 lines of Markdown
    const want = await renderApiDoc(served);
    expect(
      fs.readFileSync(API_DOC, 'utf8') === want,
      'docs/api.md is stale: run `npm run docs:api`',
    ).to.equal(true);
    expect(want).to.include('### `createTask`').and.include('### UpdateResult');
  });

  it('keeps every contract name with the same type, arguments and defaults', () => {
    const problems = contractProblems(served, contract);
    const pending = (p: string) => p.split(':')[0]! in PENDING_CONTRACT;
    expect(problems.filter((p) => !pending(p))).to.deep.equal([]);
    const landed = Object.keys(PENDING_CONTRACT).filter((n) => !problems.some((p) => p.startsWith(`${n}:`)));
    expect(landed, 'these contract names exist now: remove them from PENDING_CONTRACT').to.deep.equal([]);
  });

  it('the contract check fails on a removed, retyped or re-defaulted name', () => {
    const changed = edited((s) =>
      withoutRedo(s)
        .replace(/onConflict: ConflictPolicy = ALLOW/, 'onConflict: ConflictPolicy = REJECT')
        .replace(/canUndo: Boolean!/, 'canUndo: Boolean'),
    );
    const problems = contractProblems(changed, contract);
    expect(problems).to.include('Mutation.redo: field missing');
    expect(problems).to.include('UndoState.canUndo: type Boolean, contract says Boolean!');
    expect(problems).to.include('Mutation.createTask(onConflict): default REJECT, contract says ALLOW');
  });

  it(`shows no undeclared breaking change against release ${version}`, () => {
    expect(undeclaredBreakingChanges(served, releaseSdl, changelog)).to.deep.equal([]);
  });

  it('the breaking-change check fails on a removal unless the CHANGELOG declares it', () => {
    const changed = edited(withoutRedo);
    const found = undeclaredBreakingChanges(changed, releaseSdl, changelog);
    expect(found).to.deep.equal(['FIELD_REMOVED: Mutation.redo was removed.']);
    const declared = changelog.replace(
      '## [Unreleased]\n',
      '## [Unreleased]\n\n- Breaking: `Mutation.redo` removed (undo the undo instead).\n',
    );
    expect(undeclaredBreakingChanges(changed, releaseSdl, declared)).to.deep.equal([]);
  });
});
