/** The version of this build, read from package.json (one source of truth). */
import { readFileSync } from 'node:fs';

function findVersion(): string {
  // src/version.ts runs from dist/src/ after a build and from src/ under vitest.
  for (const rel of ['../../package.json', '../package.json']) {
    try {
      return JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')).version as string;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0';
}

export const VERSION = findVersion();
