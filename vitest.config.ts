import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'drivers/**/*.test.ts', 'buffer/**/*.test.ts', 'uplink/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', 'test/faults/**', 'test/**/*.interop.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Tests start real brokers and servers on free ports; two cores: keep parallelism modest.
    maxWorkers: 2,
  },
});
