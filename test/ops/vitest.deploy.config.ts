/**
 * `npm run test:deploy`: the release checks that take minutes (the bundle built and run from an
 * empty directory, install.sh in a Debian chroot), kept out of the default suite. Files run one
 * after another: they share the bundle and the chroot cache.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/ops/**/*.deploy.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
