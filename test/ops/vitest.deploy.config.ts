/**
 * `npm run test:deploy`: the release checks that take minutes (the bundle built and run from an
 * empty directory, install.sh in Debian chroots, the unit booted under systemd-nspawn), kept out
 * of the default suite. About 3 to 5 minutes; the first run on a machine also builds the cached
 * chroots under /var/cache/sluice-deploy-test with debootstrap (needs the Debian mirror; several
 * minutes more), hence the long timeouts. Files run one after another: they share the bundle.
 */
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('../..', import.meta.url).pathname,
    include: ['test/ops/**/*.deploy.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 900_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1,
  },
});
