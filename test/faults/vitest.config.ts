/**
 * `npm run test:faults`: the fault, abuse and security suite. Separate from the main
 * suite (whose config excludes test/faults) because it runs long, starts the compiled gateway as a
 * child process (`npm run build` first) and measures its memory: files run one after another so
 * one file's load does not skew another's figures. The whole suite is bounded well under 10 min.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/faults/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
    globalSetup: ['test/faults/report-setup.ts'],
  },
});
