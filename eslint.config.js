// ESLint flat config: @eslint/js recommended + typescript-eslint recommended
// (syntax-only rules, no type information, so `npm run lint` stays fast;
// `npm run typecheck` covers the types).
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Globals for plain .js/.mjs/.cjs files (TypeScript files get no-undef from tsc instead).
// Kept inline so the config needs no extra package.
const runtimeGlobals = Object.fromEntries(
  [
    // Node.js and shared web platform
    'process', 'Buffer', 'console', 'global', 'globalThis', 'URL', 'URLSearchParams',
    'TextEncoder', 'TextDecoder', 'AbortController', 'AbortSignal', 'Event', 'EventTarget',
    'fetch', 'Request', 'Response', 'Headers', 'FormData', 'Blob', 'crypto', 'structuredClone',
    'queueMicrotask', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval',
    'setImmediate', 'clearImmediate', 'performance', 'WebSocket',
    // Browser (client snippet)
    'window', 'document', 'navigator', 'location', 'localStorage', 'sessionStorage',
    'CustomEvent', 'requestAnimationFrame', 'cancelAnimationFrame',
  ].map((name) => [name, 'readonly']),
);

export default defineConfig(
  globalIgnores([
    'dist/',
    'node_modules/',
    'data/',
    'coverage/',
    '.tap/',
    'client-snippet/dist/',
    'dashboard/dist/',
  ]),
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      globals: runtimeGlobals,
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', exports: 'writable', __dirname: 'readonly', __filename: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
