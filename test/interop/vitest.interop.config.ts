/** `npm run test:interop`: conformance suites of other projects run against the gateway (slow: minutes). */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/interop/**/*.interop.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 20 * 60_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
