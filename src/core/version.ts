/** The version of this build, read from package.json (one source of truth). */
import { readFileSync } from 'node:fs';

function findVersion(): string {
  // This file runs from dist/src/core/ after a build and from src/core/ under vitest.
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'sluice') return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return '0.0.0';
}

export const VERSION = findVersion();
