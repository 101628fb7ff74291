// Lint: ESLint's and typescript-eslint's recommended rules (pure JS: runs the same on every
// platform, which a linter shipped as per-platform native binaries did not under `npm ci`).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-artifacts/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'warn',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-control-regex': 'off',
      // Errors are rewrapped into one user-facing sentence on purpose.
      'preserve-caught-error': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // Browser code of the dashboard page and plain-JS helper scripts.
    files: ['**/*.mjs', '**/*.cjs', 'src/cli/bin.js'],
    languageOptions: { globals: { ...globals.node } },
  },
);
