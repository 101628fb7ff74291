#!/usr/bin/env node
// The `sluice` command. Runs the compiled CLI (dist/, built by `npm run build`, which `npm ci` runs
// through `prepare`); in the release bundle dist/ sits beside src/ the same way.
import('../../dist/src/cli/main.js')
  .then((cli) => cli.main(process.argv.slice(2)))
  .then((code) => {
    if (typeof code === 'number') process.exitCode = code;
  })
  .catch((err) => {
    if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/cli')) {
      console.error('sluice is not built: run `npm run build` (or `npm ci`) first.');
      process.exitCode = 2;
      return;
    }
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  });
